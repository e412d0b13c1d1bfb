// What a destination relays, and the tracks OBS sends (issue 19):
// - the destination dialog's Source select: "Main picture", "Vertical
//   (auto)", each video track OBS sends, the renditions; and an Audio
//   select (audio track 0 or another audio track OBS sends). Each option
//   carries the API's value in data-source / the track id as its value;
//   app.js reads #dest-source's data-source and #dest-audio-track when it
//   saves;
// - on each destination card with a per-connection source, what its
//   connection relays now ("Native vertical 1080×1920 from OBS" /
//   "Cropped on the server");
// - on each ingest card, the tracks OBS sends (codec, size, frame rate,
//   bitrate), and in its OBS section the Config Override (JSON) that makes
//   OBS send its vertical canvas as track 1, with a copy button.
// Talks to /api/v1/ingest, /api/v1/destinations, /api/v1/renditions and
// /api/v1/obs/multitrack-config; polls every few seconds while visible.

import { t, onLangChange, fmtNumber } from './i18n.js';
import { el } from './dom.js';

const API = '/api/v1';
const POLL_MS = 3000;
let ingests = [];
let destinations = [];
let renditions = [];
let overrideText = '';

async function call(method, path) {
  const res = await fetch(API + path, { method, credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(t('error.http', { status: res.status }));
  return res.json();
}

const CODECS = { h264: 'H.264', hevc: 'HEVC', av1: 'AV1', aac: 'AAC', opus: 'Opus', mp3: 'MP3' };
const codec = (c) => (c ? CODECS[c] || c : '');
const size = (w, h) => (w && h ? `${w}×${h}` : '');

/** "H.264 · 1080×1920 · 30 fps · 4,000 kbit/s" for one track. */
function trackDetails(tr) {
  const parts = [codec(tr.video_codec), codec(tr.audio_codec), size(tr.width, tr.height)];
  if (tr.frame_rate) parts.push(t('unit.fps', { value: fmtNumber(tr.frame_rate, { maximumFractionDigits: 2 }) }));
  if (tr.bitrate_kbps) parts.push(`${fmtNumber(tr.bitrate_kbps, { maximumFractionDigits: 0 })} kbit/s`);
  return parts.filter(Boolean).join(' · ');
}

// ------------------------------------------------------------ ingest cards

function renderTracks(card) {
  const ing = ingests.find((i) => i.id === card.dataset.ingestId);
  let box = card.querySelector('[data-testid="ingest-tracks"]');
  const tracks = (ing && ing.live && ing.tracks) || [];
  if (!tracks.length) {
    if (box) box.remove();
    return;
  }
  if (!box) {
    box = el('section', { class: 'ingest-tracks', 'data-testid': 'ingest-tracks' });
    const anchor = card.querySelector('[data-role="renditions"]');
    if (anchor) anchor.before(box);
    else card.append(box);
  }
  const list = el('ul', { class: 'rendition-list' });
  for (const tr of tracks) {
    const li = el('li', { 'data-testid': 'ingest-track', 'data-track': String(tr.track) });
    li.append(el('strong', {}, t(tr.track === 0 ? 'sources.track_main' : 'sources.track', { n: tr.track })), ' ', el('span', { class: 'small muted tabular' }, trackDetails(tr)));
    list.append(li);
  }
  box.replaceChildren(el('h3', {}, t('sources.tracks_title')), list);
}

/** The Config Override block in the ingest card's OBS section. */
function renderOverride(card) {
  const obs = card.querySelector('section.obs');
  if (!obs || !overrideText) return;
  let box = obs.querySelector('[data-testid="obs-multitrack"]');
  // Built once per language: a poll must not undo a selection or "Copied".
  if (box && box.dataset.title === t('sources.override_title')) return;
  if (!box) {
    box = el('details', { class: 'obs-multitrack', 'data-testid': 'obs-multitrack' });
    obs.append(box);
  }
  box.dataset.title = t('sources.override_title');
  const pre = el('pre', { class: 'mono small', 'data-testid': 'obs-multitrack-json' }, overrideText);
  const copy = el('button', { type: 'button', class: 'btn small', 'data-testid': 'obs-multitrack-copy' }, t('common.copy'));
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(overrideText);
      copy.textContent = t('sources.copied');
    } catch {
      // No clipboard (plain HTTP): select the text for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(pre);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      copy.textContent = t('sources.select_copy');
    }
  });
  const open = box.open;
  box.replaceChildren(
    el('summary', {}, t('sources.override_title')),
    el('p', { class: 'hint' }, t('sources.override_steps')),
    el('p', { class: 'hint' }, t('sources.override_versions')),
    copy,
    pre,
  );
  box.open = open;
}

// ------------------------------------------------------------ destination cards

function relayingText(d) {
  const r = d.relaying;
  if (r && r.kind === 'track') {
    const wh = size(r.width, r.height);
    return r.height > r.width ? t('sources.native_vertical', { size: wh }) : t('sources.native_track', { n: r.track, size: wh });
  }
  if (r && r.kind === 'rendition') return t('sources.cropped', { size: size(r.width, r.height) });
  if (d.source === 'vertical') return t('sources.vertical_pending');
  return '';
}

function renderDestCards() {
  for (const d of destinations) {
    const card = document.querySelector(`[data-testid="destination-card"][data-id="${CSS.escape(d.id)}"]`);
    if (!card) continue;
    const text = relayingText(d);
    let p = card.querySelector('[data-testid="dest-relaying"]');
    if (!text) {
      if (p) p.remove();
      continue;
    }
    if (!p) {
      p = el('p', { class: 'small muted', 'data-testid': 'dest-relaying' });
      card.append(p);
    }
    if (p.textContent !== text) p.textContent = text;
  }
}

// ------------------------------------------------------------ destination dialog

function option(value, label, source) {
  const o = el('option', { value }, label);
  if (source !== undefined) o.dataset.source = JSON.stringify(source);
  return o;
}

/** The ingest the dialog is about (masked key → /ingest entry). */
function dialogIngest(dest) {
  const masked = dest ? dest.ingest : document.querySelector('#dest-ingest option:checked')?.dataset.masked;
  return ingests.find((i) => i.key === masked) || ingests[0] || null;
}

function sourceValue(src) {
  if (!src || src === 'ingest') return 'ingest';
  if (src === 'vertical') return 'vertical';
  if (src.track !== undefined) return `track:${src.track}`;
  if (src.rendition !== undefined) return src.rendition;
  return 'ingest';
}

/** Fills the dialog's Source and Audio selects for `dest` (null: new). */
function fillDialog(dest) {
  const sel = document.getElementById('dest-source');
  if (!sel) return;
  const ing = dialogIngest(dest);
  const tracks = (ing && ing.tracks) || [];
  sel.replaceChildren(option('ingest', t('sources.main'), 'ingest'), option('vertical', t('sources.vertical'), 'vertical'));
  const videoTracks = tracks.filter((tr) => tr.track > 0 && tr.video_codec);
  const current = dest ? sourceValue(dest.source) : 'ingest';
  for (const tr of videoTracks) sel.append(option(`track:${tr.track}`, t('sources.track_option', { n: tr.track, details: trackDetails(tr) }), { track: tr.track }));
  if (current.startsWith('track:') && !sel.querySelector(`option[value="${CSS.escape(current)}"]`)) {
    const n = Number(current.slice(6));
    sel.append(option(current, t('sources.track', { n }), { track: n }));
  }
  for (const r of renditions.filter((x) => !ing || x.ingest_id === ing.id)) {
    sel.append(option(r.id, t('sources.rendition_option', { name: r.name, size: size(r.spec.width, r.spec.height) }), { rendition: r.id }));
  }
  sel.value = current;
  sel.dataset.initial = current;

  let audio = document.getElementById('dest-audio-track');
  if (!audio) {
    const label = el('label', { for: 'dest-audio-track' }, t('sources.audio'));
    audio = el('select', { id: 'dest-audio-track', 'data-testid': 'dest-audio-track', name: 'audio_track' });
    sel.after(label, audio);
  }
  audio.replaceChildren(option('0', t('sources.audio_main')));
  for (const tr of tracks.filter((x) => x.track > 0 && x.audio_codec)) {
    audio.append(option(String(tr.track), t('sources.audio_track', { n: tr.track, details: trackDetails(tr) })));
  }
  const a = String((dest && dest.audio_track) || 0);
  if (!audio.querySelector(`option[value="${a}"]`)) audio.append(option(a, t('sources.audio_track', { n: a, details: '' })));
  audio.value = a;
  audio.dataset.initial = a;
  const syncAudio = () => {
    // A rendition's audio is the rendition's own.
    const opt = sel.selectedOptions[0];
    const isRendition = !!(opt && opt.dataset.source && JSON.parse(opt.dataset.source).rendition);
    audio.disabled = isRendition;
    if (isRendition) audio.value = '0';
  };
  sel.onchange = syncAudio;
  syncAudio();
}

// ------------------------------------------------------------ polling

function render() {
  for (const card of document.querySelectorAll('[data-ingest-id]')) {
    renderTracks(card);
    renderOverride(card);
  }
  renderDestCards();
}

async function poll() {
  if (document.hidden) return;
  try {
    const [i, d, r] = await Promise.all([call('GET', '/ingest'), call('GET', '/destinations'), call('GET', '/renditions')]);
    ingests = i.ingests || [];
    destinations = Array.isArray(d) ? d : d.destinations || [];
    renditions = Array.isArray(r) ? r : r.renditions || [];
    if (!overrideText) overrideText = (await call('GET', '/obs/multitrack-config')).text || '';
    render();
  } catch {
    // Logged out or offline: app.js shows it.
  }
}

// Registered after renditions.js's listener (scripts run in order): this
// fill is the last word on #dest-source.
document.addEventListener('dest-dialog-open', (e) => {
  fillDialog(e.detail);
  poll().then(() => {
    // Fresher tracks and renditions, unless the user already chose.
    const dlg = document.getElementById('dest-dialog');
    const sel = document.getElementById('dest-source');
    const audio = document.getElementById('dest-audio-track');
    const untouched = sel && sel.value === sel.dataset.initial && (!audio || audio.value === audio.dataset.initial);
    if (dlg && dlg.open && untouched) fillDialog(e.detail);
  });
});
onLangChange(render);
setInterval(poll, POLL_MS);
document.addEventListener('visibilitychange', poll);
poll();
