// AMI handlers for dialling: a Dial rings a channel (DialBegin, app_queue's AgentCalled), ends
// (DialEnd: answered, cancelled, busy...), app_queue connects or gives up on a member
// (AgentConnect, AgentRingNoAnswer), another phone picks a ringing one up (Pickup). They grow
// the dial tree (src/normalizer/dial-tree.ts) and decide, from it, who rings, who answers and
// who stopped ringing why.
import type { AmiEvent } from './ami-event.js';
import type { RingStopReason } from '../events/types.js';
import { type AmiEventWith, cidOrNull } from './ami-fields.js';
import { channelEvent, moveTree } from './calls.js';
import { connectedToTop, hasDialer, legsBelow, viaOriginFarEnd } from './dial-tree.js';
import { cancelReason, connectLeg, dissolve, dissolveAbove, ring, stopRinging } from './legs.js';
import { isPartyChannel } from './local-channels.js';
import { addChannel, addLeg, answering, type Call, callOf, type Chan, enclosingLeg, isConnected, joinChannel, joinLeg, legOf } from './model.js';
import type { TrackerState } from './state.js';
import { causeToStop, dialStopReason } from './statuses.js';

export function onDialBegin(s: TrackerState, ev: AmiEventWith<'channel' | 'destuniqueid' | 'destchannel'>): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const { call, ch } = hit;
  const destName = ev.destchannel;
  const destUid = ev.destuniqueid;
  // A channel of another call dialled from this one (a pickup, a blonde transfer's target
  // re-dialled by the transferee): it and everything it dialled join this call.
  const other = callOf(s, destUid, undefined);
  if (other && other !== call) moveTree(s, other, call, destUid);
  const agent = s.agents.fromChannel(destName);
  if (ch.side === 'origin' && call.called.number === null && call.originAgent) {
    const exten = cidOrNull(ev.exten);
    if (exten && exten !== 's') call.called.number = exten;
  }
  if (!call.started && call.originAgent) {
    call.direction = agent || (call.called.number && s.agents.isAgentExtension(call.called.number)) ? 'internal' : 'outbound';
  }
  s.ensureStarted(call);
  const enclosing = enclosingLeg(call, ch);
  const dest = addChannel(s, call, destUid, destName, 'leg', null);
  dest.dialedBy = ch.uniqueid;
  dest.dialStatus = null;
  const party = isPartyChannel(destName, agent);
  // A leg dialling onward (Local/201@agents -> PJSIP/201, a routing chain) is still that leg,
  // unless what it dials is another party (follow-me to a mobile, a ring group's members).
  if (enclosing && (enclosing.provisional ? !party : !party || (agent !== null && enclosing.agent?.id === agent.id))) {
    joinChannel(call, dest, enclosing);
    return;
  }
  if (enclosing?.provisional) dissolve(s, call, enclosing);
  dissolveAbove(s, call, ch);
  const callback = viaOriginFarEnd(call, ch);
  if (!party) {
    // Plumbing for now: a party if it answers by itself.
    if (callback) return;
    const leg = addLeg(call, `dev:${destUid}`, null, { uniqueid: destUid, name: destName }, s.now);
    leg.provisional = true;
    joinChannel(call, dest, leg);
    return;
  }
  const leg = ring(s, call, agent, destUid, destName, { callback, quiet: dest.up || callback });
  // A helper channel that is nobody's leg yet and dials an agent (Local/202@internal for a
  // transfer target) is part of that agent's leg from now on, with its Local partner.
  if (agent && ch.side === 'leg' && !ch.legKey && !hasDialer(call, ch)) joinLeg(call, ch, leg);
}

export function onAgentCalled(s: TrackerState, ev: AmiEventWith<'destuniqueid' | 'destchannel'>): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const iface = ev.interface || ev.destchannel;
  s.agents.learnName(iface, ev.membername);
  const agent = s.agents.fromChannel(iface, ev.membername);
  if (!agent) return;
  s.ensureStarted(hit.call);
  const dest = addChannel(s, hit.call, ev.destuniqueid, ev.destchannel, 'leg', null);
  dest.dialedBy ??= hit.ch.uniqueid;
  ring(s, hit.call, agent, ev.destuniqueid, ev.destchannel, { callback: false, quiet: false });
}

export function onDialEnd(s: TrackerState, ev: AmiEventWith<'channel' | 'destuniqueid' | 'dialstatus'>): void {
  const status = ev.dialstatus;
  const hit = channelEvent(s, ev);
  if (!hit) return;
  if (hit.ch.handingOver && status !== 'ANSWER') return;
  if (status === 'ANSWER') adoptAnswerer(s, hit.call, hit.ch, ev.destuniqueid, ev.destchannel);
  // The dialled channel may have moved to another call since (a transfer, a pickup).
  const call = callOf(s, ev.destuniqueid, undefined) ?? hit.call;
  const dest = call.channels.get(ev.destuniqueid);
  if (!dest) return;
  // app_queue can end one leg twice (NOANSWER, then CANCEL): the first word stands.
  if (dest.dialStatus !== null) return;
  dest.dialStatus = status;
  const topLevel = call === hit.call && !hasDialer(call, hit.ch);
  if (topLevel) {
    call.topDialStatus = status;
    // Dial cancels the other targets before it reports the one that answered: a CANCEL is
    // the caller giving up only when nobody is answering.
    if (status === 'CANCEL' && !isConnected(call) && !answering(call)) call.callerGaveUp = true;
  }
  if (status === 'ANSWER') {
    for (const leg of [...call.legs.values()]) {
      if (leg.state !== 'ringing') continue;
      if (leg.provisional && !leg.uniqueids.has(dest.uniqueid)) continue;
      if (connectedToTop(call, leg)) connectLeg(s, call, leg);
    }
    return;
  }
  for (const leg of legsBelow(call, dest)) {
    const own = leg.uniqueids.has(dest.uniqueid);
    let reason: RingStopReason;
    if (status === 'CANCEL') reason = cancelReason(call, leg);
    else if (own && status === 'NOANSWER' && !dest.hungUp && dest.cause === null) {
      // A decline (603) reads NOANSWER here; the device's hang-up cause tells.
      leg.pendingStop = 'no_answer';
      continue;
    } else if (own && dest.cause !== null) reason = causeToStop(dest.cause) ?? dialStopReason(status);
    else reason = dialStopReason(status);
    stopRinging(s, call, leg, reason);
  }
}

/**
 * A Dial answered by a channel it never rang: a pickup (Asterisk 22 names the picker in the
 * caller's DialEnd; the picker's channel began as a call of its own). The answerer joins the
 * dialling call as a party that never rang here.
 */
function adoptAnswerer(s: TrackerState, call: Call, dialer: Chan, uid: string, name: string | undefined): void {
  const owner = callOf(s, uid, undefined);
  const known = owner?.channels.get(uid);
  // Rung by some Dial already (here, or in the call it moved to): not a pickup.
  if (known && known.dialedBy !== null) return;
  if (!known && !name) return;
  if (owner && owner !== call) moveTree(s, owner, call, uid);
  const ch = call.channels.get(uid) ?? addChannel(s, call, uid, name ?? '', 'leg', null);
  if (ch.dialedBy !== null) return;
  ch.dialedBy = dialer.uniqueid;
  ch.dialStatus = null;
  if (ch.legKey && call.legs.has(ch.legKey)) return;
  const agent = s.agents.fromChannel(ch.name);
  if (!isPartyChannel(ch.name, agent)) return;
  ring(s, call, agent, uid, ch.name, { callback: viaOriginFarEnd(call, dialer), quiet: true });
}

export function onAgentConnect(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const leg = legOf(hit.call, ev.destuniqueid);
  if (leg) connectLeg(s, hit.call, leg);
  if (hit.call.queue && hit.call.queue.leftAt === null) hit.call.queue.leftAt = s.now;
}

export function onAgentRingNoAnswer(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const leg = legOf(hit.call, ev.destuniqueid);
  if (leg) stopRinging(s, hit.call, leg, 'no_answer');
}

/** Another phone picked this ringing one up (Pickup(), *8, a Replaces INVITE in 22). */
export function onPickup(s: TrackerState, ev: AmiEvent): void {
  const uid = ev.targetuniqueid;
  const call = callOf(s, uid, ev.targetlinkedid);
  const leg = call ? legOf(call, uid) : undefined;
  if (call && leg && leg.state === 'ringing') stopRinging(s, call, leg, 'answered_elsewhere');
}
