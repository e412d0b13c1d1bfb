// Translation helper shared by the app and the login page.
//
// Strings live in /assets/i18n/<lang>.json as a flat object of dotted keys.
// Static markup names its string with attributes that applyI18n() fills:
//   data-i18n="key"             → textContent
//   data-i18n-placeholder="key" → placeholder
//   data-i18n-aria-label="key"  → aria-label
//   data-i18n-title="key"       → title
// Placeholders in a string are written {name} and filled from t()'s vars.

export const LANGS = ['en', 'fr'];
const STORAGE_KEY = 'antenne.lang';

const dicts = Object.create(null);
const listeners = new Set();
let current = 'en';

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The language to start with: the saved choice, else the browser's. */
export function detectLang() {
  const saved = stored();
  if (LANGS.includes(saved)) return saved;
  const nav = (navigator.language || 'en').toLowerCase();
  return nav.startsWith('fr') ? 'fr' : 'en';
}

async function load(lang) {
  if (!dicts[lang]) {
    const res = await fetch(new URL(`./i18n/${lang}.json`, import.meta.url), {
      credentials: 'same-origin',
    });
    if (!res.ok) throw new Error(`cannot load translations ${lang}: HTTP ${res.status}`);
    dicts[lang] = await res.json();
  }
  return dicts[lang];
}

export function getLang() {
  return current;
}

/** A BCP 47 locale for Intl: the browser's own variant when it matches. */
export function locale() {
  const nav = navigator.language || '';
  return nav.toLowerCase().startsWith(current) ? nav : current;
}

/** Translate `key`, filling {placeholders} from `vars`. */
export function t(key, vars) {
  let s = dicts[current]?.[key] ?? dicts.en?.[key] ?? key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, name) =>
      Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : m,
    );
  }
  return s;
}

/** Fill every translatable element under `root` (a document or element). */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const attr of ['placeholder', 'aria-label', 'title']) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
    }
  }
  for (const el of root.querySelectorAll('[data-lang]')) {
    el.setAttribute('aria-pressed', String(el.dataset.lang === current));
  }
}

/** Switch language: loads it, sets <html lang>, re-translates, tells listeners. */
export async function setLang(lang, { persist = true } = {}) {
  if (!LANGS.includes(lang)) lang = 'en';
  await load(lang);
  if (lang !== 'en') await load('en').catch(() => {}); // fallback for a missing key
  current = lang;
  if (persist) {
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch {
      // private mode: the choice lasts for this page only
    }
  }
  document.documentElement.lang = lang;
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export async function initI18n() {
  try {
    await setLang(detectLang(), { persist: false });
  } catch (e) {
    await setLang('en', { persist: false });
  }
}

/** Call `fn(lang)` after every language switch. */
export function onLangChange(fn) {
  listeners.add(fn);
}

/** Wire the EN/FR buttons (elements with data-lang) under `root`. */
export function bindLangSwitch(root = document) {
  for (const btn of root.querySelectorAll('[data-lang]')) {
    btn.addEventListener('click', () => {
      if (btn.dataset.lang !== current) setLang(btn.dataset.lang).catch(() => {});
    });
  }
}

// ---- formatting helpers (follow the current language) ----

export function fmtNumber(n, opts) {
  return new Intl.NumberFormat(locale(), opts).format(n);
}

export function fmtDateTime(date) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'medium' }).format(date);
}

export function fmtTime(date) {
  return new Intl.DateTimeFormat(locale(), { timeStyle: 'short' }).format(date);
}

/** "5 minutes ago" / "il y a 5 minutes" for a Date. */
export function fmtRelative(date, now = Date.now()) {
  const secs = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(secs);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
  if (abs < 45) return rtf.format(Math.abs(secs) < 5 ? 0 : secs, 'second');
  if (abs < 45 * 60) return rtf.format(Math.round(secs / 60), 'minute');
  if (abs < 22 * 3600) return rtf.format(Math.round(secs / 3600), 'hour');
  return rtf.format(Math.round(secs / 86400), 'day');
}
