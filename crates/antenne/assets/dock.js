// The OBS dock (/dock): a narrow page for OBS's Custom Browser Docks.
// Shows the ingest's state and each destination's switch, state and
// error, and offers a quick "new key" paste for platforms that give a new
// key for each live (presets with new_key_each_live). It uses the same
// REST API and live stream (/api/v1/events/stream) as the dashboard;
// without a session the server sends it to /login?next=/dock and back.
//
// Rows are kept per destination id and updated in place, so the live
// snapshot (every second) never disturbs a key being typed.

import { API, api, setLoginPath } from './api.js';
import { t, initI18n, bindLangSwitch, onLangChange, applyI18n, fmtNumber } from './i18n.js';

const state = {
  presets: new Map(),
  destinations: [],
  ingests: [],
  rows: new Map(),
  busy: new Set(), // ids whose switch is being changed
};

const list = document.getElementById('list');
const empty = document.getElementById('empty');
const ingestPill = document.getElementById('ingest');
const ingestDetail = document.getElementById('ingest-detail');
const banner = document.getElementById('banner');
const rowTemplate = document.getElementById('row');

setLoginPath('/login?next=/dock');

// ------------------------------------------------------------ all on / all off

// The same one-request switches as the dashboard's (POST
// /ingest-keys/{id}/destinations/enable-all|disable-all), for the ingest
// OBS streams to (the first one). Turning all off asks first, inline (OBS's
// docks do not show the browser's own dialogs), naming what it stops.
const bulk = document.getElementById('bulk');
const confirmBox = bulk.querySelector('[data-testid=dock-all-off-confirm]');
const bulkMsg = bulk.querySelector('[data-testid=dock-bulk-msg]');

function bulkIngest() {
  return state.ingests[0] || null;
}

function renderBulk() {
  const ing = bulkIngest();
  bulk.hidden = !ing || !state.destinations.some((d) => d.ingest === ing.key);
}

async function switchAll(on) {
  const ing = bulkIngest();
  if (!ing) return;
  confirmBox.hidden = true;
  bulk.querySelectorAll('button').forEach((b) => (b.disabled = true));
  bulkMsg.textContent = '';
  try {
    const res = await api('POST', `/ingest-keys/${encodeURIComponent(ing.id)}/destinations/${on ? 'enable-all' : 'disable-all'}`);
    if (res && Array.isArray(res.destinations)) state.destinations = res.destinations;
    const changed = (res && res.changed) || [];
    const skipped = (res && res.skipped) || [];
    bulkMsg.textContent = [
      t(on ? 'dock.all_on_done' : 'dock.all_off_done', { count: changed.length }),
      ...skipped.map((s) => `${s.name}: ${s.reason}`),
    ].join(' ');
    render();
  } catch (err) {
    bulkMsg.textContent = err.message;
  } finally {
    bulk.querySelectorAll('button').forEach((b) => (b.disabled = false));
  }
}

bulk.querySelector('[data-testid=dock-all-on]').addEventListener('click', () => switchAll(true));
bulk.querySelector('[data-testid=dock-all-off]').addEventListener('click', () => {
  const ing = bulkIngest();
  const names = state.destinations.filter((d) => ing && d.ingest === ing.key && d.enabled).map((d) => d.name);
  if (!names.length) {
    bulkMsg.textContent = t('dock.all_off_none');
    return;
  }
  bulk.querySelector('[data-testid=dock-all-off-question]').textContent = t('dock.all_off_ask', {
    names: names.join(', '),
  });
  confirmBox.hidden = false;
  bulk.querySelector('[data-testid=dock-all-off-yes]').focus();
});
bulk.querySelector('[data-testid=dock-all-off-yes]').addEventListener('click', () => switchAll(false));
bulk.querySelector('[data-testid=dock-all-off-no]').addEventListener('click', () => {
  confirmBox.hidden = true;
});

// ------------------------------------------------------------ ingest

function renderIngest() {
  const live = state.ingests.find((i) => i.live);
  ingestPill.dataset.state = live ? 'live' : 'offline';
  ingestPill.textContent = live ? t('dock.live') : t('dock.offline');
  if (!live) {
    ingestDetail.textContent = t('dock.waiting');
    return;
  }
  const parts = [];
  if (live.width && live.height) parts.push(`${live.width}×${live.height}`);
  if (live.frame_rate) parts.push(t('unit.fps', { value: fmtNumber(live.frame_rate, { maximumFractionDigits: 2 }) }));
  parts.push(t('unit.kbps', { value: fmtNumber(live.bitrate_kbps || 0) }));
  ingestDetail.textContent = parts.join(' · ');
}

// ------------------------------------------------------------ destinations

function makeRow(id) {
  const li = rowTemplate.content.firstElementChild.cloneNode(true);
  applyI18n(li);
  li.dataset.id = id;
  li.setAttribute('data-testid', 'dock-dest');
  const sw = li.querySelector('.switch');
  sw.setAttribute('data-testid', 'dock-switch');
  sw.addEventListener('click', () => toggle(id));
  const form = li.querySelector('.key-form');
  const input = li.querySelector('.key-input');
  const msg = li.querySelector('.key-msg');
  li.querySelector('.new-key').setAttribute('data-testid', 'dock-new-key');
  input.setAttribute('data-testid', 'dock-key-input');
  form.querySelector('[type=submit]').setAttribute('data-testid', 'dock-key-save');
  msg.setAttribute('data-testid', 'dock-key-msg');
  li.querySelector('.new-key').addEventListener('click', () => {
    form.hidden = false;
    msg.textContent = '';
    input.focus();
  });
  li.querySelector('.cancel').addEventListener('click', () => {
    input.value = '';
    form.hidden = true;
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      input.focus();
      msg.textContent = t('dock.key_missing');
      return;
    }
    form.querySelectorAll('button, input').forEach((el) => (el.disabled = true));
    try {
      const d = await api('PATCH', `/destinations/${encodeURIComponent(id)}`, { key });
      replace(d);
      input.value = '';
      form.hidden = true;
      msg.textContent = t('dock.key_saved');
    } catch (err) {
      msg.textContent = err.message;
    } finally {
      form.querySelectorAll('button, input').forEach((el) => (el.disabled = false));
    }
  });
  return li;
}

function renderRow(li, d) {
  const preset = state.presets.get(d.platform);
  const name = li.querySelector('.dest-name');
  name.textContent = d.name;
  name.title = preset && preset.id !== 'custom' ? `${d.name} (${preset.name})` : d.name;
  const sw = li.querySelector('.switch');
  sw.setAttribute('aria-checked', String(!!d.enabled));
  sw.setAttribute('aria-label', t('dock.toggle', { name: d.name }));
  sw.disabled = state.busy.has(d.id);
  const st = d.status && d.status.state ? d.status.state : 'idle';
  const badge = li.querySelector('.badge');
  badge.dataset.state = st;
  badge.textContent = t(`state.${st}`);
  const error = li.querySelector('.dest-error');
  const text = li.dataset.toggleError || (d.status && d.status.error) || '';
  error.hidden = !text;
  error.textContent = text;
  li.querySelector('.dest-key').hidden = !(preset && preset.new_key_each_live);
}

function render() {
  renderIngest();
  renderBulk();
  const seen = new Set();
  let previous = null;
  for (const d of state.destinations) {
    seen.add(d.id);
    let li = state.rows.get(d.id);
    if (!li) {
      li = makeRow(d.id);
      state.rows.set(d.id, li);
    }
    renderRow(li, d);
    const want = previous ? previous.nextSibling : list.firstChild;
    if (want !== li) list.insertBefore(li, want);
    previous = li;
  }
  for (const [id, li] of state.rows) {
    if (!seen.has(id)) {
      li.remove();
      state.rows.delete(id);
    }
  }
  empty.hidden = state.destinations.length > 0;
}

function replace(d) {
  state.destinations = state.destinations.map((x) => (x.id === d.id ? d : x));
  render();
}

async function toggle(id) {
  const d = state.destinations.find((x) => x.id === id);
  if (!d || state.busy.has(id)) return;
  const li = state.rows.get(id);
  state.busy.add(id);
  delete li.dataset.toggleError;
  render();
  try {
    replace(await api('PATCH', `/destinations/${encodeURIComponent(id)}`, { enabled: !d.enabled }));
  } catch (err) {
    li.dataset.toggleError = err.message;
  } finally {
    state.busy.delete(id);
    render();
  }
}

// ------------------------------------------------------------ live stream

let stream = null;
let failures = 0;

function connectStream() {
  if (stream) stream.close();
  const es = new EventSource(`${API}/events/stream`);
  stream = es;
  es.addEventListener('snapshot', (ev) => {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    failures = 0;
    banner.hidden = true;
    if (Array.isArray(data.ingests)) state.ingests = data.ingests;
    if (Array.isArray(data.destinations)) state.destinations = data.destinations;
    render();
  });
  es.addEventListener('error', () => {
    banner.hidden = false;
    if (es.readyState === EventSource.CLOSED) {
      es.close();
      const delay = Math.min(30_000, 1000 * 2 ** failures);
      failures += 1;
      setTimeout(async () => {
        try {
          await api('GET', '/me');
        } catch {
          // 401 went to the login page; otherwise try again
        }
        connectStream();
      }, delay);
    }
  });
}

// ------------------------------------------------------------ boot

async function boot() {
  await initI18n();
  bindLangSwitch(document);
  onLangChange(() => render());
  const [presets, dests, ingest] = await Promise.all([
    api('GET', '/presets'),
    api('GET', '/destinations'),
    api('GET', '/ingest'),
  ]);
  for (const p of presets || []) state.presets.set(p.id, p);
  state.destinations = dests || [];
  state.ingests = (ingest && ingest.ingests) || [];
  render();
  document.body.classList.remove('booting');
  connectStream();
}

boot().catch((err) => {
  document.body.classList.remove('booting');
  banner.hidden = false;
  banner.textContent = err.message;
});
