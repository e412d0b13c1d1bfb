// The SRT passphrase of an ingest key, on the ingest card's SRT line:
// a password field, Save and Remove, and whether a passphrase is set.
// Talks to PUT /api/v1/ingest-keys/{id}/srt-passphrase.
//
// The passphrase is a secret: the page never gets it back. What it shows
// comes from the ingest's `srt_passphrase_set`, which app.js copies onto
// the card as data-srt-passphrase-set; the field is emptied after a save.
// The control is shown only while the card's SRT line is (SRT listening).

import { api } from './api.js';
import { t, applyI18n, onLangChange } from './i18n.js';
import { el } from './dom.js';

const MIN = 10;
const MAX = 79;

function build(slot) {
  const form = el('form', { class: 'inline-form srt-form', 'data-srt-form': '', novalidate: '' });
  const label = el('label', { class: 'grow field' });
  label.append(
    el('span', { 'data-i18n': 'srt.passphrase' }),
    el('input', {
      type: 'password',
      name: 'passphrase',
      'data-testid': 'srt-passphrase',
      autocomplete: 'new-password',
      spellcheck: 'false',
      maxlength: String(MAX),
    }),
  );
  form.append(
    label,
    el('button', { type: 'submit', class: 'btn small', 'data-testid': 'srt-passphrase-save', 'data-i18n': 'srt.save' }),
    el('button', {
      type: 'button',
      class: 'btn small danger-ghost',
      'data-srt-action': 'remove',
      'data-testid': 'srt-passphrase-remove',
      'data-i18n': 'srt.remove',
    }),
  );
  slot.append(
    el('p', { class: 'hint small', 'aria-live': 'polite', 'data-role': 'srt-passphrase-state', 'data-testid': 'srt-passphrase-state' }),
    form,
    el('p', { class: 'status-detail', role: 'alert', 'data-role': 'srt-form-error', 'data-testid': 'srt-passphrase-error', hidden: '' }),
  );
  applyI18n(slot);
}

function render(card) {
  const slot = card.querySelector('[data-role="srt-passphrase"]');
  if (!slot) return;
  if (!slot.firstChild) build(slot);
  const line = card.querySelector('[data-role="srt"]');
  const on = !!line && !line.hidden && /srt:\/\//.test(line.textContent);
  if (slot.hidden === on) slot.hidden = !on;
  const set = card.dataset.srtPassphraseSet === 'true';
  const text = t(set ? 'srt.state_set' : 'srt.state_unset');
  const state = slot.querySelector('[data-role="srt-passphrase-state"]');
  if (state.textContent !== text) state.textContent = text;
  state.dataset.set = String(set);
  const remove = slot.querySelector('[data-srt-action="remove"]');
  if (remove.hidden === set) remove.hidden = !set;
}

function renderAll() {
  for (const card of document.querySelectorAll('[data-ingest-id]')) render(card);
}

function formError(slot, msg) {
  const box = slot.querySelector('[data-role="srt-form-error"]');
  box.textContent = msg || '';
  box.hidden = !msg;
}

async function put(card, passphrase) {
  const slot = card.querySelector('[data-role="srt-passphrase"]');
  const id = card.dataset.ingestId;
  try {
    await api('PUT', `/ingest-keys/${encodeURIComponent(id)}/srt-passphrase`, { passphrase });
    formError(slot, '');
    slot.querySelector('[name="passphrase"]').value = '';
    // app.js confirms it with the next snapshot.
    card.dataset.srtPassphraseSet = String(passphrase !== null);
  } catch (err) {
    formError(slot, err.message);
  }
  render(card);
}

async function onSubmit(e) {
  const form = e.target.closest('[data-srt-form]');
  if (!form) return;
  e.preventDefault();
  const card = form.closest('[data-ingest-id]');
  const slot = card.querySelector('[data-role="srt-passphrase"]');
  const value = form.elements.passphrase.value;
  if (value.length < MIN || value.length > MAX) {
    formError(slot, t('srt.err_length', { min: MIN, max: MAX }));
    form.elements.passphrase.focus();
    return;
  }
  await put(card, value);
}

async function onClick(e) {
  const btn = e.target.closest('[data-srt-action="remove"]');
  if (!btn) return;
  btn.disabled = true;
  try {
    await put(btn.closest('[data-ingest-id]'), null);
  } finally {
    btn.disabled = false;
  }
}

function init() {
  const box = document.getElementById('ingests');
  if (!box) return;
  box.addEventListener('submit', onSubmit);
  box.addEventListener('click', onClick);
  // New cards, and app.js updating a card's passphrase flag or SRT line
  // (render changes neither attribute unless it differs, so no loop).
  new MutationObserver(renderAll).observe(box, { childList: true });
  new MutationObserver(renderAll).observe(box, {
    subtree: true,
    attributes: true,
    attributeFilter: ['data-srt-passphrase-set', 'hidden'],
  });
  onLangChange(() => {
    for (const slot of document.querySelectorAll('[data-role="srt-passphrase"]')) applyI18n(slot);
    renderAll();
  });
  renderAll();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
