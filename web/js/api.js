// api.js: every call to casetrail's HTTP API. The session cookie travels by itself
// (same origin); every request that is not a GET carries X-Casetrail-CSRF, which a cross-site
// form cannot send. Errors become ApiError with the server's code and message, so the UI can
// show the words the server chose.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const listeners = { unauthorized: [] };
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Casetrail-CSRF'] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  Object.assign(headers, opts.headers || {});
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Could not reach casetrail (network error). Check the connection and try again.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const e = data && data.error ? data.error : null;
    const err = new ApiError(res.status, e ? e.code : `http_${res.status}`,
      e && e.message ? e.message : `casetrail answered ${res.status} ${res.statusText || ''}`.trim(),
      res.headers.get('Retry-After'));
    if (res.status === 401 && !opts.noAuthRedirect) listeners.unauthorized.forEach((fn) => fn(err));
    throw err;
  }
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);

// A query string from an object, leaving out empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// The page cursor of a list or timeline answer (the API names it next_cursor; "next" too).
export function nextOf(page) {
  if (!page) return null;
  if (page.next !== undefined && page.next !== null) return page.next;
  return page.next_cursor ?? null;
}
