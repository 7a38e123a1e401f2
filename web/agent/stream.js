// The event stream: one EventSource per login, resumed from the last event id; each new event
// updates the page, and the leader tab pops and closes, one at a time in event order.

import { applyCallEvent, renderCall } from './calls.js';
import { renderAgentStatus, renderConnDetail, renderConnState, setConn } from './header.js';
import { api, apiUrl } from './http.js';
import { leadership } from './leadership.js';
import { closePendingFor, popFor, rememberClose } from './pops.js';
import { myAgentId, processed, session } from './session.js';
import { backoff, isStr } from './util.js';

/** Told when the bridge refuses the token: the page logs out (set by agent.js, which owns login). */
let tokenRejected = (_message) => {};
export function onTokenRejected(fn) {
  tokenRejected = fn;
}

export function connectStream(resumeFrom) {
  const gen = session.gen;
  closeStream();
  const q = new URLSearchParams({ token: session.token });
  if (resumeFrom) q.set('lastEventId', resumeFrom);
  const es = new EventSource(apiUrl(`events?${q}`));
  session.es = es;
  es.onopen = () => {
    if (es !== session.es) return;
    session.everLive = true;
    session.liveSince = Date.now();
    session.retries = 0;
    session.connectProblem = null;
    setConn('live');
  };
  es.onmessage = (e) => {
    if (es !== session.es || gen !== session.gen) return;
    onMessage(e);
  };
  // The bridge sends keep-alives as SSE comments, which EventSource never shows to scripts; if a
  // bridge also sends them as named events, they count as "last message" and arm the watchdog.
  const keepAlive = () => {
    if (es !== session.es) return;
    session.namedKeepAlive = true;
    session.lastMessageAt = Date.now();
    renderConnDetail();
  };
  es.addEventListener('keep-alive', keepAlive);
  es.addEventListener('ping', keepAlive);
  // The bridge's connection to the PBX: sent when the stream opens and at every change.
  es.addEventListener('status', (e) => {
    if (es !== session.es || gen !== session.gen) return;
    onStatus(e);
  });
  es.onerror = () => {
    if (es !== session.es) return;
    if (es.readyState === EventSource.CLOSED) void streamGaveUp(gen);
    else setConn(session.everLive ? 'reconnecting' : 'connecting');
  };
}

export function closeStream() {
  clearTimeout(session.retryTimer);
  session.retryTimer = null;
  if (session.es) {
    session.es.onopen = session.es.onmessage = session.es.onerror = null;
    session.es.close();
    session.es = null;
  }
}

/** EventSource stops retrying on an HTTP error or a wrong content type: find out why, retry ourselves. */
async function streamGaveUp(gen) {
  closeStream();
  setConn(session.everLive ? 'reconnecting' : 'connecting');
  try {
    await api('me');
  } catch (err) {
    if (gen !== session.gen) return;
    if (err.status === 401 || err.status === 403) {
      tokenRejected('Your token is no longer accepted (expired or revoked). Log in again.');
      return;
    }
  }
  if (gen !== session.gen) return;
  session.retryTimer = setTimeout(() => {
    if (gen === session.gen) connectStream(session.lastEventId);
  }, backoff(session.retries++));
}

function onStatus(e) {
  let s;
  try {
    s = JSON.parse(e.data);
  } catch {
    return;
  }
  if (!s || typeof s !== 'object' || !isStr(s.state)) return;
  const wasUp = session.pbx === null || session.pbx.state === 'connected';
  if (s.state === 'connected') session.pbxDownSince = null;
  else if (wasUp || !session.pbxDownSince) session.pbxDownSince = Date.parse(s.since) || Date.now();
  session.pbx = { source: isStr(s.source) ? s.source : null, state: s.state };
  renderConnState();
}

function onMessage(e) {
  session.lastMessageAt = Date.now();
  if (e.lastEventId) session.lastEventId = e.lastEventId;
  renderConnDetail();
  let ev;
  try {
    ev = JSON.parse(e.data);
  } catch {
    return;
  }
  if (!ev || typeof ev !== 'object' || !isStr(ev.type) || !isStr(ev.id)) return;
  if (processed.has(ev.id)) return; // a re-delivery
  processed.add(ev.id);
  handleEvent(ev);
}

function handleEvent(ev) {
  const gen = session.gen;
  if (isStr(ev.callId)) {
    applyCallEvent(ev);
    renderCall();
    rememberClose(ev);
  } else if (ev.agent && (myAgentId() === null || ev.agent.id === myAgentId())) {
    renderAgentStatus(ev);
  }
  if (!leadership.isLeader) return;
  if (isStr(ev.callId)) enqueue(gen, () => closePendingFor(ev));
  if (session.rules.some((r) => r.events.includes(ev.type))) enqueue(gen, () => popFor(ev));
}

/** Pops and closes run one at a time, in event order (a ring_stopped never overtakes its ringing). */
let queue = Promise.resolve();
function enqueue(gen, fn) {
  queue = queue
    .then(() => (gen === session.gen ? fn() : undefined))
    .catch((err) => console.error('crm-bridge: screen pop failed', err));
}
