// The floor's event stream (/supervisor/events): a snapshot, then patches; every (re)connect
// starts with a new snapshot, so nothing is resumed by id. EventSource retries a dropped
// connection itself; when it gives up (an HTTP error), /supervisor/me tells a refused token from
// a bridge that is away, and the page retries with backoff.

import { eventsUrl, me } from './http.js';
import { applyPatch, applySnapshot } from './model.js';
import { backoff } from './util.js';

const stream = { es: null, gen: 0, retries: 0, retryTimer: null, everLive: false };

/**
 * @param on.conn (state) => void: connecting, live, reconnecting
 * @param on.changed () => void: the model changed, render when the browser paints next
 * @param on.rejected (message) => void: the token is no longer accepted
 * @param on.status ({ source, state, since }) => void: the bridge's connection to its event source
 */
export function connect(on) {
  const gen = ++stream.gen;
  closeStream(false);
  const es = new EventSource(eventsUrl());
  stream.es = es;
  const mine = () => es === stream.es && gen === stream.gen;
  const read = (e, apply) => {
    if (!mine()) return;
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    apply(data);
    on.changed();
  };
  es.addEventListener('snapshot', (e) => {
    // Live once the floor is known, not when the socket opens.
    read(e, applySnapshot);
    if (!mine()) return;
    stream.everLive = true;
    stream.retries = 0;
    on.conn('live');
  });
  es.addEventListener('patch', (e) => read(e, applyPatch));
  // The bridge's own connection to the PBX, when the bridge says it (the agent stream's `status`):
  // a wallboard whose bridge lost the PBX shows figures that no longer move.
  es.addEventListener('status', (e) => {
    if (!mine()) return;
    try {
      const s = JSON.parse(e.data);
      if (s && typeof s === 'object' && typeof s.state === 'string') on.status(s);
    } catch {
      /* not JSON: ignore */
    }
  });
  es.onerror = () => {
    if (!mine()) return;
    if (es.readyState === EventSource.CLOSED) void gaveUp(gen, on);
    else on.conn(stream.everLive ? 'reconnecting' : 'connecting');
  };
}

async function gaveUp(gen, on) {
  closeStream(false);
  on.conn(stream.everLive ? 'reconnecting' : 'connecting');
  try {
    await me();
  } catch (err) {
    if (gen !== stream.gen) return;
    if (err.status === 401 || err.status === 403) {
      on.rejected(`This token is no longer accepted (${err.message}). Log in again.`);
      return;
    }
  }
  if (gen !== stream.gen) return;
  stream.retryTimer = setTimeout(() => {
    if (gen === stream.gen) connect(on);
  }, backoff(stream.retries++));
}

export function closeStream(forget = true) {
  clearTimeout(stream.retryTimer);
  stream.retryTimer = null;
  if (forget) {
    stream.gen++;
    stream.everLive = false;
  }
  if (stream.es) {
    stream.es.onerror = null;
    stream.es.close();
    stream.es = null;
  }
}

/** After the browser comes back online: reconnect now if the stream is down. */
export function isDown() {
  return !stream.es || stream.es.readyState === EventSource.CLOSED;
}
