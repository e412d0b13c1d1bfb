// Renditions on the dashboard: a Renditions section on each ingest card
// (add one from a template, its state, encoder, fps, speed, bitrate, CPU,
// delete), the "Source" select of the destination dialog (app.js reads
// #dest-source when it saves), and the guardrails: a plain warning on a
// destination whose platform's limits its stream breaks, with a one-click
// "use a rendition" that picks a matching rendition of its ingest or
// creates one. Talks to /api/v1/renditions and /api/v1/guardrails; polls
// every few seconds while the page is visible.

import { t, applyI18n, onLangChange, fmtNumber } from './i18n.js';
import { el } from './dom.js';

const API = '/api/v1';
const POLL_MS = 3000;
let renditions = [];
let guardrails = [];

/** The templates a rendition is created from; `fix` names what a guardrail asks for. */
export const TEMPLATES = [
  { id: 'vertical', fix: 'vertical', spec: { width: 720, height: 1280, fit: { mode: 'crop', x: 0.5 }, video_kbps: 3000, max_fps: 30 } },
  { id: 'p720', fix: 'smaller', spec: { width: 1280, height: 720, fit: { mode: 'pad_black' }, video_kbps: 3000, max_fps: 30 } },
  { id: 'cap6', fix: 'bitrate_cap', spec: { width: 1920, height: 1080, fit: { mode: 'pad_black' }, video_kbps: 6000 } },
  { id: 'h264', fix: 'h264', spec: { width: 1920, height: 1080, fit: { mode: 'pad_black' }, video_kbps: 6000 } },
];

async function call(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(API + path, opts);
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new Error((data && data.error) || t('error.http', { status: res.status }));
  return data;
}

function sameSpec(r, tpl) {
  return r.spec.width === tpl.spec.width && r.spec.height === tpl.spec.height && r.spec.video_kbps === tpl.spec.video_kbps;
}

/** A rendition of `ingestId` made from template `tpl`: an existing one, else a new one. */
async function renditionFor(ingestId, tpl) {
  const found = renditions.find((r) => r.ingest_id === ingestId && sameSpec(r, tpl));
  if (found) return found;
  const made = await call('POST', '/renditions', { name: t(`renditions.tpl.${tpl.id}`), ingest: ingestId, spec: tpl.spec });
  renditions.push(made);
  return made;
}

// ------------------------------------------------------------ ingest cards

// An encoder under this speed (ffmpeg's, 1.0 = real time) cannot keep up;
// a little under 1 is the measurement's own wobble.
const SLOW_SPEED = 0.95;

function stateText(r) {
  const s = r.status || {};
  switch (s.state) {
    case 'running':
      return t('renditions.running');
    case 'starting':
      return t('renditions.starting');
    case 'restarting':
      return t('renditions.restarting');
    case 'unavailable':
      return s.reason || t('renditions.unavailable');
    default:
      return t('renditions.stopped');
  }
}

function details(r) {
  const s = r.status || {};
  const parts = [`${r.spec.width}×${r.spec.height}`, `${fmtNumber(r.spec.video_kbps / 1000, { maximumFractionDigits: 1 })} Mbit/s`];
  parts.push(r.encoder && r.encoder.kind ? r.encoder.kind : '');
  if (s.state === 'running') {
    parts.push(t('renditions.fps', { fps: fmtNumber(s.fps, { maximumFractionDigits: 1 }) }));
    parts.push(t('renditions.speed', { speed: fmtNumber(s.speed, { maximumFractionDigits: 2 }) }));
    parts.push(`${fmtNumber(s.bitrate_kbps, { maximumFractionDigits: 0 })} kbit/s`);
    if (s.dropped || s.duplicated) parts.push(t('renditions.dropdup', { dropped: s.dropped, duplicated: s.duplicated }));
  }
  if (r.cpu_percent != null) parts.push(t('renditions.cpu', { cpu: fmtNumber(r.cpu_percent, { maximumFractionDigits: 0 }) }));
  parts.push(t('renditions.destinations', { n: r.destinations }));
  return parts.filter(Boolean).join(' · ');
}

function renderSection(card) {
  let slot = card.querySelector('[data-role="renditions"]');
  if (!slot) return;
  const ingestId = card.dataset.ingestId;
  if (!slot.firstChild) {
    const add = el('div', { class: 'rendition-add' });
    const sel = el('select', { 'data-testid': 'rendition-template', 'aria-label': t('renditions.template') });
    for (const tpl of TEMPLATES) sel.append(el('option', { value: tpl.id }, t(`renditions.tpl.${tpl.id}`)));
    const btn = el('button', { type: 'button', class: 'btn small', 'data-testid': 'rendition-add', 'data-i18n': 'renditions.add' }, t('renditions.add'));
    btn.addEventListener('click', async () => {
      const tpl = TEMPLATES.find((x) => x.id === sel.value);
      try {
        const made = await call('POST', '/renditions', { name: t(`renditions.tpl.${tpl.id}`), ingest: ingestId, spec: tpl.spec });
        renditions.push(made);
        showError(slot, '');
        render();
      } catch (e) {
        showError(slot, e.message);
      }
    });
    add.append(sel, btn);
    slot.append(
      el('h3', { 'data-i18n': 'renditions.title' }, t('renditions.title')),
      el('ul', { class: 'rendition-list', 'data-role': 'list' }),
      add,
      el('p', { class: 'form-error', role: 'alert', 'data-role': 'error', hidden: '' }),
    );
  }
  const list = slot.querySelector('[data-role="list"]');
  list.replaceChildren();
  for (const r of renditions.filter((x) => x.ingest_id === ingestId)) {
    const li = el('li', { class: 'rendition-card', 'data-testid': 'rendition-card', 'data-id': r.id });
    const state = (r.status && r.status.state) || 'stopped';
    const head = el('div', { class: 'rendition-head' });
    head.append(
      el('strong', {}, r.name),
      el('span', { class: 'badge', 'data-state': state === 'running' ? 'live' : state === 'unavailable' ? 'error' : 'offline', 'data-testid': 'rendition-state' }, stateText(r)),
    );
    const del = el('button', { type: 'button', class: 'btn small danger-ghost', 'data-testid': 'rendition-delete' }, t('common.delete'));
    del.addEventListener('click', async () => {
      try {
        await call('DELETE', `/renditions/${encodeURIComponent(r.id)}`);
        renditions = renditions.filter((x) => x.id !== r.id);
        showError(slot, '');
        render();
      } catch (e) {
        showError(slot, e.message);
      }
    });
    head.append(del);
    li.append(head, el('p', { class: 'small muted tabular', 'data-testid': 'rendition-details' }, details(r)));
    // Below real time the destinations stutter: say so, and what helps.
    const speed = r.status && r.status.state === 'running' ? r.status.speed : null;
    if (speed != null && speed < SLOW_SPEED) {
      li.append(el('p', { class: 'warn-text', 'data-testid': 'rendition-slow' }, t('renditions.slow', { speed: fmtNumber(speed, { maximumFractionDigits: 2 }) })));
    }
    if (r.spec.fit && r.spec.fit.mode === 'crop') li.append(cropControl(slot, r));
    if (r.status && r.status.state === 'restarting' && r.status.error) li.append(el('p', { class: 'status-detail' }, r.status.error));
    list.append(li);
  }
}

/** A slider moving a crop rendition's cut; a change restarts only its encoder. */
function cropControl(slot, r) {
  const label = el('label', { class: 'rendition-crop small' });
  const input = el('input', { type: 'range', min: '0', max: '1', step: '0.05', 'data-testid': 'rendition-crop' });
  input.value = String(r.spec.fit.x);
  input.addEventListener('change', async () => {
    try {
      const changed = await call('PATCH', `/renditions/${encodeURIComponent(r.id)}`, { spec: { fit: { mode: 'crop', x: Number(input.value) } } });
      renditions = renditions.map((x) => (x.id === changed.id ? changed : x));
      showError(slot, '');
    } catch (e) {
      showError(slot, e.message);
    }
  });
  label.append(el('span', {}, t('renditions.crop')), input);
  return label;
}

function showError(slot, msg) {
  const box = slot.querySelector('[data-role="error"]');
  if (!box) return;
  box.textContent = msg || '';
  box.hidden = !msg;
}

// ------------------------------------------------------------ guardrails

function renderGuardrails() {
  for (const old of document.querySelectorAll('[data-testid="guardrail"]')) old.remove();
  for (const g of guardrails) {
    const card = document.querySelector(`[data-testid="destination-card"][data-id="${CSS.escape(g.destination_id)}"]`);
    if (!card) continue;
    const p = el('p', { class: 'guardrail', 'data-testid': 'guardrail', role: 'status' });
    p.append(el('span', {}, g.message));
    const tpl = TEMPLATES.find((x) => x.fix === g.fix);
    if (tpl && g.ingest_id) {
      const btn = el('button', { type: 'button', class: 'btn small', 'data-testid': 'guardrail-fix' }, t('renditions.use'));
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        try {
          const r = await renditionFor(g.ingest_id, tpl);
          await call('PATCH', `/destinations/${encodeURIComponent(g.destination_id)}`, { source: { rendition: r.id } });
          await poll();
        } catch (e) {
          p.append(el('span', { class: 'form-error' }, e.message));
        } finally {
          btn.disabled = false;
        }
      });
      p.append(' ', btn);
    }
    card.append(p);
  }
}

// ------------------------------------------------------------ destination dialog

/** Fills the dialog's Source select for `dest` (null: a new destination). */
function fillSource(dest) {
  const sel = document.getElementById('dest-source');
  if (!sel) return;
  sel.replaceChildren(el('option', { value: 'ingest' }, t('renditions.source_ingest')));
  for (const r of renditions) {
    sel.append(el('option', { value: r.id }, `${r.name} (${r.spec.width}×${r.spec.height})`));
  }
  const current = dest && dest.source && dest.source.rendition ? dest.source.rendition : 'ingest';
  sel.value = current;
  sel.dataset.initial = current;
}

// ------------------------------------------------------------ polling

function render() {
  for (const card of document.querySelectorAll('[data-ingest-id]')) renderSection(card);
  renderGuardrails();
}

async function poll() {
  if (document.hidden) return;
  try {
    [renditions, guardrails] = await Promise.all([call('GET', '/renditions'), call('GET', '/guardrails')]);
    render();
  } catch {
    // Logged out or offline: app.js shows it.
  }
}

document.addEventListener('dest-dialog-open', (e) => fillSource(e.detail));
onLangChange(() => {
  for (const slot of document.querySelectorAll('[data-role="renditions"]')) applyI18n(slot);
  render();
});
setInterval(poll, POLL_MS);
document.addEventListener('visibilitychange', poll);
poll();
