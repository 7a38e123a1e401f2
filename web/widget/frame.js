// The widget's iframe page (/widget, loaded by /widget.js inside a CRM page). It runs on the
// bridge's origin, holds the agent's event stream (SSE, with the token from its own URL) and:
//   - posts { source: 'crm-bridge', event, data } to window.parent (each bridge event by its type,
//     plus 'presenceSync' { agent, state, reason } when an agent event says the CRM's presence
//     should follow the queues: api.presence), only ever with the parent's
//     exact origin as targetOrigin, and only when that origin is in the allow-list that
//     GET /agent/me returns as `allowedOrigins` (http.allowedOrigins) — never '*';
//   - accepts { action: 'hello' | 'callOut' | 'presence', … } only from window.parent and only
//     from an allow-listed origin, and forwards callOut / presence to the bridge's API
//     (web/API.md), answering { event: 'result' | 'error', data: { action, id?, … } }.
// Messages from any other origin are ignored without an answer.

const EVENTS_PATH = '/agent/events';
const ME_PATH = '/agent/me';
const CALLS_PATH = '/api/v1/calls';
const presencePath = (agentId) => `/api/v1/agents/${encodeURIComponent(agentId)}/presence`;

const params = new URLSearchParams(location.search);
const token = (params.get('token') || '').trim();
const framed = window.parent !== window;
const statusEl = document.getElementById('status');

/** GET /agent/me, once it answered. */
let me = null;
let allowed = new Set();
/** The embedding page's origin, once known and allow-listed: the only target messages go to. */
let parentOrigin = null;
/** Messages from the parent that arrived before the allow-list was known. */
const early = [];
/** Messages for the parent before its origin was known (bounded). */
const outbox = [];
const seen = new Set();
const seenOrder = [];
let es = null;
let lastEventId = null;
let connState = null;
let retries = 0;
let retryTimer = null;
let stopped = false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backoff = (n) => Math.min(30000, 1000 * 2 ** Math.min(n, 5)) * (0.75 + Math.random() * 0.5);

function showStatus(text) {
  if (statusEl) statusEl.textContent = text;
}

function post(event, data) {
  if (!framed) return;
  const msg = { source: 'crm-bridge', event, data };
  if (!parentOrigin) {
    outbox.push(msg);
    if (outbox.length > 200) outbox.shift();
    return;
  }
  // targetOrigin = the parent's exact origin: the browser drops the message if the parent is
  // anything else by now.
  window.parent.postMessage(msg, parentOrigin);
}

function setConn(state) {
  if (state === connState) return;
  connState = state;
  showStatus(`Event stream: ${state}`);
  post('connection', { state });
}

/** Makes `origin` the parent's (if allow-listed): says ready, then delivers what waited. */
function adoptParent(origin) {
  if (!allowed.has(origin) || parentOrigin === origin) return false;
  parentOrigin = origin;
  post('ready', { agent: me?.agent ?? null, supervisor: Boolean(me?.supervisor) });
  for (const msg of outbox.splice(0)) window.parent.postMessage(msg, parentOrigin);
  return true;
}

/**
 * The parent's origin before it says hello: location.ancestorOrigins (Chromium, Safari) is the
 * browser's own word; else the referrer (widget.js asks for referrerpolicy=origin). A wrong guess
 * is harmless: postMessage delivers only to a parent of exactly that origin.
 */
function guessParent() {
  const ancestors = location.ancestorOrigins;
  if (ancestors && ancestors.length > 0) return allowed.has(ancestors[0]) ? ancestors[0] : null;
  try {
    const o = new URL(document.referrer).origin;
    return allowed.has(o) ? o : null;
  } catch {
    return null;
  }
}

// --- messages from the CRM page -------------------------------------------------------------------

addEventListener('message', (e) => {
  if (!framed || e.source !== window.parent) return;
  const m = e.data;
  if (!m || typeof m !== 'object' || typeof m.action !== 'string') return;
  if (!me) {
    if (early.length < 20) early.push({ origin: e.origin, m });
    return;
  }
  void handleAction(e.origin, m);
});

async function handleAction(origin, m) {
  if (!allowed.has(origin)) return; // not allow-listed: ignored, no answer (web/API.md)
  const adopted = adoptParent(origin);
  const id = typeof m.id === 'number' || typeof m.id === 'string' ? m.id : undefined;
  const reply = (event, data) => post(event, id === undefined ? data : { ...data, id });
  const fail = (message) => reply('error', { action: m.action, message });
  switch (m.action) {
    case 'hello':
      // Already said if this hello is what told us the parent's origin.
      if (!adopted) post('ready', { agent: me?.agent ?? null, supervisor: Boolean(me?.supervisor) });
      return;
    case 'callOut': {
      const number = typeof m.number === 'number' ? String(m.number) : typeof m.number === 'string' ? m.number.trim() : '';
      if (!number || number.length > 64 || /[\u0000-\u001f\u007f]/.test(number)) return fail('callOut needs a number (1–64 characters)');
      const agent = me?.agent?.id ?? (typeof m.agent === 'string' && m.agent ? m.agent : null);
      if (!agent) return fail('callOut needs an agent: this token is not an agent’s (a supervisor must pass { agent })');
      const r = await send('POST', CALLS_PATH, { agent, number });
      return r.ok ? reply('result', { action: 'callOut', status: r.status, body: r.body }) : fail(errorText(r, 'Click-to-call'));
    }
    case 'presence': {
      if (m.state !== 'ready' && m.state !== 'not_ready') return fail("presence needs state 'ready' or 'not_ready'");
      if (m.reason !== undefined && m.reason !== null && (typeof m.reason !== 'string' || m.reason.length > 100)) return fail('presence reason must be a string (at most 100 characters)');
      const agent = me?.agent?.id ?? (typeof m.agent === 'string' && m.agent ? m.agent : null);
      if (!agent) return fail('presence needs an agent: this token is not an agent’s (a supervisor must pass { agent })');
      const body = { state: m.state };
      if (typeof m.reason === 'string' && m.reason) body.reason = m.reason;
      const r = await send('PUT', presencePath(agent), body);
      return r.ok ? reply('result', { action: 'presence', status: r.status, body: r.body }) : fail(errorText(r, 'Presence'));
    }
    default:
      return fail(`unknown action '${String(m.action).slice(0, 40)}'`);
  }
}

async function send(method, path, body) {
  try {
    const res = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { ok: res.ok, status: res.status, body: parsed };
  } catch (err) {
    return { ok: false, status: 0, body: null, error: err.message };
  }
}

function errorText(r, what) {
  if (r.status === 0) return `${what} failed: the bridge cannot be reached (${r.error || 'network error'})`;
  if (r.status === 404) return `${what} is not available on this bridge yet (HTTP 404)`;
  const b = r.body;
  const detail = typeof b?.error === 'string' ? b.error : typeof b?.error?.message === 'string' ? b.error.message : typeof b?.message === 'string' ? b.message : null;
  return `${what} failed: HTTP ${r.status}${detail ? ` — ${detail}` : ''}`;
}

// --- the event stream ---------------------------------------------------------------------------

function connect(resume) {
  if (stopped) return;
  clearTimeout(retryTimer);
  es?.close();
  const q = new URLSearchParams({ token });
  if (resume) q.set('lastEventId', resume);
  const source = new EventSource(`${EVENTS_PATH}?${q}`);
  es = source;
  source.onopen = () => {
    if (es !== source) return;
    retries = 0;
    setConn('live');
  };
  source.onmessage = (e) => {
    if (es !== source) return;
    if (e.lastEventId) lastEventId = e.lastEventId;
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch {
      return;
    }
    if (!ev || typeof ev !== 'object' || typeof ev.type !== 'string' || typeof ev.id !== 'string') return;
    if (seen.has(ev.id)) return; // a re-delivery after a reconnect
    seen.add(ev.id);
    seenOrder.push(ev.id);
    if (seenOrder.length > 2000) seen.delete(seenOrder.shift());
    post(ev.type, ev);
    // Presence sync (the CRM Connector's requestSyncOmnichannel): the CRM page should now set
    // the agent's presence to this state. Absent on changes the CRM itself asked for (no echo).
    if ((ev.crmPresence === 'ready' || ev.crmPresence === 'not_ready') && ev.agent && typeof ev.agent.id === 'string') {
      post('presenceSync', { agent: ev.agent.id, state: ev.crmPresence, reason: typeof ev.reason === 'string' ? ev.reason : null, eventId: ev.id });
    }
  };
  source.onerror = () => {
    if (es !== source) return;
    if (source.readyState === EventSource.CLOSED) void gaveUp();
    else setConn('reconnecting');
  };
}

/** EventSource stops on an HTTP error: find out whether the token died, else retry ourselves. */
async function gaveUp() {
  es?.close();
  es = null;
  setConn('reconnecting');
  const r = await fetchMe();
  if (r.status === 401 || r.status === 403) {
    stopped = true;
    setConn('closed');
    post('error', { action: 'connect', message: 'The bridge no longer accepts this token (expired or revoked).' });
    return;
  }
  retryTimer = setTimeout(() => connect(lastEventId), backoff(retries++));
}

async function fetchMe() {
  try {
    const res = await fetch(ME_PATH, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) return { status: res.status, body: null };
    return { status: res.status, body: await res.json() };
  } catch (err) {
    return { status: 0, body: null, error: err.message };
  }
}

// --- start --------------------------------------------------------------------------------------

async function start() {
  if (!token) {
    showStatus('No token: load this page as /widget?token=… (widget.js does).');
    return;
  }
  for (let attempt = 0; ; attempt++) {
    const r = await fetchMe();
    if (r.status === 200 && r.body && typeof r.body === 'object') {
      me = r.body;
      break;
    }
    if (r.status === 401 || r.status === 403) {
      // Without the allow-list we cannot tell the parent anything safely: say it here only.
      showStatus('The bridge did not accept this token.');
      console.error('crm-bridge widget: the bridge did not accept the token');
      return;
    }
    showStatus(`Cannot reach the bridge (${r.error || `HTTP ${r.status}`}); retrying…`);
    await sleep(backoff(attempt));
  }
  allowed = new Set(Array.isArray(me.allowedOrigins) ? me.allowedOrigins.filter((o) => typeof o === 'string' && o) : []);
  if (allowed.size === 0) {
    showStatus('No CRM origin is allowed (http.allowedOrigins is empty): nothing is relayed.');
    console.warn('crm-bridge widget: /agent/me lists no allowedOrigins; the widget talks to no page');
  }
  const guess = guessParent();
  if (guess) adoptParent(guess);
  for (const { origin, m } of early.splice(0)) void handleAction(origin, m);
  connect(null);
}

void start();
