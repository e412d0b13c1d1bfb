// The one client of antenne's REST API, shared by every page script
// (dashboard, dock, alerts, recordings, import). JSON in and out; an error
// answer becomes an ApiError carrying the server's own message; a request
// without a valid session sends the page to the login form, once.

import { t } from './i18n.js';

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.status = status;
    this.data = data; // the parsed JSON error body, when there is one
  }
}

let loginPath = '/login';
let leaving = false;

/// Where this page sends the user when the session has ended (the dock
/// comes back to itself: `/login?next=/dock`).
export function setLoginPath(path) {
  loginPath = path;
}

export function goLogin() {
  if (leaving) return;
  leaving = true;
  location.replace(loginPath);
}

export async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, opts);
  } catch {
    throw new ApiError(0, t('error.network'));
  }
  if (res.status === 401) {
    goLogin();
    throw new ApiError(401, t('error.session'));
  }
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : t('error.http', { status: res.status });
    throw new ApiError(res.status, msg, data);
  }
  return data;
}
