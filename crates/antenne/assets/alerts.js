// Settings → Alerts: the alert webhooks (add, send a test, delete).
//
// Its own module beside app.js: it only talks to /api/v1/alerts/webhooks
// and fills the "Alerts" card of the settings page. Webhook URLs and
// secrets come masked from the API; a new webhook's secret is shown once.

import { api } from './api.js';
import { t, onLangChange } from './i18n.js';

const EVENTS = [
  'destination_failed',
  'destination_rejected',
  'destination_recovered',
  'ingest_live',
  'ingest_offline',
];

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

let hooks = [];
const results = new Map(); // webhook id → {ok, text} of its last test

/// The webhooks' routes, through the one API client.
const call = (method, path, body) => api(method, `/alerts/webhooks${path}`, body);

function showError(message) {
  const box = $('#alert-error');
  box.textContent = message || '';
  box.hidden = !message;
}

function render() {
  const list = $('#alert-list');
  if (!list) return;
  const frag = document.createDocumentFragment();
  for (const hook of hooks) {
    const li = document.createElement('li');
    li.className = 'token-item alert-item';
    li.dataset.id = hook.id;
    li.setAttribute('data-testid', 'alert-row');
    const info = document.createElement('div');
    const url = document.createElement('strong');
    url.className = 'mono wrap';
    url.textContent = hook.url;
    const meta = document.createElement('span');
    meta.className = 'muted small';
    meta.textContent = [
      t(`alerts.format_${hook.format}`),
      hook.events.map((e) => t(`alerts.ev.${e}`)).join(', '),
    ].join(' · ');
    info.append(url, document.createElement('br'), meta);
    const result = results.get(hook.id);
    if (result) {
      const r = document.createElement('span');
      r.className = result.ok ? 'ok-text small' : 'form-error small';
      r.setAttribute('role', 'status');
      r.setAttribute('data-testid', 'alert-test-result');
      r.textContent = result.text;
      info.append(document.createElement('br'), r);
    }
    const test = document.createElement('button');
    test.type = 'button';
    test.className = 'btn small';
    test.setAttribute('data-testid', 'alert-test');
    test.textContent = t('alerts.test');
    test.addEventListener('click', () => sendTest(hook, test));
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'btn small danger-ghost';
    del.setAttribute('data-testid', 'alert-delete');
    del.textContent = t('common.delete');
    del.setAttribute('aria-label', t('alerts.delete_label', { url: hook.url }));
    del.addEventListener('click', () => remove(hook));
    const actions = document.createElement('div');
    actions.className = 'actions';
    actions.append(test, del);
    li.append(info, actions);
    frag.appendChild(li);
  }
  list.replaceChildren(frag);
  $('#alerts-empty').hidden = hooks.length > 0;
}

async function load() {
  try {
    const list = await call('GET', '');
    hooks = Array.isArray(list) ? list : [];
    render();
  } catch (e) {
    showError(e.message);
  }
}

async function add(ev) {
  ev.preventDefault();
  showError('');
  const url = $('#alert-url').value.trim();
  const events = $$('input[name="alert-event"]:checked').map((c) => c.value);
  if (!url) return showError(t('alerts.err_url'));
  if (events.length === 0) return showError(t('alerts.err_events'));
  const button = $('#alert-add');
  button.disabled = true;
  try {
    const hook = await call('POST', '', { url, format: $('#alert-format').value, events });
    $('#alert-url').value = '';
    $('#alert-secret').textContent = hook.secret;
    $('#alert-created').hidden = hook.format !== 'generic';
    await load();
  } catch (e) {
    showError(e.message);
  } finally {
    button.disabled = false;
  }
}

async function sendTest(hook, button) {
  button.disabled = true;
  try {
    const r = await call('POST', `/${encodeURIComponent(hook.id)}/test`);
    results.set(hook.id, { ok: true, text: t('alerts.test_ok', { status: r.status }) });
  } catch (e) {
    results.set(hook.id, { ok: false, text: e.message });
  } finally {
    button.disabled = false;
  }
  render();
}

async function remove(hook) {
  if (!window.confirm(t('alerts.delete_confirm', { url: hook.url }))) return;
  try {
    await call('DELETE', `/${encodeURIComponent(hook.id)}`);
    hooks = hooks.filter((h) => h.id !== hook.id);
    results.delete(hook.id);
    render();
  } catch (e) {
    showError(e.message);
  }
}

function onRoute() {
  if (location.hash.startsWith('#/settings')) load();
}

function init() {
  const form = $('#alert-form');
  if (!form) return;
  // Event checkboxes, all on by default.
  const box = $('#alert-events');
  for (const e of EVENTS) {
    const label = document.createElement('label');
    label.className = 'check';
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = 'alert-event';
    input.value = e;
    input.checked = true;
    const span = document.createElement('span');
    span.dataset.i18n = `alerts.ev.${e}`;
    span.textContent = t(`alerts.ev.${e}`);
    label.append(input, ' ', span);
    box.append(label);
  }
  form.addEventListener('submit', add);
  window.addEventListener('hashchange', onRoute);
  onLangChange(render);
  onRoute();
}

init();
