// What a call in progress has told so far, in the few fields a restarted bridge needs to go on
// with it: its seq, that it was started, whether and by whom it was answered, who is still
// ringing. Built from the call's own events only (so it can be kept beside the outbox by
// src/outbox/call-ledger.ts, in the same commit as the events), and turned back into a call by
// restoreCall (src/normalizer/calls.ts). Pure functions; no I/O.
import type { Agent, CallEvent, ChannelRef, Direction, Party } from '../events/types.js';

/** A party announced ringing (call.ringing) and not answered or stopped yet. */
export interface RecordedRing {
  agent: Agent | null;
  channel: ChannelRef;
  /** Epoch seconds. */
  since: number;
}

export interface CallRecord {
  callId: string;
  /** seq of the last event sent: the next one is seq + 1. */
  seq: number;
  /** Epoch seconds, as call.started dated it. */
  startTime: number;
  direction: Direction;
  caller: Party;
  called: Party;
  /** The agent who placed the call (call.started's agent), if one did. */
  originAgent: Agent | null;
  firstChannel: ChannelRef;
  origin: string | null;
  vars: Record<string, string>;
  queue: { name: string; position: number | null; joinedAt: number; leftAt: number | null } | null;
  firstRingAt: number | null;
  answeredAt: number | null;
  /** The party connected to the caller now (call.answered); null after a blind transfer. */
  connected: { agent: Agent | null; channel: ChannelRef; since: number } | null;
  lastAgent: Agent | null;
  ringing: RecordedRing[];
}

const seconds = (iso: string): number => Date.parse(iso) / 1000;
const round3 = (n: number): number => Math.round(n * 1000) / 1000;
const sameParty = (a: { agent: Agent | null; channel: ChannelRef }, b: { agent: Agent | null; channel: ChannelRef }): boolean =>
  a.agent !== null && b.agent !== null ? a.agent.id === b.agent.id : a.channel.uniqueid === b.channel.uniqueid;

/**
 * The record after `e`, or null once the call is over (call.hangup). `prev` is the record after
 * the call's previous event (null for its first, call.started).
 */
export function recordEvent(prev: CallRecord | null, e: CallEvent): CallRecord | null {
  if (e.type === 'call.hangup') return null;
  const t = seconds(e.time);
  const r: CallRecord = prev
    ? { ...prev, ringing: [...prev.ringing] }
    : {
        callId: e.callId,
        seq: 0,
        startTime: t,
        direction: e.direction,
        caller: e.caller,
        called: e.called,
        originAgent: e.type === 'call.started' ? e.agent : null,
        firstChannel: e.channel ?? { uniqueid: e.callId, name: '' },
        origin: null,
        vars: {},
        queue: null,
        firstRingAt: null,
        answeredAt: null,
        connected: null,
        lastAgent: null,
        ringing: [],
      };
  // What every event carries, as of this event.
  r.seq = e.seq;
  r.direction = e.direction;
  r.caller = e.caller;
  r.called = e.called;
  r.vars = e.vars;
  r.origin = e.origin ?? null;
  if (e.queue) {
    const joinedAt = r.queue?.name === e.queue.name ? r.queue.joinedAt : round3(t - (e.queue.waitSeconds ?? 0));
    // A wait that stopped growing: the caller left the queue.
    const left = e.queue.waitSeconds !== null && t - joinedAt - e.queue.waitSeconds > 0.001 ? round3(joinedAt + e.queue.waitSeconds) : null;
    r.queue = { name: e.queue.name, position: e.queue.position, joinedAt, leftAt: left };
  }
  switch (e.type) {
    case 'call.ringing':
      r.firstRingAt ??= t;
      r.ringing = r.ringing.filter((x) => !sameParty(x, e));
      r.ringing.push({ agent: e.agent, channel: e.channel, since: t });
      break;
    case 'call.answered':
      r.ringing = r.ringing.filter((x) => !sameParty(x, e));
      r.answeredAt ??= t;
      r.connected = { agent: e.agent, channel: e.channel, since: t };
      r.lastAgent = e.agent ?? r.originAgent;
      break;
    case 'call.ring_stopped':
      r.ringing = r.ringing.filter((x) => !sameParty(x, e));
      break;
    case 'call.transferred':
      if (e.transfer.kind === 'blind') r.connected = null;
      else if (e.transfer.to.agent) r.lastAgent = e.transfer.to.agent;
      break;
    case 'call.started':
    case 'call.queued':
    case 'call.missed':
      break;
    default: {
      const never: never = e;
      throw new Error(`unknown call event ${JSON.stringify(never)}`);
    }
  }
  return r;
}
