// Login page: posts the credentials to the API, then goes to the dashboard.

import { t, initI18n, bindLangSwitch, onLangChange } from './i18n.js';

const form = document.getElementById('login-form');
const user = document.getElementById('login-username');
const pass = document.getElementById('login-password');
const submit = document.getElementById('login-submit');
const errorBox = document.getElementById('login-error');

// The error shown, kept as a key (or the server's own text) so that a
// language switch re-translates it.
let shown = null;

function renderError() {
  if (!shown) {
    errorBox.hidden = true;
    errorBox.textContent = '';
    return;
  }
  errorBox.hidden = false;
  errorBox.textContent = shown.key ? t(shown.key, shown.vars) : shown.text;
}

function setError(err) {
  shown = err;
  renderError();
}

// Where to go once logged in: back to the page that sent here
// (/login?next=/dock from the OBS dock), among antenne's own pages only.
function nextPage() {
  const next = new URLSearchParams(location.search).get('next');
  return ['/', '/dock'].includes(next) ? next : '/';
}

async function onSubmit(e) {
  e.preventDefault();
  const username = user.value.trim();
  const password = pass.value;
  user.removeAttribute('aria-invalid');
  pass.removeAttribute('aria-invalid');
  if (!username || !password) {
    const field = username ? pass : user;
    field.setAttribute('aria-invalid', 'true');
    field.focus();
    setError({ key: 'login.missing' });
    return;
  }
  submit.disabled = true;
  submit.setAttribute('aria-busy', 'true');
  try {
    let res;
    try {
      res = await fetch('/api/v1/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ username, password }),
      });
    } catch {
      setError({ key: 'error.network' });
      return;
    }
    if (res.ok) {
      setError(null);
      location.replace(nextPage());
      return;
    }
    let message = null;
    try {
      const data = await res.json();
      if (data && typeof data.error === 'string') message = data.error;
    } catch {
      // no JSON body
    }
    if (res.status === 401) {
      setError({ key: 'login.wrong' });
      pass.value = '';
      pass.setAttribute('aria-invalid', 'true');
      pass.focus();
    } else if (res.status === 429) {
      setError({ key: 'login.too_many' });
    } else if (res.status === 503 && message && message.startsWith('too many password checks')) {
      setError({ key: 'login.busy' });
    } else {
      setError(message ? { text: message } : { key: 'error.http', vars: { status: res.status } });
    }
  } finally {
    submit.disabled = false;
    submit.removeAttribute('aria-busy');
  }
}

async function boot() {
  await initI18n();
  document.body.classList.remove('booting');
  bindLangSwitch(document);
  onLangChange(() => {
    document.title = `${t('login.title')} · antenne`;
    renderError();
  });
  document.title = `${t('login.title')} · antenne`;
  user.focus();
}

form.addEventListener('submit', onSubmit);
boot().finally(() => document.body.classList.remove('booting'));
