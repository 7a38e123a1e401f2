// The call model: what the tracker knows of each call in progress, and the operations that
// change it without saying anything (no events here; src/normalizer/legs.ts and calls.ts emit).
//
// A call is keyed by the Asterisk Linkedid it started with. Its channels split into the *origin*
// side (the channel that created the call and its Local ;1/;2 partner) and *legs*: every party
// the call dialled (an agent's device, or the remote party of an outbound call). A leg is keyed
// by agent id, so a ring-all queue gives one leg per agent and an agent reached through
// Local/201@agents -> PJSIP/201 still rings once. How channels dialled each other (the dial tree)
// is walked in src/normalizer/dial-tree.ts.
import type { Agent, ChannelRef, Direction, HangupBy, Party, QueueInfo, RingStopReason } from '../events/types.js';
import { localPartner } from './local-channels.js';
import type { TrackerState } from './state.js';

export type Side = 'origin' | 'leg';
export type LegState = 'ringing' | 'connected' | 'ended';

export interface Leg {
  key: string;
  /** null for the remote party of an outbound call. */
  agent: Agent | null;
  channel: ChannelRef;
  ringStart: number;
  state: LegState;
  uniqueids: Set<string>;
  /** When this leg was last connected (answered or transferred to). */
  connectedAt: number | null;
  /**
   * A Local channel dialled directly that has dialled no device (yet): the party is whatever
   * answers it (an application, a simulated phone). It becomes plumbing the moment a device is
   * dialled beneath it. Its Ringing state says nothing (routing dialplans signal ringing before
   * they dial), so it is announced (call.ringing, then call.answered) only if it answers.
   */
  provisional: boolean;
  /** call.ringing was emitted for this leg. */
  rang: boolean;
  /**
   * Reached through the far end of an originated Local channel (click-to-dial's call-back of
   * the agent): this party places the call, so its ringing and answer are not the call's.
   */
  callback: boolean;
  /** Why it stopped, when the reason waits for the device's hang-up cause (NOANSWER hides a 603). */
  pendingStop: RingStopReason | null;
  /** Why it stopped ringing, once it has. */
  stopReason: RingStopReason | null;
}

export interface Chan {
  uniqueid: string;
  name: string;
  side: Side;
  legKey: string | null;
  hungUp: boolean;
  /** Input counter when first seen (see CallTracker.markResync). */
  born: number;
  /** The channel whose Dial rang this one (a Local ;2 continues its ;1's dial), or null. */
  dialedBy: string | null;
  /** How the dial into this channel ended (DialEnd status); null while it rings or if never dialled. */
  dialStatus: string | null;
  /** The channel reached Up. */
  up: boolean;
  /** The bridge it is in now (BridgeEnter), so its hang-up can leave it if BridgeLeave never comes. */
  bridge: string | null;
  /** Q.850 cause of its Hangup. */
  cause: number | null;
  /**
   * The consult side of a transfer completed while its target still rang (blonde): the dials
   * it ends are handed to the transferee, not over.
   */
  handingOver: boolean;
}

export interface Call {
  id: string;
  /** Creation order among calls: Asterisk merges channels into the oldest Linkedid. */
  order: number;
  seq: number;
  startTime: number;
  started: boolean;
  direction: Direction;
  caller: Party;
  called: Party;
  originAgent: Agent | null;
  firstChannel: ChannelRef;
  channels: Map<string, Chan>;
  byName: Map<string, string>;
  live: number;
  legs: Map<string, Leg>;
  queue: { name: string; position: number | null; joinedAt: number; leftAt: number | null } | null;
  /** Created with the call's first CRM variable: most calls have none (memory per call). */
  omlValues: Map<string, string> | null;
  exportNames: Set<string> | null;
  firstRingAt: number | null;
  lastRingEnd: number | null;
  answeredAt: number | null;
  connected: Leg | null;
  lastAgent: Agent | null;
  queueStatus: string | null;
  dialStatus: string | null;
  abandonedByOrigin: boolean;
  /** Who asked first to hang up since the parties were last connected. */
  hangupBy: HangupBy | null;
  /**
   * Set when this call's channels went on in another call (a pickup absorbed the picker's call,
   * a transfer took the consult call's target): it ends answered, not missed.
   */
  mergedAway: boolean;
  /** An originated Local channel that is nobody: the parties are what its two ends dial. */
  plumbingOrigin: boolean;
  /** The caller's side gave up the dial: a top-level DialEnd CANCEL, QueueCallerAbandon, or hung up mid-dial. */
  callerGaveUp: boolean;
  /** Status of the latest top-level dial (DialEnd from a channel nobody dialled). */
  topDialStatus: string | null;
  /** Who first asked to end the caller's side of an unanswered call. */
  originEndedBy: 'caller' | 'pbx' | null;
  cause: { code: number | null; text: string | null } | null;
  /** The contract's `origin`, from CRMBRIDGE_ORIGIN; null for calls that came to be the ordinary way. */
  origin: string | null;
}

// ---- channels ----------------------------------------------------------------------------------

/** The call an event's channel belongs to: by uniqueid first (Linkedids can change), then Linkedid. */
export function callOf(s: TrackerState, uid: string | undefined, linkedid: string | undefined): Call | undefined {
  if (uid) {
    const id = s.channelCall.get(uid);
    if (id) return s.calls.get(id);
  }
  return linkedid ? s.calls.get(linkedid) : undefined;
}

/**
 * Adds a channel to a call (or returns it if there). Without a `side`, the call's first channel
 * is its origin and a Local half goes wherever its partner is.
 */
export function addChannel(s: TrackerState, call: Call, uid: string, name: string, side?: Side, legKey?: string | null): Chan {
  const existing = call.channels.get(uid);
  if (existing) return existing;
  let sd: Side = side ?? 'leg';
  let key: string | null = legKey ?? null;
  if (side === undefined) {
    if (call.channels.size === 0) sd = 'origin';
    else {
      // A Local ;2 belongs wherever its ;1 belongs (and vice versa).
      const partner = localPartner(name);
      const partnerUid = partner ? call.byName.get(partner) : undefined;
      const p = partnerUid ? call.channels.get(partnerUid) : undefined;
      if (p) {
        sd = p.side;
        key = p.legKey;
      }
    }
  }
  const ch: Chan = { uniqueid: uid, name, side: sd, legKey: key, hungUp: false, born: s.inputs, dialedBy: null, dialStatus: null, up: false, bridge: null, cause: null, handingOver: false };
  call.channels.set(uid, ch);
  call.byName.set(name, uid);
  call.live++;
  s.channelCall.set(uid, call.id);
  if (key) call.legs.get(key)?.uniqueids.add(uid);
  return ch;
}

/** The uniqueid of a Local channel's partner in this call. */
export function partnerOf(call: Call, ch: Chan): string | undefined {
  const partner = localPartner(ch.name);
  return partner ? call.byName.get(partner) : undefined;
}

/**
 * Moves channels from one call to another with their legs (a leg whose key the other call
 * already uses is re-keyed by its channel). Returns the legs moved.
 */
export function moveChannels(s: TrackerState, from: Call, to: Call, moving: ReadonlySet<Chan>): Leg[] {
  const movedLegs = new Map<string, Leg>();
  for (const c of moving) {
    const leg = c.legKey ? from.legs.get(c.legKey) : undefined;
    if (leg) movedLegs.set(leg.key, leg);
  }
  for (const c of moving) {
    from.channels.delete(c.uniqueid);
    from.byName.delete(c.name);
    if (!c.hungUp) from.live--;
    to.channels.set(c.uniqueid, c);
    to.byName.set(c.name, c.uniqueid);
    if (!c.hungUp) to.live++;
    s.channelCall.set(c.uniqueid, to.id);
    if (c.side === 'origin') c.side = 'leg';
  }
  for (const [key, leg] of movedLegs) {
    from.legs.delete(key);
    if (from.connected === leg) from.connected = null;
    let newKey = key;
    if (to.legs.has(newKey)) newKey = `${key}#${leg.channel.uniqueid}`;
    leg.key = newKey;
    for (const u of leg.uniqueids) {
      const c = to.channels.get(u);
      if (c) c.legKey = newKey;
    }
    to.legs.set(newKey, leg);
  }
  return [...movedLegs.values()];
}

// ---- legs --------------------------------------------------------------------------------------

/** A new leg, ringing since `now`, owning its channel if the call has it. */
export function addLeg(call: Call, key: string, agent: Agent | null, channel: ChannelRef, now: number): Leg {
  const leg: Leg = { key, agent, channel, ringStart: now, state: 'ringing', uniqueids: new Set([channel.uniqueid]), connectedAt: null, provisional: false, rang: false, callback: false, pendingStop: null, stopReason: null };
  call.legs.set(key, leg);
  const ch = call.channels.get(channel.uniqueid);
  if (ch) {
    ch.side = 'leg';
    ch.legKey = key;
  }
  return leg;
}

export function legOf(call: Call, uid: string | undefined): Leg | undefined {
  if (!uid) return undefined;
  const key = call.channels.get(uid)?.legKey;
  return key ? call.legs.get(key) : undefined;
}

/** The leg a dialling channel belongs to, itself or through its Local partner. */
export function enclosingLeg(call: Call, ch: Chan): Leg | undefined {
  const own = ch.legKey ? call.legs.get(ch.legKey) : undefined;
  if (own) return own;
  const partnerUid = partnerOf(call, ch);
  const key = partnerUid ? call.channels.get(partnerUid)?.legKey : undefined;
  return key ? call.legs.get(key) : undefined;
}

/** `ch` (and its Local partner, unless that is the origin's or another leg's) becomes part of `leg`. */
export function joinChannel(call: Call, ch: Chan, leg: Leg): void {
  ch.side = 'leg';
  ch.legKey = leg.key;
  leg.uniqueids.add(ch.uniqueid);
  const partnerUid = partnerOf(call, ch);
  const p = partnerUid ? call.channels.get(partnerUid) : undefined;
  if (p && !p.legKey && p.side !== 'origin') {
    p.side = 'leg';
    p.legKey = leg.key;
    leg.uniqueids.add(p.uniqueid);
  }
}

/** `ch` and its Local partner, where no leg owns them yet, become part of `leg`. */
export function joinLeg(call: Call, ch: Chan, leg: Leg): void {
  const partnerUid = partnerOf(call, ch);
  for (const c of [ch, partnerUid ? call.channels.get(partnerUid) : undefined]) {
    if (!c || c.legKey) continue;
    c.legKey = leg.key;
    leg.uniqueids.add(c.uniqueid);
  }
}

export function isConnected(call: Call): boolean {
  return call.connected !== null && call.connected.state === 'connected';
}

/** A party (other than `except`) has answered its own dial, connected to the caller or about to be. */
export function answering(call: Call, except?: Leg): boolean {
  for (const leg of call.legs.values()) {
    if (leg === except || leg.callback || leg.state === 'ended') continue;
    if (leg.state === 'connected' || call.channels.get(leg.channel.uniqueid)?.dialStatus === 'ANSWER') return true;
  }
  return false;
}

/** The leg connected last, `except` aside. */
export function latestConnected(call: Call, except: Leg | undefined): Leg | undefined {
  let best: Leg | undefined;
  for (const leg of call.legs.values()) {
    if (leg === except || leg.state !== 'connected' || leg.connectedAt === null) continue;
    if (!best || leg.connectedAt >= (best.connectedAt ?? 0)) best = leg;
  }
  return best;
}

/**
 * The party dialled last that still rings (announced) or is connected, other than `except`'s
 * legs: whom a transferer consulted, when the PBX does not say.
 */
export function lastDialled(call: Call, except: readonly (Leg | undefined)[]): Leg | undefined {
  let best: Leg | undefined;
  for (const leg of call.legs.values()) {
    if (except.includes(leg)) continue;
    if (leg.state !== 'connected' && !(leg.state === 'ringing' && leg.rang)) continue;
    if (!best || leg.ringStart >= best.ringStart) best = leg;
  }
  return best;
}

// ---- what every event of the call carries ----------------------------------------------------

/** The CRM variables the call exports (and has a value for), in the order they were exported. */
export function exportedVars(call: Call): Record<string, string> {
  const vars: Record<string, string> = {};
  if (call.exportNames === null || call.omlValues === null) return vars;
  for (const name of call.exportNames) {
    const v = call.omlValues.get(name);
    if (v !== undefined) vars[name] = v;
  }
  return vars;
}

/** The queue the caller waits (or waited) in, as of `now`. */
export function queueInfo(call: Call, now: number): QueueInfo | null {
  const q = call.queue;
  if (!q) return null;
  return { name: q.name, position: q.position, waitSeconds: round3(Math.max(0, (q.leftAt ?? now) - q.joinedAt)) };
}

/** Seconds as the contract gives them: to the millisecond. */
export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
