// Pulling on the ingest cards: "Pull from a URL" (URL field, on/off, save,
// remove) and the pull's state (connecting / connected without a stream /
// pulling / retrying in N s with the error). Talks to
// /api/v1/ingest-keys/{id}/pull; polls every few seconds while the page is
// visible. Ingest cards carry data-ingest-id (set by app.js) and an empty
// [data-role="pull"] slot (index.html) that this module fills.
//
// The source URL holds a stream key: the page only ever gets it masked (as
// the field's hint); the field itself starts empty, and saving with it
// empty keeps the configured URL.

import { api } from './api.js';
import { t, applyI18n, onLangChange } from './i18n.js';
import { el } from './dom.js';

const POLL_MS = 2000;
/** Pull state per ingest id, as the API answered it. */
const pulls = new Map();

const BADGE_STATE = { none: 'disabled', off: 'disabled', connecting: 'connecting', waiting: 'idle', live: 'live', retrying: 'retrying' };

function build(slot) {
  const form = el('form', { class: 'inline-form pull-form', 'data-pull-form': '', novalidate: '' });
  const label = el('label', { class: 'grow field' });
  label.append(
    el('span', { 'data-i18n': 'pull.url' }),
    el('input', {
      type: 'text',
      name: 'url',
      'data-testid': 'pull-url',
      autocomplete: 'off',
      spellcheck: 'false',
      inputmode: 'url',
      placeholder: 'rtmp://127.0.0.1:1935/live/obs',
    }),
  );
  const on = el('label', { class: 'pull-enabled' });
  on.append(el('input', { type: 'checkbox', name: 'enabled', 'data-testid': 'pull-enabled' }), el('span', { 'data-i18n': 'pull.enabled' }));
  form.append(
    label,
    on,
    el('button', { type: 'submit', class: 'btn small', 'data-testid': 'pull-save', 'data-i18n': 'pull.save' }),
    el('button', { type: 'button', class: 'btn small danger-ghost', 'data-pull-action': 'remove', 'data-testid': 'pull-remove', 'data-i18n': 'pull.remove' }),
  );
  const status = el('p', { class: 'pull-status' });
  status.append(
    el('span', { class: 'badge', 'data-testid': 'pull-state', 'data-state': 'disabled' }),
    ' ',
    el('span', { class: 'muted small', 'data-role': 'pull-detail', 'data-testid': 'pull-detail' }),
  );
  slot.append(
    el('h3', { 'data-i18n': 'pull.title' }),
    el('p', { class: 'hint', 'data-i18n': 'pull.help' }),
    status,
    el('p', { class: 'status-detail', 'data-testid': 'pull-error', 'data-role': 'pull-error', hidden: '' }),
    form,
    el('p', { class: 'hint small', 'data-role': 'pull-current', 'data-testid': 'pull-current', hidden: '' }),
    el('p', { class: 'status-detail', role: 'alert', 'data-role': 'pull-form-error', 'data-testid': 'pull-form-error', hidden: '' }),
  );
  applyI18n(slot);
}

function secondsUntil(iso) {
  const at = Date.parse(iso || '');
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function render(card) {
  const slot = card.querySelector('[data-role="pull"]');
  if (!slot) return;
  if (!slot.firstChild) build(slot);
  const p = pulls.get(card.dataset.ingestId) || { configured: false, state: 'none' };
  const badge = slot.querySelector('[data-testid="pull-state"]');
  badge.dataset.state = BADGE_STATE[p.state] || 'disabled';
  badge.textContent = t(`pull.state_${p.state}`);
  const detail = [];
  if (p.state === 'retrying') {
    const s = secondsUntil(p.next_retry_at) ?? p.retry_in_seconds;
    if (s !== null && s !== undefined) detail.push(t('pull.retry_in', { seconds: s }));
    if (p.attempt) detail.push(t('pull.attempt', { n: p.attempt }));
  } else if (p.state === 'connecting' && p.attempt > 1) {
    detail.push(t('pull.attempt', { n: p.attempt }));
  }
  slot.querySelector('[data-role="pull-detail"]').textContent = detail.join(' · ');
  const err = slot.querySelector('[data-role="pull-error"]');
  const errText = p.state === 'retrying' ? p.error : p.last_error ? t('pull.last_error', { error: p.last_error }) : '';
  err.textContent = errText || '';
  err.hidden = !errText;
  const current = slot.querySelector('[data-role="pull-current"]');
  current.textContent = p.configured ? t('pull.url_current', { url: p.url }) : '';
  current.hidden = !p.configured;
  const box = slot.querySelector('[name="enabled"]');
  if (document.activeElement !== box && !box.dataset.busy) box.checked = p.configured ? !!p.enabled : true;
  slot.querySelector('[data-pull-action="remove"]').hidden = !p.configured;
}

function renderAll() {
  for (const card of document.querySelectorAll('[data-ingest-id]')) render(card);
}

function formError(slot, msg) {
  const box = slot.querySelector('[data-role="pull-form-error"]');
  box.textContent = msg || '';
  box.hidden = !msg;
}

async function save(card, body) {
  const id = card.dataset.ingestId;
  const slot = card.querySelector('[data-role="pull"]');
  try {
    const answer = await api('PUT', `/ingest-keys/${encodeURIComponent(id)}/pull`, body);
    pulls.set(id, answer);
    formError(slot, '');
    slot.querySelector('[name="url"]').value = '';
  } catch (err) {
    formError(slot, err.message);
  }
  render(card);
}

async function onSubmit(e) {
  const form = e.target.closest('[data-pull-form]');
  if (!form) return;
  e.preventDefault();
  const card = form.closest('[data-ingest-id]');
  const url = form.elements.url.value.trim();
  const configured = pulls.get(card.dataset.ingestId)?.configured;
  if (!url && !configured) {
    formError(card.querySelector('[data-role="pull"]'), t('pull.err_url'));
    form.elements.url.focus();
    return;
  }
  const body = { enabled: form.elements.enabled.checked };
  if (url) body.url = url;
  await save(card, body);
}

async function onChange(e) {
  const box = e.target.closest('[data-pull-form] [name="enabled"]');
  if (!box) return;
  const card = box.closest('[data-ingest-id]');
  // Without a pull yet the box only sets what Save will send.
  if (!pulls.get(card.dataset.ingestId)?.configured) return;
  box.dataset.busy = '1';
  try {
    await save(card, { enabled: box.checked });
  } finally {
    delete box.dataset.busy;
  }
}

async function onClick(e) {
  const btn = e.target.closest('[data-pull-action="remove"]');
  if (!btn) return;
  const card = btn.closest('[data-ingest-id]');
  const id = card.dataset.ingestId;
  const slot = card.querySelector('[data-role="pull"]');
  btn.disabled = true;
  try {
    await api('DELETE', `/ingest-keys/${encodeURIComponent(id)}/pull`);
    pulls.delete(id);
    formError(slot, '');
  } catch (err) {
    formError(slot, err.message);
  } finally {
    btn.disabled = false;
  }
  render(card);
}

async function refresh() {
  if (document.hidden) return;
  const cards = [...document.querySelectorAll('[data-ingest-id]')];
  await Promise.all(
    cards.map(async (card) => {
      const id = card.dataset.ingestId;
      try {
        pulls.set(id, await api('GET', `/ingest-keys/${encodeURIComponent(id)}/pull`));
      } catch {
        // app.js shows connection problems
      }
    }),
  );
  renderAll();
}

function init() {
  const box = document.getElementById('ingests');
  if (!box) return;
  box.addEventListener('submit', onSubmit);
  box.addEventListener('change', onChange);
  box.addEventListener('click', onClick);
  // New ingest cards appear when app.js renders: fill their slot at once.
  new MutationObserver(() => {
    renderAll();
    if ([...document.querySelectorAll('[data-ingest-id]')].some((c) => !pulls.has(c.dataset.ingestId))) refresh();
  }).observe(box, { childList: true });
  onLangChange(() => {
    for (const slot of document.querySelectorAll('[data-role="pull"]')) applyI18n(slot);
    renderAll();
  });
  refresh();
  setInterval(refresh, POLL_MS);
  // The countdown ticks between polls.
  setInterval(() => {
    if (!document.hidden) renderAll();
  }, 1000);
  document.addEventListener('visibilitychange', refresh);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
