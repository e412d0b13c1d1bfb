// Live preview on each ingest card: while the ingest is live, its stream
// plays in a <video> through Media Source Extensions, fed by one streamed
// fetch of /api/v1/ingest/{id}/preview (fragmented MP4, init segment first;
// the codecs come in the X-Preview-Type header). The player keeps to the
// live edge (it jumps forward when it falls more than a second and a half
// behind, e.g. after the tab was in the background) and trims what it has
// played. An audio level meter (Web Audio analyser) follows the sound; it
// starts with the first click or key press on the page (browsers keep
// audio suspended until then). Nothing is fetched for an offline ingest.

import { t, onLangChange } from './i18n.js';

const API = '/api/v1';
const MAX_BEHIND = 1.5; // seconds behind the live edge before jumping
const players = new Map(); // ingest id -> player

let audioCtx = null;

function audioContext() {
  if (!audioCtx && window.AudioContext) audioCtx = new AudioContext();
  return audioCtx;
}

function resumeAudio() {
  const ctx = audioContext();
  if (ctx && ctx.state === 'suspended') ctx.resume().catch(() => {});
}

class Player {
  constructor(id, slot) {
    this.id = id;
    this.slot = slot;
    this.abort = new AbortController();
    this.queue = [];
    this.stopped = false;
    this.video = slot.querySelector('video');
    this.meterBar = slot.querySelector('.meter-bar');
    this.timer = setInterval(() => this.tick(), 500);
    this.run();
  }

  async run() {
    const video = this.video;
    try {
      const res = await fetch(`${API}/ingest/${encodeURIComponent(this.id)}/preview`, {
        credentials: 'same-origin',
        signal: this.abort.signal,
      });
      const type = res.headers.get('X-Preview-Type');
      if (!res.ok || !type || !window.MediaSource || !MediaSource.isTypeSupported(type)) {
        this.status(res.ok ? t('preview.unsupported') : t('preview.unavailable'));
        return;
      }
      const ms = new MediaSource();
      video.src = URL.createObjectURL(ms);
      await new Promise((ok) => ms.addEventListener('sourceopen', ok, { once: true }));
      this.sb = ms.addSourceBuffer(type);
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.pump());
      this.status('');
      video.play().catch(() => {});
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.stopped) break;
        this.queue.push(value);
        this.pump();
      }
    } catch (e) {
      if (!this.stopped) this.status(t('preview.unavailable'));
    }
    // The stream ended (publisher gone, codec change): try again shortly.
    if (!this.stopped) setTimeout(() => this.restart(), 1000);
  }

  restart() {
    if (this.stopped) return;
    this.stop();
    players.set(this.id, new Player(this.id, this.slot));
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length) return;
    try {
      sb.appendBuffer(this.queue.shift());
    } catch (e) {
      // QuotaExceeded: drop what was played and try again on the next tick.
      this.trim(true);
    }
  }

  trim(hard) {
    const sb = this.sb;
    const v = this.video;
    if (!sb || sb.updating || !sb.buffered.length) return;
    const start = sb.buffered.start(0);
    const keep = hard ? 2 : 20;
    if (v.currentTime - start > keep + 5) sb.remove(start, v.currentTime - keep);
  }

  tick() {
    const v = this.video;
    const b = v.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      // Behind (background tab, stall, a gap after skipped frames): jump.
      if (end - v.currentTime > MAX_BEHIND || v.currentTime < b.start(b.length - 1)) {
        v.currentTime = Math.max(b.start(b.length - 1), end - 0.3);
      }
      if (v.paused) v.play().catch(() => {});
    }
    this.trim(false);
    this.meter();
  }

  meter() {
    const ctx = audioCtx;
    if (!ctx || ctx.state !== 'running') return;
    if (!this.analyser) {
      try {
        const stream = this.video.captureStream ? this.video.captureStream() : null;
        if (!stream || !stream.getAudioTracks().length) return;
        const src = ctx.createMediaStreamSource(stream);
        this.analyser = ctx.createAnalyser();
        this.analyser.fftSize = 1024;
        src.connect(this.analyser);
        this.samples = new Float32Array(this.analyser.fftSize);
        this.draw();
      } catch {
        /* no audio track yet */
      }
    }
  }

  draw() {
    if (this.stopped || !this.analyser) return;
    this.analyser.getFloatTimeDomainData(this.samples);
    let peak = 0;
    for (const s of this.samples) peak = Math.max(peak, Math.abs(s));
    const db = peak > 0 ? 20 * Math.log10(peak) : -60;
    const level = Math.max(0, Math.min(1, (db + 60) / 60));
    this.meterBar.style.transform = `scaleX(${level.toFixed(3)})`;
    this.slot.dataset.level = level.toFixed(2);
    requestAnimationFrame(() => this.draw());
  }

  status(text) {
    const s = this.slot.querySelector('.preview-status');
    s.textContent = text;
    s.hidden = !text;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    this.abort.abort();
    const v = this.video;
    v.pause();
    if (v.src) URL.revokeObjectURL(v.src);
    v.removeAttribute('src');
    v.load();
  }
}

function slotFor(card) {
  const slot = card.querySelector('[data-role="preview"]');
  if (slot && !slot.firstChild) {
    slot.innerHTML =
      '<video data-testid="preview-video" muted autoplay playsinline></video>' +
      '<div class="meter" data-testid="preview-meter" aria-hidden="true"><span class="meter-bar"></span></div>' +
      '<button type="button" class="btn small preview-sound" data-testid="preview-sound"></button>' +
      '<p class="preview-status muted small" hidden></p>';
    const video = slot.querySelector('video');
    video.muted = true;
    const sound = slot.querySelector('.preview-sound');
    const label = () => {
      sound.textContent = t(video.muted ? 'preview.listen' : 'preview.mute');
      sound.setAttribute('aria-pressed', String(!video.muted));
    };
    sound.addEventListener('click', () => {
      video.muted = !video.muted;
      label();
    });
    sound.relabel = label;
    label();
  }
  return slot;
}

function scan() {
  const seen = new Set();
  for (const card of document.querySelectorAll('[data-ingest-id]')) {
    const id = card.dataset.ingestId;
    const slot = slotFor(card);
    if (!slot) continue;
    const live = card.classList.contains('is-live');
    slot.hidden = !live;
    if (live) {
      seen.add(id);
      if (!players.has(id)) players.set(id, new Player(id, slot));
    }
  }
  for (const [id, p] of players) {
    if (!seen.has(id)) {
      p.stop();
      players.delete(id);
    }
  }
}

document.addEventListener('click', resumeAudio, { capture: true });
document.addEventListener('keydown', resumeAudio, { capture: true });
onLangChange(() => {
  for (const b of document.querySelectorAll('.preview-sound')) b.relabel?.();
});
setInterval(scan, 1000);
