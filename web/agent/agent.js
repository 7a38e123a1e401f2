// The agent page (/agent): log in with a token, follow the agent's event stream (Server-Sent
// Events) and pop the caller's CRM record the way each screen-pop rule says. Contract: web/API.md
// (endpoints, Pop, PopRule) and docs/events.md (the events). Plain ES module, no build step.
//
// Rules this file keeps:
// - Data from the network reaches the DOM only through textContent / setAttribute values, never
//   innerHTML: caller names are hostile input.
// - It never navigates this page (it may hold a browser phone): no _self/_top/_parent targets, no
//   location assignment; CRM frames are sandboxed without allow-top-navigation (no frame-busting);
//   CRM tabs are opened through a same-origin blank frame, so the CRM's window.opener is that frame,
//   not this page (it cannot navigate us) while we can still close the tab (see openWindow).
// - Only http(s) URLs are opened, framed or requested.
// - One tab pops (Web Locks leader, BroadcastChannel fallback) and a (call, rule) pops once
//   (localStorage), so several tabs or a reconnect replay never pop a record twice.

// ---------------------------------------------------------------------------------------------
// Constants and small helpers

const SELF = new URL(import.meta.url);
/** /agent/ — derived from where this file is served (/agent/assets/agent.js), so a path prefix works. */
const API_BASE = SELF.pathname.endsWith('/assets/agent.js') ? new URL('../', SELF) : new URL('/agent/', SELF);
const apiUrl = (path) => new URL(path, API_BASE).toString();

const TOKEN_KEY = 'crm-bridge.token';
const POPPED_KEY = 'crm-bridge.popped';
const POPPED_MAX = 500;
const POPPED_TTL_MS = 24 * 3600 * 1000;
const NOFRAME_KEY = 'crm-bridge.noframe';
const NOFRAME_MAX = 50;
const LOCK_NAME = 'crm-bridge-pop-leader';
const FRAME_TIMEOUT_MS = 8000;
const LOG_MAX = 50;
const CALLS_MAX = 50;
const PROCESSED_MAX = 2000;
const ENDED_LINGER_MS = 15000;

/** Events about one agent's leg: a close only applies to the pop of that same agent. */
const AGENT_SPECIFIC = new Set(['call.ringing', 'call.answered', 'call.ring_stopped']);
const TARGETS = new Set(['new-tab', 'named-tab', 'embedded', 'hash', 'background', 'clipboard']);

const TARGET_TEXT = {
  'new-tab': 'New tab',
  'named-tab': 'CRM window',
  embedded: 'In this page',
  hash: 'CRM panel',
  background: 'Background request',
  clipboard: 'Clipboard',
};
const STATE_TEXT = { idle: 'No call', queued: 'Waiting', dialing: 'Dialing', ringing: 'Ringing', talking: 'Talking', ended: 'Ended' };
const RING_STOP_TEXT = {
  answered_elsewhere: 'Answered elsewhere',
  no_answer: 'Missed — not answered',
  busy: 'Missed — phone busy',
  unavailable: 'Missed — phone unreachable',
  caller_hangup: 'Missed — caller hung up',
  rejected: 'Declined',
};
const MISSED_TEXT = {
  abandoned: 'caller hung up',
  no_answer: 'nobody answered',
  busy: 'line busy',
  unavailable: 'unreachable',
  timeout: 'queue timeout',
};
const STATUS_TEXT = { idle: 'Phone idle', ringing: 'Phone ringing', busy: 'On a call', unavailable: 'Phone unavailable', on_hold: 'On hold' };

const $ = (id) => document.getElementById(id);
const isStr = (v) => typeof v === 'string' && v.length > 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const backoff = (n) => Math.min(30000, 1000 * 2 ** Math.min(n, 5)) * (0.75 + Math.random() * 0.5);

/**
 * Builds an element. Attribute values go through setAttribute and children through text nodes,
 * so nothing here is ever parsed as HTML. `on*` keys with a function add listeners.
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** The URL if it is an absolute http(s) URL, else null (no javascript:, data:, blob: …). */
function safeUrl(u) {
  if (!isStr(u)) return null;
  try {
    const url = new URL(u, document.baseURI);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function hostOf(u) {
  try {
    return new URL(u).host;
  } catch {
    return '';
  }
}

/** A window name that can never mean this page or its parents (_self, _top, _parent…). */
function windowName(name) {
  const n = isStr(name) ? name : 'crm';
  return n.startsWith('_') ? `crm${n}` : n;
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), ms))]);
}

class BoundedSet {
  constructor(max) {
    this.max = max;
    this.set = new Set();
  }
  has(k) {
    return this.set.has(k);
  }
  add(k) {
    if (this.set.has(k)) return;
    this.set.add(k);
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value);
  }
  clear() {
    this.set.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Storage: the token (this tab only) and the pops already done (every tab, bounded)

function storageOf(name) {
  try {
    const s = window[name];
    s.setItem('crm-bridge.probe', '1');
    s.removeItem('crm-bridge.probe');
    return s;
  } catch {
    return null;
  }
}
const tabStore = storageOf('sessionStorage');
const sharedStore = storageOf('localStorage');
let memoryPopped = {};

function readToken() {
  return tabStore?.getItem(TOKEN_KEY) || null;
}
function writeToken(token) {
  try {
    if (token) tabStore?.setItem(TOKEN_KEY, token);
    else tabStore?.removeItem(TOKEN_KEY);
  } catch {
    /* storage full or disabled: the token lives in memory for this page only */
  }
}

/** `?token=` in the address: take it, and remove it from the address bar (and history). */
function takeTokenFromUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.has('token')) return null;
  const token = (params.get('token') || '').trim();
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  return token || null;
}

function loadPopped() {
  if (!sharedStore) return memoryPopped;
  try {
    const o = JSON.parse(sharedStore.getItem(POPPED_KEY) || '{}');
    return o && typeof o === 'object' && !Array.isArray(o) ? o : {};
  } catch {
    return {};
  }
}

function savePopped(all) {
  const now = Date.now();
  let entries = Object.entries(all).filter(([, v]) => v && typeof v.t === 'number' && now - v.t < POPPED_TTL_MS);
  if (entries.length > POPPED_MAX) {
    entries.sort((a, b) => a[1].t - b[1].t);
    entries = entries.slice(-POPPED_MAX);
  }
  const out = Object.fromEntries(entries);
  if (!sharedStore) {
    memoryPopped = out;
    return;
  }
  try {
    sharedStore.setItem(POPPED_KEY, JSON.stringify(out));
  } catch {
    memoryPopped = out;
  }
}

/**
 * Claims the right to pop `key` for event `ev`; false when it was popped already. Read and write
 * happen in one synchronous step, so two tabs cannot both claim it. A (call, rule) pop that a
 * closeOn event took down may pop again for a *later* event of the call (the queue rings the agent
 * again, or the call is transferred back to them); a replay of the same or an older event never.
 */
function claimPop(key, ev) {
  const all = loadPopped();
  const prev = all[key];
  if (prev) {
    if (prev.ev === ev.id) return false;
    const again = prev.closed === true && typeof prev.closedSeq === 'number' && typeof ev.seq === 'number' && ev.seq > prev.closedSeq;
    if (!again) return false;
  }
  all[key] = { t: Date.now(), ev: ev.id, seq: typeof ev.seq === 'number' ? ev.seq : null, closed: false };
  savePopped(all);
  return true;
}

function markClosed(key, seq) {
  const all = loadPopped();
  const prev = all[key] || { ev: null, seq: null };
  const closedSeq = typeof seq === 'number' ? Math.max(seq, typeof prev.closedSeq === 'number' ? prev.closedSeq : 0) : prev.closedSeq ?? null;
  all[key] = { ...prev, t: Date.now(), closed: true, closedSeq };
  savePopped(all);
}

/** Origins of CRMs that refuse to be framed (learned, or said by the agent): embedded → new tab. */
function noFrameOrigins() {
  try {
    const list = JSON.parse(sharedStore?.getItem(NOFRAME_KEY) || '[]');
    return new Set(Array.isArray(list) ? list.filter(isStr) : []);
  } catch {
    return new Set();
  }
}

function setNoFrame(origin, on) {
  const set = noFrameOrigins();
  set.delete(origin);
  if (on) set.add(origin);
  try {
    sharedStore?.setItem(NOFRAME_KEY, JSON.stringify([...set].slice(-NOFRAME_MAX)));
  } catch {
    /* ignore */
  }
}

function originOf(u) {
  try {
    return new URL(u).origin;
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Session state

const session = {
  /** Bumped at every login/logout: async work of an older session drops its result. */
  gen: 0,
  token: null,
  me: null,
  rules: [],
  es: null,
  everLive: false,
  liveSince: null,
  lastMessageAt: null,
  lastEventId: null,
  retries: 0,
  retryTimer: null,
  /** Set once the server is seen sending keep-alives as named events (EventSource hides comments). */
  namedKeepAlive: false,
};

/** callKey -> call shown in the call card. */
const calls = new Map();
/** Event ids already handled by this page (re-deliveries change nothing). */
const processed = new BoundedSet(PROCESSED_MAX);
/** Pops that a closeOn event may still take down: popKey -> ctx. */
const pending = new Map();
/** callKey -> closeOn-type events seen, so a pop whose call already moved on never opens. */
const closeSeen = new Map();
/** ruleId -> the always-open hash frame of that rule. */
const hashFrames = new Map();

const callKey = (ev) => `${ev.server}|${ev.callId}`;
const myAgentId = () => session.me?.agent?.id ?? null;
const agentKey = () => (myAgentId() ? `a:${myAgentId()}` : 'sup');
/** Supervisors (no agent) see everything as theirs. */
const isMine = (agent) => myAgentId() === null || agent?.id === myAgentId();
const agentLabel = (a) => (a ? a.name || (a.extension ? `ext. ${a.extension}` : a.id) : 'someone');
const partyOf = (ev) => (ev.direction === 'outbound' ? ev.called : ev.caller) || null;

// ---------------------------------------------------------------------------------------------
// HTTP

async function api(path, { timeout = 10000 } = {}) {
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

// ---------------------------------------------------------------------------------------------
// Header: connection state, who is logged in, notifications

function setConn(state) {
  const el = $('conn-state');
  el.textContent = state;
  el.dataset.state = state;
  renderConnDetail();
}

function renderConnDetail() {
  const state = $('conn-state').dataset.state;
  const last = session.lastMessageAt ? `last message ${clock(session.lastMessageAt)}` : 'no message yet';
  let text = '';
  if (state === 'live') text = `Live since ${clock(session.liveSince ?? Date.now())} · ${last}`;
  else if (state === 'reconnecting') text = `Connection lost, reconnecting… (${last})`;
  else if (state === 'connecting') text = session.connectProblem || 'Connecting…';
  $('conn-detail').textContent = text;
}

function renderWho() {
  const me = session.me;
  const el = $('who');
  if (!me) {
    el.textContent = '';
    return;
  }
  if (me.agent) {
    const a = me.agent;
    const parts = [a.name || `Agent ${a.id}`];
    if (a.extension) parts.push(`ext. ${a.extension}`);
    if (a.interface) parts.push(a.interface);
    el.textContent = parts.join(' · ');
  } else {
    el.textContent = me.supervisor ? 'Supervisor — all agents' : 'Logged in';
  }
}

function renderAgentStatus(ev) {
  const who = myAgentId() === null ? `${agentLabel(ev.agent)}: ` : '';
  let text = null;
  if (ev.type === 'agent.paused') text = `Paused${isStr(ev.reason) ? ` (${ev.reason})` : ''}${ev.queue ? ` in ${ev.queue.name}` : ''}`;
  else if (ev.type === 'agent.unpaused') text = 'Ready';
  else if (ev.type === 'agent.status') text = STATUS_TEXT[ev.status] ?? ev.status;
  else if (ev.type === 'agent.login') text = `Logged in to ${ev.queue?.name ?? 'queue'}`;
  else if (ev.type === 'agent.logout') text = `Logged out of ${ev.queue?.name ?? 'queue'}`;
  if (text) {
    const el = $('agent-status');
    el.textContent = who + text;
    el.dataset.type = ev.type;
  }
}

const notificationsSupported = () => 'Notification' in window;

function renderNotifyButtons() {
  const can = notificationsSupported() && Notification.permission === 'default' && Boolean(session.me);
  $('notify-btn').hidden = !can;
  for (const b of document.querySelectorAll('.js-notify')) b.hidden = !(notificationsSupported() && Notification.permission === 'default');
  for (const p of document.querySelectorAll('.js-notify-denied')) p.hidden = !(notificationsSupported() && Notification.permission === 'denied');
}

async function enableNotifications() {
  if (!notificationsSupported()) return;
  try {
    await Notification.requestPermission();
  } catch {
    /* old callback-style browsers: ignore */
  }
  renderNotifyButtons();
}

function notify(title, body, tag, onClick) {
  if (!notificationsSupported() || Notification.permission !== 'granted') return null;
  try {
    const n = new Notification(title, { body, tag, requireInteraction: true });
    n.onclick = (e) => {
      e.preventDefault?.();
      try {
        window.focus();
      } catch {
        /* ignore */
      }
      onClick?.();
      n.close();
    };
    return n;
  } catch {
    return null; // e.g. Android Chrome: only service workers may show notifications
  }
}

function flash(message) {
  const box = $('notices');
  const note = h('p', { class: 'notice notice-error', role: 'alert' }, message, ' ', h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => note.remove() }, 'Dismiss'));
  box.append(note);
  setTimeout(() => note.remove(), 30000);
  while (box.querySelectorAll('.notice-error').length > 3) box.querySelector('.notice-error').remove();
}

// ---------------------------------------------------------------------------------------------
// Calls: the current-call card

const PRIORITY = { ringing: 5, talking: 4, dialing: 3, queued: 1, ended: 0 };
function priorityOf(c, now) {
  if (c.state === 'ended' && c.endedAt && now - c.endedAt < ENDED_LINGER_MS) return 2; // keep "missed" visible a moment
  return PRIORITY[c.state] ?? 0;
}

function applyCallEvent(ev) {
  const key = callKey(ev);
  let c = calls.get(key);
  if (!c) {
    c = { key, server: ev.server, callId: ev.callId, state: 'new', note: '', outcome: '', lastSeq: 0, answeredAt: null, endedAt: null, talkSeconds: null, over: false, updatedAt: 0 };
    calls.set(key, c);
    pruneCalls();
  }
  if (typeof ev.seq === 'number') {
    if (ev.seq <= c.lastSeq) return; // an older event (replay): the card already shows later news
    c.lastSeq = ev.seq;
  }
  c.direction = ev.direction ?? c.direction;
  c.caller = ev.caller ?? c.caller;
  c.called = ev.called ?? c.called;
  c.queue = ev.queue ?? c.queue;
  c.vars = ev.vars && typeof ev.vars === 'object' ? ev.vars : c.vars || {};
  c.updatedAt = Date.now();
  if (c.over) return;
  const mine = isMine(ev.agent);
  const supervisor = myAgentId() === null;
  const end = (outcome, note) => {
    c.state = 'ended';
    c.outcome = outcome;
    c.note = note;
    c.endedAt = Date.now();
  };
  switch (ev.type) {
    case 'call.started':
      if (c.state === 'new') c.state = ev.direction === 'outbound' ? 'dialing' : 'queued';
      break;
    case 'call.queued':
      if (c.state === 'new' || c.state === 'queued') {
        c.state = 'queued';
        c.note = ev.queue ? `In queue ${ev.queue.name}` : '';
      }
      break;
    case 'call.ringing':
      if (mine) {
        c.state = 'ringing';
        c.outcome = '';
        c.note = supervisor ? `Ringing ${agentLabel(ev.agent)}` : '';
        c.endedAt = null;
      } else if (c.state === 'new' || c.state === 'queued') {
        c.state = 'queued';
        c.note = `Ringing ${agentLabel(ev.agent)}`;
      }
      break;
    case 'call.answered':
      if (mine || !ev.agent) {
        c.state = 'talking';
        c.outcome = '';
        c.note = supervisor && ev.agent ? `With ${agentLabel(ev.agent)}` : '';
        c.answeredAt = eventTime(ev);
        c.endedAt = null;
      } else if (c.state === 'talking') {
        end('transferred', `Now with ${agentLabel(ev.agent)}`);
      } else {
        end('answered_elsewhere', `Answered by ${agentLabel(ev.agent)}`);
      }
      break;
    case 'call.ring_stopped':
      if (supervisor) {
        if (c.state === 'ringing') c.state = 'queued';
        c.note = `${agentLabel(ev.agent)}: ${RING_STOP_TEXT[ev.reason] ?? ev.reason}`;
      } else if (mine && c.state === 'ringing') {
        end(ev.reason || 'ring_stopped', RING_STOP_TEXT[ev.reason] ?? 'Stopped ringing');
      }
      break;
    case 'call.transferred': {
      const t = ev.transfer || {};
      const to = t.to?.agent ? agentLabel(t.to.agent) : t.to?.number || 'another number';
      if (!supervisor && t.from?.id === myAgentId() && t.to?.agent?.id !== myAgentId()) end('transferred', `Transferred to ${to}`);
      else if (!supervisor && t.to?.agent?.id === myAgentId()) c.note = `Transferred to you by ${agentLabel(t.from)}`;
      else c.note = `Transferred to ${to}`;
      break;
    }
    case 'call.missed':
      end('missed', `Missed — ${MISSED_TEXT[ev.reason] ?? ev.reason ?? 'not answered'}`);
      break;
    case 'call.hangup': {
      const ended = c.state === 'ended';
      if (!ended) {
        const by = ev.hangupBy === 'caller' ? ' — caller hung up' : ev.hangupBy === 'agent' ? ' — hung up' : '';
        end(ev.disposition === 'missed' ? 'missed' : 'completed', ev.disposition === 'missed' ? 'Missed' : `Call ended${by}`);
      }
      c.talkSeconds = ev.durations?.talkSeconds ?? null;
      c.over = true;
      break;
    }
    default:
      break;
  }
}

function eventTime(ev) {
  const t = Date.parse(ev.time);
  const now = Date.now();
  return Number.isFinite(t) && t <= now + 5000 ? t : now;
}

function pruneCalls() {
  if (calls.size <= CALLS_MAX) return;
  const ended = [...calls.values()].filter((c) => c.state === 'ended').sort((a, b) => a.updatedAt - b.updatedAt);
  for (const c of ended.slice(0, calls.size - CALLS_MAX)) calls.delete(c.key);
}

function currentCall() {
  const now = Date.now();
  let best = null;
  for (const c of calls.values()) {
    if (c.state === 'new') continue;
    if (!best) best = c;
    else {
      const pc = priorityOf(c, now);
      const pb = priorityOf(best, now);
      if (pc > pb || (pc === pb && c.updatedAt > best.updatedAt)) best = c;
    }
  }
  return best;
}

function fmtDuration(s) {
  const t = Math.max(0, Math.floor(s));
  const hh = Math.floor(t / 3600);
  const mm = String(Math.floor((t % 3600) / 60)).padStart(2, '0');
  const ss = String(t % 60).padStart(2, '0');
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

function renderCall() {
  const c = currentCall();
  const el = $('call');
  const meta = $('call-meta');
  const vars = $('call-vars');
  meta.replaceChildren();
  vars.replaceChildren();
  if (!c) {
    el.dataset.state = 'idle';
    el.dataset.callId = '';
    el.dataset.outcome = '';
    $('call-state').textContent = STATE_TEXT.idle;
    $('call-number').textContent = '—';
    $('call-name').textContent = '';
    $('call-note').textContent = '';
    $('call-timer').textContent = '';
    $('call-vars-box').hidden = true;
    document.title = 'Calls — CRM bridge';
    return;
  }
  el.dataset.state = c.state;
  el.dataset.callId = c.callId;
  el.dataset.outcome = c.outcome || '';
  const party = c.direction === 'outbound' ? c.called : c.caller;
  const number = party?.number || 'Unknown number';
  $('call-state').textContent = STATE_TEXT[c.state] ?? c.state;
  $('call-number').textContent = number;
  $('call-name').textContent = party?.name || '';
  $('call-note').textContent = c.note || '';
  const add = (label, value) => {
    if (value === null || value === undefined || value === '') return;
    meta.append(h('div', { class: 'meta-item' }, h('dt', {}, label), h('dd', {}, String(value))));
  };
  if (c.queue) add('Queue', c.queue.waitSeconds ? `${c.queue.name} (waited ${Math.round(c.queue.waitSeconds)} s)` : c.queue.name);
  if (c.direction === 'outbound') add('Direction', 'Outgoing');
  else add('Line', c.called?.number);
  if (c.direction === 'internal') add('Direction', 'Internal');
  const entries = Object.entries(c.vars || {});
  for (const [k, v] of entries.sort(([a], [b]) => a.localeCompare(b))) {
    vars.append(h('div', { class: 'meta-item' }, h('dt', {}, k), h('dd', {}, v === null || v === undefined ? '' : String(v))));
  }
  $('call-vars-box').hidden = entries.length === 0;
  renderTimer();
  document.title = c.state === 'ringing' ? `Ringing: ${number}` : c.state === 'talking' ? `Talking: ${number}` : 'Calls — CRM bridge';
}

function renderTimer() {
  const c = currentCall();
  const el = $('call-timer');
  if (c?.state === 'talking' && c.answeredAt) el.textContent = fmtDuration((Date.now() - c.answeredAt) / 1000);
  else if (c?.state === 'ended' && typeof c.talkSeconds === 'number' && c.talkSeconds > 0) el.textContent = fmtDuration(c.talkSeconds);
  else el.textContent = '';
}

// ---------------------------------------------------------------------------------------------
// Leadership: exactly one tab of this browser pops

class Leadership {
  constructor(onChange) {
    this.onChange = onChange;
    this.isLeader = false;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.set(false);
    if (navigator.locks?.request) this.startLocks(false);
    else if ('BroadcastChannel' in window) this.startChannel();
    else this.set(true); // nothing to coordinate with: this tab pops
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    this.release?.();
    this.release = null;
    this.abort?.abort();
    this.abort = null;
    if (this.channel) {
      if (this.isLeader) this.channel.postMessage({ type: 'resign', id: this.id });
      clearInterval(this.timer);
      this.channel.close();
      this.channel = null;
      removeEventListener('pagehide', this.onPageHide);
    }
    this.set(false);
  }

  /** "Pop in this tab instead". */
  takeOver() {
    if (!this.running || this.isLeader) return;
    if (this.mode === 'locks') {
      this.abort?.abort(); // leave the queue, then steal
      this.startLocks(true);
    } else if (this.channel) {
      this.set(true);
      this.channel.postMessage({ type: 'claim', id: this.id, force: true });
    }
  }

  set(v) {
    if (this.isLeader === v && this.announced) return;
    this.announced = true;
    this.isLeader = v;
    this.onChange(v);
  }

  // Web Locks: the lock is held for the tab's life (released when it closes or crashes); the
  // other tabs queue for it. A steal hands it over at once; the old holder queues again.
  startLocks(steal) {
    this.mode = 'locks';
    const abort = steal ? null : new AbortController();
    this.abort = abort;
    const opts = steal ? { mode: 'exclusive', steal: true } : { mode: 'exclusive', signal: abort.signal };
    const attempt = {};
    this.attempt = attempt;
    navigator.locks
      .request(LOCK_NAME, opts, () => {
        if (!this.running || this.attempt !== attempt) return undefined;
        this.set(true);
        return new Promise((resolve) => {
          this.release = resolve;
        });
      })
      .catch(() => {
        // Aborted (we left the queue or logged out) or stolen by another tab.
        if (!this.running || this.attempt !== attempt) return;
        this.release = null;
        this.set(false);
        this.startLocks(false);
      });
  }

  // BroadcastChannel fallback (no Web Locks, e.g. a plain-http bridge that is not localhost):
  // the leader sends a heartbeat every second; when none is heard for 3 s a tab claims; when two
  // claim at once the forced claim, else the older tab (smaller id), wins.
  startChannel() {
    this.mode = 'channel';
    this.id = `${Date.now().toString(36).padStart(10, '0')}-${Math.random().toString(36).slice(2, 10)}`;
    this.startedAt = Date.now();
    this.leaderSeenAt = 0;
    this.channel = new BroadcastChannel(LOCK_NAME);
    this.channel.onmessage = (e) => {
      const m = e.data;
      if (!m || typeof m !== 'object' || typeof m.id !== 'string' || m.id === this.id) return;
      if (m.type === 'heartbeat' || m.type === 'claim') {
        if (this.isLeader) {
          if (m.force || m.id < this.id) this.set(false);
          else {
            this.channel.postMessage({ type: 'heartbeat', id: this.id });
            return;
          }
        }
        this.leaderId = m.id;
        this.leaderSeenAt = Date.now();
      } else if (m.type === 'resign' && m.id === this.leaderId) {
        this.leaderSeenAt = 0;
        setTimeout(() => this.tick(), Math.random() * 300);
      }
    };
    this.onPageHide = () => {
      if (this.isLeader) this.channel?.postMessage({ type: 'resign', id: this.id });
    };
    addEventListener('pagehide', this.onPageHide);
    this.timer = setInterval(() => this.tick(), 1000);
  }

  tick() {
    if (!this.channel) return;
    if (this.isLeader) {
      this.channel.postMessage({ type: 'heartbeat', id: this.id });
      return;
    }
    const now = Date.now();
    if (now - this.startedAt > 2500 && now - this.leaderSeenAt > 3000) {
      this.set(true);
      this.channel.postMessage({ type: 'claim', id: this.id });
    }
  }
}

const leadership = new Leadership(renderLeader);

function renderLeader(isLeader) {
  const el = $('leader');
  el.textContent = isLeader ? 'leader' : 'follower';
  el.dataset.role = isLeader ? 'leader' : 'follower';
  el.title = isLeader ? 'This tab opens the CRM records' : 'Another tab of this page opens the CRM records';
  el.hidden = !session.me;
  let note = $('follower-note');
  const show = Boolean(session.me) && leadership.running && !isLeader;
  if (show && !note) {
    note = h(
      'p',
      { id: 'follower-note', class: 'notice', role: 'status' },
      'Another tab is popping CRM records — only one tab pops, so each record opens once. ',
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => leadership.takeOver() }, 'Pop in this tab instead'),
    );
    $('notices').prepend(note);
  } else if (!show && note) {
    note.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// The event stream

function connectStream(resumeFrom) {
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
  es.onerror = () => {
    if (es !== session.es) return;
    if (es.readyState === EventSource.CLOSED) void streamGaveUp(gen);
    else setConn(session.everLive ? 'reconnecting' : 'connecting');
  };
}

function closeStream() {
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
      logout('Your token is no longer accepted (expired or revoked). Log in again.');
      return;
    }
  }
  if (gen !== session.gen) return;
  session.retryTimer = setTimeout(() => {
    if (gen === session.gen) connectStream(session.lastEventId);
  }, backoff(session.retries++));
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

// ---------------------------------------------------------------------------------------------
// Pops

function ruleById(id) {
  return session.rules.find((r) => r.id === id) ?? { id, events: [], target: null, name: null, closeOn: ['call.ring_stopped'] };
}

function closeApplies(closeType, closeAgentId, closeSeq, ctx) {
  if (!ctx.rule.closeOn.includes(closeType)) return false;
  if (typeof closeSeq === 'number' && typeof ctx.seq === 'number' && closeSeq <= ctx.seq) return false;
  // ring_stopped / answered / ringing concern one agent's leg: they close only that agent's pop.
  if (AGENT_SPECIFIC.has(closeType) && closeAgentId && ctx.agentId && closeAgentId !== ctx.agentId) return false;
  return true;
}

function rememberClose(ev) {
  if (!session.rules.some((r) => r.closeOn.includes(ev.type))) return;
  const key = callKey(ev);
  const list = closeSeen.get(key) ?? [];
  list.push({ type: ev.type, agentId: ev.agent?.id ?? null, seq: ev.seq });
  closeSeen.delete(key);
  closeSeen.set(key, list.slice(-20));
  while (closeSeen.size > 200) closeSeen.delete(closeSeen.keys().next().value);
}

async function popFor(ev) {
  const gen = session.gen;
  let pops = null;
  for (let attempt = 0; attempt < 2 && pops === null; attempt++) {
    try {
      pops = await api(`pops/${encodeURIComponent(ev.id)}`);
    } catch (err) {
      if (gen !== session.gen) return;
      if (err.status || attempt === 1) {
        const who = partyOf(ev)?.number;
        flash(`Could not get the screen pop${who ? ` for ${who}` : ''}: ${err.message}`);
        return;
      }
      await sleep(1000);
    }
  }
  if (gen !== session.gen || !Array.isArray(pops)) return;
  for (const pop of pops) {
    try {
      await doPop(pop, ev);
    } catch (err) {
      console.error('crm-bridge: pop failed', err);
    }
  }
}

async function doPop(pop, ev) {
  if (!pop || typeof pop !== 'object' || !TARGETS.has(pop.target) || !isStr(pop.ruleId)) return;
  const rule = ruleById(pop.ruleId);
  const callId = isStr(pop.callId) ? pop.callId : isStr(ev.callId) ? ev.callId : null;
  // new-tab / named-tab / embedded / clipboard: once per (call, rule). hash / background are a
  // feed (ringing, answered, hangup…): once per (event, rule).
  const perEvent = pop.target === 'hash' || pop.target === 'background' || !callId;
  const key = perEvent ? `${agentKey()}|e|${pop.eventId || ev.id}|${pop.ruleId}` : `${agentKey()}|c|${ev.server}|${callId}|${pop.ruleId}`;
  const party = partyOf(ev);
  const ctx = {
    key,
    pop,
    rule,
    server: ev.server,
    callId,
    agentId: ev.agent?.id ?? null,
    seq: ev.seq,
    number: party?.number ?? null,
    name: party?.name ?? null,
  };
  if (!claimPop(key, ev)) return; // popped already: by this tab before a reconnect, or by another tab
  if (!perEvent) {
    const closed = (closeSeen.get(`${ev.server}|${callId}`) ?? []).find((c) => closeApplies(c.type, c.agentId, c.seq, ctx));
    if (closed) {
      markClosed(key, closed.seq); // the call moved on before the pop came back: nothing to show
      return;
    }
  }
  ctx.log = addLog(ctx);
  const url = safeUrl(pop.url);
  if (pop.target !== 'clipboard' && !url) {
    setLog(ctx, 'failed', pop.url ? 'Refused: not an http(s) address' : 'The rule has no URL');
    return;
  }
  switch (pop.target) {
    case 'new-tab':
    case 'named-tab':
      popWindow(ctx, url);
      break;
    case 'embedded':
      popEmbedded(ctx, url);
      break;
    case 'hash':
      popHash(ctx, url);
      return;
    case 'background':
      popBackground(ctx, url);
      return;
    case 'clipboard':
      await popClipboard(ctx);
      break;
    default:
      return;
  }
  pending.set(key, ctx);
}

let openerFrame = null;

/**
 * The window that opens CRM tabs: a hidden about:blank frame of this page (same origin). A tab it
 * opens has that frame as window.opener, which gives two things at once:
 * - this page may close the tab (on ring_stopped): browsers let a page close a script-opened tab
 *   whose opener it can access. Cutting the opener instead (w.opener = null, or 'noopener') makes
 *   close() fail ("Unsafe attempt to initiate navigation…" in Chromium);
 * - the CRM page has no handle on this page: navigating opener, opener.parent or opener.top
 *   throws a SecurityError, so it cannot replace the page that holds the agent's phone.
 */
function popupOpener() {
  try {
    if (openerFrame?.isConnected && openerFrame.contentWindow?.document) return openerFrame.contentWindow;
  } catch {
    /* it was navigated away: make a new one (the old one stays: its tabs can still be closed) */
  }
  openerFrame = h('iframe', { class: 'opener-frame', hidden: true, 'aria-hidden': 'true', tabindex: '-1', title: 'Opens CRM tabs' });
  document.body.append(openerFrame);
  return openerFrame.contentWindow;
}

/**
 * Opens `url` in a tab named `name` ('_blank' for a new one). Returns the tab, or null when the
 * browser blocked the pop-up (window.open returns null then). Called as window.open with the
 * opener frame as `this`, so the tab's opener is that frame (and a stubbed window.open still works).
 */
function openWindow(url, name) {
  let w = null;
  try {
    w = window.open.call(popupOpener(), url, name);
  } catch {
    try {
      w = window.open(url, name);
      if (w) w.opener = null; // no opener frame (odd browser): at least cut the link
    } catch {
      w = null;
    }
  }
  if (!w) return null;
  try {
    if (w.closed) return null;
  } catch {
    /* ignore */
  }
  return w;
}

/** A tab we will never need to close (the agent clicked "Open in a new tab"). */
function openDetached(url) {
  try {
    window.open(url, '_blank', 'noopener');
  } catch {
    /* ignore */
  }
}

function popWindow(ctx, url) {
  const name = ctx.pop.target === 'new-tab' ? '_blank' : windowName(ctx.pop.name);
  const w = openWindow(url, name);
  if (!w) {
    setLog(ctx, 'blocked', 'Blocked by the browser — use the button above');
    showBlocked(ctx, url, name);
    return;
  }
  if (ctx.pop.target === 'new-tab') ctx.win = w;
  else {
    try {
      w.focus();
    } catch {
      /* ignore */
    }
  }
  setLog(ctx, 'opened', ctx.pop.target === 'new-tab' ? 'Opened in a new tab' : `Opened in the “${name}” window`);
}

// --- pop-ups blocked -----------------------------------------------------------------------------

function blockedBox(create) {
  let box = document.querySelector('[data-testid="popup-blocked"]');
  if (box || !create) return box;
  const origin = location.origin;
  const notifyBtn = h('button', { type: 'button', class: 'btn btn-small js-notify', onclick: enableNotifications }, 'Enable notifications');
  box = h(
    'section',
    { class: 'card alert', 'data-testid': 'popup-blocked', role: 'alert', 'aria-labelledby': 'blocked-title' },
    h('h2', { id: 'blocked-title' }, 'Pop-up blocked'),
    h('p', {}, 'The browser stopped the CRM record from opening by itself. Open it with one click:'),
    h('ul', { class: 'blocked-list' }),
    h('p', { class: 'hint' }, notifyBtn, ' Get a desktop notification you can click whenever this happens.'),
    h('p', { class: 'hint js-notify-denied', hidden: true }, 'Notifications are blocked for this site in the browser settings.'),
    h(
      'details',
      { class: 'howto' },
      h('summary', {}, 'Allow pop-ups for this site so records open by themselves'),
      h(
        'ul',
        {},
        h('li', {}, h('strong', {}, 'Chrome / Edge: '), 'click the pop-up-blocked icon at the right end of the address bar, choose “Always allow pop-ups and redirects from ', origin, '”, then Done.'),
        h(
          'li',
          {},
          h('strong', {}, 'Firefox: '),
          'click Preferences (or Options) in the yellow bar under the address bar, then “Allow pop-ups for ',
          location.host,
          '”. Or: Settings → Privacy & Security → Permissions → Block pop-up windows → Exceptions… → add ',
          origin,
          '.',
        ),
        h('li', {}, h('strong', {}, 'Safari: '), 'Settings → Websites → Pop-up Windows → set this site to Allow.'),
      ),
    ),
  );
  $('notices').append(box);
  renderNotifyButtons();
  return box;
}

function showBlocked(ctx, url, name) {
  const box = blockedBox(true);
  const label = ctx.number ? `Open CRM record — ${ctx.number}` : 'Open CRM record';
  const open = () => {
    const w = openWindow(url, name);
    if (!w) return false;
    if (name === '_blank') ctx.win = w;
    setLog(ctx, 'opened', 'Opened by click');
    removeBlocked(ctx);
    return true;
  };
  const item = h(
    'li',
    { class: 'blocked-item' },
    h('button', { type: 'button', class: 'btn btn-primary btn-big', 'data-testid': 'open-blocked', 'data-url': url, 'data-call-id': ctx.callId ?? '', onclick: open }, label),
    ctx.name ? h('span', { class: 'blocked-name' }, ctx.name) : null,
    h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'aria-label': `Dismiss ${label}`, onclick: () => removeBlocked(ctx) }, 'Dismiss'),
  );
  box.querySelector('.blocked-list').append(item);
  ctx.blockedItem = item;
  ctx.notification = notify(
    ctx.number ? `Incoming call ${ctx.number}` : 'Incoming call',
    `${ctx.name ? `${ctx.name} — ` : ''}click to open the CRM record`,
    ctx.key,
    open,
  );
}

function removeBlocked(ctx) {
  ctx.blockedItem?.remove();
  ctx.blockedItem = null;
  try {
    ctx.notification?.close();
  } catch {
    /* ignore */
  }
  ctx.notification = null;
  const box = blockedBox(false);
  if (box && !box.querySelector('.blocked-item')) box.remove();
}

// --- embedded tabs -------------------------------------------------------------------------------

const tabPanels = new WeakMap();
let tabSeq = 0;

/** A CRM frame: sandboxed without allow-top-navigation, so a frame-busting CRM cannot replace this page. */
function makeFrame(url, title) {
  const f = document.createElement('iframe');
  f.className = 'crm-frame';
  f.title = title;
  f.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads');
  f.setAttribute('allow', 'clipboard-write');
  f.src = url;
  return f;
}

/**
 * A CRM that forbids framing (X-Frame-Options / CSP frame-ancestors) shows as an empty frame, and
 * current browsers do not tell the embedding page: Chromium fires `load` on the refused frame, with
 * a cross-origin error document, just as for a page that loaded. So, as well as it can be done:
 * 1. a Pop with `framing: 'refused'` (the bridge HEAD-requests the CRM page and reads its
 *    X-Frame-Options / CSP frame-ancestors), or a CRM origin known to refuse (learned below, kept
 *    in localStorage), is not framed: the tab explains why and the record opens in a new tab;
 * 2. where the browser does give it away (the frame's document is readable although the CRM is on
 *    another origin: about:blank or an error page), the origin is learned as refusing;
 * 3. no load event after FRAME_TIMEOUT_MS: a hint that it may be blocked;
 * 4. always: "Blank? Open in a new tab" in the tab's bar, which also remembers the origin so the
 *    next records of that CRM open in a new tab directly.
 */
function watchFrame(frame, url, { onSlow, onLoaded, onRefused }) {
  let loaded = false;
  const timer = setTimeout(() => {
    if (!loaded && frame.isConnected) onSlow();
  }, FRAME_TIMEOUT_MS);
  frame.addEventListener('load', () => {
    loaded = true;
    clearTimeout(timer);
    if (!frame.isConnected) return;
    if (frameLooksRefused(frame, url)) onRefused();
    else onLoaded();
  });
}

function frameLooksRefused(frame, url) {
  let href;
  let doc;
  try {
    href = frame.contentWindow.location.href;
    doc = frame.contentDocument;
  } catch {
    return false; // a cross-origin document: the CRM page (or its login page) — or Chromium's error page
  }
  if (!href || href === 'about:blank' || /^(chrome-error|about:neterror|about:blocked)/.test(href)) return true;
  try {
    if (new URL(href).origin !== new URL(url).origin) return true;
  } catch {
    return true;
  }
  // Same origin as this page: readable. An empty document means nothing was shown.
  const body = doc?.body;
  return Boolean(doc) && (!body || (body.childElementCount === 0 && !body.textContent.trim()));
}

function refusedExplanation(url, what, actions) {
  return h(
    'div',
    { class: 'frame-refused', 'data-testid': 'frame-refused' },
    h('p', { class: 'frame-refused-title' }, `${what} cannot be shown inside this page`),
    h(
      'p',
      {},
      `The CRM at ${hostOf(url)} does not let other sites show it in a frame (X-Frame-Options or Content-Security-Policy frame-ancestors), so the browser would show an empty box. Open it in its own tab instead. To fix it for good, the CRM administrator can allow framing by ${location.origin}, or the bridge administrator can switch this rule to target new-tab.`,
    ),
    h('div', { class: 'row' }, actions),
  );
}

function popEmbedded(ctx, url) {
  const area = $('embedded-area');
  area.hidden = false;
  const origin = originOf(url);
  const id = `crm-tab-${++tabSeq}`;
  const label = ctx.number || ctx.name || 'CRM record';
  const tabBtn = h(
    'button',
    { type: 'button', role: 'tab', id: `${id}-tab`, class: 'tab-btn', 'aria-controls': `${id}-panel`, 'aria-selected': 'false', tabindex: '-1', title: ctx.name ? `${label} — ${ctx.name}` : label },
    label,
  );
  const tab = h('div', { class: 'tab', 'data-testid': 'embedded-tab', 'data-url': url, 'data-call-id': ctx.callId ?? '', 'data-state': 'loading' }, tabBtn);
  const closeBtn = h('button', { type: 'button', class: 'tab-close', 'aria-label': `Close ${label}`, title: 'Close' }, '×');
  tab.append(closeBtn);
  const note = h('p', { class: 'frame-note', role: 'status', hidden: true });
  const panel = h('div', { role: 'tabpanel', id: `${id}-panel`, class: 'tabpanel', 'aria-labelledby': `${id}-tab`, hidden: true });
  let frame = null;
  let explanation = null;

  /** Opens the record in a tab of its own, kept so that closeOn can still close it. */
  const openOutside = (why) => {
    const w = openWindow(url, '_blank');
    if (w) {
      ctx.win = w;
      setLog(ctx, 'opened', why);
    } else {
      setLog(ctx, 'blocked', 'Blocked by the browser — use the button above');
      showBlocked(ctx, url, '_blank');
    }
  };
  const showFrame = () => {
    explanation?.remove();
    explanation = null;
    tab.dataset.state = 'loading';
    frame = makeFrame(url, `CRM record for ${label}`);
    const mine = frame;
    watchFrame(frame, url, {
      onSlow: () => {
        if (frame !== mine) return;
        tab.dataset.state = 'slow';
        note.textContent = `Still loading after ${FRAME_TIMEOUT_MS / 1000} s. If it stays blank, this CRM probably refuses to be shown inside another page: use “Blank? Open in a new tab”.`;
        note.hidden = false;
      },
      onLoaded: () => {
        if (frame !== mine) return;
        tab.dataset.state = 'loaded';
        note.hidden = true;
      },
      onRefused: () => {
        if (frame !== mine) return;
        setNoFrame(origin, true);
        showRefused();
        setLog(ctx, 'refused', 'This CRM refuses to be shown in the page — open it in a new tab');
      },
    });
    panel.append(frame);
  };
  const showRefused = () => {
    tab.dataset.state = 'refused';
    note.hidden = true;
    frame?.remove();
    frame = null;
    if (explanation) return;
    explanation = refusedExplanation(url, 'This CRM record', [
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => openOutside('Opened in a new tab by click') }, 'Open in a new tab'),
      h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => { setNoFrame(origin, false); showFrame(); } }, 'Try showing it in this page again'),
    ]);
    panel.append(explanation);
  };

  panel.append(
    h(
      'div',
      { class: 'panel-bar' },
      h('span', { class: 'panel-title' }, ctx.name ? `${label} · ${ctx.name}` : label),
      h('span', { class: 'panel-host' }, hostOf(url)),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-small',
          title: `Some CRMs refuse to be shown inside another page. This opens the record in a new tab, and the next records of ${hostOf(url)} too.`,
          onclick: () => {
            setNoFrame(origin, true);
            showRefused();
            openOutside('Opened in a new tab (the CRM stayed blank here)');
          },
        },
        'Blank? Open in a new tab',
      ),
    ),
    note,
  );
  tabPanels.set(tab, panel);
  tabBtn.addEventListener('click', () => selectTab(tab));
  tabBtn.addEventListener('keydown', (e) => tabKeys(e, tab));
  closeBtn.addEventListener('click', () => {
    removeTab(tab);
    if (ctx.tab === tab) ctx.tab = null;
    setLog(ctx, 'dismissed', 'Tab closed');
  });
  $('tabstrip').append(tab);
  $('tabpanels').append(panel);
  selectTab(tab);
  ctx.tab = tab;
  if (ctx.pop.framing === 'refused' || ctx.pop.frameable === false || noFrameOrigins().has(origin)) {
    showRefused();
    openOutside('This CRM cannot be shown in the page: opened in a new tab');
  } else {
    showFrame();
    setLog(ctx, 'opened', 'Shown in this page');
  }
  if (document.hidden && !ctx.notification) {
    ctx.notification = notify(ctx.number ? `Incoming call ${ctx.number}` : 'Incoming call', ctx.name || 'The CRM record is open in the agent page', ctx.key, () => selectTab(tab));
  }
}

function selectTab(tab) {
  for (const t of $('tabstrip').children) {
    const on = t === tab;
    const btn = t.querySelector('[role="tab"]');
    t.classList.toggle('active', on);
    btn.setAttribute('aria-selected', String(on));
    btn.tabIndex = on ? 0 : -1;
    const panel = tabPanels.get(t);
    if (panel) panel.hidden = !on;
  }
}

function tabKeys(e, tab) {
  const tabs = [...$('tabstrip').children];
  const i = tabs.indexOf(tab);
  let next = null;
  if (e.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
  else if (e.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
  else if (e.key === 'Home') next = tabs[0];
  else if (e.key === 'End') next = tabs[tabs.length - 1];
  if (!next) return;
  e.preventDefault();
  selectTab(next);
  next.querySelector('[role="tab"]').focus();
}

function removeTab(tab) {
  const wasActive = tab.classList.contains('active');
  tabPanels.get(tab)?.remove();
  tab.remove();
  const rest = [...$('tabstrip').children];
  if (rest.length === 0) $('embedded-area').hidden = true;
  else if (wasActive) selectTab(rest[rest.length - 1]);
}

// --- hash frame (Tencent style: one frame, only its #… changes) ----------------------------------

function splitHash(u) {
  const i = u.indexOf('#');
  return i < 0 ? [u, ''] : [u.slice(0, i), u.slice(i + 1)];
}

function popHash(ctx, url) {
  const [base, fragment] = splitHash(url);
  let hf = hashFrames.get(ctx.pop.ruleId);
  if (!hf) {
    const area = $('hash-area');
    area.hidden = false;
    const frame = makeFrame(url, 'CRM panel');
    frame.setAttribute('data-testid', 'hash-frame');
    frame.setAttribute('data-rule-id', ctx.pop.ruleId);
    frame.setAttribute('data-url', url);
    const note = h('p', { class: 'frame-note', role: 'status', hidden: true });
    hf = { frame, base, url };
    const panel = h(
      'div',
      { class: 'hash-panel' },
      h(
        'div',
        { class: 'panel-bar' },
        h('span', { class: 'panel-title' }, 'CRM'),
        h('span', { class: 'panel-host' }, hostOf(url)),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => openDetached(hf.url) }, 'Open in a new tab'),
      ),
      note,
      frame,
    );
    watchFrame(frame, url, {
      onSlow: () => {
        note.textContent = `Still loading after ${FRAME_TIMEOUT_MS / 1000} s. If it stays blank, this CRM probably refuses to be shown inside another page.`;
        note.hidden = false;
      },
      onLoaded: () => {
        note.hidden = true;
      },
      onRefused: () => {
        note.hidden = true;
        frame.hidden = true; // kept in the page: its #… keeps following the calls
        setNoFrame(originOf(url), true);
        panel.append(refusedExplanation(url, 'The CRM panel', [h('button', { type: 'button', class: 'btn btn-primary', onclick: () => openDetached(hf.url) }, 'Open in a new tab')]));
      },
    });
    area.append(panel);
    hashFrames.set(ctx.pop.ruleId, hf);
    setLog(ctx, 'opened', 'CRM panel opened');
    return;
  }
  // Same document, new fragment: the browser navigates to the fragment without reloading, and the
  // CRM page hears a hashchange. The base URL stays the one of the first pop.
  const next = `${hf.base}#${fragment}`;
  hf.url = next;
  hf.frame.src = next;
  hf.frame.setAttribute('data-url', next);
  setLog(ctx, 'updated', `CRM panel updated (#${fragment})`);
}

// --- background request, clipboard -------------------------------------------------------------

function popBackground(ctx, url) {
  setLog(ctx, 'sending', 'Sending…');
  fetch(url, { mode: 'no-cors', credentials: 'include', cache: 'no-store', keepalive: true })
    .then(() => setLog(ctx, 'sent', 'Sent in the background'))
    .catch((err) => setLog(ctx, 'failed', `Request failed: ${err.message}`));
}

/** Copies from a click: the async clipboard API, else a selection copy (of `el`, or a scratch field). */
async function copyText(text, el = null) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    /* fall back to a selection copy */
  }
  let scratch = null;
  try {
    const sel = getSelection();
    sel.removeAllRanges();
    if (el) {
      const range = document.createRange();
      range.selectNodeContents(el);
      sel.addRange(range);
    } else {
      scratch = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
      scratch.value = text;
      document.body.append(scratch);
      scratch.select();
    }
    return document.execCommand('copy');
  } catch {
    return false;
  } finally {
    scratch?.remove();
  }
}

async function popClipboard(ctx) {
  const text = typeof ctx.pop.text === 'string' ? ctx.pop.text : '';
  try {
    if (!navigator.clipboard?.writeText) throw new Error('no clipboard access');
    await withTimeout(navigator.clipboard.writeText(text), 3000);
    setLog(ctx, 'copied', 'Copied to the clipboard');
  } catch {
    // Usually: the page did not have the focus (the agent was in another window).
    showClipboardFallback(ctx, text);
    setLog(ctx, 'copy-refused', 'Not copied (page not focused) — use Copy above');
  }
}

function showClipboardFallback(ctx, text) {
  for (const old of document.querySelectorAll('.clipboard-card')) old.remove(); // the clipboard holds one thing
  const code = h('code', { class: 'clip-text', 'data-testid': 'clipboard-text' }, text);
  const card = h('section', { class: 'card clipboard-card', role: 'status', 'aria-labelledby': 'clip-title' });
  const copy = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'copy-clipboard' }, 'Copy');
  copy.addEventListener('click', async () => {
    const ok = await copyText(text, code);
    copy.textContent = ok ? 'Copied ✓' : 'Select it and press Ctrl+C';
    if (ok) setLog(ctx, 'copied', 'Copied by click');
  });
  card.append(
    h('h2', { id: 'clip-title' }, ctx.number ? `Text for the CRM — ${ctx.number}` : 'Text for the CRM'),
    h('p', { class: 'hint' }, 'The browser did not let this page use the clipboard by itself. Click Copy, then paste with Ctrl+V (⌘V on a Mac).'),
    code,
    h('div', { class: 'row' }, copy, h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => card.remove() }, 'Dismiss')),
  );
  $('notices').append(card);
  ctx.clip = card;
}

// --- closing pops (closeOn) ----------------------------------------------------------------------

function closeText(ev) {
  if (ev.type === 'call.ring_stopped') return RING_STOP_TEXT[ev.reason] ?? 'Stopped ringing';
  if (ev.type === 'call.answered') return `Answered by ${agentLabel(ev.agent)}`;
  if (ev.type === 'call.missed') return 'Missed';
  if (ev.type === 'call.hangup') return 'Call ended';
  if (ev.type === 'call.transferred') return 'Transferred';
  return ev.type;
}

function closePendingFor(ev) {
  for (const ctx of [...pending.values()]) {
    if (ctx.server !== ev.server || ctx.callId !== ev.callId) continue;
    if (closeApplies(ev.type, ev.agent?.id ?? null, ev.seq, ctx)) closePending(ctx, ev);
  }
  if (ev.type === 'call.hangup') {
    // The call is over: nothing of it can be closed any more. What is on screen stays (wrap-up).
    for (const ctx of [...pending.values()]) if (ctx.server === ev.server && ctx.callId === ev.callId) pending.delete(ctx.key);
  }
}

function closePending(ctx, ev) {
  pending.delete(ctx.key);
  markClosed(ctx.key, ev.seq);
  if (ctx.win) {
    try {
      if (!ctx.win.closed) ctx.win.close();
    } catch {
      /* ignore */
    }
    ctx.win = null;
  }
  if (ctx.tab) {
    removeTab(ctx.tab);
    ctx.tab = null;
  }
  removeBlocked(ctx);
  ctx.clip?.remove();
  ctx.clip = null;
  setLog(ctx, 'closed', `${closeText(ev)} — not for you`);
}

// --- the pop log ---------------------------------------------------------------------------------

function addLog(ctx) {
  const { pop } = ctx;
  const url = safeUrl(pop.url);
  let action = null;
  if (url && pop.target !== 'background') {
    action = h('button', { type: 'button', class: 'btn btn-small btn-quiet', title: 'Open this record in a new tab', onclick: () => openDetached(url) }, 'Open');
  } else if (pop.target === 'clipboard' && typeof pop.text === 'string') {
    const text = pop.text;
    action = h('button', { type: 'button', class: 'btn btn-small btn-quiet' }, 'Copy');
    action.addEventListener('click', async () => {
      action.textContent = (await copyText(text)) ? 'Copied ✓' : 'Copy failed';
    });
  }
  const li = h(
    'li',
    { class: 'pop-item', 'data-target': pop.target, 'data-url': pop.url ?? '', 'data-call-id': ctx.callId ?? '', 'data-rule-id': pop.ruleId, 'data-status': 'pending' },
    h('time', { datetime: new Date().toISOString() }, clock(Date.now())),
    h('span', { class: 'pop-target' }, TARGET_TEXT[pop.target] ?? pop.target),
    h('span', { class: 'pop-who' }, ctx.number || ctx.name || ''),
    h('span', { class: 'pop-status' }, ''),
    action,
  );
  const list = $('pop-log');
  list.prepend(li);
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
  $('pop-log-empty').hidden = true;
  return li;
}

function setLog(ctx, status, text) {
  if (!ctx.log) return;
  ctx.log.dataset.status = status;
  ctx.log.querySelector('.pop-status').textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Log in / log out

function normalizeRules(rules) {
  if (!Array.isArray(rules)) return [];
  return rules
    .filter((r) => r && isStr(r.id) && Array.isArray(r.events))
    .map((r) => ({
      id: r.id,
      events: r.events.filter(isStr),
      target: r.target,
      name: isStr(r.name) ? r.name : null,
      closeOn: Array.isArray(r.closeOn) ? r.closeOn.filter(isStr) : ['call.ring_stopped'],
    }));
}

async function login(token) {
  const gen = ++session.gen;
  session.token = token;
  session.everLive = false;
  session.lastMessageAt = null;
  session.lastEventId = null;
  session.connectProblem = null;
  writeToken(token);
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('logout-btn').hidden = false;
  setConn('connecting');
  let me = null;
  for (let attempt = 0; me === null; attempt++) {
    try {
      me = await api('me');
    } catch (err) {
      if (gen !== session.gen) return;
      if (err.status === 401 || err.status === 403) {
        logout(`This token was not accepted (${err.message}).`);
        return;
      }
      session.connectProblem = `Cannot reach the bridge (${err.message}); retrying…`;
      renderConnDetail();
      await sleep(backoff(attempt));
      if (gen !== session.gen) return;
    }
  }
  if (gen !== session.gen) return;
  session.connectProblem = null;
  session.me = me && typeof me === 'object' ? me : {};
  session.rules = normalizeRules(session.me.rules);
  renderWho();
  renderNotifyButtons();
  leadership.start();
  renderLeader(leadership.isLeader);
  connectStream(null);
}

function logout(message) {
  session.gen++;
  closeStream();
  leadership.stop();
  writeToken(null);
  session.token = null;
  session.me = null;
  session.rules = [];
  session.everLive = false;
  session.lastMessageAt = null;
  session.lastEventId = null;
  clearApp();
  renderWho();
  renderLeader(false);
  renderNotifyButtons();
  $('agent-status').textContent = '';
  $('logout-btn').hidden = true;
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  setConn('logged-out');
}

function clearApp() {
  for (const ctx of pending.values()) {
    try {
      ctx.notification?.close();
    } catch {
      /* ignore */
    }
  }
  calls.clear();
  pending.clear();
  closeSeen.clear();
  processed.clear();
  hashFrames.clear();
  $('notices').replaceChildren();
  $('tabstrip').replaceChildren();
  $('tabpanels').replaceChildren();
  $('embedded-area').hidden = true;
  $('hash-area').replaceChildren();
  $('hash-area').hidden = true;
  $('pop-log').replaceChildren();
  $('pop-log-empty').hidden = false;
  renderCall();
}

// ---------------------------------------------------------------------------------------------
// Boot

function boot() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    if (!token) return;
    input.value = '';
    $('login-error').textContent = '';
    void login(token);
  });
  $('logout-btn').addEventListener('click', () => logout('You are logged out.'));
  $('notify-btn').addEventListener('click', enableNotifications);
  addEventListener('online', () => {
    if (session.token && session.me && (!session.es || session.es.readyState === EventSource.CLOSED)) connectStream(session.lastEventId);
  });
  setInterval(() => {
    renderTimer();
    if (session.me) renderConnDetail();
    // Ended calls stop lingering on the card after a while.
    const c = currentCall();
    if (c && c.state === 'ended' && c.endedAt && Date.now() - c.endedAt < ENDED_LINGER_MS + 1500 && Date.now() - c.endedAt >= ENDED_LINGER_MS) renderCall();
    // Only when the bridge sends visible keep-alives: a silent connection is a dead one.
    const ka = Number(session.me?.keepAliveSeconds) || 15;
    if (session.namedKeepAlive && session.es && $('conn-state').dataset.state === 'live' && session.lastMessageAt && Date.now() - session.lastMessageAt > ka * 3000 + 5000) {
      connectStream(session.lastEventId);
      setConn('reconnecting');
    }
  }, 1000);

  const fromUrl = takeTokenFromUrl();
  const token = fromUrl || readToken();
  renderCall();
  if (token) void login(token);
  else logout('');
}

boot();
