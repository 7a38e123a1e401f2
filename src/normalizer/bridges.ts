// Bridges. A caller can be connected to a party without any Dial: a conference (ConfBridge), a
// parked call retrieved, a Bridge() or ARI bridge. The tracker keeps who is in which bridge
// (BridgeEnter, BridgeLeave, BridgeDestroy); when the caller's own channel shares a bridge with a
// party's channel that is not already its connected leg, that party answered.
import type { AmiEvent } from './ami-event.js';
import type { AmiEventWith } from './ami-fields.js';
import { connectLeg } from './legs.js';
import { isPartyChannel } from './local-channels.js';
import { addLeg, callOf, legOf } from './model.js';
import type { TrackerState } from './state.js';

export function onBridgeEnter(s: TrackerState, ev: AmiEventWith<'bridgeuniqueid' | 'uniqueid'>): void {
  const bridge = ev.bridgeuniqueid;
  const uid = ev.uniqueid;
  // Arrays, not Sets: a bridge holds two or three channels, and every live call keeps one.
  let members = s.bridges.get(bridge);
  if (!members) s.bridges.set(bridge, (members = []));
  if (!members.includes(uid)) members.push(uid);
  const ch = callOf(s, uid, undefined)?.channels.get(uid);
  if (ch) ch.bridge = bridge;
  for (const other of members) {
    if (other === uid) continue;
    connectByBridge(s, uid, other);
    connectByBridge(s, other, uid);
  }
}

export function onBridgeLeave(s: TrackerState, ev: AmiEvent): void {
  if (!ev.bridgeuniqueid || !ev.uniqueid) return;
  leaveBridge(s, ev.bridgeuniqueid, ev.uniqueid);
  const ch = callOf(s, ev.uniqueid, undefined)?.channels.get(ev.uniqueid);
  if (ch && ch.bridge === ev.bridgeuniqueid) ch.bridge = null;
}

/** Takes a channel out of a bridge; a bridge left empty is forgotten. */
export function leaveBridge(s: TrackerState, bridge: string, uid: string): void {
  const members = s.bridges.get(bridge);
  if (!members) return;
  const i = members.indexOf(uid);
  if (i >= 0) members.splice(i, 1);
  if (members.length === 0) s.bridges.delete(bridge);
}

export function onBridgeDestroy(s: TrackerState, ev: AmiEvent): void {
  if (ev.bridgeuniqueid) s.bridges.delete(ev.bridgeuniqueid);
}

/** `callerUid`, if it is a call's caller, is now connected to `partyUid`'s party. */
function connectByBridge(s: TrackerState, callerUid: string, partyUid: string): void {
  const call = callOf(s, callerUid, undefined);
  const caller = call?.channels.get(callerUid);
  if (!call || !caller || caller.side !== 'origin' || caller.hungUp || call.plumbingOrigin) return;
  const partyCall = callOf(s, partyUid, undefined);
  const party = partyCall?.channels.get(partyUid);
  if (!partyCall || !party || party.hungUp) return;
  const agent = s.agents.fromChannel(party.name);
  if (!isPartyChannel(party.name, agent)) return;
  if (call.originAgent && agent && agent.id === call.originAgent.id) return;
  const own = partyCall === call ? legOf(call, partyUid) : undefined;
  if (own) {
    if (own.state === 'ringing') connectLeg(s, call, own);
    return;
  }
  if (call.connected && call.connected.state === 'connected' && call.connected.uniqueids.has(partyUid)) return;
  if (partyCall === call && party.side === 'origin') return;
  // The party's channel stays in its own call; this call records that it is connected to it.
  const key = `bridge:${partyUid}`;
  if (call.legs.get(key)?.state === 'connected') return;
  const leg = addLeg(call, key, agent, { uniqueid: partyUid, name: party.name }, s.now);
  if (partyCall !== call) {
    // addLeg marks a channel of this call; this one belongs to another.
    leg.uniqueids = new Set();
  }
  connectLeg(s, call, leg);
}
