// Calls: the current-call card. Events update a call (older ones, by seq, never undo later news);
// the card shows the call that matters most now.

import { agentLabel, callKey, calls, isMine, myAgentId } from './session.js';
import { $, h } from './util.js';

const CALLS_MAX = 50;
export const ENDED_LINGER_MS = 15000;

const STATE_TEXT = { idle: 'No call', queued: 'Waiting', dialing: 'Dialing', ringing: 'Ringing', talking: 'Talking', ended: 'Ended' };
export const RING_STOP_TEXT = {
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

const PRIORITY = { ringing: 5, talking: 4, dialing: 3, queued: 1, ended: 0 };
function priorityOf(c, now) {
  if (c.state === 'ended' && c.endedAt && now - c.endedAt < ENDED_LINGER_MS) return 2; // keep "missed" visible a moment
  return PRIORITY[c.state] ?? 0;
}

export function applyCallEvent(ev) {
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
        const by = hangupText(ev, supervisor);
        end(ev.disposition === 'missed' ? 'missed' : 'completed', ev.disposition === 'missed' ? 'Missed' : `Call ended${by ? ` — ${by}` : ''}`);
      }
      c.talkSeconds = ev.durations?.talkSeconds ?? null;
      c.over = true;
      break;
    }
    default:
      break;
  }
}

/**
 * Who ended the call, in the agent's words. hangupBy (docs/events.md, call.hangup) says which side:
 * `caller` is the customer's side — on an outbound call the party the agent called — and `agent`
 * the agent's side; `system` the PBX.
 */
function hangupText(ev, supervisor) {
  const agentSide = supervisor ? 'the agent hung up' : 'you hung up';
  if (ev.hangupBy === 'system') return 'ended by the phone system';
  if (ev.direction === 'outbound') return ev.hangupBy === 'caller' ? 'the other side hung up' : ev.hangupBy === 'agent' ? agentSide : '';
  // Internal: both sides are agents, and "agent" is the one called, not necessarily this one.
  if (ev.direction === 'internal') return ev.hangupBy === 'caller' ? 'the caller hung up' : ev.hangupBy === 'agent' ? 'the agent called hung up' : '';
  return ev.hangupBy === 'caller' ? 'the caller hung up' : ev.hangupBy === 'agent' ? agentSide : '';
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

export function currentCall() {
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

export function renderCall() {
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

export function renderTimer() {
  const c = currentCall();
  const el = $('call-timer');
  if (c?.state === 'talking' && c.answeredAt) el.textContent = fmtDuration((Date.now() - c.answeredAt) / 1000);
  else if (c?.state === 'ended' && typeof c.talkSeconds === 'number' && c.talkSeconds > 0) el.textContent = fmtDuration(c.talkSeconds);
  else el.textContent = '';
}
