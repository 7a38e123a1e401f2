// A party's life in a call: it rings (call.ringing), is connected to the caller (call.answered)
// or stops ringing (call.ring_stopped, with why). Each step happens once per leg, whichever AMI
// event reports it first. (A party that moves to another call stops ringing in the old one and
// rings on in the new: moveTree in src/normalizer/calls.ts.)
import type { Agent, RingStopReason } from '../events/types.js';
import { pathUp } from './dial-tree.js';
import { addChannel, addLeg, answering, type Call, type Chan, joinChannel, type Leg, round3 } from './model.js';
import type { TrackerState } from './state.js';

/**
 * Rings a party: a new leg keyed by agent (or by device), or the channel joins the agent's leg
 * already ringing in this call. `quiet` makes the leg without announcing it (it rings unseen:
 * a picker, a device already up, a call-back leg).
 */
export function ring(s: TrackerState, call: Call, agent: Agent | null, uid: string, name: string, how: { callback: boolean; quiet: boolean }): Leg {
  const key = agent ? agent.id : `dev:${uid}`;
  const existing = call.legs.get(key);
  if (existing && existing.state === 'ringing') {
    addChannel(s, call, uid, name, 'leg', existing.key);
    const ch = call.channels.get(uid);
    if (ch) joinChannel(call, ch, existing);
    return existing;
  }
  const leg = addLeg(call, key, agent, { uniqueid: uid, name }, s.now);
  leg.callback = how.callback;
  const ch = call.channels.get(uid);
  if (ch) joinChannel(call, ch, leg);
  if (!how.quiet) announceRing(s, call, leg);
  return leg;
}

export function announceRing(s: TrackerState, call: Call, leg: Leg): void {
  if (leg.rang || leg.callback) return;
  leg.rang = true;
  call.firstRingAt ??= leg.ringStart;
  s.emit(call, 'call.ringing', { agent: leg.agent, channel: leg.channel });
}

export function connectLeg(s: TrackerState, call: Call, leg: Leg): void {
  if (leg.state !== 'ringing') return;
  leg.state = 'connected';
  leg.connectedAt = s.now;
  s.ensureStarted(call);
  if (leg.callback) {
    // The call-back leg of click-to-dial: this party places the call.
    call.originAgent ??= leg.agent;
    return;
  }
  // A Local party that answered by itself is announced now; a picker never rang.
  if (leg.provisional) announceRing(s, call, leg);
  call.answeredAt ??= s.now;
  call.connected = leg;
  call.hangupBy = null;
  call.lastAgent = leg.agent ?? call.originAgent;
  s.emit(call, 'call.answered', {
    agent: leg.agent,
    channel: leg.channel,
    ringSeconds: round3(Math.max(0, s.now - leg.ringStart)),
  });
}

export function stopRinging(s: TrackerState, call: Call, leg: Leg, reason: RingStopReason): void {
  if (leg.state !== 'ringing') return;
  leg.state = 'ended';
  leg.stopReason = reason;
  if (leg.callback) return;
  if (leg.provisional && !leg.rang) return;
  call.lastRingEnd = s.now;
  if (!leg.rang) return;
  s.ensureStarted(call);
  s.emit(call, 'call.ring_stopped', { agent: leg.agent, channel: leg.channel, reason });
}

/** Why a ringing leg stopped when its dial was cancelled. */
export function cancelReason(call: Call, leg: Leg): RingStopReason {
  if (call.connected && call.connected !== leg && call.connected.state === 'connected') return 'answered_elsewhere';
  if (answering(call, leg)) return 'answered_elsewhere';
  if (call.abandonedByOrigin || call.callerGaveUp) return 'caller_hangup';
  return 'no_answer';
}

/** A provisional leg turned out to be plumbing: a device was dialled beneath it. */
export function dissolve(s: TrackerState, call: Call, leg: Leg): void {
  if (call.legs.get(leg.key) !== leg) return;
  call.legs.delete(leg.key);
  for (const uid of leg.uniqueids) {
    const c = call.channels.get(uid);
    if (c && c.legKey === leg.key) c.legKey = null;
  }
  if (leg.rang && leg.state === 'ringing') {
    leg.state = 'ended';
    s.emit(call, 'call.ring_stopped', { agent: leg.agent, channel: leg.channel, reason: 'no_answer' });
  }
}

/** Dissolves every provisional leg on the path above `ch`. */
export function dissolveAbove(s: TrackerState, call: Call, ch: Chan): void {
  for (const c of pathUp(call, ch)) {
    const leg = c.legKey ? call.legs.get(c.legKey) : undefined;
    if (leg?.provisional) dissolve(s, call, leg);
  }
}
