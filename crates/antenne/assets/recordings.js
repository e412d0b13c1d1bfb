// Recordings: start/stop and "record whenever live" on each ingest card,
// the Recordings section of the dashboard (play in the page, download,
// delete) and the recording settings. Talks to /api/v1/recordings and
// /api/v1/ingest/{id}/recording; polls every few seconds while the page is
// visible. Ingest cards carry data-ingest-id (set by app.js) and an empty
// [data-role="recording"] slot (index.html) that this module fills.

import { API, api } from './api.js';
import { t, applyI18n, onLangChange, fmtDateTime, fmtNumber } from './i18n.js';
import { el } from './dom.js';

const POLL_MS = 3000;
let last = { recordings: [], ingests: [] };
let settings = null;

const call = api;

function showError(msg) {
  const box = document.getElementById('rec-error');
  if (!box) return;
  box.textContent = msg || '';
  box.hidden = !msg;
}

function fmtDuration(s) {
  const total = Math.round(s || 0);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function fmtSize(bytes) {
  const mib = (bytes || 0) / (1024 * 1024);
  return mib >= 1024
    ? `${fmtNumber(mib / 1024, { maximumFractionDigits: 1 })} GiB`
    : `${fmtNumber(mib, { maximumFractionDigits: 1 })} MiB`;
}

// ------------------------------------------------------------ ingest cards

function renderCards() {
  for (const card of document.querySelectorAll('[data-ingest-id]')) {
    const slot = card.querySelector('[data-role="recording"]');
    if (!slot) continue;
    const id = card.dataset.ingestId;
    const st = last.ingests.find((i) => i.ingest === id) || { recording: false, auto: false };
    if (!slot.firstChild) {
      slot.append(
        el('span', { class: 'rec-state', 'data-testid': 'rec-state' }),
        el('button', { type: 'button', class: 'btn small', 'data-testid': 'rec-toggle', 'data-rec-action': 'toggle' }),
        el('label', { class: 'rec-auto' }),
        el('p', { class: 'status-detail rec-error', 'data-testid': 'rec-last-error', hidden: '' }),
      );
      const box = el('input', { type: 'checkbox', 'data-testid': 'rec-auto', 'data-rec-action': 'auto' });
      slot.querySelector('.rec-auto').append(box, el('span'));
    }
    const state = slot.querySelector('.rec-state');
    state.textContent = st.recording ? t('rec.recording') : '';
    state.classList.toggle('on', !!st.recording);
    state.title = st.file || '';
    const btn = slot.querySelector('[data-rec-action="toggle"]');
    btn.textContent = t(st.recording ? 'rec.stop' : 'rec.start');
    btn.dataset.recording = String(!!st.recording);
    slot.querySelector('[data-rec-action="auto"]').checked = !!st.auto;
    slot.querySelector('.rec-auto span').textContent = t('rec.auto');
    const err = slot.querySelector('.rec-error');
    err.textContent = st.last_error || '';
    err.hidden = !st.last_error;
  }
}

async function onCardClick(e) {
  const target = e.target.closest('[data-rec-action]');
  if (!target) return;
  const card = target.closest('[data-ingest-id]');
  const id = card && card.dataset.ingestId;
  if (!id) return;
  try {
    if (target.dataset.recAction === 'toggle') {
      target.disabled = true;
      const on = target.dataset.recording === 'true';
      await call(on ? 'DELETE' : 'POST', `/ingest/${encodeURIComponent(id)}/recording`);
    } else if (target.dataset.recAction === 'auto') {
      const s = settings || (await call('GET', '/recordings/settings'));
      const auto = new Set(s.auto || []);
      if (target.checked) auto.add(id);
      else auto.delete(id);
      settings = await call('PUT', '/recordings/settings', { ...s, auto: [...auto] });
    }
    showError('');
  } catch (err) {
    showError(err.message);
  } finally {
    target.disabled = false;
    refresh();
  }
}

// ------------------------------------------------------ recordings section

function renderList() {
  const body = document.getElementById('rec-body');
  if (!body) return;
  body.replaceChildren();
  for (const r of last.recordings) {
    const tr = el('tr', { 'data-recording-id': r.id, 'data-testid': 'recording-row' });
    const url = `${API}/recordings/${encodeURIComponent(r.id)}`;
    const actions = el('td', { class: 'rec-actions' });
    const play = el('button', { type: 'button', class: 'btn small', 'data-rec-list': 'play' }, t('rec.play'));
    const dl = el('a', { class: 'btn small', href: `${url}?download=1`, download: r.id }, t('rec.download'));
    const del = el('button', { type: 'button', class: 'btn small danger', 'data-rec-list': 'delete' }, t('rec.delete'));
    del.disabled = r.recording;
    play.dataset.url = url;
    actions.append(play, dl, del);
    tr.append(
      el('td', {}, fmtDateTime(new Date(r.started_at))),
      el('td', { class: 'mono' }, r.ingest),
      el('td', {}, r.recording ? `${fmtDuration(r.duration_seconds)} · ${t('rec.recording')}` : fmtDuration(r.duration_seconds)),
      el('td', {}, fmtSize(r.size_bytes)),
      actions,
    );
    body.append(tr);
  }
  document.getElementById('rec-empty').hidden = last.recordings.length > 0;
}

async function onListClick(e) {
  const btn = e.target.closest('[data-rec-list]');
  if (!btn) return;
  const row = btn.closest('[data-recording-id]');
  const id = row.dataset.recordingId;
  if (btn.dataset.recList === 'play') {
    const player = document.getElementById('rec-player');
    player.hidden = false;
    player.src = btn.dataset.url;
    player.play().catch(() => {});
  } else if (btn.dataset.recList === 'delete') {
    if (!window.confirm(t('rec.confirm_delete', { name: id }))) return;
    try {
      await call('DELETE', `/recordings/${encodeURIComponent(id)}`);
      showError('');
    } catch (err) {
      showError(err.message);
    }
    refresh();
  }
}

function renderSettings() {
  const form = document.getElementById('rec-settings');
  if (!form || !settings) return;
  for (const name of ['segment_minutes', 'min_free_mib', 'keep_days', 'keep_gib']) {
    const input = form.elements[name];
    if (input && document.activeElement !== input) input.value = settings[name] ?? '';
  }
}

async function onSettingsSubmit(e) {
  e.preventDefault();
  const form = e.target;
  const num = (name) => (form.elements[name].value === '' ? null : Number(form.elements[name].value));
  try {
    const s = settings || (await call('GET', '/recordings/settings'));
    settings = await call('PUT', '/recordings/settings', {
      ...s,
      segment_minutes: num('segment_minutes') ?? 60,
      min_free_mib: num('min_free_mib') ?? 2048,
      keep_days: num('keep_days'),
      keep_gib: num('keep_gib'),
    });
    showError('');
  } catch (err) {
    showError(err.message);
  }
  renderSettings();
}

// ---------------------------------------------------------------- polling

async function refresh() {
  if (document.hidden) return;
  try {
    const [list, s] = await Promise.all([call('GET', '/recordings'), settings ? settings : call('GET', '/recordings/settings')]);
    last = list || last;
    settings = s;
  } catch {
    return; // app.js shows connection problems
  }
  renderCards();
  renderList();
  renderSettings();
}

function init() {
  const section = document.getElementById('recordings');
  if (section) applyI18n(section);
  document.getElementById('ingests')?.addEventListener('click', onCardClick);
  document.getElementById('rec-body')?.addEventListener('click', onListClick);
  document.getElementById('rec-settings')?.addEventListener('submit', onSettingsSubmit);
  // New ingest cards appear when app.js renders: fill their slot at once.
  const box = document.getElementById('ingests');
  if (box) new MutationObserver(() => renderCards()).observe(box, { childList: true });
  onLangChange(() => {
    renderCards();
    renderList();
  });
  refresh();
  setInterval(refresh, POLL_MS);
  document.addEventListener('visibilitychange', refresh);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
