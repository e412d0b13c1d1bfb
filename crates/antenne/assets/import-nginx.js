// "Move in from nginx-rtmp" (Settings): paste or load nginx.conf (and
// stunnel.conf), preview the destinations its push lines make (keys
// masked, what is not carried over, what OBS must change), then create
// them. Both steps are POST /api/v1/import/nginx (dry run, then
// "dry_run": false); the dashboard picks the new destinations up from its
// live stream. This module adds its card to the Settings page itself, so
// index.html only loads it.

import { api } from './api.js';
import { t, applyI18n } from './i18n.js';


const CARD = `
  <h2 id="h-import-nginx" data-i18n="import.title"></h2>
  <p class="hint" data-i18n="import.help"></p>
  <form class="stack" novalidate>
    <div class="field">
      <label for="import-nginx-text" data-i18n="import.nginx"></label>
      <textarea id="import-nginx-text" data-testid="import-nginx-text" class="mono" rows="6" spellcheck="false" autocomplete="off"></textarea>
      <input type="file" id="import-nginx-file" data-for="import-nginx-text" data-i18n-aria-label="import.load_file">
    </div>
    <div class="field">
      <label for="import-stunnel-text" data-i18n="import.stunnel"></label>
      <textarea id="import-stunnel-text" data-testid="import-stunnel-text" class="mono" rows="3" spellcheck="false" autocomplete="off"></textarea>
      <input type="file" id="import-stunnel-file" data-for="import-stunnel-text" data-i18n-aria-label="import.load_file">
    </div>
    <div class="form-error" data-testid="import-error" role="alert" hidden></div>
    <div class="actions">
      <button type="submit" class="btn" data-testid="import-preview" data-i18n="import.preview"></button>
    </div>
  </form>
  <div class="import-plan" data-testid="import-plan" hidden>
    <h3 data-i18n="import.plan"></h3>
    <ul class="import-dests" data-testid="import-dests"></ul>
    <ul class="import-obs hint"></ul>
    <h3 class="import-notes-title" data-i18n="import.notes"></h3>
    <ul class="import-notes hint" data-testid="import-notes"></ul>
    <div class="actions">
      <button type="button" class="btn primary" data-testid="import-create"></button>
      <span class="ok-text" data-testid="import-status" role="status"></span>
    </div>
  </div>`;

const post = (body) => api('POST', '/import/nginx', body);

function item(list, text) {
  const li = document.createElement('li');
  li.textContent = text;
  list.append(li);
}

function mount() {
  const grid = document.querySelector('[data-page=settings] .settings-grid');
  if (!grid || document.getElementById('import-nginx-card')) return;
  const card = document.createElement('section');
  card.className = 'card';
  card.id = 'import-nginx-card';
  card.setAttribute('data-testid', 'import-nginx-card');
  card.setAttribute('aria-labelledby', 'h-import-nginx');
  card.innerHTML = CARD;
  for (const ta of card.querySelectorAll('textarea')) {
    Object.assign(ta.style, {
      width: '100%',
      padding: '0.5rem',
      border: '1px solid var(--border)',
      borderRadius: 'var(--radius-sm)',
      background: 'var(--surface)',
      color: 'var(--text)',
      fontSize: '0.85rem',
    });
  }
  grid.append(card);
  applyI18n(card);

  const form = card.querySelector('form');
  const nginx = card.querySelector('#import-nginx-text');
  const stunnel = card.querySelector('#import-stunnel-text');
  const error = card.querySelector('[data-testid=import-error]');
  const plan = card.querySelector('[data-testid=import-plan]');
  const dests = card.querySelector('.import-dests');
  const obs = card.querySelector('.import-obs');
  const notes = card.querySelector('.import-notes');
  const notesTitle = card.querySelector('.import-notes-title');
  const create = card.querySelector('[data-testid=import-create]');
  const status = card.querySelector('[data-testid=import-status]');
  let count = 0;

  const showError = (msg) => {
    error.hidden = !msg;
    error.textContent = msg || '';
  };
  const body = (dryRun) => ({
    nginx: nginx.value,
    stunnel: stunnel.value.trim() ? stunnel.value : null,
    dry_run: dryRun,
  });
  const renderCreate = () => {
    create.textContent = t('import.create', { count });
    create.hidden = count === 0;
  };

  for (const input of card.querySelectorAll('input[type=file]')) {
    input.addEventListener('change', async () => {
      const file = input.files && input.files[0];
      if (file) card.querySelector(`#${input.dataset.for}`).value = await file.text();
    });
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(null);
    status.textContent = '';
    plan.hidden = true;
    if (!nginx.value.trim()) {
      showError(t('import.missing'));
      nginx.focus();
      return;
    }
    try {
      const p = await post(body(true));
      dests.replaceChildren();
      obs.replaceChildren();
      notes.replaceChildren();
      for (const d of p.destinations) {
        item(dests, `${d.name} · ${d.url} · ${t('import.key')} ${d.key} (${t('import.line', { line: d.line })})`);
      }
      if (!p.destinations.length) item(dests, t('import.nothing'));
      for (const a of p.obs) item(obs, a);
      for (const n of p.notes) item(notes, `${n.file} ${t('import.line', { line: n.line })}: ${n.text}`);
      notesTitle.hidden = !p.notes.length;
      count = p.destinations.length;
      renderCreate();
      plan.hidden = false;
    } catch (err) {
      showError(err.message);
    }
  });

  create.addEventListener('click', async () => {
    showError(null);
    create.disabled = true;
    try {
      const done = await post(body(false));
      status.textContent = t('import.created', { count: done.created.length });
      count = 0;
      renderCreate();
    } catch (err) {
      showError(err.message);
    } finally {
      create.disabled = false;
    }
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', mount);
} else {
  mount();
}
