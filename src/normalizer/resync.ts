// Resync: reconciling what the tracker knows with the channels Asterisk reports live
// (CoreShowChannels, or ARI's channel list, after a (re)connect and periodically). Calls that
// ended while we were away get their hang-up now (hangupBy "system"); calls that began while we
// were away are picked up, with the CRM variables read for them (src/normalizer/missed-vars.ts);
// calls we already know continue untouched.
import { endCall, maybeAnnounce, relinkLegs, restoreCall } from './calls.js';
import { onNewchannel, onVarSet } from './channel-events.js';
import { connectLeg } from './legs.js';
import { addLeg, type Call, callOf } from './model.js';
import type { TrackerState } from './state.js';
import type { SnapshotChannel } from './tracker.js';

/** Applies a snapshot of the live channels; `mark` is the input count when the query went out. */
export function resync(s: TrackerState, channels: readonly SnapshotChannel[], mark: number): void {
  const live = new Set(channels.map((c) => c.uniqueid));
  for (const call of [...s.calls.values()]) {
    let alive = 0;
    for (const ch of call.channels.values()) {
      if (ch.hungUp) continue;
      // A channel born after the query went out may be missing from its answer: keep it.
      if (live.has(ch.uniqueid) || ch.born > mark) alive++;
      else {
        ch.hungUp = true;
        call.live--;
      }
    }
    if (alive === 0) {
      call.hangupBy ??= 'system';
      endCall(s, call);
    }
  }
  // CoreShowChannels lists channels in no particular order; a call's first channel (its
  // origin) is the one Asterisk created first.
  const picked = new Set<Call>();
  const touched = new Set<Call>();
  /** Calls a previous run of the bridge had announced (s.restored), seen again. */
  const again = new Set<Call>();
  s.deferAnnounce = true;
  for (const c of [...channels].sort(byCreation)) {
    if (s.channelCall.has(c.uniqueid)) continue;
    const known = s.calls.has(c.linkedid || c.uniqueid);
    const restored = !known && s.restored.has(c.linkedid || c.uniqueid);
    onNewchannel(s, {
      event: 'Newchannel',
      channel: c.channel,
      uniqueid: c.uniqueid,
      linkedid: c.linkedid || c.uniqueid,
      context: c.context ?? '',
      exten: c.exten ?? '',
      calleridnum: c.calleridnum ?? '',
      calleridname: c.calleridname ?? '',
    });
    const call = callOf(s, c.uniqueid, c.linkedid);
    if (call && !known) picked.add(call);
    if (call) touched.add(call);
    if (call && restored) again.add(call);
  }
  for (const call of again) relinkLegs(call);
  // The CRM variables whose VarSet went by while we were away, before anything is announced.
  for (const c of channels) {
    for (const [variable, value] of c.vars ?? []) {
      onVarSet(s, { event: 'VarSet', channel: c.channel, uniqueid: c.uniqueid, linkedid: c.linkedid || c.uniqueid, variable, value });
    }
  }
  s.deferAnnounce = false;
  for (const call of touched) if (!picked.has(call)) maybeAnnounce(s, call);
  // Announce what we picked up; a bridged agent channel means the call is already answered.
  const bridged = new Map<string, SnapshotChannel[]>();
  for (const c of channels) {
    if (c.bridgeid) bridged.set(c.bridgeid, [...(bridged.get(c.bridgeid) ?? []), c]);
  }
  for (const call of picked) {
    s.ensureStarted(call);
    if (call.answeredAt !== null) continue;
    for (const members of bridged.values()) {
      if (!members.some((m) => call.channels.has(m.uniqueid))) continue;
      for (const m of members) {
        const agent = s.agents.fromChannel(m.channel);
        if (!agent || (call.originAgent && agent.id === call.originAgent.id)) continue;
        const ch = call.channels.get(m.uniqueid);
        const leg = addLeg(call, agent.id, agent, { uniqueid: m.uniqueid, name: m.channel }, s.now);
        if (ch) {
          ch.side = 'leg';
          ch.legKey = leg.key;
        }
        connectLeg(s, call, leg);
      }
    }
  }
  // Calls a previous run had announced that ended while no bridge was running: their one
  // call.hangup (hangupBy system, as for any call whose channels the PBX no longer has).
  for (const record of [...s.restored.values()]) {
    s.restored.delete(record.callId);
    const call = restoreCall(s, record);
    call.hangupBy = 'system';
    endCall(s, call);
  }
}

/** Orders channels by creation: Uniqueid is `[systemname-]epoch.sequence`. */
function byCreation(a: SnapshotChannel, b: SnapshotChannel): number {
  const key = (u: string) => {
    // Only the tail can hold `epoch.sequence`; on a long run of digits the pattern backtracks
    // quadratically (a 30,000-digit id: half a second), so it never sees more than the tail.
    const m = /(\d+)\.(\d+)$/.exec(u.length > MAX_ID_TAIL ? u.slice(-MAX_ID_TAIL) : u);
    return m ? [Number(m[1]), Number(m[2])] : [0, 0];
  };
  const [ae, as] = key(a.uniqueid);
  const [be, bs] = key(b.uniqueid);
  return ae! - be! || as! - bs!;
}

/** Longer than any `epoch.sequence` (20 digits, a dot, 20 digits). */
const MAX_ID_TAIL = 48;
