// AMI handlers for transfers (BlindTransfer, AttendedTransfer): call.transferred, from whom to
// whom. An attended transfer can join two calls: the target's side of the consult call moves
// into the caller's call (moveTree), and the consult call ends on its own.
import type { AmiEvent } from './ami-event.js';
import { cidOrNull } from './ami-fields.js';
import { moveTree } from './calls.js';
import { callOf, type Leg, lastDialled, latestConnected, legOf } from './model.js';
import type { TrackerState } from './state.js';

export function onBlindTransfer(s: TrackerState, ev: AmiEvent): void {
  const call = callOf(s, ev.transfereeuniqueid, ev.transfereelinkedid) ?? callOf(s, ev.transfereruniqueid, ev.transfererlinkedid);
  if (!call) return;
  s.ensureStarted(call);
  const fromLeg = legOf(call, ev.transfereruniqueid);
  const from = fromLeg?.agent ?? (ev.transfererchannel ? s.agents.fromChannel(ev.transfererchannel) : null) ?? call.originAgent;
  if (fromLeg && fromLeg.state === 'connected') fromLeg.state = 'ended';
  const number = cidOrNull(ev.extension);
  call.connected = null;
  call.hangupBy = null;
  s.emit(call, 'call.transferred', {
    agent: from,
    channel: null,
    transfer: { kind: 'blind', from, to: { number, agent: number ? s.agents.fromExtension(number) : null } },
  });
}

export function onAttendedTransfer(s: TrackerState, ev: AmiEvent): void {
  const call = callOf(s, ev.transfereeuniqueid, ev.transfereelinkedid) ?? callOf(s, ev.origtransfereruniqueid, ev.origtransfererlinkedid);
  if (!call) return;
  s.ensureStarted(call);
  const fromLeg = legOf(call, ev.origtransfereruniqueid);
  const from = fromLeg?.agent ?? (ev.origtransfererchannel ? s.agents.fromChannel(ev.origtransfererchannel) : null) ?? call.originAgent;
  const second = callOf(s, ev.secondtransfereruniqueid, ev.secondtransfererlinkedid)?.channels.get(ev.secondtransfereruniqueid ?? '');
  if (second) second.handingOver = true;
  const targetUid = ev.transfertargetuniqueid;
  const targetCall = callOf(s, targetUid, ev.transfertargetlinkedid);
  let targetLeg: Leg | undefined = targetCall && targetUid ? legOf(targetCall, targetUid) : undefined;
  let number: string | null = null;
  if (targetCall && targetCall !== call && targetUid) {
    // Two calls joined: the target's leg moves into the caller's call; the consult call
    // keeps only the transferer and ends on its own.
    number = targetCall.called.number;
    targetLeg = moveTree(s, targetCall, call, targetUid);
    if (targetLeg && targetLeg.state === 'ringing') targetLeg = undefined;
  }
  // The target channel can be plumbing no leg owns (a Local helper the transfer dialled): the
  // target is then whom the transferer consulted, the latest connected leg but theirs.
  // Or it is missing: Asterisk names a target only if it finds one (main/bridge_basic.c,
  // get_transfer_parties) as the transferer's peer in the consult bridge or as that bridge's
  // only channel, and a transferer hanging up to complete a blonde transfer can be in neither
  // state. The target is then the party dialled last, ringing (blonde) or connected, that is
  // neither the transferer nor the transferee.
  targetLeg ??= targetUid ? latestConnected(call, fromLeg) : lastDialled(call, [fromLeg, legOf(call, ev.transfereeuniqueid)]);
  const toAgent = targetLeg?.agent ?? (ev.transfertargetchannel ? s.agents.fromChannel(ev.transfertargetchannel) : null);
  number ??= toAgent?.extension ?? cidOrNull(ev.transfertargetexten);
  if (fromLeg && fromLeg !== targetLeg && fromLeg.state === 'connected') fromLeg.state = 'ended';
  if (targetLeg && targetLeg.state !== 'ringing') {
    targetLeg.state = 'connected';
    call.connected = targetLeg;
    call.lastAgent = targetLeg.agent ?? call.lastAgent;
  }
  call.hangupBy = null;
  s.emit(call, 'call.transferred', {
    agent: from,
    channel: null,
    transfer: { kind: 'attended', from, to: { number, agent: toAgent } },
  });
}
