// AMI handlers for hanging up: who asked first (HangupRequest from a party, SoftHangupRequest
// from the PBX) decides hangupBy and, for an unanswered call, whether the caller gave up; a
// channel's Hangup (with its Q.850 cause) stops a ringing party and ends the call with its last
// channel.
import type { AmiEvent } from './ami-event.js';
import type { RingStopReason } from '../events/types.js';
import { causeCode, cidOrNull } from './ami-fields.js';
import { leaveBridge } from './bridges.js';
import { channelEvent, endCall } from './calls.js';
import { dialsInProgress } from './dial-tree.js';
import { stopRinging } from './legs.js';
import { isLocal } from './local-channels.js';
import { type Call, type Chan, isConnected } from './model.js';
import type { TrackerState } from './state.js';
import { causeToStop } from './statuses.js';

export function onHangupRequest(s: TrackerState, ev: AmiEvent, soft: boolean): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const { call, ch } = hit;
  if (ch.hungUp) return;
  // The PBX itself ending a real device's channel (Hangup(), AMI Hangup) is a soft hangup;
  // a party hanging up arrives from the channel driver as a HangupRequest. Local channels
  // are the PBX's own plumbing (and the test suite's simulated phones), so both count there.
  const byParty = !soft || isLocal(ch.name);
  const code = causeCode(ev);
  // A device's own reason (21 for a 603 decline) often arrives here before its DialEnd.
  if (Number.isInteger(code) && code > 0) ch.cause ??= code;
  if (call.answeredAt === null) {
    // The first request to end the caller's side says who ended an unanswered call: the
    // caller (a HangupRequest) or the PBX (a SoftHangupRequest: the dialplan gave up).
    if (ch.side === 'origin' && call.originEndedBy === null) call.originEndedBy = soft ? 'pbx' : 'caller';
    if (ch.side === 'origin' && byParty) {
      if (call.queueStatus === null && call.dialStatus === null) call.abandonedByOrigin = true;
    }
    return;
  }
  noteHangupBy(call, ch, byParty);
}

/** The first of the connected parties to go ended the call. */
function noteHangupBy(call: Call, ch: Chan, byParty: boolean): void {
  if (call.hangupBy !== null) return;
  const leg = ch.legKey ? call.legs.get(ch.legKey) : undefined;
  const connectedChannel = ch.side === 'origin' || (leg !== undefined && leg === call.connected && leg.state === 'connected');
  if (!connectedChannel) return;
  if (!byParty) call.hangupBy = 'system';
  else if (ch.side === 'origin') call.hangupBy = call.direction === 'inbound' ? 'caller' : 'agent';
  // The called side of an inbound call is the agent's side, agent or not (a forward to a mobile).
  else call.hangupBy = leg?.agent || call.direction === 'inbound' ? 'agent' : 'caller';
}

export function onHangup(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const { call, ch } = hit;
  if (ch.hungUp) return;
  ch.hungUp = true;
  call.live--;
  // A channel that hangs up leaves its bridge, whether or not a BridgeLeave says so.
  if (ch.bridge !== null) {
    leaveBridge(s, ch.bridge, ch.uniqueid);
    ch.bridge = null;
  }
  const code = causeCode(ev);
  if (Number.isInteger(code) && (code > 0 || ch.cause === null)) ch.cause = code;
  if (ch.uniqueid === call.firstChannel.uniqueid || call.cause === null) {
    call.cause = { code: Number.isFinite(code) ? code : null, text: cidOrNull(ev['cause-txt']) };
  }
  // Without HangupRequest events (an AMI user or recorder that leaves them out), the first
  // device of a connected call to hang up is who ended it; Local channels are plumbing.
  if (call.answeredAt !== null && !isLocal(ch.name)) noteHangupBy(call, ch, true);
  // The caller hung up while its dial was still ringing: the caller gave up.
  if (ch.side === 'origin' && call.answeredAt === null && dialsInProgress(call, ch)) call.callerGaveUp = true;
  const leg = ch.legKey ? call.legs.get(ch.legKey) : undefined;
  if (leg && leg.state === 'ringing' && !leg.provisional && leg.channel.uniqueid === ch.uniqueid) {
    const byCause = ch.cause !== null ? causeToStop(ch.cause) : null;
    if (leg.pendingStop) stopRinging(s, call, leg, byCause ?? leg.pendingStop);
    // Answered its own dial but was never connected, then hung up: it refused the call
    // (a mobile's call-acceptance prompt, a Dial U() routine that hung up).
    else if (ch.dialStatus === 'ANSWER') stopRinging(s, call, leg, 'rejected');
    else if ([...leg.uniqueids].every((u) => call.channels.get(u)?.hungUp !== false)) {
      const fallback: RingStopReason = isConnected(call) ? 'answered_elsewhere' : call.abandonedByOrigin || call.callerGaveUp ? 'caller_hangup' : 'unavailable';
      stopRinging(s, call, leg, byCause ?? fallback);
    }
  }
  if (call.live <= 0) endCall(s, call);
}
