// The controls a streamer reaches for first, on the dashboard:
//
// - "Turn all on" / "Turn all off" per ingest (one API request each:
//   POST /api/v1/ingest-keys/{id}/destinations/enable-all|disable-all).
//   Turning off asks first and names the destinations it will stop.
// - Moving a destination up or down (PUT /api/v1/destinations/order);
//   the buttons stay focusable at the ends (aria-disabled, not disabled),
//   so the focus follows the card it moved.
// - On a phone, the ingest details and OBS fold into a one-line summary
//   below the destinations (a <details> that opens on tap); on wide
//   screens it is always open and its summary hidden.
//
// app.js owns the state and the rendering of cards; it hands this module
// what it needs through `initControls`.

import { onLangChange } from './i18n.js';

let ctx = null;
const NARROW = '(max-width: 640px)';

export function initControls(c) {
  ctx = c;
  const { $ } = ctx;
  $('#bulk').addEventListener('click', onBulkClick);
  const narrow = window.matchMedia(NARROW);
  const fold = () => {
    $('#dash-fold').open = !narrow.matches;
  };
  narrow.addEventListener('change', fold);
  fold();
  // After app.js's own re-render (registered first): the OBS badge the
  // summary copies is in the new language by then.
  onLangChange(renderFold);
}

// ---------------------------------------------------------------- all on / all off

function destinationsOf(ing) {
  return ctx.state.destinations.filter((d) => d.ingest === ing.key);
}

/** One group of buttons per ingest that has destinations. */
export function renderBulk() {
  const { $, state, t, applyI18n, setText } = ctx;
  const box = $('#bulk');
  const seen = new Set();
  const several = state.ingests.filter((i) => destinationsOf(i).length).length > 1;
  for (const ing of state.ingests) {
    const dests = destinationsOf(ing);
    let group = box.querySelector(`[data-ingest-id="${CSS.escape(ing.id)}"]`);
    if (!dests.length) {
      if (group) group.remove();
      continue;
    }
    seen.add(ing.id);
    if (!group) {
      group = $('#tpl-bulk').content.firstElementChild.cloneNode(true);
      group.dataset.ingestId = ing.id;
      applyI18n(group);
      box.appendChild(group);
    }
    const label = group.querySelector('[data-role="label"]');
    label.hidden = !several;
    setText(label, several ? t('bulk.ingest', { key: ing.key }) : '');
    group.setAttribute('aria-label', several ? t('bulk.ingest', { key: ing.key }) : t('bulk.label'));
    setText(group.querySelector('[data-testid="all-on"]'), t('bulk.all_on'));
    setText(group.querySelector('[data-testid="all-off"]'), t('bulk.all_off'));
  }
  for (const g of Array.from(box.children)) {
    if (!seen.has(g.dataset.ingestId)) g.remove();
  }
  box.hidden = seen.size === 0;
}

function listText(names) {
  try {
    return new Intl.ListFormat(document.documentElement.lang || 'en', { type: 'conjunction' }).format(names);
  } catch {
    return names.join(', ');
  }
}

async function onBulkClick(e) {
  const btn = e.target.closest('button[data-testid]');
  if (!btn || btn.getAttribute('aria-busy') === 'true') return;
  const group = btn.closest('[data-ingest-id]');
  const ing = ctx.state.ingests.find((i) => i.id === group.dataset.ingestId);
  if (!ing) return;
  const on = btn.dataset.testid === 'all-on';
  const { t, api, announce, confirmDialog } = ctx;
  if (!on) {
    const live = destinationsOf(ing).filter((d) => d.enabled);
    if (!live.length) {
      announce(t('bulk.none_off'));
      return;
    }
    const names = live.map((d) => d.name);
    const ok = await confirmDialog({
      title: t('confirm.all_off_title', { count: names.length }),
      text: t('confirm.all_off_text', { names: listText(names) }),
      ok: t('confirm.all_off_ok'),
    });
    if (!ok) return;
  }
  btn.setAttribute('aria-busy', 'true');
  try {
    const path = `/ingest-keys/${encodeURIComponent(ing.id)}/destinations/${on ? 'enable-all' : 'disable-all'}`;
    const res = await api('POST', path);
    if (res && Array.isArray(res.destinations)) {
      ctx.state.destinations = res.destinations;
      ctx.state.receivedAt = Date.now();
      for (const d of res.destinations) {
        ctx.state.recent.set(d.id, { enabled: !!d.enabled, until: Date.now() + ctx.RECENT_TOGGLE_MS });
      }
      ctx.renderDestinations();
    }
    const changed = (res && res.changed) || [];
    const skipped = (res && res.skipped) || [];
    let msg = changed.length
      ? t(on ? 'bulk.done_on' : 'bulk.done_off', { names: listText(changed.map((c) => c.name)) })
      : t(on ? 'bulk.none_on' : 'bulk.none_off');
    if (skipped.length) {
      const why = skipped.map((s) => `${s.name}: ${s.reason}`).join(' · ');
      ctx.showError(t('bulk.skipped', { list: why }));
      msg = `${msg} ${t('bulk.skipped', { list: why })}`;
    }
    announce(msg);
  } catch (err) {
    ctx.reportError(err);
  } finally {
    btn.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------- order

/** Labels and ends of the move buttons of one card (`i` of `n`). */
export function decorateMove(card, d, i, n) {
  const { t } = ctx;
  const name = d.name || '';
  const up = card.querySelector('[data-testid="dest-up"]');
  const down = card.querySelector('[data-testid="dest-down"]');
  up.setAttribute('aria-label', t('dest.move_up', { name }));
  down.setAttribute('aria-label', t('dest.move_down', { name }));
  up.title = t('dest.move_up', { name });
  down.title = t('dest.move_down', { name });
  up.setAttribute('aria-disabled', String(i === 0));
  down.setAttribute('aria-disabled', String(i === n - 1));
  card.querySelector('.move').hidden = n < 2;
}

let moving = false;
/** The order being saved (ids), shown over live snapshots sent before it. */
let pendingOrder = null;

/** A live snapshot's list, in the order being saved if there is one. */
export function holdOrder(list) {
  if (!pendingOrder) return list;
  const rank = new Map(pendingOrder.map((id, i) => [id, i]));
  const last = pendingOrder.length;
  return list.slice().sort((a, b) => (rank.get(a.id) ?? last) - (rank.get(b.id) ?? last));
}

/** Moves destination `id` one place up (`-1`) or down (`+1`) and saves. */
export async function move(id, by, btn) {
  const { state, api, t, announce } = ctx;
  if (moving || !btn || btn.getAttribute('aria-disabled') === 'true') return;
  const list = state.destinations.slice();
  const i = list.findIndex((d) => d.id === id);
  const j = i + by;
  if (i < 0 || j < 0 || j >= list.length) return;
  [list[i], list[j]] = [list[j], list[i]];
  const before = state.destinations;
  const testid = btn.dataset.testid;
  moving = true;
  pendingOrder = list.map((d) => d.id);
  state.destinations = list;
  ctx.renderDestinations();
  const refocus = () => {
    const b = ctx.cardFor(id)?.querySelector(`[data-testid="${testid}"]`);
    if (b) b.focus();
  };
  refocus();
  try {
    const saved = await api('PUT', '/destinations/order', { ids: list.map((d) => d.id) });
    if (Array.isArray(saved)) {
      // Keep the live status we have; the order is the server's.
      const byId = new Map(state.destinations.map((d) => [d.id, d]));
      state.destinations = saved.map((d) => byId.get(d.id) || d);
      ctx.renderDestinations();
      refocus();
    }
    const d = list[j];
    announce(t('dest.moved', { name: d.name, position: j + 1, count: list.length }));
  } catch (err) {
    state.destinations = before;
    ctx.renderDestinations();
    refocus();
    ctx.reportError(err);
  } finally {
    moving = false;
    pendingOrder = null;
  }
}

// ---------------------------------------------------------------- the phone's summary

/** The one-line summary of the folded ingest details and OBS. */
export function renderFold() {
  const { $, state, t, setText, fmtBitrate } = ctx;
  const ings = state.ingests;
  const live = ings.filter((i) => i.live);
  const badge = $('#fold-ingest-state');
  badge.dataset.state = live.length ? 'live' : 'offline';
  setText(badge, t(live.length ? 'ingest.live' : 'ingest.offline'));
  let text = '';
  if (ings.length > 1) text = t('fold.live_count', { live: live.length, count: ings.length });
  else if (live.length) text = fmtBitrate(live[0].bitrate_kbps);
  setText($('#fold-ingest-text'), text);
  const obsCard = $('#obs-card');
  $('#fold-obs-line').hidden = obsCard.hidden;
  if (!obsCard.hidden) setText($('#fold-obs-text'), $('#obs-state').textContent);
}
