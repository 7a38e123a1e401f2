// HTTP: requests to the bridge's agent routes (web/API.md), with the session's token.

import { session } from './session.js';
import { isStr } from './util.js';

const SELF = new URL(import.meta.url);
/** /agent/ — derived from where this file is served (/agent/assets/http.js), so a path prefix works. */
const API_BASE = SELF.pathname.endsWith('/assets/http.js') ? new URL('../', SELF) : new URL('/agent/', SELF);
export const apiUrl = (path) => new URL(path, API_BASE).toString();

export async function api(path, { timeout = 10000 } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeout);
  try {
    const res = await fetch(apiUrl(path), {
      headers: { Authorization: `Bearer ${session.token}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'same-origin',
      signal: ac.signal,
    });
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try {
        const body = await res.json();
        if (isStr(body?.error)) message = `${message}: ${body.error}`;
      } catch {
        /* not JSON */
      }
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return await res.json();
  } catch (err) {
    if (err.name === 'AbortError') throw new Error('request timed out');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
