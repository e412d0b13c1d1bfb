// antenne web UI: dashboard, events, settings. Plain ES module, no build step.
//
// Data comes from the REST API under /api/v1 and, live, from the
// Server-Sent Events stream /api/v1/events/stream ("snapshot" events).
// The DOM is updated in place: cards are keyed by id and only their text
// and attributes change, so focus and open dialogs are never disturbed.

import {
  t,
  initI18n,
  onLangChange,
  applyI18n,
  bindLangSwitch,
  getLang,
  fmtNumber,
  fmtDateTime,
  fmtTime,
  fmtRelative,
} from './i18n.js';
import { API, api, goLogin } from './api.js';
import { initControls, renderBulk, decorateMove, move, renderFold, holdOrder } from './controls.js';

const HISTORY_MS = 60_000; // bitrate graph window
const EVENTS_POLL_MS = 5_000;
const OBS_POLL_MS = 2_000; // the SSE snapshot does not carry OBS: poll it
const RECENT_TOGGLE_MS = 2_500; // trust our own toggle over an older snapshot this long

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const state = {
  me: null,
  presets: [],
  settings: null,
  ingests: [],
  destinations: [],
  receivedAt: Date.now(), // when `destinations` arrived (for ticking uptimes)
  revealed: new Map(), // masked ingest key → clear key
  shown: new Set(), // masked ingest keys shown in clear
  history: new Map(), // masked ingest key → [{t, kbps}]
  pending: new Set(), // destination ids whose toggle is in flight
  recent: new Map(), // destination id → {enabled, until}
  route: null,
  events: [],
  eventsSig: '',
  eventsLoading: false,
  tokens: [],
  obs: null, // last answer of GET /api/v1/obs
  obsAt: 0, // when `obs` arrived (for the ticking timecode)
  obsMissing: false, // this server has no OBS support (404)
  obsBusy: null, // the OBS action in flight: 'start', 'stop', 'point', 'restore', 'scene'
  obsError: null, // error text of the last failed OBS action
  obsConflict: null, // {error}: OBS is streaming, point-to-antenne needs a restart
  obsOutputs: null, // GET /api/v1/obs/outputs, loaded when the list is opened
  obsOutputsError: null,
  focusAfterRoute: null, // selector to focus once the next page is shown
};

// ---------------------------------------------------------------- API


// ---------------------------------------------------------------- feedback

function showError(message) {
  const box = $('#app-error');
  box.hidden = false;
  $('#app-error-text').textContent = message;
}

function clearError() {
  $('#app-error').hidden = true;
  $('#app-error-text').textContent = '';
}

function reportError(e) {
  if (e && e.status === 401) return; // already leaving for /login
  showError(e && e.message ? e.message : String(e));
}

function announce(message) {
  const el = $('#sr-status');
  el.textContent = '';
  // A fresh text node after a tick is announced even when the text repeats.
  setTimeout(() => {
    el.textContent = message;
  }, 50);
}

function setFormError(el, message) {
  el.textContent = message || '';
  el.hidden = !message;
}

// ---------------------------------------------------------------- formatting

function fmtBitrate(kbps) {
  if (kbps == null || !Number.isFinite(kbps)) return '—';
  if (kbps >= 10_000) return t('unit.mbps', { value: fmtNumber(kbps / 1000, { maximumFractionDigits: 1 }) });
  return t('unit.kbps', { value: fmtNumber(Math.round(kbps)) });
}

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  const units = ['unit.b', 'unit.kb', 'unit.mb', 'unit.gb', 'unit.tb'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return t(units[i], { value: fmtNumber(n, { maximumFractionDigits: i === 0 ? 0 : 1 }) });
}

function pad2(n) {
  return String(n).padStart(2, '0');
}

/** h:mm:ss */
function fmtDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${pad2(m)}:${pad2(s % 60)}`;
}

/** m:ss under an hour, h:mm:ss above */
function fmtCountdown(totalSeconds) {
  const s = Math.max(0, Math.ceil(totalSeconds));
  if (s >= 3600) return fmtDuration(s);
  return `${Math.floor(s / 60)}:${pad2(s % 60)}`;
}

const CODECS = {
  h264: 'H.264',
  avc: 'H.264',
  avc1: 'H.264',
  h265: 'H.265',
  hevc: 'HEVC',
  av1: 'AV1',
  vp8: 'VP8',
  vp9: 'VP9',
  aac: 'AAC',
  mp3: 'MP3',
  opus: 'Opus',
  speex: 'Speex',
  pcm: 'PCM',
};

function codecName(c) {
  if (!c) return null;
  return CODECS[String(c).toLowerCase()] || String(c).toUpperCase();
}

function parseDate(s) {
  if (!s) return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Plain-words explanation of a connection error, or null. */
function explainError(raw) {
  if (!raw) return null;
  const s = String(raw).toLowerCase();
  if (/refused/.test(s)) return t('err.refused');
  if (/timed? ?out|timeout|stall/.test(s)) return t('err.timeout');
  if (/dns|resolve|lookup|name or service|no such host|failed to look up/.test(s)) return t('err.dns');
  if (/certificate|tls|ssl|handshake/.test(s)) return t('err.tls');
  if (/unauthori[sz]ed|forbidden|denied|invalid (stream )?key|bad key|publish.*(reject|bad|fail)/.test(s)) return t('err.key');
  if (/unreachable|no route/.test(s)) return t('err.unreachable');
  if (/reset|broken pipe|closed|eof|end of file/.test(s)) return t('err.closed');
  return null;
}

// ---------------------------------------------------------------- presets

const BADGES = {
  youtube: 'YT',
  twitch: 'TW',
  facebook: 'FB',
  instagram: 'IG',
  tiktok: 'TT',
  kick: 'K',
  x: 'X',
  linkedin: 'in',
  onestream: 'OS',
  restream: 'RS',
  custom: 'RTMP',
};

function preset(id) {
  return state.presets.find((p) => p.id === id) || null;
}

function presetName(id) {
  if (id === 'custom' || !id) return t('preset.custom');
  const p = preset(id);
  return p ? p.name : id;
}

/** The platform of a destination, guessed from its URL when the server has none. */
function platformOf(d) {
  if (d.platform) return d.platform;
  const url = String(d.url || '').toLowerCase();
  const guesses = [
    ['youtube', /youtube\.com/],
    ['twitch', /twitch\.tv/],
    ['facebook', /facebook\.com/],
    ['instagram', /instagram\.com|fbcdn\.net/],
    ['tiktok', /tiktok/],
    ['kick', /live-video\.net|kick\.com/],
    ['x', /pscp\.tv|x\.com|twitter/],
    ['linkedin', /linkedin/],
    ['onestream', /onestream/],
    ['restream', /restream\.io/],
  ];
  for (const [id, re] of guesses) if (re.test(url)) return id;
  return 'custom';
}

// ---------------------------------------------------------------- OBS settings

function publicHost() {
  const h = (state.settings && state.settings.public_host) || location.hostname || 'localhost';
  // IPv6 literals need brackets inside a URL.
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

function obsServer(host = publicHost()) {
  const port = (state.settings && state.settings.rtmp_port) || 1935;
  return `rtmp://${host}:${port}/live`;
}

/** The rtmps:// server when --rtmps-listen is on, else null. */
function obsServerTls(host = publicHost()) {
  const port = state.settings && state.settings.rtmps_port;
  return port ? `rtmps://${host}:${port}/live` : null;
}

/** Does the clear key `clear` look like the masked key `masked` ("live_12…9f")? */
function matchesMasked(clear, masked) {
  const parts = String(masked).split('…');
  if (parts.length !== 2) return clear === masked;
  return clear.startsWith(parts[0]) && clear.endsWith(parts[1]);
}

async function clearIngestKey(masked) {
  if (state.revealed.has(masked)) return state.revealed.get(masked);
  const data = await api('GET', '/ingest?reveal=keys');
  const clear = (data && data.ingests) || [];
  state.ingests.forEach((ing, i) => {
    const hit = clear.find((c) => matchesMasked(c.key, ing.key)) || clear[i];
    if (hit) state.revealed.set(ing.key, hit.key);
  });
  if (!state.revealed.has(masked)) throw new Error(t('error.reveal'));
  return state.revealed.get(masked);
}

// ---------------------------------------------------------------- clipboard

async function copyText(text, btn) {
  let ok = false;
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    // Fallback for plain-HTTP pages (no Clipboard API there). The textarea
    // goes inside an open modal dialog if any, since the rest is inert.
    const host = (btn && btn.closest('dialog')) || document.body;
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'offscreen';
    host.appendChild(ta);
    ta.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    if (btn) btn.focus();
  }
  if (ok) {
    announce(t('common.copied'));
    if (btn) {
      btn.textContent = t('common.copied');
      btn.classList.add('done');
      clearTimeout(btn._copyTimer);
      btn._copyTimer = setTimeout(() => {
        btn.textContent = t('common.copy');
        btn.classList.remove('done');
      }, 1500);
    }
  } else {
    showError(t('error.copy'));
  }
  return ok;
}

/** Select the text of an element so that the user can copy it by hand. */
function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}

// ---------------------------------------------------------------- ingest cards

function pushHistory() {
  const now = Date.now();
  for (const ing of state.ingests) {
    let h = state.history.get(ing.key);
    if (!h) state.history.set(ing.key, (h = []));
    const last = h[h.length - 1];
    if (last && now - last.t < 300) continue; // same snapshot twice
    h.push({ t: now, kbps: ing.live ? Number(ing.bitrate_kbps) || 0 : 0 });
    while (h.length && now - h[0].t > HISTORY_MS) h.shift();
  }
}

function drawGraph(svg, hist) {
  const area = svg.querySelector('.spark-area');
  const line = svg.querySelector('.spark-line');
  if (!hist || hist.length < 2 || hist.every((p) => p.kbps === 0)) {
    area.setAttribute('d', '');
    line.setAttribute('d', '');
    return;
  }
  const now = hist[hist.length - 1].t;
  const max = Math.max(500, ...hist.map((p) => p.kbps)) * 1.15;
  const W = 120;
  const H = 32;
  const pts = hist.map((p) => {
    const x = W - ((now - p.t) / HISTORY_MS) * W;
    const y = H - (p.kbps / max) * (H - 2) - 1;
    return [Math.max(0, x).toFixed(2), y.toFixed(2)];
  });
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${p[0]} ${p[1]}`).join(' ');
  line.setAttribute('d', d);
  area.setAttribute('d', `${d} L${pts[pts.length - 1][0]} ${H} L${pts[0][0]} ${H} Z`);
}

function renderIngests() {
  const box = $('#ingests');
  const seen = new Set();
  for (const ing of state.ingests) {
    seen.add(ing.key);
    let card = box.querySelector(`[data-ingest-key="${CSS.escape(ing.key)}"]`);
    if (!card) {
      card = $('#tpl-ingest').content.firstElementChild.cloneNode(true);
      card.dataset.ingestKey = ing.key;
      card.dataset.ingestId = ing.id; // recordings.js and preview.js find the card by it
      applyI18n(card);
      box.appendChild(card);
    }
    updateIngestCard(card, ing);
  }
  for (const card of $$('[data-ingest-key]', box)) {
    if (!seen.has(card.dataset.ingestKey)) card.remove();
  }
  $('#ingests-empty').hidden = state.ingests.length > 0;
  renderFold();
}

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function updateIngestCard(card, ing) {
  const r = (role) => card.querySelector(`[data-role="${role}"]`);
  const live = !!ing.live;
  const badge = card.querySelector('[data-testid="ingest-state"]');
  badge.dataset.state = live ? 'live' : 'offline';
  setText(badge, t(live ? 'ingest.live' : 'ingest.offline'));
  card.classList.toggle('is-live', live);
  setText(r('hint'), live ? '' : t('ingest.waiting'));
  r('hint').hidden = live;

  const since = parseDate(ing.since);
  setText(r('since-label'), t(live ? 'ingest.live_since' : 'ingest.offline_since'));
  const sinceEl = r('since');
  r('since-row').hidden = !since;
  if (since) {
    setText(sinceEl, `${fmtRelative(since)} · ${fmtTime(since)}`);
    sinceEl.title = fmtDateTime(since);
  } else {
    setText(sinceEl, '—');
    sinceEl.removeAttribute('title');
  }
  const codecs = [codecName(ing.video_codec), codecName(ing.audio_codec)].filter(Boolean);
  setText(r('codec'), live && codecs.length ? codecs.join(' / ') : '—');
  setText(r('resolution'), live && ing.width && ing.height ? `${ing.width}×${ing.height}` : '—');
  setText(
    r('fps'),
    live && ing.frame_rate ? t('unit.fps', { value: fmtNumber(ing.frame_rate, { maximumFractionDigits: 2 }) }) : '—',
  );
  setText(r('publisher'), live && ing.publisher ? ing.publisher : '—');
  setText(r('attached'), fmtNumber(ing.destinations_attached ?? 0));
  setText(r('bitrate'), live ? fmtBitrate(ing.bitrate_kbps) : '—');
  drawGraph(r('graph'), state.history.get(ing.key));

  setText(r('server'), obsServer());
  const tls = obsServerTls();
  r('server-tls-row').hidden = !tls;
  setText(r('server-tls'), tls || '');
  // SRT: the URL OBS and ffmpeg publish to, or why SRT is unavailable.
  const srtPort = state.settings && state.settings.srt_port;
  const srtOff = state.settings && state.settings.srt_unavailable;
  const srtEl = r('srt');
  srtEl.hidden = !srtPort && !srtOff;
  const pass = ing.srt_passphrase_set ? '&passphrase=<passphrase>' : '';
  setText(srtEl, srtPort ? `SRT: srt://${publicHost()}:${srtPort}?streamid=<stream key>${pass}` : (srtOff || ''));
  const passSet = String(!!ing.srt_passphrase_set);
  if (card.dataset.srtPassphraseSet !== passSet) card.dataset.srtPassphraseSet = passSet; // srt.js shows it
  const shown = state.shown.has(ing.key) && state.revealed.has(ing.key);
  setText(r('key'), shown ? state.revealed.get(ing.key) : ing.key);
  const revealBtn = card.querySelector('[data-action="reveal-key"]');
  revealBtn.setAttribute('aria-pressed', String(shown));
  setText(revealBtn, t(shown ? 'common.hide' : 'common.show'));
  revealBtn.setAttribute('aria-label', t(shown ? 'obs.hide_key' : 'obs.show_key'));
  card.querySelector('[data-action="copy-server"]').setAttribute('aria-label', t('obs.copy_server'));
  card.querySelector('[data-action="copy-server-tls"]').setAttribute('aria-label', t('obs.copy_server_tls'));
  card.querySelector('[data-action="copy-key"]').setAttribute('aria-label', t('obs.copy_key'));
}

async function onIngestClick(e) {
  const btn = e.target.closest('button[data-action]');
  if (!btn) return;
  const card = btn.closest('[data-ingest-key]');
  const masked = card.dataset.ingestKey;
  const ing = state.ingests.find((i) => i.key === masked);
  try {
    if (btn.dataset.action === 'copy-server') {
      if (!(await copyText(obsServer(), btn))) selectText(card.querySelector('[data-role="server"]'));
    } else if (btn.dataset.action === 'copy-server-tls') {
      if (!(await copyText(obsServerTls() || '', btn))) selectText(card.querySelector('[data-role="server-tls"]'));
    } else if (btn.dataset.action === 'reveal-key') {
      if (state.shown.has(masked)) {
        state.shown.delete(masked);
      } else {
        btn.disabled = true;
        try {
          await clearIngestKey(masked);
          state.shown.add(masked);
        } finally {
          btn.disabled = false;
          btn.focus();
        }
      }
      if (ing) updateIngestCard(card, ing);
    } else if (btn.dataset.action === 'copy-key') {
      const clear = await clearIngestKey(masked);
      if (!(await copyText(clear, btn))) {
        state.shown.add(masked);
        if (ing) updateIngestCard(card, ing);
        selectText(card.querySelector('[data-role="key"]'));
      }
    }
  } catch (err) {
    reportError(err);
  }
}

// ---------------------------------------------------------------- OBS remote control
//
// antenne talks to OBS over obs-websocket; the UI reads that link's state
// from GET /api/v1/obs (polled, the SSE snapshot does not carry it) and
// drives OBS through the POST endpoints next to it. Every answer of those
// has the same shape as the GET, so it is applied at once.

const OBS_STATES = ['not_configured', 'connecting', 'connected', 'auth_failed', 'unreachable'];
const OBS_DEFAULT_PORT = 4455;
const OBS_TIMECODE_DRIFT_S = 10; // tick the timecode this long past the last answer, no more

let obsReqSeq = 0;
let obsAppliedSeq = 0;
let obsPolling = false;

/** host:port, with brackets around an IPv6 literal. */
function hostPort(host, port) {
  const h = String(host || '');
  const hh = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
  return port ? `${hh}:${port}` : hh;
}

/** "HH:MM:SS.mmm" → seconds, or null. */
function parseTimecode(tc) {
  const m = /^(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d+))?$/.exec(String(tc || '').trim());
  if (!m) return null;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + (m[4] ? Number(`0.${m[4]}`) : 0);
}

function normServer(url) {
  return String(url || '').trim().replace(/\/+$/, '').toLowerCase();
}

/** Does OBS already send its stream to antenne? */
function obsPointsAtAntenne(o) {
  const svc = o && o.status && o.status.stream_service;
  const ours = o && o.antenne_service;
  return !!(svc && ours && svc.server && normServer(svc.server) === normServer(ours.server));
}

function serviceTypeLabel(type) {
  if (!type) return '';
  const known = { rtmp_custom: 'obsc.type_custom', rtmp_common: 'obsc.type_common', whip_custom: 'obsc.type_whip' };
  return known[type] ? t(known[type]) : type;
}

/** One line for a stream service: "rtmp://… · key abcd…ef · custom server". */
function describeService(svc) {
  if (!svc || !svc.server) return t('obsc.target_none');
  const parts = [svc.server];
  if (svc.key) parts.push(t('obsc.key_value', { key: svc.key }));
  const type = serviceTypeLabel(svc.type);
  if (type) parts.push(type);
  return parts.join(' · ');
}

function serviceDetails(svc, serverLabel, keyLabel) {
  const rows = [[serverLabel, svc && svc.server ? svc.server : t('obsc.target_none')]];
  if (svc && svc.key) rows.push([keyLabel, svc.key]);
  if (svc && svc.type) rows.push([t('obsc.d_type'), serviceTypeLabel(svc.type)]);
  return rows;
}

/** Plain-words hint for why OBS cannot be reached, or null. */
function explainObsError(raw) {
  if (!raw) return null;
  const s = String(raw).toLowerCase();
  if (/refused/.test(s)) return t('obsc.err_refused');
  if (/timed? ?out|timeout/.test(s)) return t('obsc.err_timeout');
  if (/dns|resolve|lookup|name or service|no such host|failed to look up|not known/.test(s)) return t('obsc.err_dns');
  if (/unreachable|no route/.test(s)) return t('obsc.err_network');
  if (/reset|broken pipe|closed|eof|end of file/.test(s)) return t('obsc.err_closed');
  return null;
}

function obsStateOf(o) {
  if (!o) return 'not_configured';
  if (OBS_STATES.includes(o.state)) return o.state;
  return o.host ? 'unreachable' : 'not_configured';
}

/** The sentence under the state badge, and the technical error if any. */
function obsDetail(o) {
  const st = obsStateOf(o);
  const address = hostPort(o && o.host, o && o.port);
  const err = o && o.error ? String(o.error) : '';
  switch (st) {
    case 'not_configured':
      return { detail: t('obsc.detail_not_configured'), raw: '' };
    case 'connecting':
      return { detail: t('obsc.detail_connecting', { address }), raw: '' };
    case 'auth_failed':
      return { detail: t('obsc.detail_auth_failed', { address }), raw: err };
    case 'unreachable':
      return {
        detail: `${t('obsc.detail_unreachable', { address })} ${explainObsError(err) || t('obsc.hint_unreachable')}`,
        raw: err,
      };
    default:
      return { detail: o && o.status ? '' : t('obsc.detail_connecting', { address }), raw: '' };
  }
}

function setBadge(el, st) {
  el.dataset.state = st;
  setText(el, t(`obsc.state_${st}`));
}

function renderObs() {
  const card = $('#obs-card');
  const sect = $('#obs-settings');
  const o = state.obs;
  card.hidden = !o || state.obsMissing;
  sect.hidden = card.hidden;
  if (card.hidden) return;

  const st = obsStateOf(o);
  const s = (st === 'connected' && o.status) || null;
  const address = o.host ? hostPort(o.host, o.port) : '';
  card.dataset.state = st;
  setBadge($('#obs-state'), st);
  setBadge($('#obs-settings-state'), st);
  setText($('#obs-where'), address ? t('obsc.where', { address }) : t('obsc.subtitle'));

  const { detail, raw } = obsDetail(o);
  setText($('#obs-detail'), detail);
  $('#obs-detail').hidden = !detail;
  setText($('#obs-raw'), raw ? t('detail.technical', { error: raw }) : '');
  $('#obs-raw').hidden = !raw;
  setText($('#obs-settings-detail'), s ? t('obsc.connected_to', { version: s.obs_version || '?', address }) : detail);

  $('#obs-setup').hidden = st !== 'not_configured';
  $('#obs-foot').hidden = st === 'not_configured';
  $('#obs-body').hidden = !s;

  if (s) {
    setText(
      $('#obs-version'),
      s.websocket_version
        ? t('obsc.version_value', { obs: s.obs_version || '?', ws: s.websocket_version })
        : s.obs_version || '—',
    );
    const streaming = !!s.streaming;
    const onair = $('#obs-streaming');
    onair.dataset.streaming = String(streaming);
    const rec = $('#obs-recording');
    rec.dataset.recording = String(!!s.recording);
    setText(rec, t(s.recording ? 'obsc.recording_on' : 'obsc.recording_off'));
    setText($('#obs-bitrate'), streaming ? fmtBitrate(s.output_bitrate_kbps) : '—');
    const cpu = Number(s.cpu_usage);
    setText($('#obs-cpu'), Number.isFinite(cpu) ? fmtNumber(cpu / 100, { style: 'percent', maximumFractionDigits: 1 }) : '—');

    const dropped = Number(s.dropped_frames) || 0;
    const total = Number(s.total_frames) || 0;
    const ratio = total > 0 ? dropped / total : 0;
    const droppedEl = $('#obs-dropped');
    setText(
      droppedEl,
      total > 0
        ? `${fmtNumber(dropped)} (${fmtNumber(ratio, { style: 'percent', maximumFractionDigits: ratio < 0.01 ? 2 : 1 })})`
        : fmtNumber(dropped),
    );
    droppedEl.title = t('obsc.dropped_of', { dropped: fmtNumber(dropped), total: fmtNumber(total) });
    droppedEl.classList.toggle('warn-text', ratio >= 0.01);
    setText($('#obs-lagged'), fmtNumber(Number(s.lagged_frames) || 0));

    fillSceneSelect(s);

    const busy = !!state.obsBusy;
    const start = $('#obs-start');
    const stop = $('#obs-stop');
    start.hidden = streaming;
    stop.hidden = !streaming;
    $('#obs-auto-note').hidden = !o.auto_stream;

    const pointed = obsPointsAtAntenne(o);
    const tag = $('#obs-target-tag');
    tag.className = `tag ${pointed ? 'tone-good' : 'tone-warn'}`;
    setText(tag, t(pointed ? 'obsc.target_antenne' : 'obsc.target_other'));
    setText($('#obs-target'), describeService(s.stream_service));
    setText($('#obs-point'), t(pointed ? 'obsc.point_again' : 'obsc.point'));

    const prev = o.previous_service;
    $('#obs-previous').hidden = !prev;
    setText($('#obs-previous-text'), prev ? describeService(prev) : '');

    for (const el of [start, stop, $('#obs-point'), $('#obs-restore'), $('#obs-scene')]) el.disabled = busy;
  }
  for (const [id, kind] of [
    ['#obs-start', 'start'],
    ['#obs-stop', 'stop'],
    ['#obs-point', 'point'],
    ['#obs-restore', 'restore'],
    ['#obs-point-restart', 'restart'],
  ]) {
    const el = $(id);
    if (state.obsBusy === kind) el.setAttribute('aria-busy', 'true');
    else el.removeAttribute('aria-busy');
  }

  const conflict = $('#obs-conflict');
  conflict.hidden = !state.obsConflict;
  if (state.obsConflict) {
    setText($('#obs-conflict-text'), t('obsc.conflict_text'));
    const craw = state.obsConflict.error || '';
    setText($('#obs-conflict-raw'), craw ? t('detail.technical', { error: craw }) : '');
    $('#obs-conflict-raw').hidden = !craw;
    $('#obs-point-restart').disabled = !!state.obsBusy;
    $('#obs-conflict-cancel').disabled = !!state.obsBusy;
  }
  setFormError($('#obs-error'), state.obsError || '');

  renderObsOutputs();
  tickObs();
}

function fillSceneSelect(s) {
  const sel = $('#obs-scene');
  const scenes = Array.isArray(s.scenes) ? s.scenes.slice() : [];
  if (s.current_scene && !scenes.includes(s.current_scene)) scenes.unshift(s.current_scene);
  const sig = JSON.stringify(scenes);
  if (sel.dataset.sig !== sig) {
    sel.dataset.sig = sig;
    sel.textContent = '';
    for (const name of scenes) {
      const opt = document.createElement('option');
      opt.value = name;
      opt.textContent = name;
      sel.appendChild(opt);
    }
  }
  // While our own switch is in flight, the select shows the user's choice.
  if (state.obsBusy !== 'scene' && s.current_scene != null && sel.value !== s.current_scene) sel.value = s.current_scene;
}

/** The streaming timecode, ticking between two answers. */
function tickObs() {
  const o = state.obs;
  const s = o && o.state === 'connected' && o.status;
  if (!s) return;
  const el = $('#obs-streaming');
  if (!s.streaming) {
    setText(el, t('obsc.streaming_off'));
    return;
  }
  const base = parseTimecode(s.stream_timecode);
  if (base == null) {
    setText(el, t('obsc.streaming_on'));
    return;
  }
  const drift = Math.min(OBS_TIMECODE_DRIFT_S, Math.max(0, (Date.now() - state.obsAt) / 1000));
  setText(el, t('obsc.streaming_for', { time: fmtDuration(base + drift) }));
}

function applyObs(data) {
  // An action's error or a pending restart offer is stale once the link to OBS changes.
  if (state.obs && state.obs.state !== data.state) {
    state.obsError = null;
    if (data.state !== 'connected') state.obsConflict = null;
  }
  state.obs = data;
  state.obsAt = Date.now();
  state.obsMissing = false;
  renderObs();
  if (state.route === 'settings') fillObsForm();
}

/** A request to an /obs endpoint whose answer, if it is the OBS state, is applied unless a newer one was. */
async function obsRequest(method, path, body) {
  const seq = ++obsReqSeq;
  const data = await api(method, path, body);
  if (data && typeof data === 'object' && typeof data.state === 'string' && seq > obsAppliedSeq) {
    obsAppliedSeq = seq;
    applyObs(data);
  }
  return data;
}

function obsPollWanted() {
  return (
    !leaving &&
    !state.obsMissing &&
    document.visibilityState === 'visible' &&
    (state.route === 'dashboard' || state.route === 'settings')
  );
}

async function pollObs() {
  if (obsPolling || state.obsBusy) return;
  obsPolling = true;
  try {
    await obsRequest('GET', '/obs');
    if ($('#obs-outputs').open && state.route === 'dashboard') await loadObsOutputs();
  } catch (e) {
    if (e.status === 404) {
      // This antenne has no OBS support: no card, no settings.
      state.obsMissing = true;
      renderObs();
    }
    // Other failures: keep what we have; the connection banner tells the rest.
  } finally {
    obsPolling = false;
  }
}

/** The list in an answer of GET /obs/outputs: `{outputs: [...]}` or a bare array. */
function outputsOf(data) {
  if (Array.isArray(data)) return data;
  return data && Array.isArray(data.outputs) ? data.outputs : [];
}

async function loadObsOutputs() {
  const o = state.obs;
  if (!o || o.state !== 'connected') return;
  try {
    state.obsOutputs = outputsOf(await api('GET', '/obs/outputs'));
    state.obsOutputsError = null;
  } catch (e) {
    if (e.status === 401) return;
    state.obsOutputsError = e.message;
  }
  renderObsOutputs();
}

function renderObsOutputs() {
  const list = $('#obs-output-list');
  const empty = $('#obs-outputs-empty');
  const outs = state.obsOutputs;
  if (state.obsOutputsError) {
    list.replaceChildren();
    setText(empty, state.obsOutputsError);
    empty.hidden = false;
    return;
  }
  if (!outs) {
    list.replaceChildren();
    setText(empty, t('common.loading'));
    empty.hidden = false;
    return;
  }
  setText(empty, t('obsc.outputs_none'));
  empty.hidden = outs.length > 0;
  const sig = `${getLang()}|${JSON.stringify(outs)}`;
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  const frag = document.createDocumentFragment();
  for (const out of outs) {
    const li = document.createElement('li');
    li.className = 'output-item';
    li.setAttribute('data-testid', 'obs-output');
    li.dataset.active = String(!!out.active);
    const head = document.createElement('div');
    head.className = 'output-head';
    const name = document.createElement('strong');
    name.className = 'wrap';
    name.textContent = out.name || '—';
    const tag = document.createElement('span');
    tag.className = `tag ${out.active ? 'tone-good' : 'tone-neutral'}`;
    tag.textContent = t(out.active ? 'obsc.output_active' : 'obsc.output_inactive');
    head.append(name, tag);
    const kind = document.createElement('span');
    kind.className = 'mono small muted wrap';
    kind.textContent = out.kind || '';
    li.append(head, kind);
    if (out.controllable === false) {
      const note = document.createElement('p');
      note.className = 'hint';
      note.textContent = t('obsc.output_shared');
      li.appendChild(note);
    }
    frag.appendChild(li);
  }
  list.replaceChildren(frag);
}

/** Run one OBS action: controls disabled meanwhile, the server's error shown on failure. */
async function obsAction(kind, fn, { focus } = {}) {
  if (state.obsBusy) return false;
  state.obsBusy = kind;
  state.obsError = null;
  if (kind !== 'restart') state.obsConflict = null;
  renderObs();
  let ok = false;
  try {
    await fn();
    ok = true;
  } catch (e) {
    if (e.status !== 401) {
      if (kind === 'point' && e.status === 409 && e.data && e.data.streaming) {
        state.obsConflict = { error: e.message };
      } else {
        state.obsError = e.message;
      }
    }
  } finally {
    state.obsBusy = null;
    renderObs();
  }
  // The button pressed may be hidden or was disabled: put the focus somewhere sensible.
  const target = state.obsConflict ? $('#obs-point-restart') : typeof focus === 'function' ? focus(ok) : null;
  if (target && !target.hidden && !target.closest('[hidden]')) target.focus();
  return ok;
}

function visibleStartStop() {
  return $('#obs-start').hidden ? $('#obs-stop') : $('#obs-start');
}

function obsStart() {
  return obsAction(
    'start',
    async () => {
      await obsRequest('POST', '/obs/stream/start');
      announce(t('obsc.started'));
    },
    { focus: visibleStartStop },
  );
}

async function obsStop() {
  const ok = await confirmDialog({
    title: t('confirm.obs_stop_title'),
    text: t('confirm.obs_stop_text'),
    ok: t('obsc.stop'),
  });
  if (!ok) return;
  await obsAction(
    'stop',
    async () => {
      await obsRequest('POST', '/obs/stream/stop');
      announce(t('obsc.stopped'));
    },
    { focus: visibleStartStop },
  );
}

async function obsPoint() {
  const o = state.obs;
  const s = o && o.status;
  if (!s) return;
  if (!obsPointsAtAntenne(o)) {
    const ok = await confirmDialog({
      title: t('confirm.obs_point_title'),
      text: t('confirm.obs_point_text'),
      details: [
        ...serviceDetails(s.stream_service, t('obsc.d_now_server'), t('obsc.d_now_key')),
        [t('obsc.d_new_server'), (o.antenne_service && o.antenne_service.server) || '—'],
        ...(o.antenne_service && o.antenne_service.key ? [[t('obsc.d_new_key'), o.antenne_service.key]] : []),
      ],
      note: t(s.streaming ? 'confirm.obs_point_note_live' : 'confirm.obs_point_note'),
      ok: t('obsc.point'),
      tone: 'primary',
    });
    if (!ok) return;
  }
  await obsAction(
    'point',
    async () => {
      await obsRequest('POST', '/obs/point-to-antenne', {});
      announce(t('obsc.pointed'));
    },
    { focus: () => $('#obs-point') },
  );
}

function obsPointRestart() {
  return obsAction(
    'restart',
    async () => {
      await obsRequest('POST', '/obs/point-to-antenne', { restart: true });
      state.obsConflict = null;
      announce(t('obsc.pointed_restarted'));
    },
    { focus: (ok) => (ok ? $('#obs-point') : $('#obs-point-restart')) },
  );
}

function obsConflictCancel() {
  state.obsConflict = null;
  renderObs();
  $('#obs-point').focus();
}

async function obsRestore() {
  const o = state.obs;
  const prev = o && o.previous_service;
  if (!prev) return;
  const ok = await confirmDialog({
    title: t('confirm.obs_restore_title'),
    text: t('confirm.obs_restore_text'),
    details: serviceDetails(prev, t('obsc.d_server'), t('obsc.d_key')),
    note: t('confirm.obs_restore_note'),
    ok: t('obsc.restore'),
    tone: 'primary',
  });
  if (!ok) return;
  await obsAction(
    'restore',
    async () => {
      await obsRequest('POST', '/obs/restore-previous-service');
      announce(t('obsc.restored'));
    },
    // The restore button goes away with previous_service: move to its neighbour.
    { focus: () => ($('#obs-previous').hidden ? $('#obs-point') : $('#obs-restore')) },
  );
}

function obsScene() {
  const sel = $('#obs-scene');
  const name = sel.value;
  const current = state.obs && state.obs.status && state.obs.status.current_scene;
  if (!name || name === current) return;
  obsAction(
    'scene',
    async () => {
      try {
        await obsRequest('POST', '/obs/scene', { name });
        announce(t('obsc.scene_switched', { name }));
      } catch (e) {
        if (current != null) sel.value = current;
        throw e;
      }
    },
    { focus: () => sel },
  );
}

// ---- settings: OBS connection

function setObsPasswordVisible(visible) {
  const input = $('#obs-password');
  const btn = $('#obs-password-show');
  input.type = visible ? 'text' : 'password';
  btn.setAttribute('aria-pressed', String(visible));
  btn.textContent = t(visible ? 'common.hide' : 'common.show');
  btn.setAttribute('aria-label', t(visible ? 'obsset.hide_password' : 'obsset.show_password'));
}

function fillObsForm() {
  const o = state.obs;
  const form = $('#obs-form');
  if (o && !form.dataset.dirty) {
    $('#obs-host').value = o.host || '';
    $('#obs-port').value = String(o.port || OBS_DEFAULT_PORT);
    $('#obs-auto-stream').checked = !!o.auto_stream;
  }
  const set = !!(o && o.password_set);
  const pw = $('#obs-password');
  pw.placeholder = set ? t('obsset.password_keep') : '';
  setText($('#obs-password-help'), t(set ? 'obsset.password_keep_help' : 'obsset.password_help'));
  setObsPasswordVisible(pw.type === 'text');
}

/** "ws://host:port", "host:port", "[::1]:4455" or a bare host → {host, port|null}; null if invalid. */
function parseObsAddress(raw) {
  const v = raw.trim();
  if (!v) return { host: '', port: null };
  // A bare IPv6 literal (no brackets, no port).
  if (/^[0-9a-f]*:[0-9a-f:.%]*$/i.test(v) && (v.match(/:/g) || []).length >= 2) return { host: v, port: null };
  const m = /^(?:wss?:\/\/)?(\[[0-9a-f:.%]+\]|[^\s/:[\]@]+)(?::(\d{1,5}))?\/?$/i.exec(v);
  if (!m) return null;
  return { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : null };
}

async function saveObs(e) {
  e.preventDefault();
  const hostEl = $('#obs-host');
  const portEl = $('#obs-port');
  const pwEl = $('#obs-password');
  const errEl = $('#obs-settings-error');
  const status = $('#obs-settings-status');
  status.textContent = '';
  for (const el of [hostEl, portEl]) el.removeAttribute('aria-invalid');
  const fail = (el, msg) => {
    el.setAttribute('aria-invalid', 'true');
    setFormError(errEl, msg);
    el.focus();
  };
  const addr = parseObsAddress(hostEl.value);
  if (!addr) return fail(hostEl, t('obsset.err_host'));
  const portText = addr.port != null ? String(addr.port) : portEl.value.trim();
  let port = OBS_DEFAULT_PORT;
  if (portText) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) return fail(addr.port != null ? hostEl : portEl, t('obsset.err_port'));
  }
  // Show what is sent: "ws://pc:4455" in the host field becomes "pc" and 4455.
  hostEl.value = addr.host;
  portEl.value = String(port);
  setFormError(errEl, '');

  const body = { host: addr.host, port, auto_stream: $('#obs-auto-stream').checked };
  if (pwEl.value) body.password = pwEl.value; // an empty field keeps the saved password
  const btn = $('#obs-save');
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    const seq = ++obsReqSeq;
    const data = await api('PUT', '/obs', body);
    pwEl.value = '';
    setObsPasswordVisible(false);
    delete $('#obs-form').dataset.dirty;
    if (data && typeof data.state === 'string') {
      obsAppliedSeq = Math.max(obsAppliedSeq, seq);
      applyObs(data);
    }
    fillObsForm();
    status.textContent = t(addr.host ? 'obsset.saved' : 'obsset.saved_off');
    setTimeout(() => {
      if (status.textContent) status.textContent = '';
    }, 6000);
  } catch (err) {
    if (err.status !== 401) setFormError(errEl, err.message);
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}

function bindObs() {
  $('#obs-start').addEventListener('click', obsStart);
  $('#obs-stop').addEventListener('click', obsStop);
  $('#obs-point').addEventListener('click', obsPoint);
  $('#obs-point-restart').addEventListener('click', obsPointRestart);
  $('#obs-conflict-cancel').addEventListener('click', obsConflictCancel);
  $('#obs-restore').addEventListener('click', obsRestore);
  $('#obs-scene').addEventListener('change', obsScene);
  $('#obs-outputs').addEventListener('toggle', (e) => {
    if (e.currentTarget.open) loadObsOutputs();
  });
  // Links to the OBS connection settings land on its first field.
  for (const a of $$('[data-obs-settings]')) {
    a.addEventListener('click', () => {
      state.focusAfterRoute = '#obs-host';
      if (routeFromHash() === 'settings') showRoute();
    });
  }

  const form = $('#obs-form');
  form.addEventListener('submit', saveObs);
  form.addEventListener('input', () => {
    form.dataset.dirty = '1';
    $('#obs-settings-status').textContent = '';
  });
  $('#obs-password-show').addEventListener('click', () => setObsPasswordVisible($('#obs-password').type === 'password'));

  setInterval(() => {
    if (obsPollWanted()) pollObs();
  }, OBS_POLL_MS);
  document.addEventListener('visibilitychange', () => {
    if (obsPollWanted()) pollObs();
  });
}

// ---------------------------------------------------------------- destination cards

const STATES = ['disabled', 'idle', 'connecting', 'live', 'retrying', 'rejected'];

/** `via_obs` of a destination: null (relayed by antenne), "main" or an OBS output name. */
function viaOf(d) {
  return d && typeof d.via_obs === 'string' && d.via_obs ? d.via_obs : null;
}

function findDest(id) {
  return state.destinations.find((d) => d.id === id) || null;
}

function cardFor(id) {
  return $(`#destinations [data-testid="destination-card"][data-id="${CSS.escape(id)}"]`);
}

function upsertDest(d) {
  const i = state.destinations.findIndex((x) => x.id === d.id);
  if (i >= 0) state.destinations[i] = d;
  else state.destinations.push(d);
}

/** Apply toggles we just made over a snapshot that may predate them. */
function reconcileRecent(list) {
  const now = Date.now();
  for (const [id, r] of state.recent) {
    if (r.until < now) {
      state.recent.delete(id);
      continue;
    }
    const d = list.find((x) => x.id === id);
    if (d && d.enabled !== r.enabled) {
      d.enabled = r.enabled;
      if (!r.enabled) d.status = { ...(d.status || {}), state: 'disabled' };
    }
  }
  return list;
}

function renderDestinations() {
  const box = $('#destinations');
  const seen = new Set();
  let prev = null;
  const n = state.destinations.length;
  for (const [i, d] of state.destinations.entries()) {
    seen.add(d.id);
    let card = cardFor(d.id);
    if (!card) {
      card = $('#tpl-destination').content.firstElementChild.cloneNode(true);
      card.dataset.id = d.id;
      applyI18n(card);
    }
    // Keep the server's order; move a card only when it is out of place
    // (moving a node would drop the focus inside it).
    const want = prev ? prev.nextElementSibling : box.firstElementChild;
    if (want !== card) box.insertBefore(card, want);
    updateDestCard(card, d);
    decorateMove(card, d, i, n);
    prev = card;
  }
  for (const card of $$('[data-testid="destination-card"]', box)) {
    if (!seen.has(card.dataset.id)) {
      const hadFocus = card.contains(document.activeElement);
      card.remove();
      if (hadFocus) $('#add-destination').focus();
    }
  }
  $('#destinations-empty').hidden = state.destinations.length > 0;
  renderBulk();
}

function updateDestCard(card, d) {
  if (!card || !d) return;
  const r = (role) => card.querySelector(`[data-role="${role}"]`);
  const st = d.status || {};
  const s = STATES.includes(st.state) ? st.state : d.enabled ? 'idle' : 'disabled';
  const platform = platformOf(d);

  card.dataset.state = s;
  card.dataset.platform = platform;
  const badge = r('badge');
  badge.dataset.platform = platform;
  setText(badge, BADGES[platform] || presetName(platform).slice(0, 2).toUpperCase());
  setText(r('name'), d.name || presetName(platform));
  setText(r('platform'), presetName(platform));

  // The switch: left alone while our own request is in flight.
  const sw = card.querySelector('[data-testid="dest-toggle"]');
  if (!state.pending.has(d.id)) {
    sw.setAttribute('aria-checked', String(!!d.enabled));
  }
  const on = sw.getAttribute('aria-checked') === 'true';
  setText(r('switch-text'), t(on ? 'common.on' : 'common.off'));
  const via = viaOf(d);
  sw.setAttribute('aria-label', t(via ? 'dest.toggle_label_obs' : 'dest.toggle_label', { name: d.name || presetName(platform) }));

  // Streamed by OBS itself rather than relayed by antenne.
  card.dataset.via = via ? 'obs' : '';
  const viaEl = r('via');
  viaEl.hidden = !via;
  setText(viaEl, via ? t('dest.via_badge') : '');
  viaEl.title = via ? (via === VIA_MAIN ? t('dest.via_main_title') : t('dest.via_output_title', { output: via })) : '';

  const stateEl = card.querySelector('[data-testid="dest-state"]');
  stateEl.dataset.state = s;
  setText(stateEl, t(`state.${s}`));

  // Details in plain words.
  let detail = '';
  let raw = '';
  if (via) {
    const err = st.error || st.last_error;
    const where = via === VIA_MAIN ? t('detail.obs_main') : t('detail.obs_output', { output: via });
    if (s === 'disabled') detail = t('detail.obs_disabled');
    else if (s === 'live') detail = where;
    else if (s === 'connecting') detail = t('detail.obs_waiting', { where });
    else if (s === 'idle') detail = /not connected/i.test(err || '') || !err ? t('detail.obs_not_connected') : t('detail.error', { error: err });
    else if (err) detail = t('detail.error', { error: err });
  } else if (s === 'idle') detail = t('detail.idle');
  else if (s === 'disabled') detail = t('detail.disabled');
  else if (s === 'connecting') detail = t('detail.connecting', { attempt: st.attempt ?? 1 });
  else if (s === 'live') detail = '';
  else if (s === 'retrying') {
    const err = st.error || st.last_error;
    const plain = explainError(err);
    detail = plain || (err ? t('detail.error', { error: err }) : t('detail.retrying'));
    if (plain && err) raw = err;
  } else if (s === 'rejected') {
    const msg = st.error || st.last_error;
    detail = msg ? t('detail.rejected', { message: msg }) : t('detail.rejected_plain');
    raw = '';
  }
  setText(r('detail'), detail);
  r('detail').hidden = !detail;
  setText(r('raw'), raw ? t('detail.technical', { error: raw }) : '');
  r('raw').hidden = !raw;

  setText(r('bitrate'), s === 'live' ? fmtBitrate(st.bitrate_kbps) : '—');
  const reconnects = fmtNumber(st.reconnects ?? 0);
  setText(r('reconnects'), reconnects);
  setText(r('dropped'), fmtNumber(st.dropped_frames ?? 0));
  card.querySelector('[data-role="bitrate"]').title = st.bytes_sent != null ? t('dest.sent', { value: fmtBytes(st.bytes_sent) }) : '';
  setText(r('url'), d.url || '');

  const ingestEl = r('ingest');
  ingestEl.hidden = state.ingests.length < 2 || !!via;
  if (!ingestEl.hidden) setText(ingestEl, t('dest.ingest', { key: d.ingest || '' }));

  const name = d.name || presetName(platform);
  card.querySelector('[data-testid="dest-edit"]').setAttribute('aria-label', t('dest.edit_label', { name }));
  card.querySelector('[data-testid="dest-delete"]').setAttribute('aria-label', t('dest.delete_label', { name }));
  card.setAttribute('aria-label', name);

  tickCard(card, d);
}

/** The parts of a card that change every second without new data. */
function tickCard(card, d) {
  const st = d.status || {};
  const s = card.dataset.state;
  const uptimeEl = card.querySelector('[data-role="uptime"]');
  const cd = card.querySelector('[data-role="countdown"]');
  if (s === 'live') {
    let secs = null;
    if (st.uptime_seconds != null) secs = st.uptime_seconds + (Date.now() - state.receivedAt) / 1000;
    else if (st.connected_since) {
      const since = parseDate(st.connected_since);
      if (since) secs = (Date.now() - since.getTime()) / 1000;
    }
    setText(uptimeEl, secs == null ? '—' : fmtDuration(secs));
  } else {
    setText(uptimeEl, '—');
  }
  // The last error once it is over (live again, idle, switched off): shown
  // as past, with how long ago. While retrying or rejected it is the
  // current error, shown above.
  const pastEl = card.querySelector('[data-role="past-error"]');
  const errAt = parseDate(st.last_error_at);
  const past = !card.dataset.via && s !== 'retrying' && s !== 'rejected' && st.last_error && errAt;
  pastEl.hidden = !past;
  setText(pastEl, past ? t('dest.last_error', { when: fmtRelative(errAt), error: st.last_error }) : '');
  if ((s === 'retrying' || s === 'rejected') && st.next_retry_at) {
    const at = parseDate(st.next_retry_at);
    const left = at ? (at.getTime() - Date.now()) / 1000 : 0;
    setText(cd, left > 0.5 ? t('dest.retry_in', { time: fmtCountdown(left) }) : t('dest.retry_now'));
  } else {
    setText(cd, '');
  }
}

function tick() {
  for (const d of state.destinations) {
    const card = cardFor(d.id);
    if (card) tickCard(card, d);
  }
  // Relative "since" texts of the ingest cards.
  for (const ing of state.ingests) {
    const card = $(`#ingests [data-ingest-key="${CSS.escape(ing.key)}"]`);
    const since = parseDate(ing.since);
    if (card && since) setText(card.querySelector('[data-role="since"]'), `${fmtRelative(since)} · ${fmtTime(since)}`);
  }
  tickObs();
  renderFold();
}

async function toggleDest(id, sw) {
  if (state.pending.has(id)) return;
  const d = findDest(id);
  if (!d) return;
  const next = sw.getAttribute('aria-checked') !== 'true';
  const hadFocus = document.activeElement === sw;
  state.pending.add(id);
  sw.setAttribute('aria-checked', String(next));
  sw.setAttribute('aria-busy', 'true');
  sw.disabled = true;
  updateDestCard(cardFor(id), d);
  try {
    const updated = await api('PATCH', `/destinations/${encodeURIComponent(id)}`, { enabled: next });
    if (updated && updated.id) {
      upsertDest(updated);
      state.recent.set(id, { enabled: !!updated.enabled, until: Date.now() + RECENT_TOGGLE_MS });
      state.receivedAt = Date.now();
    }
    announce(t(next ? 'dest.toggled_on' : 'dest.toggled_off', { name: d.name }));
  } catch (e) {
    reportError(e);
  } finally {
    state.pending.delete(id);
    const card = cardFor(id);
    const btn = card && card.querySelector('[data-testid="dest-toggle"]');
    if (btn) {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      updateDestCard(card, findDest(id));
      if (hadFocus) btn.focus();
    }
  }
}

async function deleteDest(id) {
  const d = findDest(id);
  if (!d) return;
  const ok = await confirmDialog({
    title: t('confirm.delete_title'),
    text: t('confirm.delete_text', { name: d.name }),
    ok: t('common.delete'),
  });
  if (!ok) return;
  try {
    await api('DELETE', `/destinations/${encodeURIComponent(id)}`);
    state.destinations = state.destinations.filter((x) => x.id !== id);
    renderDestinations();
    announce(t('dest.deleted', { name: d.name }));
  } catch (e) {
    reportError(e);
  }
}

function onDestinationsClick(e) {
  const btn = e.target.closest('button');
  if (!btn) return;
  const card = btn.closest('[data-testid="destination-card"]');
  if (!card) return;
  const id = card.dataset.id;
  switch (btn.dataset.testid) {
    case 'dest-toggle':
      toggleDest(id, btn);
      break;
    case 'dest-edit':
      openDestDialog(findDest(id));
      break;
    case 'dest-delete':
      deleteDest(id);
      break;
    case 'dest-up':
    case 'dest-down':
      move(id, btn.dataset.testid === 'dest-up' ? -1 : 1, btn);
      break;
    default:
  }
}

// ---------------------------------------------------------------- confirm dialog

/**
 * Ask for a confirmation. `details` is a list of [label, value] pairs shown
 * under the text (values in monospace), `note` a hint below them, `tone` the
 * class of the OK button ('danger' or 'primary').
 */
function confirmDialog({ title, text, ok, details = [], note = '', tone = 'danger' }) {
  const dlg = $('#confirm-dialog');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  const dl = $('#confirm-details');
  dl.textContent = '';
  for (const [label, value] of details) {
    const row = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.className = 'mono wrap';
    dd.textContent = value;
    row.append(dt, dd);
    dl.appendChild(row);
  }
  dl.hidden = details.length === 0;
  setText($('#confirm-note'), note);
  $('#confirm-note').hidden = !note;
  const okBtn = $('#confirm-ok');
  okBtn.className = `btn ${tone}`;
  okBtn.textContent = ok;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    $('#confirm-cancel').focus();
  });
}

// ---------------------------------------------------------------- add / edit dialog

const dlgState = {
  editing: null, // the destination being edited, or null when adding
  preset: null, // the preset id selected last
  nameTouched: false,
  viaOutputs: null, // OBS outputs listed in "Streamed by", or null while unknown
  viaStatus: '', // i18n key of the note under "Streamed by", or ''
  viaToken: 0, // the outputs request that still counts
};

const VIA_MAIN = 'main';
// OBS's own stream output (simple / advanced mode): offered as "main" instead.
const MAIN_STREAM_OUTPUTS = ['simple_stream', 'adv_stream'];

function fillViaOptions(value) {
  const sel = $('#dest-via');
  sel.textContent = '';
  const add = (parent, v, label, disabled = false) => {
    const opt = document.createElement('option');
    opt.value = v;
    opt.textContent = label;
    opt.disabled = disabled;
    parent.appendChild(opt);
  };
  add(sel, '', t('dialog.via_antenne'));
  add(sel, VIA_MAIN, t('dialog.via_main'));
  const outs = (dlgState.viaOutputs || []).filter((o) => o && o.name && !MAIN_STREAM_OUTPUTS.includes(o.name));
  const named = value && value !== VIA_MAIN ? value : null;
  if (outs.length || named) {
    const group = document.createElement('optgroup');
    group.label = t('dialog.via_outputs');
    const seen = new Set();
    for (const o of outs) {
      if (seen.has(o.name)) continue;
      seen.add(o.name);
      const shared = o.controllable === false;
      add(group, o.name, t(shared ? 'dialog.via_output_shared' : 'dialog.via_output', { name: o.name }), shared && o.name !== named);
    }
    // The saved output, even when OBS does not list it right now.
    if (named && !seen.has(named)) add(group, named, t('dialog.via_output_missing', { name: named }));
    sel.appendChild(group);
  }
  sel.value = value || '';
  if (sel.value !== (value || '')) sel.value = '';
}

function updateViaUi() {
  const via = $('#dest-via').value;
  const text = $('#dest-enabled-text');
  const key = via ? 'dialog.enabled_obs' : 'dialog.enabled';
  text.dataset.i18n = key;
  text.textContent = t(key);
  const status = $('#dest-via-status');
  status.textContent = dlgState.viaStatus ? t(dlgState.viaStatus) : '';
  status.hidden = !dlgState.viaStatus;
}

/** List OBS's outputs in "Streamed by"; without OBS, only antenne and "main" stay. */
async function loadViaOutputs() {
  const token = ++dlgState.viaToken;
  if (state.obsMissing) {
    dlgState.viaStatus = 'dialog.via_no_obs';
    updateViaUi();
    return;
  }
  let list = null;
  try {
    list = outputsOf(await api('GET', '/obs/outputs'));
  } catch (e) {
    list = null; // OBS not connected (409) or not set up: nothing more to offer
  }
  if (token !== dlgState.viaToken || !$('#dest-dialog').open) return;
  dlgState.viaOutputs = list;
  dlgState.viaStatus = list ? '' : 'dialog.via_no_obs';
  const sel = $('#dest-via');
  const hadFocus = document.activeElement === sel;
  fillViaOptions(sel.value);
  if (hadFocus) sel.focus();
  updateViaUi();
}

function fillPresetOptions() {
  const sel = $('#preset-select');
  const value = sel.value;
  sel.textContent = '';
  for (const p of state.presets) {
    const opt = document.createElement('option');
    opt.value = p.id;
    opt.textContent = p.id === 'custom' ? t('preset.custom') : p.name;
    sel.appendChild(opt);
  }
  if (value) sel.value = value;
}

function urlRequired(p) {
  return !p || p.url_per_session || !p.url || p.id === 'custom';
}

function updatePresetHelp() {
  const p = preset($('#preset-select').value);
  const lang = getLang();
  const help = p && p.key_help ? p.key_help[lang] || p.key_help.en || '' : '';
  $('#preset-help-text').textContent = help;
  $('#preset-help').hidden = !help;

  const note = $('#preset-session-note');
  const notes = [];
  if (p && p.url_per_session) notes.push(t('dialog.url_per_session'));
  if (p && p.key_per_session) notes.push(t('dialog.key_per_session'));
  note.textContent = notes.join(' ');
  note.hidden = notes.length === 0;

  const url = $('#dest-url');
  const required = urlRequired(p);
  url.required = required;
  url.setAttribute('aria-required', String(required));
  $('#dest-url-req').hidden = !required;
  $('#dest-url-help').textContent = required
    ? t('dialog.url_help_required')
    : t('dialog.url_help_default', { url: p ? p.url : '' });

  const key = $('#dest-key');
  const editing = dlgState.editing;
  const keyRequired = !editing && !(p && p.id === 'custom');
  key.required = keyRequired;
  key.setAttribute('aria-required', String(keyRequired));
  $('#dest-key-req').hidden = !keyRequired;
  if (editing) {
    key.placeholder = t('dialog.key_keep_placeholder', { key: editing.key || '' });
    $('#dest-key-help').textContent = t('dialog.key_keep_help');
  } else {
    key.placeholder = '';
    $('#dest-key-help').textContent = p && p.id === 'custom' ? t('dialog.key_help_custom') : t('dialog.key_help');
  }
}

function onPresetChange() {
  const prev = preset(dlgState.preset);
  const p = preset($('#preset-select').value);
  dlgState.preset = p ? p.id : null;
  const name = $('#dest-name');
  const prevName = prev ? (prev.id === 'custom' ? t('preset.custom') : prev.name) : '';
  if (!name.value.trim() || (!dlgState.nameTouched && name.value === prevName)) {
    name.value = p ? (p.id === 'custom' ? t('preset.custom') : p.name) : '';
    dlgState.nameTouched = false;
  }
  const url = $('#dest-url');
  if (!url.value.trim() || (prev && url.value === prev.url)) url.value = p ? p.url : '';
  updatePresetHelp();
}

function setKeyVisible(visible) {
  const key = $('#dest-key');
  const btn = $('#dest-key-show');
  key.type = visible ? 'text' : 'password';
  btn.setAttribute('aria-pressed', String(visible));
  btn.textContent = t(visible ? 'common.hide' : 'common.show');
  btn.setAttribute('aria-label', t(visible ? 'dialog.hide_key' : 'dialog.show_key'));
}

async function fillIngestSelect(current) {
  const field = $('#dest-ingest-field');
  const sel = $('#dest-ingest');
  field.hidden = state.ingests.length < 2;
  if (field.hidden) return;
  sel.textContent = '';
  try {
    await clearIngestKey(state.ingests[0].key);
  } catch (e) {
    field.hidden = true;
    return;
  }
  for (const ing of state.ingests) {
    const clear = state.revealed.get(ing.key);
    if (!clear) continue;
    const opt = document.createElement('option');
    opt.value = clear;
    opt.textContent = ing.key;
    opt.dataset.masked = ing.key;
    if (current && current === ing.key) opt.selected = true;
    sel.appendChild(opt);
  }
}

function openDestDialog(dest) {
  const dlg = $('#dest-dialog');
  const form = $('#dest-form');
  form.reset();
  dlgState.editing = dest || null;
  dlgState.nameTouched = !!dest;
  setFormError($('#dest-error'), '');
  for (const el of $$('[aria-invalid]', form)) el.removeAttribute('aria-invalid');
  fillPresetOptions();
  setKeyVisible(false);

  const sel = $('#preset-select');
  if (dest) {
    const platform = platformOf(dest);
    sel.value = preset(platform) ? platform : 'custom';
    $('#dest-name').value = dest.name || '';
    $('#dest-url').value = dest.url || '';
    $('#dest-key').value = '';
    $('#dest-enabled').checked = !!dest.enabled;
  } else {
    sel.value = state.presets.length ? state.presets[0].id : '';
    const p = preset(sel.value);
    $('#dest-name').value = p ? (p.id === 'custom' ? t('preset.custom') : p.name) : '';
    $('#dest-url').value = p ? p.url : '';
    $('#dest-enabled').checked = true;
  }
  dlgState.preset = sel.value || null;
  $('#dest-dialog-title').textContent = t(dest ? 'dialog.edit_title' : 'dialog.add_title');
  $('#dest-submit').textContent = t(dest ? 'common.save' : 'dialog.add_submit');
  updatePresetHelp();
  fillIngestSelect(dest ? dest.ingest : null);
  dlgState.viaOutputs = null;
  dlgState.viaStatus = '';
  fillViaOptions(viaOf(dest));
  updateViaUi();
  loadViaOutputs();
  document.dispatchEvent(new CustomEvent('dest-dialog-open', { detail: dest || null })); // renditions.js, then sources.js fill #dest-source
  $('#dest-submit').disabled = false;
  dlg.showModal();
  sel.focus();
}

function validateDest() {
  const p = preset($('#preset-select').value);
  const name = $('#dest-name');
  const url = $('#dest-url');
  const key = $('#dest-key');
  for (const el of [name, url, key]) el.removeAttribute('aria-invalid');
  const fail = (el, msg) => {
    el.setAttribute('aria-invalid', 'true');
    el.focus();
    return msg;
  };
  if (!name.value.trim()) return fail(name, t('dialog.err_name'));
  const u = url.value.trim();
  if (!u && urlRequired(p)) return fail(url, t('dialog.err_url_required'));
  if (u && !/^(rtmps?|srt):\/\/[^/\s]+/i.test(u)) return fail(url, t('dialog.err_url_scheme'));
  if (key.required && !key.value.trim()) return fail(key, t('dialog.err_key'));
  if (/\s/.test(key.value.trim())) return fail(key, t('dialog.err_key_spaces'));
  return null;
}

async function submitDest(e) {
  e.preventDefault();
  const errEl = $('#dest-error');
  const problem = validateDest();
  if (problem) {
    setFormError(errEl, problem);
    return;
  }
  setFormError(errEl, '');
  const p = preset($('#preset-select').value);
  const platform = p ? p.id : 'custom';
  const name = $('#dest-name').value.trim();
  const url = $('#dest-url').value.trim() || (p ? p.url : '');
  const key = $('#dest-key').value.trim();
  const enabled = $('#dest-enabled').checked;
  const ingestField = $('#dest-ingest-field');
  const ingestSel = $('#dest-ingest');
  const via = $('#dest-via').value || null;
  const editing = dlgState.editing;
  const sourceSel = $('#dest-source');
  const sourceOpt = sourceSel && sourceSel.selectedOptions[0];
  // sources.js puts the API's value on each option (data-source).
  const source = sourceOpt && sourceOpt.dataset.source ? JSON.parse(sourceOpt.dataset.source)
    : sourceSel && sourceSel.value && sourceSel.value !== 'ingest' ? { rendition: sourceSel.value } : 'ingest';
  const sourceChanged = !!sourceSel && sourceSel.value !== (sourceSel.dataset.initial || 'ingest');
  const audioSel = $('#dest-audio-track');
  const audioTrack = audioSel && !audioSel.disabled ? Number(audioSel.value) || 0 : 0;
  const audioChanged = !!audioSel && String(audioTrack) !== (audioSel.dataset.initial || '0');

  const submit = $('#dest-submit');
  submit.disabled = true;
  submit.setAttribute('aria-busy', 'true');
  try {
    let result;
    if (editing) {
      const body = {};
      if (name !== editing.name) body.name = name;
      if (platform !== platformOf(editing) || !editing.platform) body.platform = platform;
      if (url !== editing.url) body.url = url;
      if (enabled !== !!editing.enabled) body.enabled = enabled;
      if (key) body.key = key; // an empty field keeps the current key
      if (via !== viaOf(editing)) body.via_obs = via;
      if (sourceChanged) body.source = source;
      if (audioChanged) body.audio_track = audioTrack;
      if (!ingestField.hidden && ingestSel.selectedOptions[0] && ingestSel.selectedOptions[0].dataset.masked !== editing.ingest) {
        body.ingest = ingestSel.value;
      }
      result = Object.keys(body).length
        ? await api('PATCH', `/destinations/${encodeURIComponent(editing.id)}`, body)
        : editing;
    } else {
      const body = { name, platform, url, key, enabled, via_obs: via };
      if (source !== 'ingest') body.source = source;
      if (audioTrack) body.audio_track = audioTrack;
      if (!ingestField.hidden && ingestSel.value) body.ingest = ingestSel.value;
      result = await api('POST', '/destinations', body);
    }
    if (result && result.id) {
      upsertDest(result);
      state.receivedAt = Date.now();
      renderDestinations();
    }
    $('#dest-dialog').close('saved');
    announce(t(editing ? 'dest.saved' : 'dest.added', { name }));
    if (!editing && result && result.id) {
      const card = cardFor(result.id);
      if (card) card.querySelector('[data-testid="dest-edit"]').focus();
    }
  } catch (err) {
    if (err.status === 401) return;
    setFormError(errEl, err.message);
  } finally {
    submit.disabled = false;
    submit.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------- events page

const KINDS = [
  'went_live',
  'disconnected',
  'retrying',
  'rejected',
  'toggled_on',
  'toggled_off',
  'all_on',
  'all_off',
  'reordered',
  'added',
  'edited',
  'deleted',
  'ingest_live',
  'ingest_offline',
  'login',
  'login_failed',
  'logout',
  'settings_changed',
  'token_created',
  'token_deleted',
  'started',
  'closed',
  'failed',
  'settings',
  'ingest_key_added',
  'ingest_key_deleted',
  'password_changed',
  'logged_out_everywhere',
  'recording_started',
  'recording_stopped',
  'recording_failed',
  'recording_deleted',
  'rendition_added',
  'rendition_edited',
  'rendition_deleted',
  'standby_started',
  'standby_ended',
];

function kindLabel(kind) {
  if (KINDS.includes(kind)) return t(`kind.${kind}`);
  return String(kind || '').replace(/_/g, ' ');
}

function kindTone(kind) {
  if (['went_live', 'ingest_live', 'toggled_on', 'all_on', 'added'].includes(kind)) return 'good';
  if (['retrying', 'disconnected', 'closed', 'failed', 'ingest_offline', 'login_failed', 'recording_failed'].includes(kind)) return 'warn';
  if (['rejected', 'deleted'].includes(kind)) return 'bad';
  return 'neutral';
}

function fillEventsFilter() {
  const sel = $('#events-filter');
  const known = new Map();
  for (const d of state.destinations) known.set(d.id, d.name);
  const gone = new Map();
  for (const ev of state.events) {
    if (ev.destination_id && !known.has(ev.destination_id)) gone.set(ev.destination_id, ev.destination_name || ev.destination_id);
  }
  const entries = [
    ['', t('events.all')],
    ...[...known].sort((a, b) => a[1].localeCompare(b[1])),
    ...[...gone].map(([id, name]) => [id, t('events.deleted_dest', { name })]),
  ];
  const sig = `${getLang()}|${entries.map((e) => e.join('=')).join('|')}`;
  if (sel.dataset.sig === sig) return;
  // Keep the previously known deleted destinations while one is selected.
  const value = sel.value;
  if (value && !entries.some(([id]) => id === value)) {
    const old = sel.querySelector(`option[value="${CSS.escape(value)}"]`);
    entries.push([value, old ? old.textContent : value]);
  }
  sel.dataset.sig = sig;
  sel.textContent = '';
  for (const [id, label] of entries) {
    const opt = document.createElement('option');
    opt.value = id;
    opt.textContent = label;
    sel.appendChild(opt);
  }
  sel.value = value;
}

function renderEvents(force = false) {
  fillEventsFilter();
  const sig = `${getLang()}|${state.events.length}|${state.events.map((e) => e.id).slice(0, 3).join(',')}`;
  if (!force && sig === state.eventsSig) return;
  state.eventsSig = sig;
  const body = $('#events-body');
  const frag = document.createDocumentFragment();
  const cols = ['events.col_time', 'events.col_kind', 'events.col_destination', 'events.col_message', 'events.col_actor'].map((k) => t(k));
  for (const ev of state.events) {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'event-row');
    tr.dataset.kind = ev.kind;

    const at = parseDate(ev.at);
    const tdTime = document.createElement('td');
    if (at) {
      const time = document.createElement('time');
      time.dateTime = ev.at;
      time.textContent = fmtDateTime(at);
      time.title = fmtRelative(at);
      tdTime.appendChild(time);
    } else {
      tdTime.textContent = ev.at || '—';
    }
    const tdKind = document.createElement('td');
    const kind = document.createElement('span');
    kind.className = `tag tone-${kindTone(ev.kind)}`;
    kind.textContent = kindLabel(ev.kind);
    tdKind.appendChild(kind);
    const tdDest = document.createElement('td');
    tdDest.textContent = ev.destination_name || (ev.destination_id ? ev.destination_id : '—');
    const tdMsg = document.createElement('td');
    tdMsg.className = 'msg';
    tdMsg.textContent = ev.message || '';
    const tdActor = document.createElement('td');
    tdActor.textContent = ev.actor || t('events.system');
    [tdTime, tdKind, tdDest, tdMsg, tdActor].forEach((td, i) => {
      td.dataset.label = cols[i];
      tr.appendChild(td);
    });
    frag.appendChild(tr);
  }
  body.replaceChildren(frag);
  $('#events-empty').hidden = state.events.length > 0 || state.eventsLoading;
}

let eventsReq = 0;
async function loadEvents({ quiet = false } = {}) {
  const filter = $('#events-filter').value;
  const q = new URLSearchParams({ limit: '200' });
  if (filter) q.set('destination', filter);
  const mine = ++eventsReq;
  if (!quiet) {
    state.eventsLoading = true;
    $('#events-loading').hidden = state.events.length > 0;
  }
  try {
    const list = await api('GET', `/events?${q}`);
    if (mine !== eventsReq) return; // a newer request is on its way
    state.events = Array.isArray(list) ? list : [];
  } catch (e) {
    if (!quiet) reportError(e);
  } finally {
    if (mine === eventsReq) {
      state.eventsLoading = false;
      $('#events-loading').hidden = true;
      renderEvents();
    }
  }
}

let eventsTimer = null;
function startEventsPolling() {
  stopEventsPolling();
  eventsTimer = setInterval(() => {
    if (document.visibilityState === 'visible') loadEvents({ quiet: true });
  }, EVENTS_POLL_MS);
}
function stopEventsPolling() {
  clearInterval(eventsTimer);
  eventsTimer = null;
}

// ---------------------------------------------------------------- settings page

function updateSettingsPreview() {
  const input = $('#public-host');
  const v = input.value.trim();
  const host = v ? (v.includes(':') && !v.startsWith('[') ? `[${v}]` : v) : location.hostname;
  setText($('#settings-preview'), obsServer(host));
  const rtmps = state.settings && state.settings.rtmps_port;
  const srt = state.settings && state.settings.srt_port;
  const srtOff = state.settings && state.settings.srt_unavailable;
  setText($('#settings-port'), String((state.settings && state.settings.rtmp_port) || 1935)
    + (rtmps ? ` · rtmps://${host}:${rtmps}/live` : '')
    + (srt ? ` · srt://${host}:${srt}?streamid=<stream key>` : '')
    + (srtOff ? ` · ${srtOff}` : ''));
  input.placeholder = location.hostname;
}

function fillSettingsForm() {
  const input = $('#public-host');
  if (document.activeElement !== input && !input.dataset.dirty) {
    input.value = (state.settings && state.settings.public_host) || '';
  }
  updateSettingsPreview();
}

async function saveSettings(e) {
  e.preventDefault();
  const input = $('#public-host');
  const errEl = $('#settings-error');
  const status = $('#settings-status');
  status.textContent = '';
  const host = input.value.trim();
  if (host && (/\s/.test(host) || host.includes('/'))) {
    input.setAttribute('aria-invalid', 'true');
    setFormError(errEl, t('settings.err_host'));
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  setFormError(errEl, '');
  const btn = $('#settings-save');
  btn.disabled = true;
  try {
    const s = await api('PUT', '/settings', { public_host: host });
    if (s) state.settings = { ...state.settings, ...s };
    delete input.dataset.dirty;
    fillSettingsForm();
    renderIngests();
    status.textContent = t('settings.saved');
    setTimeout(() => {
      if (status.textContent === t('settings.saved')) status.textContent = '';
    }, 4000);
  } catch (err) {
    if (err.status !== 401) setFormError(errEl, err.message);
  } finally {
    btn.disabled = false;
  }
}

function renderTokens() {
  const list = $('#token-list');
  const frag = document.createDocumentFragment();
  for (const tok of state.tokens) {
    const li = document.createElement('li');
    li.className = 'token-item';
    li.dataset.id = tok.id;
    li.setAttribute('data-testid', 'token-row');
    const info = document.createElement('div');
    const name = document.createElement('strong');
    name.textContent = tok.name;
    const meta = document.createElement('span');
    meta.className = 'muted small';
    const created = parseDate(tok.created_at);
    const used = parseDate(tok.last_used_at);
    meta.textContent = [
      t('tokens.created_at', { when: created ? fmtDateTime(created) : '—' }),
      used ? t('tokens.last_used', { when: fmtRelative(used) }) : t('tokens.never_used'),
    ].join(' · ');
    info.append(name, document.createElement('br'), meta);
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'btn small danger-ghost';
    del.setAttribute('data-testid', 'token-delete');
    del.textContent = t('common.delete');
    del.setAttribute('aria-label', t('tokens.delete_label', { name: tok.name }));
    del.addEventListener('click', () => deleteToken(tok));
    li.append(info, del);
    frag.appendChild(li);
  }
  list.replaceChildren(frag);
  $('#tokens-empty').hidden = state.tokens.length > 0;
}

async function loadTokens() {
  try {
    const list = await api('GET', '/tokens');
    state.tokens = Array.isArray(list) ? list : [];
    renderTokens();
  } catch (e) {
    reportError(e);
  }
}

async function createToken(e) {
  e.preventDefault();
  const input = $('#token-name');
  const errEl = $('#token-error');
  const name = input.value.trim();
  if (!name) {
    input.setAttribute('aria-invalid', 'true');
    setFormError(errEl, t('tokens.err_name'));
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  setFormError(errEl, '');
  const btn = $('#token-create');
  btn.disabled = true;
  try {
    const tok = await api('POST', '/tokens', { name });
    input.value = '';
    $('#token-value').textContent = tok.token;
    $('#token-created').hidden = false;
    $('#token-copy').focus();
    await loadTokens();
  } catch (err) {
    if (err.status !== 401) setFormError(errEl, err.message);
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- account

const MIN_PASSWORD = 10;

async function changePassword(e) {
  e.preventDefault();
  const cur = $('#current-password');
  const next = $('#new-password');
  const again = $('#confirm-password');
  const errEl = $('#password-error');
  $('#password-status').textContent = '';
  for (const el of [cur, next, again]) el.removeAttribute('aria-invalid');
  let bad = null;
  let message = '';
  if (!cur.value) {
    bad = cur;
    message = t('account.err_current');
  } else if ([...next.value].length < MIN_PASSWORD) {
    bad = next;
    message = t('account.err_short', { min: MIN_PASSWORD });
  } else if (next.value !== again.value) {
    bad = again;
    message = t('account.err_mismatch');
  }
  if (bad) {
    bad.setAttribute('aria-invalid', 'true');
    setFormError(errEl, message);
    bad.focus();
    return;
  }
  setFormError(errEl, '');
  const btn = $('#password-save');
  btn.disabled = true;
  try {
    await api('PUT', '/account/password', { current_password: cur.value, new_password: next.value });
    cur.value = '';
    next.value = '';
    again.value = '';
    $('#password-status').textContent = t('account.changed');
  } catch (err) {
    if (err.status === 403) {
      cur.setAttribute('aria-invalid', 'true');
      setFormError(errEl, t('account.err_wrong_current'));
      cur.focus();
    } else if (err.status !== 401) {
      setFormError(errEl, err.message);
    }
  } finally {
    btn.disabled = false;
  }
}

async function logoutEverywhere() {
  const ok = await confirmDialog({
    title: t('account.logout_everywhere'),
    text: t('account.logout_everywhere_text'),
    ok: t('account.logout_everywhere'),
  });
  if (!ok) return;
  try {
    await api('DELETE', '/sessions');
  } catch (err) {
    if (err.status !== 401) {
      reportError(err);
      return;
    }
  }
  goLogin();
}

async function deleteToken(tok) {
  const ok = await confirmDialog({
    title: t('confirm.token_title'),
    text: t('confirm.token_text', { name: tok.name }),
    ok: t('common.delete'),
  });
  if (!ok) return;
  try {
    await api('DELETE', `/tokens/${encodeURIComponent(tok.id)}`);
    state.tokens = state.tokens.filter((x) => x.id !== tok.id);
    renderTokens();
    $('#token-name').focus();
  } catch (e) {
    reportError(e);
  }
}

// ---------------------------------------------------------------- routing

const ROUTES = ['dashboard', 'events', 'settings'];

function routeFromHash() {
  const h = location.hash.replace(/^#\/?/, '');
  return ROUTES.includes(h) ? h : 'dashboard';
}

function showRoute() {
  const first = state.route === null;
  const route = routeFromHash();
  state.route = route;
  for (const page of $$('.page')) page.hidden = page.dataset.page !== route;
  for (const a of $$('.mainnav a')) {
    if (a.dataset.route === route) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${t(`nav.${route}`)} · antenne`;
  if (route === 'events') {
    fillEventsFilter();
    loadEvents();
    startEventsPolling();
  } else {
    stopEventsPolling();
  }
  if (route === 'settings') {
    $('#token-created').hidden = true;
    $('#token-value').textContent = '';
    fillSettingsForm();
    fillObsForm();
    loadTokens();
  }
  if (!first && (route === 'dashboard' || route === 'settings') && obsPollWanted()) pollObs();
  if (!first) {
    const h1 = $(`#h-${route}`);
    if (h1) h1.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  const then = state.focusAfterRoute && $(state.focusAfterRoute);
  state.focusAfterRoute = null;
  if (then && !then.closest('[hidden]')) {
    then.focus({ preventScroll: true });
    then.scrollIntoView({ block: 'center' });
  }
}

// ---------------------------------------------------------------- live updates

let stream = null;
let streamTimer = null;
let streamFailures = 0;

function setBanner(on) {
  $('#conn-banner').hidden = !on;
}

function applySnapshot(data) {
  if (!data || typeof data !== 'object') return;
  if (Array.isArray(data.ingests)) {
    state.ingests = data.ingests;
    pushHistory();
    renderIngests();
  }
  if (Array.isArray(data.destinations)) {
    state.destinations = holdOrder(reconcileRecent(data.destinations));
    state.receivedAt = Date.now();
    renderDestinations();
    if (state.route === 'events') fillEventsFilter();
  }
}

function connectStream() {
  clearTimeout(streamTimer);
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
    streamFailures = 0;
    setBanner(false);
    applySnapshot(data);
  });
  es.addEventListener('open', () => setBanner(false));
  es.addEventListener('error', () => {
    if (leaving) return;
    setBanner(true);
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error, e.g. 401): check the session,
      // then try again with a growing delay.
      es.close();
      if (stream === es) stream = null;
      const delay = Math.min(30_000, 1000 * 2 ** streamFailures);
      streamFailures += 1;
      streamTimer = setTimeout(async () => {
        try {
          await api('GET', '/me');
        } catch (e) {
          if (e.status === 401) return;
        }
        connectStream();
      }, delay);
    }
  });
}

// ---------------------------------------------------------------- boot

async function loadInitial() {
  const results = await Promise.allSettled([
    api('GET', '/presets'),
    api('GET', '/settings'),
    api('GET', '/ingest'),
    api('GET', '/destinations'),
    obsRequest('GET', '/obs'),
  ]);
  const [presets, settings, ingest, dests, obs] = results;
  // No OBS support on this server (404): neither card nor settings. Other
  // failures are retried by the poll.
  if (obs.status === 'rejected' && obs.reason && obs.reason.status === 404) state.obsMissing = true;
  if (presets.status === 'fulfilled' && Array.isArray(presets.value)) state.presets = presets.value;
  else {
    // Same data, shipped with the page.
    try {
      const res = await fetch('/assets/presets.json', { credentials: 'same-origin' });
      if (res.ok) state.presets = await res.json();
    } catch {
      // no presets: the dialog still offers nothing but what the server knows
    }
  }
  if (!state.presets.some((p) => p.id === 'custom')) {
    state.presets.push({ id: 'custom', name: 'Custom', url: '', key_help: {}, key_per_session: false, url_per_session: false });
  }
  state.settings = settings.status === 'fulfilled' && settings.value ? settings.value : { rtmp_port: 1935, public_host: '' };
  if (ingest.status === 'fulfilled' && ingest.value && Array.isArray(ingest.value.ingests)) {
    state.ingests = ingest.value.ingests;
    pushHistory();
  }
  if (dests.status === 'fulfilled' && Array.isArray(dests.value)) {
    state.destinations = dests.value;
    state.receivedAt = Date.now();
  }
  const failed = results.find(
    (r) => r.status === 'rejected' && r.reason && r.reason.status !== 401 && r !== presets && r !== settings && r !== obs,
  );
  if (failed) reportError(failed.reason);
}

function rerender() {
  document.title = `${t(`nav.${state.route || 'dashboard'}`)} · antenne`;
  renderIngests();
  renderDestinations();
  if (state.route === 'events') renderEvents(true);
  renderTokens();
  updateSettingsPreview();
  renderObs();
  fillObsForm();
  // The open dialog keeps what the user typed; only its texts change.
  if ($('#dest-dialog').open) {
    const sel = $('#preset-select');
    const v = sel.value;
    fillPresetOptions();
    sel.value = v;
    $('#dest-dialog-title').textContent = t(dlgState.editing ? 'dialog.edit_title' : 'dialog.add_title');
    $('#dest-submit').textContent = t(dlgState.editing ? 'common.save' : 'dialog.add_submit');
    setKeyVisible($('#dest-key').type === 'text');
    updatePresetHelp();
    fillViaOptions($('#dest-via').value);
    updateViaUi();
  }
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function trapTab(dlg, e) {
  if (e.key !== 'Tab') return;
  const items = $$(FOCUSABLE, dlg).filter((el) => el.offsetParent !== null || el === document.activeElement);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}

function bindUi() {
  bindLangSwitch(document);
  onLangChange(rerender);

  $('#app-error-close').addEventListener('click', clearError);
  // The skip link must not touch the hash, which holds the route.
  $('.skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    $('#main').focus();
  });
  $('#logout').addEventListener('click', async () => {
    try {
      await api('POST', '/logout');
    } catch (e) {
      if (e.status !== 401) {
        reportError(e);
        return;
      }
    }
    leaving = true;
    if (stream) stream.close();
    location.replace('/login');
  });

  $('#ingests').addEventListener('click', onIngestClick);
  bindObs();
  $('#destinations').addEventListener('click', onDestinationsClick);
  initControls({
    $,
    state,
    t,
    api,
    applyI18n,
    setText,
    fmtBitrate,
    announce,
    confirmDialog,
    showError,
    reportError,
    renderDestinations,
    cardFor,
    RECENT_TOGGLE_MS,
  });
  $('#add-destination').addEventListener('click', () => openDestDialog(null));

  // Dialog
  $('#dest-form').addEventListener('submit', submitDest);
  $('#preset-select').addEventListener('change', onPresetChange);
  $('#dest-name').addEventListener('input', () => {
    dlgState.nameTouched = true;
  });
  $('#dest-key-show').addEventListener('click', () => setKeyVisible($('#dest-key').type === 'password'));
  $('#dest-via').addEventListener('change', updateViaUi);
  const closeDest = () => $('#dest-dialog').close('cancel');
  $('#dest-cancel').addEventListener('click', closeDest);
  $('#dest-close').addEventListener('click', closeDest);
  $('#dest-dialog').addEventListener('close', () => {
    $('#dest-key').value = ''; // never leave a typed key lying in the DOM
    dlgState.viaToken++; // a late outputs answer no longer applies
    setKeyVisible(false);
  });
  // A click on the backdrop (outside the dialog box) closes it too; Tab
  // and Shift+Tab cycle inside the open dialog.
  for (const dlg of $$('dialog')) {
    dlg.addEventListener('keydown', (e) => trapTab(dlg, e));
    dlg.addEventListener('mousedown', (e) => {
      if (e.target === dlg) {
        const r = dlg.getBoundingClientRect();
        const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
        if (!inside) dlg.close('cancel');
      }
    });
  }

  // Events
  $('#events-filter').addEventListener('change', () => {
    state.events = [];
    state.eventsSig = '';
    renderEvents(true);
    loadEvents();
  });
  $('#events-refresh').addEventListener('click', () => loadEvents());

  // Settings
  $('#settings-form').addEventListener('submit', saveSettings);
  $('#public-host').addEventListener('input', (e) => {
    e.target.dataset.dirty = '1';
    $('#settings-status').textContent = '';
    updateSettingsPreview();
  });
  $('#token-form').addEventListener('submit', createToken);
  $('#password-form').addEventListener('submit', changePassword);
  $('#logout-everywhere').addEventListener('click', logoutEverywhere);
  $('#token-copy').addEventListener('click', (e) => {
    copyText($('#token-value').textContent, e.currentTarget).then((ok) => {
      if (!ok) selectText($('#token-value'));
    });
  });

  window.addEventListener('hashchange', showRoute);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && !stream && !leaving) connectStream();
  });
}

async function boot() {
  await initI18n();
  bindUi();
  let me;
  try {
    me = await api('GET', '/me');
  } catch (e) {
    if (e.status === 401) return;
    document.body.classList.remove('booting');
    showRoute();
    reportError(e);
    return;
  }
  state.me = me;
  $('#user-name').textContent = (me && me.username) || '';
  await loadInitial();
  renderIngests();
  renderObs();
  renderDestinations();
  showRoute();
  document.body.classList.remove('booting');
  connectStream();
  setInterval(tick, 1000);
}

boot().catch((e) => {
  document.body.classList.remove('booting');
  showError(e && e.message ? e.message : String(e));
});
