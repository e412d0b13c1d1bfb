// Standby ("never dark") on each ingest card: the state (live, on standby
// since …, ends in …, or why no standby picture can be made), the
// "Be right back" button, and the settings (picture preview and upload,
// wait, hold limit). Talks to /api/v1/ingest and /api/v1/ingest/{id}/standby*;
// polls every 2 s while the page is visible. Ingest cards carry
// data-ingest-id (set by app.js) and an empty [data-role="standby"] slot
// (index.html) that this module fills.

import { API, api, ApiError } from './api.js';
import { t, applyI18n, onLangChange, fmtTime } from './i18n.js';
import { el } from './dom.js';

const POLL_MS = 2000;
let ingests = [];
const previewVersion = new Map();

function fmtLeft(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

function stateText(sb) {
  if (!sb) return '';
  const since = sb.since ? fmtTime(new Date(sb.since)) : '';
  switch (sb.state) {
    case 'standby': {
      let text = t(sb.on_break ? 'standby.on_break' : 'standby.on', { since });
      if (sb.ends_at) text += ` · ${t('standby.ends_in', { left: fmtLeft(new Date(sb.ends_at) - Date.now()) })}`;
      return text;
    }
    case 'waiting':
      return t('standby.waiting');
    case 'holding': {
      let text = t('standby.holding');
      if (sb.ends_at) text += ` · ${t('standby.ends_in', { left: fmtLeft(new Date(sb.ends_at) - Date.now()) })}`;
      return text;
    }
    case 'live':
      return t(sb.ready ? 'standby.ready' : 'standby.preparing');
    default:
      return t('standby.idle');
  }
}

function build(slot, id) {
  slot.append(
    el('p', { class: 'status-detail', 'data-testid': 'standby-state', 'data-sb': 'state' }),
    el('p', { class: 'status-detail warn', 'data-testid': 'standby-unavailable', 'data-sb': 'unavailable', hidden: '' }),
    el('button', { type: 'button', class: 'btn small', 'data-testid': 'standby-break', 'data-sb-action': 'break' }),
  );
  const details = el('details', { class: 'standby-settings' });
  details.append(el('summary', { 'data-i18n': 'standby.settings' }));
  const img = el('img', { 'data-sb': 'preview', 'data-testid': 'standby-preview', alt: '', width: '320' });
  img.setAttribute('data-i18n-aria-label', 'standby.preview_alt');
  const file = el('input', { type: 'file', accept: 'image/png,image/jpeg', 'data-sb': 'file', 'data-testid': 'standby-file' });
  const form = el('form', { 'data-sb': 'form' });
  const wait = el('input', { type: 'number', min: '0', max: '60', step: '0.5', 'data-sb': 'wait' });
  const hold = el('input', { type: 'number', min: '1', step: '1', 'data-sb': 'hold' });
  const forever = el('input', { type: 'checkbox', 'data-sb': 'forever' });
  const lw = el('label');
  lw.append(el('span', { 'data-i18n': 'standby.wait' }), wait);
  const lh = el('label');
  lh.append(el('span', { 'data-i18n': 'standby.hold' }), hold);
  const lf = el('label');
  lf.append(forever, el('span', { 'data-i18n': 'standby.forever' }));
  form.append(lw, lh, lf, el('button', { type: 'submit', class: 'btn small', 'data-i18n': 'common.save' }));
  const lu = el('label');
  lu.append(el('span', { 'data-i18n': 'standby.upload' }), file);
  details.append(
    img,
    lu,
    el('button', { type: 'button', class: 'btn small', 'data-sb-action': 'card', 'data-i18n': 'standby.use_card' }),
    form,
    el('p', { class: 'status-detail', 'data-sb': 'error', role: 'alert', hidden: '' }),
  );
  details.addEventListener('toggle', () => {
    if (details.open) loadSettings(slot, id);
  });
  file.addEventListener('change', () => upload(slot, id, file));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    saveSettings(slot, id);
  });
  slot.append(details);
  applyI18n(slot);
}

function showError(slot, msg) {
  const box = slot.querySelector('[data-sb="error"]');
  box.textContent = msg || '';
  box.hidden = !msg;
}

function refreshPreview(slot, id) {
  const v = (previewVersion.get(id) || 0) + 1;
  previewVersion.set(id, v);
  slot.querySelector('[data-sb="preview"]').src = `${API}/ingest/${encodeURIComponent(id)}/standby/preview?v=${v}`;
}

async function loadSettings(slot, id) {
  try {
    const s = await api('GET', `/ingest/${encodeURIComponent(id)}/standby/settings`);
    slot.querySelector('[data-sb="wait"]').value = s.wait_ms == null ? '' : s.wait_ms / 1000;
    slot.querySelector('[data-sb="forever"]').checked = s.hold_limit === 'forever';
    slot.querySelector('[data-sb="hold"]').value = typeof s.hold_limit === 'number' ? s.hold_limit : '';
    showError(slot, '');
  } catch (e) {
    showError(slot, e.message);
  }
  refreshPreview(slot, id);
}

async function saveSettings(slot, id) {
  const wait = slot.querySelector('[data-sb="wait"]').value;
  const hold = slot.querySelector('[data-sb="hold"]').value;
  const forever = slot.querySelector('[data-sb="forever"]').checked;
  const body = {
    wait_ms: wait === '' ? null : Math.round(Number(wait) * 1000),
    hold_limit: forever ? 'forever' : hold === '' ? null : Number(hold),
  };
  try {
    await api('PUT', `/ingest/${encodeURIComponent(id)}/standby/settings`, body);
    showError(slot, '');
  } catch (e) {
    showError(slot, e.message);
  }
}

async function upload(slot, id, input) {
  const f = input.files && input.files[0];
  if (!f) return;
  try {
    const res = await fetch(`${API}/ingest/${encodeURIComponent(id)}/standby/image`, {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': f.type || 'application/octet-stream' },
      body: f,
    });
    if (!res.ok) {
      let msg = t('error.http', { status: res.status });
      try {
        const data = await res.json();
        if (data && typeof data.error === 'string') msg = data.error;
      } catch {
        /* keep the status */
      }
      throw new ApiError(res.status, msg);
    }
    showError(slot, '');
  } catch (e) {
    showError(slot, e.message);
  }
  input.value = '';
  refreshPreview(slot, id);
}

function render() {
  for (const card of document.querySelectorAll('[data-ingest-id]')) {
    const slot = card.querySelector('[data-role="standby"]');
    if (!slot) continue;
    const id = card.dataset.ingestId;
    if (!slot.firstChild) build(slot, id);
    const ing = ingests.find((i) => i.id === id);
    const sb = ing && ing.standby;
    const state = slot.querySelector('[data-sb="state"]');
    const text = stateText(sb);
    if (state.textContent !== text) state.textContent = text;
    state.dataset.state = sb ? sb.state : 'idle';
    const un = slot.querySelector('[data-sb="unavailable"]');
    const why = sb && sb.unavailable ? t('standby.unavailable', { reason: sb.unavailable }) : '';
    if (un.textContent !== why) un.textContent = why;
    un.hidden = !why;
    const btn = slot.querySelector('[data-sb-action="break"]');
    const onBreak = !!(sb && sb.on_break);
    btn.textContent = t(onBreak ? 'standby.back_live' : 'standby.brb');
    btn.setAttribute('aria-pressed', String(onBreak));
    btn.disabled = !onBreak && !(sb && sb.ready && !sb.unavailable && ing.live);
  }
}

async function onClick(e) {
  const btn = e.target.closest('button[data-sb-action]');
  if (!btn) return;
  const card = btn.closest('[data-ingest-id]');
  const slot = card.querySelector('[data-role="standby"]');
  const id = card.dataset.ingestId;
  try {
    if (btn.dataset.sbAction === 'break') {
      const on = btn.getAttribute('aria-pressed') !== 'true';
      await api(on ? 'POST' : 'DELETE', `/ingest/${encodeURIComponent(id)}/standby/break`);
    } else if (btn.dataset.sbAction === 'card') {
      await api('DELETE', `/ingest/${encodeURIComponent(id)}/standby/image`);
      refreshPreview(slot, id);
    }
    showError(slot, '');
  } catch (err) {
    showError(slot, err.message);
  }
  refresh();
}

async function refresh() {
  if (document.hidden) return;
  try {
    const data = await api('GET', '/ingest');
    ingests = (data && data.ingests) || [];
  } catch {
    return; // app.js shows connection problems
  }
  render();
}

function init() {
  const box = document.getElementById('ingests');
  if (!box) return;
  box.addEventListener('click', onClick);
  // New ingest cards appear when app.js renders: fill their slot at once.
  new MutationObserver(() => render()).observe(box, { childList: true });
  onLangChange(() => {
    for (const slot of document.querySelectorAll('[data-role="standby"]')) applyI18n(slot);
    render();
  });
  refresh();
  setInterval(refresh, POLL_MS);
  document.addEventListener('visibilitychange', refresh);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
