// A call's life as a whole: it is created by its first channel, announced once we know enough
// (call.started), followed when its channels join another call (moveTree, followLinkedid), and
// ended once its last channel is gone (call.missed when nobody answered, then call.hangup).
import type { AmiEvent } from './ami-event.js';
import type { Direction, HangupBy, MissedReason, Party } from '../events/types.js';
import { cidOrNull } from './ami-fields.js';
import type { CallRecord } from './call-record.js';
import { subtree } from './dial-tree.js';
import { announceRing, stopRinging } from './legs.js';
import { isLocal } from './local-channels.js';
import { addChannel, addLeg, type Call, callOf, type Chan, type Leg, moveChannels, round3 } from './model.js';
import type { TrackerState } from './state.js';
import { dialMissedReason, queueMissedReason } from './statuses.js';

/**
 * A call as its first channel (a Newchannel, or one listed at resync) describes it — or, when a
 * restarted bridge had already announced it (s.restored), as its record says, so that it goes
 * on where it was: no second call.started, seq continues, its answer is known. At the cap of
 * calls in progress the oldest call is ended first (endOldest).
 */
export function createCall(s: TrackerState, id: string, ev: AmiEvent): Call {
  if (s.calls.size >= s.maxCalls) endOldest(s);
  const record = s.restored.get(id);
  if (record) {
    s.restored.delete(id);
    return restoreCall(s, record);
  }
  return describeCall(s, id, ev);
}

function describeCall(s: TrackerState, id: string, ev: AmiEvent): Call {
  const name = ev.channel ?? '';
  const context = (ev.context ?? '').toLowerCase();
  const originAgent = s.inbound.has(context) ? null : s.agents.fromChannel(name);
  const exten = cidOrNull(ev.exten);
  const called: Party = { number: null };
  let direction: Direction = 'inbound';
  if (originAgent) {
    direction = 'outbound';
    // A phone's own channel carries the dialled number as its exten; an originated Local
    // channel carries the agent's own extension, and the destination is known at the dial.
    if (exten && exten !== 's' && exten !== originAgent.extension) {
      called.number = exten;
      direction = s.agents.isAgentExtension(exten) ? 'internal' : 'outbound';
    }
  } else if (exten && exten !== 's') {
    called.number = exten;
  }
  return {
    id,
    order: s.callsCreated++,
    seq: 0,
    startTime: s.now,
    started: false,
    direction,
    caller: { number: cidOrNull(ev.calleridnum), name: cidOrNull(ev.calleridname) },
    called,
    originAgent,
    firstChannel: { uniqueid: ev.uniqueid ?? id, name },
    channels: new Map(),
    byName: new Map(),
    live: 0,
    legs: new Map(),
    queue: null,
    omlValues: null,
    exportNames: null,
    firstRingAt: null,
    lastRingEnd: null,
    answeredAt: null,
    connected: null,
    lastAgent: null,
    queueStatus: null,
    dialStatus: null,
    abandonedByOrigin: false,
    hangupBy: null,
    mergedAway: false,
    plumbingOrigin: isLocal(name) && !s.inbound.has(context) && !originAgent,
    callerGaveUp: false,
    topDialStatus: null,
    originEndedBy: null,
    cause: null,
    origin: null,
  };
}

/**
 * A call rebuilt from what it had told before the bridge restarted (src/normalizer/call-record.ts).
 * Its parties come back as legs owning their channel's uniqueid; relinkLegs ties them to the
 * channels once those are added.
 */
export function restoreCall(s: TrackerState, r: CallRecord): Call {
  const call = describeCall(s, r.callId, { event: 'Newchannel', channel: r.firstChannel.name, uniqueid: r.firstChannel.uniqueid });
  Object.assign(call, {
    seq: r.seq,
    startTime: r.startTime,
    started: true,
    direction: r.direction,
    caller: { ...r.caller },
    called: { ...r.called },
    originAgent: r.originAgent,
    firstChannel: r.firstChannel,
    origin: r.origin,
    queue: r.queue ? { ...r.queue } : null,
    firstRingAt: r.firstRingAt,
    answeredAt: r.answeredAt,
    lastAgent: r.lastAgent,
    // As describeCall judged its first channel, except that an inbound call's origin is a party.
    plumbingOrigin: call.plumbingOrigin && r.direction !== 'inbound' && r.originAgent === null,
  });
  const names = Object.keys(r.vars);
  if (names.length > 0) {
    call.exportNames = new Set(names);
    call.omlValues = new Map(Object.entries(r.vars));
  }
  for (const ring of r.ringing) {
    const leg = addLeg(call, ring.agent?.id ?? `dev:${ring.channel.uniqueid}`, ring.agent, ring.channel, ring.since);
    leg.rang = true;
  }
  if (r.connected) {
    const c = r.connected;
    const leg = addLeg(call, c.agent?.id ?? `dev:${c.channel.uniqueid}`, c.agent, c.channel, c.since);
    leg.rang = true;
    leg.state = 'connected';
    leg.connectedAt = c.since;
    call.connected = leg;
  }
  return call;
}

/** Restored legs own their channels once those are in the call (see restoreCall). */
export function relinkLegs(call: Call): void {
  for (const leg of call.legs.values()) {
    for (const uid of leg.uniqueids) {
      const ch = call.channels.get(uid);
      if (ch && ch.side !== 'origin' && ch.legKey === null) {
        ch.side = 'leg';
        ch.legKey = leg.key;
      }
    }
  }
}

/**
 * The cap of calls in progress (calls.maxInProgress) is reached: the oldest call is ended, with
 * its call.hangup (hangupBy system), to make room. A call that old is almost always one whose
 * Hangup never reached the bridge; dropping the new call instead would lose a live one.
 */
function endOldest(s: TrackerState): void {
  const oldest = s.calls.values().next().value;
  if (!oldest) return;
  oldest.hangupBy ??= 'system';
  endCall(s, oldest);
  s.capHit('calls', oldest.id);
}

/** Like callOf, and adopts a channel we never saw created into the call its Linkedid names. */
export function channelEvent(s: TrackerState, ev: AmiEvent): { call: Call; ch: Chan } | null {
  const uid = ev.uniqueid;
  if (!uid) return null;
  const call = callOf(s, uid, ev.linkedid);
  if (!call) return null;
  const ch = call.channels.get(uid) ?? (ev.channel ? addChannel(s, call, uid, ev.channel) : undefined);
  return ch ? { call, ch } : null;
}

/** Announces the call once the first event that matters arrives, or once we know enough. */
export function maybeAnnounce(s: TrackerState, call: Call): void {
  if (call.started || s.deferAnnounce) return;
  const known = call.originAgent ? call.called.number !== null : call.caller.number !== null;
  if (known) s.ensureStarted(call);
}

export function endCall(s: TrackerState, call: Call): void {
  s.ensureStarted(call);
  // Handed over to another call and never answered here: nothing was missed.
  const answered = call.answeredAt !== null || call.mergedAway;
  for (const leg of call.legs.values()) {
    if (leg.state === 'ringing') {
      stopRinging(s, call, leg, call.answeredAt !== null ? 'answered_elsewhere' : leg.pendingStop ?? (call.abandonedByOrigin || call.callerGaveUp ? 'caller_hangup' : 'no_answer'));
    }
  }
  const end = s.now;
  if (!answered) {
    const reason = missedReason(call);
    const q = call.queue;
    const wait = q ? (q.leftAt ?? end) - q.joinedAt : end - call.startTime;
    s.emit(call, 'call.missed', { agent: null, channel: null, reason, waitSeconds: round3(Math.max(0, wait)) });
    const callerSide: HangupBy = call.direction === 'inbound' ? 'caller' : 'agent';
    call.hangupBy = reason === 'abandoned' || call.originEndedBy === 'caller' ? callerSide : 'system';
  } else if (call.mergedAway) {
    call.hangupBy = 'agent';
  }
  const ringEnd = call.answeredAt !== null ? call.answeredAt : call.lastRingEnd ?? end;
  const talkFrom = call.answeredAt;
  s.emit(call, 'call.hangup', {
    agent: call.lastAgent,
    channel: call.firstChannel,
    disposition: answered ? 'answered' : 'missed',
    hangupBy: call.hangupBy ?? 'system',
    cause: call.cause ?? { code: null, text: null },
    durations: {
      ringSeconds: call.firstRingAt === null ? 0 : round3(Math.max(0, (ringEnd ?? end) - call.firstRingAt)),
      talkSeconds: talkFrom !== null ? round3(Math.max(0, end - talkFrom)) : 0,
      totalSeconds: round3(Math.max(0, end - call.startTime)),
    },
  });
  for (const uid of call.channels.keys()) {
    if (s.channelCall.get(uid) === call.id) s.channelCall.delete(uid);
  }
  s.calls.delete(call.id);
}

/** Why a call was missed, from what happened, most telling evidence first. */
function missedReason(call: Call): MissedReason {
  const byQueue = call.queueStatus ? queueMissedReason(call.queueStatus) : undefined;
  if (byQueue) return byQueue;
  if (call.abandonedByOrigin || call.dialStatus === 'CANCEL' || call.callerGaveUp) return 'abandoned';
  // Every party that was tried refused (busy, DND, declined, turned down a confirmation prompt).
  const tried = [...call.legs.values()].filter((l) => !l.provisional && l.stopReason !== null);
  if (tried.length > 0 && tried.every((l) => l.stopReason === 'busy' || l.stopReason === 'rejected')) return 'busy';
  const status = call.dialStatus ?? call.topDialStatus;
  const byDial = status ? dialMissedReason(status) : undefined;
  if (byDial) return byDial;
  return call.firstRingAt !== null || tried.length > 0 ? 'no_answer' : 'unavailable';
}

/**
 * Moves the channel `uid`, its Local partner and everything they dialled, with their legs,
 * from one call to another (a pickup, a transfer, a Linkedid that changed). The call left
 * behind ends once its last channel is gone, answered: its parties went on elsewhere.
 * Returns the leg of `uid`, if it had one.
 */
export function moveTree(s: TrackerState, from: Call, to: Call, uid: string): Leg | undefined {
  const root = from.channels.get(uid);
  if (!root || from === to) return undefined;
  let first: Leg | undefined;
  for (const leg of moveChannels(s, from, to, subtree(from, root))) {
    if (leg.uniqueids.has(uid) || leg.channel.uniqueid === uid) first = leg;
    if (leg.state === 'ringing' && leg.rang) {
      // It stops ringing in the call it left (whoever called it there hung up: a blonde
      // transfer's transferer) and rings on in the call it joined.
      s.emit(from, 'call.ring_stopped', { agent: leg.agent, channel: leg.channel, reason: 'caller_hangup' });
      leg.rang = false;
      leg.ringStart = s.now;
      s.ensureStarted(to);
      announceRing(s, to, leg);
    }
  }
  from.mergedAway = true;
  if (from.live <= 0) endCall(s, from);
  return first;
}

/**
 * A channel whose events now carry another live call's Linkedid was bridged into that call
 * (Asterisk 13 propagates the older Linkedid; pickups, Replaces, cross-call transfers).
 */
export function followLinkedid(s: TrackerState, ev: AmiEvent): void {
  const uid = ev.uniqueid;
  const linkedid = ev.linkedid;
  if (!uid || !linkedid) return;
  const id = s.channelCall.get(uid);
  if (!id) return;
  const call = s.calls.get(id);
  const ch = call?.channels.get(uid);
  if (!call || !ch) return;
  if (linkedid === call.id) return;
  // Bridging gives every channel the oldest Linkedid among them, so a move only ever goes to an
  // older call; a newer one named is a stale Linkedid on a channel that already moved.
  const target = s.calls.get(linkedid);
  if (target && target !== call && target.order < call.order) moveTree(s, call, target, uid);
}
