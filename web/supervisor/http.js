// HTTP: the supervisor routes (/supervisor/me, /supervisor/events) and the API's call-back, with
// the session's token.

import { isStr } from './util.js';

const SELF = new URL(import.meta.url);
/** /supervisor/ — derived from where this file is served (/supervisor/assets/http.js), so a path prefix works. */
const BASE = SELF.pathname.endsWith('/assets/http.js') ? new URL('../', SELF) : new URL('/supervisor/', SELF);
export const pageUrl = (path) => new URL(path, BASE).toString();

export const auth = { token: null };

async function request(url, init, timeout = 10000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeout);
  try {
    const res = await fetch(url, {
      ...init,
      headers: { Authorization: `Bearer ${auth.token}`, Accept: 'application/json', ...(init.headers ?? {}) },
      cache: 'no-store',
      credentials: 'same-origin',
      signal: ac.signal,
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      // RFC 9457 problems say what went wrong in `detail` (`error`: the older shape).
      const why = isStr(body?.detail) ? body.detail : isStr(body?.error) ? body.error : isStr(body?.title) ? body.title : null;
      const err = new Error(why ? `${why} (HTTP ${res.status})` : `HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return body;
  } catch (err) {
    if (err.name === 'AbortError') throw new Error('the bridge did not answer in time');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** `{ name, callBack, timeZone }` of the supervisor whose token this is. */
export const me = () => request(pageUrl('me'), { method: 'GET' });

/** Rings `agent`, then dials `number` (click-to-call): `{ id, agent, number, status }`. */
export const callBack = (agent, number) =>
  request(pageUrl('../api/v1/calls'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent, number }) }, 15000);

export const eventsUrl = () => pageUrl(`events?${new URLSearchParams({ token: auth.token })}`);
