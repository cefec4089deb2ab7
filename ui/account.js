// account.js owns the HTTP API for accounts (PROTOCOL 1.1 "The HTTP API"): sign up, sign in, sign out, the session
// list, revoking sessions and changing the password. The session itself is an HttpOnly cookie the page never sees.

const TIMEOUT_MS = 15000; // a sign-in waits for argon2 on the server: seconds, not minutes

export class ApiError extends Error {
  constructor(code, status, message, retryAfter, until) {
    super(message || code);
    this.until = until; // when a suspension ends (ms), where the server says
    this.code = code; // the protocol's code (bad_credentials, weak_password…), or 'offline' / 'timeout'
    this.status = status; // the HTTP status, 0 when there was no answer
    this.retryAfter = retryAfter; // seconds, for rate_limited
  }
}

// One request: JSON in and out, the cookie sent along (same origin). Resolves with the parsed body (null for 204).
async function call(method, path, body, timeoutMs = TIMEOUT_MS) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(err.name === 'AbortError' ? 'timeout' : 'offline', 0);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (res.ok) return data;
  // A server without accounts (version 1) answers 404 with plain text: accounts are not there.
  const code = data?.code || (res.status === 404 ? 'no_accounts' : `http_${res.status}`);
  const retry = data?.retry_after ?? (Number(res.headers.get('Retry-After')) || undefined);
  throw new ApiError(code, res.status, data?.message, retry, data?.until);
}

// Who this browser is signed in as: {name, admin, sessions}, or null when not signed in. Throws when it cannot
// tell (no answer), with code 'no_accounts' when the server has no accounts at all.
export async function currentSession(timeoutMs = TIMEOUT_MS) {
  try {
    return await call('GET', '/api/session', undefined, timeoutMs);
  } catch (err) {
    if (err.code === 'not_signed_in') return null;
    throw err;
  }
}

export const register = (name, password, invite) => call('POST', '/api/register', { name, password, ...(invite ? { invite } : {}) });
export const login = (name, password) => call('POST', '/api/login', { name, password });
export const logout = () => call('POST', '/api/logout', {});
export const revokeSession = (id) => call('POST', '/api/sessions/revoke', { id });
export const revokeOtherSessions = () => call('POST', '/api/sessions/revoke', { others: true });
export const changePassword = (current, next) => call('POST', '/api/password', { current, new: next });

// "Chrome · Android" from a User-Agent: enough for a person to tell their devices apart, no library.
export function describeAgent(agent = '') {
  const a = String(agent);
  const browser = /Edg\//.test(a) ? 'Edge'
    : /OPR\/|Opera/.test(a) ? 'Opera'
      : /SamsungBrowser/.test(a) ? 'Samsung Internet'
        : /Firefox\/|FxiOS/.test(a) ? 'Firefox'
          : /Chrome\/|CriOS|Chromium/.test(a) ? 'Chrome'
            : /Safari\//.test(a) ? 'Safari'
              : '';
  const system = /Android/.test(a) ? 'Android'
    : /iPhone|iPad|iPod/.test(a) ? 'iOS'
      : /Windows/.test(a) ? 'Windows'
        : /Mac OS X|Macintosh/.test(a) ? 'macOS'
          : /CrOS/.test(a) ? 'ChromeOS'
            : /Linux/.test(a) ? 'Linux'
              : '';
  return [browser, system].filter(Boolean).join(' · ');
}
