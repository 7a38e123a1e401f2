// Walks of a call's dial tree: pure functions over the model (src/normalizer/model.ts).
//
// Every DialBegin is an edge from the dialling channel to the dialled one; a Local ;2 continues
// whatever dial rang its ;1. The parties are the devices at the ends of the tree (any channel but
// a Local one, or a Local channel that is an agent's device); the Local channels between them are
// plumbing (ring groups, follow-me, routing chains). A party is connected to the caller once every
// dial on its path to the top has answered: a device that answers an inner Dial (a mobile's
// call-acceptance prompt, Dial U()) while the outer Dial has not is not an answer.
import { type Call, type Chan, type Leg, partnerOf } from './model.js';

/** Who dialled this channel (or, for a Local channel, its partner): the edge into it. */
export function dialerOf(call: Call, ch: Chan): { by: string; into: Chan } | null {
  if (ch.dialedBy) return { by: ch.dialedBy, into: ch };
  const partnerUid = partnerOf(call, ch);
  const p = partnerUid ? call.channels.get(partnerUid) : undefined;
  return p?.dialedBy ? { by: p.dialedBy, into: p } : null;
}

/** Some Dial rang this channel (or its Local partner): it is not at the top of the tree. */
export function hasDialer(call: Call, ch: Chan): boolean {
  return dialerOf(call, ch) !== null;
}

/** The channel itself and the channels above it, up to the top of the dial tree. */
export function pathUp(call: Call, from: Chan): Chan[] {
  const path: Chan[] = [];
  let cur: Chan | undefined = from;
  const seen = new Set<string>();
  while (cur && !seen.has(cur.uniqueid)) {
    seen.add(cur.uniqueid);
    path.push(cur);
    const dialer = dialerOf(call, cur);
    // A Local ;2 is reached through its ;1: both are on the path.
    if (dialer && dialer.into !== cur) path.push(dialer.into);
    cur = dialer ? call.channels.get(dialer.by) : undefined;
  }
  return path;
}

/**
 * True when `ch` is reached through the far end (;2) of an originated Local first channel
 * that is nobody: click-to-dial rings the agent that way before dialling the number.
 */
export function viaOriginFarEnd(call: Call, ch: Chan): boolean {
  if (!call.plumbingOrigin) return false;
  const first = call.channels.get(call.firstChannel.uniqueid);
  const farEnd = first ? partnerOf(call, first) : undefined;
  if (!farEnd) return false;
  return pathUp(call, ch).some((c) => c.uniqueid === farEnd);
}

/** Every dial on the way from this party's channel to the top of the tree has answered. */
export function connectedToTop(call: Call, leg: Leg): boolean {
  const ch = call.channels.get(leg.channel.uniqueid);
  if (!ch) return false;
  let cur: Chan | undefined = ch;
  const seen = new Set<string>();
  let steps = 0;
  while (cur && !seen.has(cur.uniqueid)) {
    seen.add(cur.uniqueid);
    const edge = dialerOf(call, cur);
    if (!edge) return steps > 0;
    if (edge.into.dialStatus !== 'ANSWER') return false;
    steps++;
    // Dialled from another call that handed it over (a transfer across Linkedids): its
    // answered dial is the top of its path here.
    if (!call.channels.has(edge.by)) return true;
    cur = call.channels.get(edge.by);
  }
  return false;
}

/** The ringing legs whose path to the top runs through `through`. */
export function legsBelow(call: Call, through: Chan): Leg[] {
  const out: Leg[] = [];
  for (const leg of call.legs.values()) {
    if (leg.state !== 'ringing') continue;
    const ch = call.channels.get(leg.channel.uniqueid);
    if (ch && pathUp(call, ch).includes(through)) out.push(leg);
  }
  return out;
}

/** Some dial that `ch` (or its Local partner) placed has not ended yet. */
export function dialsInProgress(call: Call, ch: Chan): boolean {
  const partnerUid = partnerOf(call, ch);
  for (const c of call.channels.values()) {
    if (c.dialStatus === null && c.dialedBy !== null && (c.dialedBy === ch.uniqueid || c.dialedBy === partnerUid)) return true;
  }
  return false;
}

/** `root`, its Local partner and everything they dialled, transitively: what moves with it to another call. */
export function subtree(call: Call, root: Chan): Set<Chan> {
  const moving = new Set<Chan>([root]);
  const partnerUid = partnerOf(call, root);
  const partner = partnerUid ? call.channels.get(partnerUid) : undefined;
  if (partner) moving.add(partner);
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of call.channels.values()) {
      if (moving.has(c)) continue;
      const byMoving = c.dialedBy !== null && [...moving].some((m) => m.uniqueid === c.dialedBy);
      const p = partnerOf(call, c);
      const partnerMoving = p !== undefined && [...moving].some((m) => m.uniqueid === p);
      if (byMoving || partnerMoving) {
        moving.add(c);
        grew = true;
      }
    }
  }
  return moving;
}
