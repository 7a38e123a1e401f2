// Call and agent state built from AMI events, and the normalized events it yields.
//
// Deterministic and free of I/O: `handle(event)` mutates only this tracker's own state and
// returns the events to emit, so the same AMI trace always gives the same output (replay,
// fixtures, HA pairs). Ids come from an injected IdSource.
//
// Model. A call is keyed by the Asterisk Linkedid it started with. Its channels split into
// the *origin* side (the channel that created the call and its Local ;1/;2 partner) and
// *legs*: every party the call dialled (an agent's device, or the remote party of an outbound
// call). A leg is keyed by agent id, so a ring-all queue gives one leg per agent and an agent
// reached through Local/201@agents -> PJSIP/201 still rings once.
import type { AmiEvent } from '../ami/frame.js';
import { amiTimestamp } from '../ami/frame.js';
import type {
  Agent,
  AgentStatus,
  BridgeEvent,
  CallEvent,
  ChannelRef,
  Direction,
  HangupBy,
  MissedReason,
  Party,
  QueueInfo,
  RingStopReason,
} from '../events/types.js';
import { SPEC_VERSION } from '../events/types.js';
import { CRM_VAR_PREFIX, EXPORT_LIST, exportedNames, ORIGIN_VARIABLE, uninherited } from '../crm-vars.js';
import type { AgentDirectory } from './agents.js';
import { isLocal, isPartyChannel, localPartner } from './local-channels.js';
import { causeToStop, deviceStatus, dialMissedReason, dialStopReason, isDialProgress, memberStatus, queueMissedReason } from './statuses.js';

/** Makes event ids: a name-based id from `seed` when given (same AMI event -> same id), else unique. */
export type IdSource = (seed: string | null) => string;

export interface TrackerOptions {
  server: string;
  inboundContexts: readonly string[];
  agents: AgentDirectory;
  ids: IdSource;
}

/** One live channel as listed by CoreShowChannels, for resync after a reconnect. */
export interface SnapshotChannel {
  channel: string;
  uniqueid: string;
  linkedid: string;
  context?: string;
  exten?: string;
  calleridnum?: string;
  calleridname?: string;
  channelstatedesc?: string;
  bridgeid?: string;
  /**
   * Channel variables read on demand at resync (their VarSet went by while disconnected), in the
   * order they are to be applied: OMLCUSTOMDIALPLANVARS before the values it lists.
   */
  vars?: ReadonlyArray<readonly [name: string, value: string]>;
}

type Side = 'origin' | 'leg';
type LegState = 'ringing' | 'connected' | 'ended';

interface Leg {
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

interface Chan {
  uniqueid: string;
  name: string;
  side: Side;
  legKey: string | null;
  hungUp: boolean;
  /** Input counter when first seen (see markResync). */
  born: number;
  /** The channel whose Dial rang this one (a Local ;2 continues its ;1's dial), or null. */
  dialedBy: string | null;
  /** How the dial into this channel ended (DialEnd status); null while it rings or if never dialled. */
  dialStatus: string | null;
  /** The channel reached Up. */
  up: boolean;
  /** The Linkedid last seen on this channel's events: a change means it joined another call. */
  linkedid: string | null;
  /** Q.850 cause of its Hangup. */
  cause: number | null;
  /**
   * The consult side of a transfer completed while its target still rang (blonde): the dials
   * it ends are handed to the transferee, not over.
   */
  handingOver: boolean;
}

interface Call {
  id: string;
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
  omlValues: Map<string, string>;
  exportNames: Set<string>;
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

/** Events with no handler of their own still carry Linkedids worth following (BridgeEnter…). */
const LINKEDID_ONLY = (): void => undefined;

/** Orders channels by creation: Uniqueid is `[systemname-]epoch.sequence`. */
function byCreation(a: SnapshotChannel, b: SnapshotChannel): number {
  const key = (u: string) => {
    const m = /(\d+)\.(\d+)$/.exec(u);
    return m ? [Number(m[1]), Number(m[2])] : [0, 0];
  };
  const [ae, as] = key(a.uniqueid);
  const [be, bs] = key(b.uniqueid);
  return ae! - be! || as! - bs!;
}

function cidOrNull(v: string | undefined): string | null {
  if (v === undefined) return null;
  const t = v.trim();
  return t === '' || t === '<unknown>' ? null : t;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export class CallTracker {
  private readonly calls = new Map<string, Call>();
  /** uniqueid -> call id, for every channel of every live call. */
  private readonly channelCall = new Map<string, string>();
  private readonly agentSeq = new Map<string, number>();
  private readonly agentStatus = new Map<string, AgentStatus>();
  /** Bridge id -> the channels in it now (conferences, parking retrievals, plain calls). */
  private readonly bridges = new Map<string, Set<string>>();
  private readonly inbound: Set<string>;
  private out: BridgeEvent[] = [];
  private now = 0;
  private seedBase: string | null = null;
  private seedN = 0;
  private inputs = 0;
  private resyncMark = Number.POSITIVE_INFINITY;
  /** Channels that hung up after the resync query went out (the snapshot may still list them). */
  private goneDuringResync = new Set<string>();
  /** While resync() adds the snapshot's channels: calls are announced once their variables are in. */
  private deferAnnounce = false;

  /** Handler per AMI event (lower-case name): the AMI -> call-event mapping, as one table. */
  private readonly handlers: Record<string, (ev: AmiEvent) => void> = {
    newchannel: (ev) => this.onNewchannel(ev),
    newcallerid: (ev) => this.onNewCallerid(ev),
    varset: (ev) => this.onVarSet(ev),
    dialbegin: (ev) => this.onDialBegin(ev),
    dialend: (ev) => this.onDialEnd(ev),
    agentcalled: (ev) => this.onAgentCalled(ev),
    agentconnect: (ev) => this.onAgentConnect(ev),
    agentringnoanswer: (ev) => this.onAgentRingNoAnswer(ev),
    queuecallerjoin: (ev) => this.onQueueCallerJoin(ev),
    queuecallerleave: (ev) => this.onQueueCallerLeave(ev),
    queuecallerabandon: (ev) => this.onQueueCallerAbandon(ev),
    newstate: (ev) => this.onNewstate(ev),
    pickup: (ev) => this.onPickup(ev),
    bridgeenter: (ev) => this.onBridgeEnter(ev),
    bridgeleave: (ev) => this.onBridgeLeave(ev),
    bridgedestroy: (ev) => this.onBridgeDestroy(ev),
    hanguprequest: (ev) => this.onHangupRequest(ev, false),
    softhanguprequest: (ev) => this.onHangupRequest(ev, true),
    hangup: (ev) => this.onHangup(ev),
    blindtransfer: (ev) => this.onBlindTransfer(ev),
    attendedtransfer: (ev) => this.onAttendedTransfer(ev),
    queuememberadded: (ev) => this.onMemberLogin(ev, 'agent.login'),
    queuememberremoved: (ev) => this.onMemberLogin(ev, 'agent.logout'),
    queuememberpause: (ev) => this.onMemberPause(ev),
    queuememberstatus: (ev) => this.onMemberStatus(ev),
    devicestatechange: (ev) => this.onDeviceState(ev),
  };

  constructor(private readonly opts: TrackerOptions) {
    this.inbound = new Set(opts.inboundContexts.map((c) => c.toLowerCase()));
  }

  /** Who is an agent: shared with the HTTP side (pops, API), so both know the same agents. */
  get agents(): AgentDirectory {
    return this.opts.agents;
  }

  /** Number of calls in progress (for metrics and tests). */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Number of channels tracked (for tests: state must be freed when calls end). */
  get trackedChannels(): number {
    return this.channelCall.size;
  }

  /**
   * Feeds one AMI event. `receivedAt` (ms) stands in for the Timestamp header when Asterisk
   * does not send one (manager.conf timestampevents = no).
   */
  handle(ev: AmiEvent, receivedAt: number): BridgeEvent[] {
    const name = (ev.event ?? '').toLowerCase();
    const handler = Object.hasOwn(this.handlers, name) ? this.handlers[name] : LINKEDID_ONLY;
    if (!handler) return [];
    const ts = amiTimestamp(ev);
    this.now = ts ?? receivedAt / 1000;
    this.seedBase = ts !== null ? `${this.opts.server}|${name}|${ev.uniqueid ?? ev.destuniqueid ?? ''}|${ev.timestamp}` : null;
    this.seedN = 0;
    this.inputs++;
    this.out = [];
    // A snapshot being taken may still list a channel that hangs up meanwhile: remember it.
    if (name === 'hangup' && this.resyncMark !== Number.POSITIVE_INFINITY && ev.uniqueid) this.goneDuringResync.add(ev.uniqueid);
    this.followLinkedid(ev);
    handler(ev);
    const out = this.out;
    this.out = [];
    return out;
  }

  /**
   * Reconciles state with the channels Asterisk reports live (CoreShowChannels after a
   * (re)connect): calls that ended while we were away get their hang-up now; calls that began
   * while we were away are picked up. Calls we already know continue untouched.
   */
  /** Marks the moment a CoreShowChannels query went out. */
  markResync(): void {
    this.resyncMark = this.inputs;
    this.goneDuringResync.clear();
  }

  resync(channels: readonly SnapshotChannel[], now: number): BridgeEvent[] {
    this.now = now / 1000;
    const mark = this.resyncMark;
    this.resyncMark = Number.POSITIVE_INFINITY;
    this.seedBase = null;
    this.out = [];
    const gone = this.goneDuringResync;
    this.goneDuringResync = new Set();
    channels = channels.filter((c) => !gone.has(c.uniqueid));
    const live = new Set(channels.map((c) => c.uniqueid));
    for (const call of [...this.calls.values()]) {
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
        this.endCall(call);
      }
    }
    // CoreShowChannels lists channels in no particular order; a call's first channel (its
    // origin) is the one Asterisk created first.
    const picked = new Set<Call>();
    const touched = new Set<Call>();
    this.deferAnnounce = true;
    for (const c of [...channels].sort(byCreation)) {
      if (this.channelCall.has(c.uniqueid)) continue;
      const known = this.calls.has(c.linkedid || c.uniqueid);
      this.onNewchannel({
        event: 'Newchannel',
        channel: c.channel,
        uniqueid: c.uniqueid,
        linkedid: c.linkedid || c.uniqueid,
        context: c.context ?? '',
        exten: c.exten ?? '',
        calleridnum: c.calleridnum ?? '',
        calleridname: c.calleridname ?? '',
      });
      const call = this.callOf(c.uniqueid, c.linkedid);
      if (call && !known) picked.add(call);
      if (call) touched.add(call);
    }
    // The CRM variables whose VarSet went by while we were away, before anything is announced.
    for (const c of channels) {
      for (const [variable, value] of c.vars ?? []) {
        this.onVarSet({ event: 'VarSet', channel: c.channel, uniqueid: c.uniqueid, linkedid: c.linkedid || c.uniqueid, variable, value });
      }
    }
    this.deferAnnounce = false;
    for (const call of touched) if (!picked.has(call)) this.maybeAnnounce(call);
    // Announce what we picked up; a bridged agent channel means the call is already answered.
    const bridged = new Map<string, SnapshotChannel[]>();
    for (const c of channels) {
      if (c.bridgeid) bridged.set(c.bridgeid, [...(bridged.get(c.bridgeid) ?? []), c]);
    }
    for (const call of picked) {
      this.ensureStarted(call);
      if (call.answeredAt !== null) continue;
      for (const members of bridged.values()) {
        if (!members.some((m) => call.channels.has(m.uniqueid))) continue;
        for (const m of members) {
          const agent = this.opts.agents.fromChannel(m.channel);
          if (!agent || (call.originAgent && agent.id === call.originAgent.id)) continue;
          const ch = call.channels.get(m.uniqueid);
          const leg = this.addLeg(call, agent.id, agent, { uniqueid: m.uniqueid, name: m.channel });
          if (ch) {
            ch.side = 'leg';
            ch.legKey = leg.key;
          }
          this.connectLeg(call, leg);
        }
      }
    }
    const out = this.out;
    this.out = [];
    return out;
  }

  // ---- channel lifecycle -------------------------------------------------------------------

  private onNewchannel(ev: AmiEvent): void {
    const uid = ev.uniqueid;
    const name = ev.channel;
    if (!uid || !name || this.channelCall.has(uid)) return;
    const linkedid = ev.linkedid || uid;
    let call = this.calls.get(linkedid);
    if (!call) {
      call = this.createCall(linkedid, ev);
      this.calls.set(linkedid, call);
    }
    this.addChannel(call, uid, name).linkedid = linkedid;
    this.maybeAnnounce(call);
  }

  private createCall(id: string, ev: AmiEvent): Call {
    const name = ev.channel ?? '';
    const context = (ev.context ?? '').toLowerCase();
    const originAgent = this.inbound.has(context) ? null : this.opts.agents.fromChannel(name);
    const exten = cidOrNull(ev.exten);
    const called: Party = { number: null };
    let direction: Direction = 'inbound';
    if (originAgent) {
      direction = 'outbound';
      // A phone's own channel carries the dialled number as its exten; an originated Local
      // channel carries the agent's own extension, and the destination is known at the dial.
      if (exten && exten !== 's' && exten !== originAgent.extension) {
        called.number = exten;
        direction = this.opts.agents.isAgentExtension(exten) ? 'internal' : 'outbound';
      }
    } else if (exten && exten !== 's') {
      called.number = exten;
    }
    return {
      id,
      seq: 0,
      startTime: this.now,
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
      omlValues: new Map(),
      exportNames: new Set(),
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
      plumbingOrigin: isLocal(name) && !this.inbound.has(context) && !originAgent,
      callerGaveUp: false,
      topDialStatus: null,
      originEndedBy: null,
      cause: null,
      origin: null,
    };
  }

  private addChannel(call: Call, uid: string, name: string, side?: Side, legKey?: string | null): Chan {
    const existing = call.channels.get(uid);
    if (existing) return existing;
    let s: Side = side ?? 'leg';
    let key: string | null = legKey ?? null;
    if (side === undefined) {
      if (call.channels.size === 0) s = 'origin';
      else {
        // A Local ;2 belongs wherever its ;1 belongs (and vice versa).
        const partner = localPartner(name);
        const partnerUid = partner ? call.byName.get(partner) : undefined;
        const p = partnerUid ? call.channels.get(partnerUid) : undefined;
        if (p) {
          s = p.side;
          key = p.legKey;
        }
      }
    }
    const ch: Chan = { uniqueid: uid, name, side: s, legKey: key, hungUp: false, born: this.inputs, dialedBy: null, dialStatus: null, up: false, linkedid: null, cause: null, handingOver: false };
    call.channels.set(uid, ch);
    call.byName.set(name, uid);
    call.live++;
    this.channelCall.set(uid, call.id);
    if (key) call.legs.get(key)?.uniqueids.add(uid);
    return ch;
  }

  /** The call an event's channel belongs to: by uniqueid first (Linkedids can change), then Linkedid. */
  private callOf(uid: string | undefined, linkedid: string | undefined): Call | undefined {
    if (uid) {
      const id = this.channelCall.get(uid);
      if (id) return this.calls.get(id);
    }
    return linkedid ? this.calls.get(linkedid) : undefined;
  }

  /** Like callOf, and adopts a channel we never saw created into the call its Linkedid names. */
  private channelEvent(ev: AmiEvent): { call: Call; ch: Chan } | null {
    const uid = ev.uniqueid;
    if (!uid) return null;
    const call = this.callOf(uid, ev.linkedid);
    if (!call) return null;
    const ch = call.channels.get(uid) ?? (ev.channel ? this.addChannel(call, uid, ev.channel) : undefined);
    return ch ? { call, ch } : null;
  }

  private onNewCallerid(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    if (ch.side === 'origin' && call.caller.number === null) {
      call.caller = { number: cidOrNull(ev.calleridnum), name: cidOrNull(ev.calleridname) };
    }
    this.maybeAnnounce(call);
  }

  private onVarSet(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    const name = uninherited(ev.variable ?? '');
    const value = ev.value ?? '';
    if (name === EXPORT_LIST) {
      for (const n of exportedNames(value)) call.exportNames.add(n);
    } else if (name.startsWith(CRM_VAR_PREFIX)) {
      call.omlValues.set(name, value);
    } else if (name === ORIGIN_VARIABLE) {
      // The first value wins.
      if (value !== '') call.origin ??= value;
    } else if (ch.side === 'origin' && value !== '') {
      if (name === 'QUEUESTATUS') call.queueStatus = value;
      else if (name === 'DIALSTATUS' && value !== 'ANSWER') call.dialStatus = value;
    }
  }

  // ---- ringing, answering ------------------------------------------------------------------
  //
  // The dial tree. Every DialBegin is an edge from the dialling channel to the dialled one; a
  // Local ;2 continues whatever dial rang its ;1. The parties are the devices at the ends of
  // the tree (any channel but a Local one, or a Local channel that is an agent's device); the
  // Local channels between them are plumbing (ring groups, follow-me, routing chains). A
  // party is connected to the caller once every dial on its path to the top has answered:
  // a device that answers an inner Dial (a mobile's call-acceptance prompt, Dial U()) while
  // the outer Dial has not is not an answer.

  private onDialBegin(ev: AmiEvent): void {
    // An Originate's own dial of its first channel has no calling channel: nothing rings.
    if (!ev.channel || !ev.destuniqueid || !ev.destchannel) return;
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    const destName = ev.destchannel;
    const destUid = ev.destuniqueid;
    // A channel of another call dialled from this one (a pickup, a blonde transfer's target
    // re-dialled by the transferee): it and everything it dialled join this call.
    const other = this.callOf(destUid, undefined);
    if (other && other !== call) this.moveTree(other, call, destUid);
    const agent = this.opts.agents.fromChannel(destName);
    if (ch.side === 'origin' && call.called.number === null && call.originAgent) {
      const exten = cidOrNull(ev.exten);
      if (exten && exten !== 's') call.called.number = exten;
    }
    if (!call.started && call.originAgent) {
      call.direction = agent || (call.called.number && this.opts.agents.isAgentExtension(call.called.number)) ? 'internal' : 'outbound';
    }
    this.ensureStarted(call);
    const enclosing = this.enclosingLeg(call, ch);
    const dest = this.addChannel(call, destUid, destName, 'leg', null);
    dest.dialedBy = ch.uniqueid;
    dest.dialStatus = null;
    const party = isPartyChannel(destName, agent);
    // A leg dialling onward (Local/201@agents -> PJSIP/201, a routing chain) is still that leg,
    // unless what it dials is another party (follow-me to a mobile, a ring group's members).
    if (enclosing && (enclosing.provisional ? !party : !party || (agent !== null && enclosing.agent?.id === agent.id))) {
      this.joinChannel(call, dest, enclosing);
      return;
    }
    if (enclosing?.provisional) this.dissolve(call, enclosing);
    this.dissolveAbove(call, ch);
    const callback = this.viaOriginFarEnd(call, ch);
    if (!party) {
      // Plumbing for now: a party if it answers by itself.
      if (callback) return;
      const leg = this.addLeg(call, `dev:${destUid}`, null, { uniqueid: destUid, name: destName });
      leg.provisional = true;
      this.joinChannel(call, dest, leg);
      return;
    }
    const leg = this.ring(call, agent, destUid, destName, { callback, quiet: dest.up || callback });
    // A helper channel that is nobody's leg yet and dials an agent (Local/202@internal for a
    // transfer target) is part of that agent's leg from now on, with its Local partner.
    if (agent && ch.side === 'leg' && !ch.legKey && !this.channelHasDialer(call, ch)) this.joinLeg(call, ch, leg);
  }

  private onAgentCalled(ev: AmiEvent): void {
    if (!ev.destuniqueid || !ev.destchannel) return;
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const iface = ev.interface ?? ev.destchannel;
    this.opts.agents.learnName(iface, ev.membername);
    const agent = this.opts.agents.fromChannel(iface, ev.membername);
    if (!agent) return;
    this.ensureStarted(hit.call);
    const dest = this.addChannel(hit.call, ev.destuniqueid, ev.destchannel, 'leg', null);
    dest.dialedBy ??= hit.ch.uniqueid;
    this.ring(hit.call, agent, ev.destuniqueid, ev.destchannel, { callback: false, quiet: false });
  }

  private ring(call: Call, agent: Agent | null, uid: string, name: string, how: { callback: boolean; quiet: boolean }): Leg {
    const key = agent ? agent.id : `dev:${uid}`;
    const existing = call.legs.get(key);
    if (existing && existing.state === 'ringing') {
      this.addChannel(call, uid, name, 'leg', existing.key);
      const ch = call.channels.get(uid);
      if (ch) this.joinChannel(call, ch, existing);
      return existing;
    }
    const leg = this.addLeg(call, key, agent, { uniqueid: uid, name });
    leg.callback = how.callback;
    const ch = call.channels.get(uid);
    if (ch) this.joinChannel(call, ch, leg);
    if (!how.quiet) this.announceRing(call, leg);
    return leg;
  }

  private announceRing(call: Call, leg: Leg): void {
    if (leg.rang || leg.callback) return;
    leg.rang = true;
    call.firstRingAt ??= leg.ringStart;
    this.emit(call, 'call.ringing', { agent: leg.agent, channel: leg.channel });
  }

  private joinChannel(call: Call, ch: Chan, leg: Leg): void {
    ch.side = 'leg';
    ch.legKey = leg.key;
    leg.uniqueids.add(ch.uniqueid);
    const partnerUid = this.partnerOf(call, ch);
    const p = partnerUid ? call.channels.get(partnerUid) : undefined;
    if (p && !p.legKey && p.side !== 'origin') {
      p.side = 'leg';
      p.legKey = leg.key;
      leg.uniqueids.add(p.uniqueid);
    }
  }

  private joinLeg(call: Call, ch: Chan, leg: Leg): void {
    const partnerUid = this.partnerOf(call, ch);
    for (const c of [ch, partnerUid ? call.channels.get(partnerUid) : undefined]) {
      if (!c || c.legKey) continue;
      c.legKey = leg.key;
      leg.uniqueids.add(c.uniqueid);
    }
  }

  /** A provisional leg turned out to be plumbing: a device was dialled beneath it. */
  private dissolve(call: Call, leg: Leg): void {
    if (call.legs.get(leg.key) !== leg) return;
    call.legs.delete(leg.key);
    for (const uid of leg.uniqueids) {
      const c = call.channels.get(uid);
      if (c && c.legKey === leg.key) c.legKey = null;
    }
    if (leg.rang && leg.state === 'ringing') {
      leg.state = 'ended';
      this.emit(call, 'call.ring_stopped', { agent: leg.agent, channel: leg.channel, reason: 'no_answer' });
    }
  }

  /** Dissolves every provisional leg on the path above `ch`. */
  private dissolveAbove(call: Call, ch: Chan): void {
    for (const c of this.pathUp(call, ch)) {
      const leg = c.legKey ? call.legs.get(c.legKey) : undefined;
      if (leg?.provisional) this.dissolve(call, leg);
    }
  }

  private addLeg(call: Call, key: string, agent: Agent | null, channel: ChannelRef): Leg {
    const leg: Leg = { key, agent, channel, ringStart: this.now, state: 'ringing', uniqueids: new Set([channel.uniqueid]), connectedAt: null, provisional: false, rang: false, callback: false, pendingStop: null, stopReason: null };
    call.legs.set(key, leg);
    const ch = call.channels.get(channel.uniqueid);
    if (ch) {
      ch.side = 'leg';
      ch.legKey = key;
    }
    return leg;
  }

  private legOf(call: Call, uid: string | undefined): Leg | undefined {
    if (!uid) return undefined;
    const key = call.channels.get(uid)?.legKey;
    return key ? call.legs.get(key) : undefined;
  }

  /** The leg a dialling channel belongs to, itself or through its Local partner. */
  private enclosingLeg(call: Call, ch: Chan): Leg | undefined {
    const own = ch.legKey ? call.legs.get(ch.legKey) : undefined;
    if (own) return own;
    const partnerUid = this.partnerOf(call, ch);
    const key = partnerUid ? call.channels.get(partnerUid)?.legKey : undefined;
    return key ? call.legs.get(key) : undefined;
  }

  private partnerOf(call: Call, ch: Chan): string | undefined {
    const partner = localPartner(ch.name);
    return partner ? call.byName.get(partner) : undefined;
  }

  /** The channel itself and the channels above it, up to the top of the dial tree. */
  private pathUp(call: Call, from: Chan): Chan[] {
    const path: Chan[] = [];
    let cur: Chan | undefined = from;
    const seen = new Set<string>();
    while (cur && !seen.has(cur.uniqueid)) {
      seen.add(cur.uniqueid);
      path.push(cur);
      const dialer = this.dialerOf(call, cur);
      // A Local ;2 is reached through its ;1: both are on the path.
      if (dialer && dialer.into !== cur) path.push(dialer.into);
      cur = dialer ? call.channels.get(dialer.by) : undefined;
    }
    return path;
  }

  /** Who dialled this channel (or, for a Local channel, its partner): the edge into it. */
  private dialerOf(call: Call, ch: Chan): { by: string; into: Chan } | null {
    if (ch.dialedBy) return { by: ch.dialedBy, into: ch };
    const partnerUid = this.partnerOf(call, ch);
    const p = partnerUid ? call.channels.get(partnerUid) : undefined;
    return p?.dialedBy ? { by: p.dialedBy, into: p } : null;
  }

  private channelHasDialer(call: Call, ch: Chan): boolean {
    return this.dialerOf(call, ch) !== null;
  }

  /**
   * True when `ch` is reached through the far end (;2) of an originated Local first channel
   * that is nobody: click-to-dial rings the agent that way before dialling the number.
   */
  private viaOriginFarEnd(call: Call, ch: Chan): boolean {
    if (!call.plumbingOrigin) return false;
    const first = call.channels.get(call.firstChannel.uniqueid);
    const farEnd = first ? this.partnerOf(call, first) : undefined;
    if (!farEnd) return false;
    return this.pathUp(call, ch).some((c) => c.uniqueid === farEnd);
  }

  /** Every dial on the way from this party's channel to the top of the tree has answered. */
  private connectedToTop(call: Call, leg: Leg): boolean {
    const ch = call.channels.get(leg.channel.uniqueid);
    if (!ch) return false;
    let cur: Chan | undefined = ch;
    const seen = new Set<string>();
    let steps = 0;
    while (cur && !seen.has(cur.uniqueid)) {
      seen.add(cur.uniqueid);
      const edge = this.dialerOf(call, cur);
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
  private legsBelow(call: Call, through: Chan): Leg[] {
    const out: Leg[] = [];
    for (const leg of call.legs.values()) {
      if (leg.state !== 'ringing') continue;
      const ch = call.channels.get(leg.channel.uniqueid);
      if (ch && this.pathUp(call, ch).includes(through)) out.push(leg);
    }
    return out;
  }

  private onDialEnd(ev: AmiEvent): void {
    if (!ev.channel || !ev.destuniqueid) return;
    const status = ev.dialstatus ?? '';
    if (status === '' || isDialProgress(status)) return;
    const hit = this.channelEvent(ev);
    if (!hit) return;
    if (hit.ch.handingOver && status !== 'ANSWER') return;
    if (status === 'ANSWER') this.adoptAnswerer(hit.call, hit.ch, ev.destuniqueid, ev.destchannel);
    // The dialled channel may have moved to another call since (a transfer, a pickup).
    const call = this.callOf(ev.destuniqueid, undefined) ?? hit.call;
    const dest = call.channels.get(ev.destuniqueid);
    if (!dest) return;
    // app_queue can end one leg twice (NOANSWER, then CANCEL): the first word stands.
    if (dest.dialStatus !== null) return;
    dest.dialStatus = status;
    const topLevel = call === hit.call && !this.channelHasDialer(call, hit.ch);
    if (topLevel) {
      call.topDialStatus = status;
      // Dial cancels the other targets before it reports the one that answered: a CANCEL is
      // the caller giving up only when nobody is answering.
      if (status === 'CANCEL' && !this.isConnected(call) && !this.answering(call)) call.callerGaveUp = true;
    }
    if (status === 'ANSWER') {
      for (const leg of [...call.legs.values()]) {
        if (leg.state !== 'ringing') continue;
        if (leg.provisional && !leg.uniqueids.has(dest.uniqueid)) continue;
        if (this.connectedToTop(call, leg)) this.connectLeg(call, leg);
      }
      return;
    }
    for (const leg of this.legsBelow(call, dest)) {
      const own = leg.uniqueids.has(dest.uniqueid);
      let reason: RingStopReason;
      if (status === 'CANCEL') reason = this.cancelReason(call, leg);
      else if (own && status === 'NOANSWER' && !dest.hungUp && dest.cause === null) {
        // A decline (603) reads NOANSWER here; the device's hang-up cause tells.
        leg.pendingStop = 'no_answer';
        continue;
      } else if (own && dest.cause !== null) reason = causeToStop(dest.cause) ?? dialStopReason(status);
      else reason = dialStopReason(status);
      this.stopRinging(call, leg, reason);
    }
  }

  /**
   * A Dial answered by a channel it never rang: a pickup (Asterisk 22 names the picker in the
   * caller's DialEnd; the picker's channel began as a call of its own). The answerer joins the
   * dialling call as a party that never rang here.
   */
  private adoptAnswerer(call: Call, dialer: Chan, uid: string, name: string | undefined): void {
    const owner = this.callOf(uid, undefined);
    const known = owner?.channels.get(uid);
    // Rung by some Dial already (here, or in the call it moved to): not a pickup.
    if (known && known.dialedBy !== null) return;
    if (!known && !name) return;
    if (owner && owner !== call) this.moveTree(owner, call, uid);
    const ch = call.channels.get(uid) ?? this.addChannel(call, uid, name ?? '', 'leg', null);
    if (ch.dialedBy !== null) return;
    ch.dialedBy = dialer.uniqueid;
    ch.dialStatus = null;
    if (ch.legKey && call.legs.has(ch.legKey)) return;
    const agent = this.opts.agents.fromChannel(ch.name);
    if (!isPartyChannel(ch.name, agent)) return;
    this.ring(call, agent, uid, ch.name, { callback: this.viaOriginFarEnd(call, dialer), quiet: true });
  }

  private isConnected(call: Call): boolean {
    return call.connected !== null && call.connected.state === 'connected';
  }

  private onAgentConnect(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const leg = this.legOf(hit.call, ev.destuniqueid);
    if (leg) this.connectLeg(hit.call, leg);
    if (hit.call.queue && hit.call.queue.leftAt === null) hit.call.queue.leftAt = this.now;
  }

  private onAgentRingNoAnswer(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const leg = this.legOf(hit.call, ev.destuniqueid);
    if (leg) this.stopRinging(hit.call, leg, 'no_answer');
  }

  /** A party (other than `except`) has answered its own dial, connected to the caller or about to be. */
  private answering(call: Call, except?: Leg): boolean {
    for (const leg of call.legs.values()) {
      if (leg === except || leg.callback || leg.state === 'ended') continue;
      if (leg.state === 'connected' || call.channels.get(leg.channel.uniqueid)?.dialStatus === 'ANSWER') return true;
    }
    return false;
  }

  private cancelReason(call: Call, leg: Leg): RingStopReason {
    if (call.connected && call.connected !== leg && call.connected.state === 'connected') return 'answered_elsewhere';
    if (this.answering(call, leg)) return 'answered_elsewhere';
    if (call.abandonedByOrigin || call.callerGaveUp) return 'caller_hangup';
    return 'no_answer';
  }

  private connectLeg(call: Call, leg: Leg): void {
    if (leg.state !== 'ringing') return;
    leg.state = 'connected';
    leg.connectedAt = this.now;
    this.ensureStarted(call);
    if (leg.callback) {
      // The call-back leg of click-to-dial: this party places the call.
      call.originAgent ??= leg.agent;
      return;
    }
    // A Local party that answered by itself is announced now; a picker never rang.
    if (leg.provisional) this.announceRing(call, leg);
    call.answeredAt ??= this.now;
    call.connected = leg;
    call.hangupBy = null;
    call.lastAgent = leg.agent ?? call.originAgent;
    this.emit(call, 'call.answered', {
      agent: leg.agent,
      channel: leg.channel,
      ringSeconds: round3(Math.max(0, this.now - leg.ringStart)),
    });
  }

  private stopRinging(call: Call, leg: Leg, reason: RingStopReason): void {
    if (leg.state !== 'ringing') return;
    leg.state = 'ended';
    leg.stopReason = reason;
    if (leg.callback) return;
    if (leg.provisional && !leg.rang) return;
    call.lastRingEnd = this.now;
    if (!leg.rang) return;
    this.ensureStarted(call);
    this.emit(call, 'call.ring_stopped', { agent: leg.agent, channel: leg.channel, reason });
  }

  // ---- queues --------------------------------------------------------------------------------

  private onQueueCallerJoin(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit || !ev.queue) return;
    const call = hit.call;
    this.ensureStarted(call);
    const pos = Number(ev.position);
    call.queue = { name: ev.queue, position: Number.isInteger(pos) && pos > 0 ? pos : null, joinedAt: this.now, leftAt: null };
    this.emit(call, 'call.queued', { channel: { uniqueid: hit.ch.uniqueid, name: hit.ch.name } });
  }

  /**
   * The caller left the queue before anyone answered. app_queue says so on a queue timeout too,
   * so QUEUESTATUS (when VarSet events are there) still decides; without it this is an abandon.
   */
  private onQueueCallerAbandon(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit || this.isConnected(hit.call)) return;
    hit.call.callerGaveUp = true;
    if (hit.call.queue && hit.call.queue.leftAt === null) hit.call.queue.leftAt = this.now;
  }

  /** Another phone picked this ringing one up (Pickup(), *8, a Replaces INVITE in 22). */
  private onPickup(ev: AmiEvent): void {
    const uid = ev.targetuniqueid;
    const call = this.callOf(uid, ev.targetlinkedid);
    const leg = call ? this.legOf(call, uid) : undefined;
    if (call && leg && leg.state === 'ringing') this.stopRinging(call, leg, 'answered_elsewhere');
  }

  // ---- bridges -------------------------------------------------------------------------------
  //
  // A caller can be connected to a party without any Dial: a conference (ConfBridge), a parked
  // call retrieved, a Bridge() or ARI bridge. When the caller's own channel shares a bridge
  // with a party's channel that is not already its connected leg, that party answered.

  private onBridgeEnter(ev: AmiEvent): void {
    const bridge = ev.bridgeuniqueid;
    const uid = ev.uniqueid;
    if (!bridge || !uid) return;
    let members = this.bridges.get(bridge);
    if (!members) this.bridges.set(bridge, (members = new Set()));
    members.add(uid);
    for (const other of members) {
      if (other === uid) continue;
      this.connectByBridge(uid, other);
      this.connectByBridge(other, uid);
    }
  }

  private onBridgeLeave(ev: AmiEvent): void {
    const members = ev.bridgeuniqueid ? this.bridges.get(ev.bridgeuniqueid) : undefined;
    if (members && ev.uniqueid) members.delete(ev.uniqueid);
    if (members && members.size === 0 && ev.bridgeuniqueid) this.bridges.delete(ev.bridgeuniqueid);
  }

  private onBridgeDestroy(ev: AmiEvent): void {
    if (ev.bridgeuniqueid) this.bridges.delete(ev.bridgeuniqueid);
  }

  /** `callerUid`, if it is a call's caller, is now connected to `partyUid`'s party. */
  private connectByBridge(callerUid: string, partyUid: string): void {
    const call = this.callOf(callerUid, undefined);
    const caller = call?.channels.get(callerUid);
    if (!call || !caller || caller.side !== 'origin' || caller.hungUp || call.plumbingOrigin) return;
    const partyCall = this.callOf(partyUid, undefined);
    const party = partyCall?.channels.get(partyUid);
    if (!partyCall || !party || party.hungUp) return;
    const agent = this.opts.agents.fromChannel(party.name);
    if (!isPartyChannel(party.name, agent)) return;
    if (call.originAgent && agent && agent.id === call.originAgent.id) return;
    const own = partyCall === call ? this.legOf(call, partyUid) : undefined;
    if (own) {
      if (own.state === 'ringing') this.connectLeg(call, own);
      return;
    }
    if (call.connected && call.connected.state === 'connected' && call.connected.uniqueids.has(partyUid)) return;
    if (partyCall === call && party.side === 'origin') return;
    // The party's channel stays in its own call; this call records that it is connected to it.
    const key = `bridge:${partyUid}`;
    if (call.legs.get(key)?.state === 'connected') return;
    const leg = this.addLeg(call, key, agent, { uniqueid: partyUid, name: party.name });
    if (partyCall !== call) {
      // addLeg marks a channel of this call; this one belongs to another.
      leg.uniqueids = new Set();
    }
    this.connectLeg(call, leg);
  }

  private onNewstate(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { ch } = hit;
    const state = ev.channelstatedesc ?? '';
    if (state === 'Up' || ev.channelstate === '6') ch.up = true;
  }

  private onQueueCallerLeave(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (hit?.call.queue && hit.call.queue.leftAt === null) hit.call.queue.leftAt = this.now;
  }

  // ---- hanging up ----------------------------------------------------------------------------

  private onHangupRequest(ev: AmiEvent, soft: boolean): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    if (ch.hungUp) return;
    // The PBX itself ending a real device's channel (Hangup(), AMI Hangup) is a soft hangup;
    // a party hanging up arrives from the channel driver as a HangupRequest. Local channels
    // are the PBX's own plumbing (and the test suite's simulated phones), so both count there.
    const byParty = !soft || isLocal(ch.name);
    const code = ev.cause !== undefined && ev.cause !== '' ? Number(ev.cause) : NaN;
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
    this.noteHangupBy(call, ch, byParty);
  }

  /** The first of the connected parties to go ended the call. */
  private noteHangupBy(call: Call, ch: Chan, byParty: boolean): void {
    if (call.hangupBy !== null) return;
    const leg = ch.legKey ? call.legs.get(ch.legKey) : undefined;
    const connectedChannel = ch.side === 'origin' || (leg !== undefined && leg === call.connected && leg.state === 'connected');
    if (!connectedChannel) return;
    if (!byParty) call.hangupBy = 'system';
    else if (ch.side === 'origin') call.hangupBy = call.direction === 'inbound' ? 'caller' : 'agent';
    // The called side of an inbound call is the agent's side, agent or not (a forward to a mobile).
    else call.hangupBy = leg?.agent || call.direction === 'inbound' ? 'agent' : 'caller';
  }

  private onHangup(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    if (ch.hungUp) return;
    ch.hungUp = true;
    call.live--;
    const code = ev.cause !== undefined && ev.cause !== '' ? Number(ev.cause) : NaN;
    if (Number.isInteger(code) && (code > 0 || ch.cause === null)) ch.cause = code;
    if (ch.uniqueid === call.firstChannel.uniqueid || call.cause === null) {
      call.cause = { code: Number.isFinite(code) ? code : null, text: cidOrNull(ev['cause-txt']) };
    }
    // Without HangupRequest events (an AMI user or recorder that leaves them out), the first
    // device of a connected call to hang up is who ended it; Local channels are plumbing.
    if (call.answeredAt !== null && !isLocal(ch.name)) this.noteHangupBy(call, ch, true);
    // The caller hung up while its dial was still ringing: the caller gave up.
    if (ch.side === 'origin' && call.answeredAt === null && this.dialsInProgress(call, ch)) call.callerGaveUp = true;
    const leg = ch.legKey ? call.legs.get(ch.legKey) : undefined;
    if (leg && leg.state === 'ringing' && !leg.provisional && leg.channel.uniqueid === ch.uniqueid) {
      const byCause = ch.cause !== null ? causeToStop(ch.cause) : null;
      if (leg.pendingStop) this.stopRinging(call, leg, byCause ?? leg.pendingStop);
      // Answered its own dial but was never connected, then hung up: it refused the call
      // (a mobile's call-acceptance prompt, a Dial U() routine that hung up).
      else if (ch.dialStatus === 'ANSWER') this.stopRinging(call, leg, 'rejected');
      else if ([...leg.uniqueids].every((u) => call.channels.get(u)?.hungUp !== false)) {
        const fallback: RingStopReason = this.isConnected(call) ? 'answered_elsewhere' : call.abandonedByOrigin || call.callerGaveUp ? 'caller_hangup' : 'unavailable';
        this.stopRinging(call, leg, byCause ?? fallback);
      }
    }
    if (call.live <= 0) this.endCall(call);
  }

  /** Some dial that `ch` (or its Local partner) placed has not ended yet. */
  private dialsInProgress(call: Call, ch: Chan): boolean {
    const partnerUid = this.partnerOf(call, ch);
    for (const c of call.channels.values()) {
      if (c.dialStatus === null && c.dialedBy !== null && (c.dialedBy === ch.uniqueid || c.dialedBy === partnerUid)) return true;
    }
    return false;
  }

  private endCall(call: Call): void {
    this.ensureStarted(call);
    // Handed over to another call and never answered here: nothing was missed.
    const answered = call.answeredAt !== null || call.mergedAway;
    for (const leg of call.legs.values()) {
      if (leg.state === 'ringing') {
        this.stopRinging(call, leg, call.answeredAt !== null ? 'answered_elsewhere' : leg.pendingStop ?? (call.abandonedByOrigin || call.callerGaveUp ? 'caller_hangup' : 'no_answer'));
      }
    }
    const end = this.now;
    if (!answered) {
      const reason = this.missedReason(call);
      const q = call.queue;
      const wait = q ? (q.leftAt ?? end) - q.joinedAt : end - call.startTime;
      this.emit(call, 'call.missed', { reason, waitSeconds: round3(Math.max(0, wait)) });
      const callerSide: HangupBy = call.direction === 'inbound' ? 'caller' : 'agent';
      call.hangupBy = reason === 'abandoned' || call.originEndedBy === 'caller' ? callerSide : 'system';
    } else if (call.mergedAway) {
      call.hangupBy = 'agent';
    }
    const ringEnd = call.answeredAt !== null ? call.answeredAt : call.lastRingEnd ?? end;
    const talkFrom = call.answeredAt;
    this.emit(call, 'call.hangup', {
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
      if (this.channelCall.get(uid) === call.id) this.channelCall.delete(uid);
    }
    this.calls.delete(call.id);
  }

  /** Why a call was missed, from what happened, most telling evidence first. */
  private missedReason(call: Call): MissedReason {
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

  // ---- transfers -----------------------------------------------------------------------------

  private onBlindTransfer(ev: AmiEvent): void {
    if (ev.result && ev.result !== 'Success') return;
    const call = this.callOf(ev.transfereeuniqueid, ev.transfereelinkedid) ?? this.callOf(ev.transfereruniqueid, ev.transfererlinkedid);
    if (!call) return;
    this.ensureStarted(call);
    const fromLeg = this.legOf(call, ev.transfereruniqueid);
    const from = fromLeg?.agent ?? (ev.transfererchannel ? this.opts.agents.fromChannel(ev.transfererchannel) : null) ?? call.originAgent;
    if (fromLeg && fromLeg.state === 'connected') fromLeg.state = 'ended';
    const number = cidOrNull(ev.extension);
    call.connected = null;
    call.hangupBy = null;
    this.emit(call, 'call.transferred', {
      agent: from,
      transfer: { kind: 'blind', from, to: { number, agent: number ? this.opts.agents.fromExtension(number) : null } },
    });
  }

  private onAttendedTransfer(ev: AmiEvent): void {
    if (ev.result && ev.result !== 'Success') return;
    const call =
      this.callOf(ev.transfereeuniqueid, ev.transfereelinkedid) ?? this.callOf(ev.origtransfereruniqueid, ev.origtransfererlinkedid);
    if (!call) return;
    this.ensureStarted(call);
    const fromLeg = this.legOf(call, ev.origtransfereruniqueid);
    const from = fromLeg?.agent ?? (ev.origtransfererchannel ? this.opts.agents.fromChannel(ev.origtransfererchannel) : null) ?? call.originAgent;
    const second = this.callOf(ev.secondtransfereruniqueid, ev.secondtransfererlinkedid)?.channels.get(ev.secondtransfereruniqueid ?? '');
    if (second) second.handingOver = true;
    const targetUid = ev.transfertargetuniqueid;
    const targetCall = this.callOf(targetUid, ev.transfertargetlinkedid);
    let targetLeg: Leg | undefined = targetCall && targetUid ? this.legOf(targetCall, targetUid) : undefined;
    let number: string | null = null;
    if (targetCall && targetCall !== call && targetUid) {
      // Two calls joined: the target's leg moves into the caller's call; the consult call
      // keeps only the transferer and ends on its own.
      number = targetCall.called.number;
      targetLeg = this.moveTree(targetCall, call, targetUid);
      if (targetLeg && targetLeg.state === 'ringing') targetLeg = undefined;
    }
    // The target channel can be plumbing no leg owns (a Local helper the transfer dialled);
    // the target is then whom the transferer consulted: the latest connected leg but theirs.
    targetLeg ??= this.latestConnected(call, fromLeg);
    const toAgent = targetLeg?.agent ?? (ev.transfertargetchannel ? this.opts.agents.fromChannel(ev.transfertargetchannel) : null);
    number ??= toAgent?.extension ?? cidOrNull(ev.transfertargetexten);
    if (fromLeg && fromLeg !== targetLeg && fromLeg.state === 'connected') fromLeg.state = 'ended';
    if (targetLeg && targetLeg.state !== 'ringing') {
      targetLeg.state = 'connected';
      call.connected = targetLeg;
      call.lastAgent = targetLeg.agent ?? call.lastAgent;
    }
    call.hangupBy = null;
    this.emit(call, 'call.transferred', {
      agent: from,
      transfer: { kind: 'attended', from, to: { number, agent: toAgent } },
    });
  }

  private latestConnected(call: Call, except: Leg | undefined): Leg | undefined {
    let best: Leg | undefined;
    for (const leg of call.legs.values()) {
      if (leg === except || leg.state !== 'connected' || leg.connectedAt === null) continue;
      if (!best || leg.connectedAt >= (best.connectedAt ?? 0)) best = leg;
    }
    return best;
  }

  /**
   * Moves the channel `uid`, its Local partner and everything they dialled, with their legs,
   * from one call to another (a pickup, a transfer, a Linkedid that changed). The call left
   * behind ends once its last channel is gone, answered: its parties went on elsewhere.
   */
  private moveTree(from: Call, to: Call, uid: string): Leg | undefined {
    const root = from.channels.get(uid);
    if (!root || from === to) return undefined;
    const moving = new Set<Chan>([root]);
    const partnerUid = this.partnerOf(from, root);
    const partner = partnerUid ? from.channels.get(partnerUid) : undefined;
    if (partner) moving.add(partner);
    for (let grew = true; grew; ) {
      grew = false;
      for (const c of from.channels.values()) {
        if (moving.has(c)) continue;
        const byMoving = c.dialedBy !== null && [...moving].some((m) => m.uniqueid === c.dialedBy);
        const p = this.partnerOf(from, c);
        const partnerMoving = p !== undefined && [...moving].some((m) => m.uniqueid === p);
        if (byMoving || partnerMoving) {
          moving.add(c);
          grew = true;
        }
      }
    }
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
      this.channelCall.set(c.uniqueid, to.id);
      if (c.side === 'origin') c.side = 'leg';
    }
    let first: Leg | undefined;
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
      if (leg.uniqueids.has(uid) || leg.channel.uniqueid === uid) first = leg;
      if (leg.state === 'ringing' && leg.rang) {
        // It stops ringing in the call it left (whoever called it there hung up: a blonde
        // transfer's transferer) and rings on in the call it joined.
        this.emit(from, 'call.ring_stopped', { agent: leg.agent, channel: leg.channel, reason: 'caller_hangup' });
        leg.rang = false;
        leg.ringStart = this.now;
        this.ensureStarted(to);
        this.announceRing(to, leg);
      }
    }
    from.mergedAway = true;
    if (from.live <= 0) this.endCall(from);
    return first;
  }

  /**
   * A channel whose events now carry another live call's Linkedid was bridged into that call
   * (Asterisk 13 propagates the older Linkedid; pickups, Replaces, cross-call transfers).
   */
  private followLinkedid(ev: AmiEvent): void {
    const uid = ev.uniqueid;
    const linkedid = ev.linkedid;
    if (!uid || !linkedid) return;
    const id = this.channelCall.get(uid);
    if (!id) return;
    const call = this.calls.get(id);
    const ch = call?.channels.get(uid);
    if (!call || !ch) return;
    const before = ch.linkedid;
    ch.linkedid = linkedid;
    if (before === null || before === linkedid || linkedid === call.id) return;
    const target = this.calls.get(linkedid);
    if (target && target !== call) this.moveTree(call, target, uid);
  }

  // ---- agents --------------------------------------------------------------------------------

  private memberAgent(ev: AmiEvent): Agent | null {
    const iface = ev.interface ?? ev.location ?? '';
    if (!iface) return null;
    this.opts.agents.learnName(iface, ev.membername);
    return this.opts.agents.fromMember(iface, ev.stateinterface, ev.membername);
  }

  private onMemberLogin(ev: AmiEvent, type: 'agent.login' | 'agent.logout'): void {
    const agent = this.memberAgent(ev);
    if (!agent || !ev.queue) return;
    this.emitAgent(type, agent, { queue: { name: ev.queue, position: null, waitSeconds: null } });
  }

  private onMemberPause(ev: AmiEvent): void {
    const agent = this.memberAgent(ev);
    if (!agent) return;
    const paused = ev.paused === '1' || ev.paused?.toLowerCase() === 'true';
    const reason = cidOrNull(ev.pausedreason) ?? cidOrNull(ev.reason);
    this.emitAgent(paused ? 'agent.paused' : 'agent.unpaused', agent, {
      queue: ev.queue ? { name: ev.queue, position: null, waitSeconds: null } : null,
      reason: paused ? reason : null,
    });
  }

  private onMemberStatus(ev: AmiEvent): void {
    const agent = this.memberAgent(ev);
    const status = ev.status !== undefined ? memberStatus(ev.status) : undefined;
    if (agent && status) this.agentStatusChange(agent, status);
  }

  private onDeviceState(ev: AmiEvent): void {
    const device = ev.device;
    if (!device || !device.includes('/')) return;
    const status = ev.state !== undefined ? deviceStatus(ev.state) : undefined;
    const agent = this.opts.agents.fromChannel(device);
    if (agent && status) this.agentStatusChange(agent, status);
  }

  private agentStatusChange(agent: Agent, status: AgentStatus): void {
    if (this.agentStatus.get(agent.id) === status) return;
    this.agentStatus.set(agent.id, status);
    this.emitAgent('agent.status', agent, { status });
  }

  // ---- emitting ------------------------------------------------------------------------------

  /** Announces the call once the first event that matters arrives, or once we know enough. */
  private maybeAnnounce(call: Call): void {
    if (call.started || this.deferAnnounce) return;
    const known = call.originAgent ? call.called.number !== null : call.caller.number !== null;
    if (known) this.ensureStarted(call);
  }

  private ensureStarted(call: Call): void {
    if (call.started) return;
    call.started = true;
    const now = this.now;
    this.now = call.startTime;
    this.emit(call, 'call.started', { agent: call.originAgent, channel: call.firstChannel });
    this.now = now;
  }

  private nextId(key: string, type: string): string {
    const seed = this.seedBase !== null ? `${this.seedBase}|${type}|${key}|${this.seedN++}` : null;
    return this.opts.ids(seed);
  }

  private vars(call: Call): Record<string, string> {
    const vars: Record<string, string> = {};
    for (const name of call.exportNames) {
      const v = call.omlValues.get(name);
      if (v !== undefined) vars[name] = v;
    }
    return vars;
  }

  private queueInfo(call: Call): QueueInfo | null {
    const q = call.queue;
    if (!q) return null;
    return { name: q.name, position: q.position, waitSeconds: round3(Math.max(0, (q.leftAt ?? this.now) - q.joinedAt)) };
  }

  private emit(call: Call, type: CallEvent['type'], fields: Record<string, unknown>): void {
    call.seq++;
    const event = {
      specVersion: SPEC_VERSION,
      id: this.nextId(call.id, type),
      type,
      time: new Date(Math.round(this.now * 1000)).toISOString(),
      server: this.opts.server,
      callId: call.id,
      seq: call.seq,
      direction: call.direction,
      caller: { ...call.caller },
      called: { ...call.called },
      agent: null,
      queue: this.queueInfo(call),
      vars: this.vars(call),
      channel: null,
      ...(call.origin !== null ? { origin: call.origin } : {}),
      ...fields,
    } as CallEvent;
    this.out.push(event);
  }

  private emitAgent(type: 'agent.login' | 'agent.logout' | 'agent.paused' | 'agent.unpaused' | 'agent.status', agent: Agent, fields: Record<string, unknown>): void {
    const seq = (this.agentSeq.get(agent.id) ?? 0) + 1;
    this.agentSeq.set(agent.id, seq);
    this.out.push({
      specVersion: SPEC_VERSION,
      id: this.nextId(`agent:${agent.id}`, type),
      type,
      time: new Date(Math.round(this.now * 1000)).toISOString(),
      server: this.opts.server,
      seq,
      agent,
      ...fields,
    } as BridgeEvent);
  }
}

