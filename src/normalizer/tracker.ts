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
import { AgentDirectory, localPartner } from './agents.js';

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
}

interface Chan {
  uniqueid: string;
  name: string;
  side: Side;
  legKey: string | null;
  hungUp: boolean;
  /** Input counter when first seen (see markResync). */
  born: number;
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
  /** Set when an attended transfer took this (consult) call's target away. */
  transferredAway: boolean;
  cause: { code: number | null; text: string | null } | null;
  /** The contract's `origin`, from CRMBRIDGE_ORIGIN; null for calls that came to be the ordinary way. */
  origin: string | null;
}

const VAR_PREFIX = 'Omlcrm';
const EXPORT_LIST = 'OMLCUSTOMDIALPLANVARS';
/**
 * Set by the bridge's own Originate (click-to-call, src/api) on the channel it creates. Asterisk
 * sets an Originate's variables at channel creation, so the VarSet arrives right after the first
 * Newchannel, before the call is announced: every event of the call, call.started included,
 * carries it as `origin`. The first value wins.
 */
const ORIGIN_VAR = 'CRMBRIDGE_ORIGIN';

const DEVICE_STATUS: Record<string, AgentStatus> = {
  NOT_INUSE: 'idle',
  INUSE: 'busy',
  BUSY: 'busy',
  RINGING: 'ringing',
  RINGINUSE: 'ringing',
  ONHOLD: 'on_hold',
  UNAVAILABLE: 'unavailable',
  INVALID: 'unavailable',
  UNKNOWN: 'unavailable',
};

/** app_queue member Status numbers (AST_DEVICE_*). */
const MEMBER_STATUS: Record<string, AgentStatus> = {
  '0': 'unavailable',
  '1': 'idle',
  '2': 'busy',
  '3': 'busy',
  '4': 'unavailable',
  '5': 'unavailable',
  '6': 'ringing',
  '7': 'ringing',
  '8': 'on_hold',
};

/** Dial()'s DIALSTATUS: why an agent's phone stopped ringing, and why a call was missed. */
const DIAL_STATUS: Record<string, { ring: RingStopReason; missed: MissedReason }> = {
  NOANSWER: { ring: 'no_answer', missed: 'no_answer' },
  BUSY: { ring: 'busy', missed: 'busy' },
  CHANUNAVAIL: { ring: 'unavailable', missed: 'unavailable' },
  CONGESTION: { ring: 'unavailable', missed: 'unavailable' },
  INVALIDARGS: { ring: 'unavailable', missed: 'unavailable' },
  DONTCALL: { ring: 'rejected', missed: 'unavailable' },
  TORTURE: { ring: 'rejected', missed: 'unavailable' },
};

/** Queue()'s QUEUESTATUS values that explain a missed call (TIMEOUT is not an abandon). */
const QUEUE_STATUS: Record<string, MissedReason> = {
  TIMEOUT: 'timeout',
  FULL: 'unavailable',
  JOINEMPTY: 'unavailable',
  LEAVEEMPTY: 'unavailable',
  JOINUNAVAIL: 'unavailable',
  LEAVEUNAVAIL: 'unavailable',
};

function causeToStop(code: number): RingStopReason | null {
  switch (code) {
    case 26:
      return 'answered_elsewhere';
    case 17:
      return 'busy';
    case 18:
    case 19:
      return 'no_answer';
    case 21:
      return 'rejected';
    case 1:
    case 3:
    case 20:
    case 27:
    case 34:
    case 38:
      return 'unavailable';
    default:
      return null;
  }
}

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

function isLocal(channel: string): boolean {
  return /^Local\//i.test(channel);
}

export class CallTracker {
  private readonly calls = new Map<string, Call>();
  /** uniqueid -> call id, for every channel of every live call. */
  private readonly channelCall = new Map<string, string>();
  private readonly agentSeq = new Map<string, number>();
  private readonly agentStatus = new Map<string, AgentStatus>();
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
    const handler = this.handlers[name];
    if (!handler) return [];
    const ts = amiTimestamp(ev);
    this.now = ts ?? receivedAt / 1000;
    this.seedBase = ts !== null ? `${this.opts.server}|${name}|${ev.uniqueid ?? ev.destuniqueid ?? ''}|${ev.timestamp}` : null;
    this.seedN = 0;
    this.inputs++;
    this.out = [];
    // A snapshot being taken may still list a channel that hangs up meanwhile: remember it.
    if (name === 'hangup' && this.resyncMark !== Number.POSITIVE_INFINITY && ev.uniqueid) this.goneDuringResync.add(ev.uniqueid);
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
    this.addChannel(call, uid, name);
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
      transferredAway: false,
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
    const ch: Chan = { uniqueid: uid, name, side: s, legKey: key, hungUp: false, born: this.inputs };
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
    // Inherited variables are set as _NAME / __NAME; the CRM knows them by NAME.
    const name = (ev.variable ?? '').replace(/^_{1,2}/, '');
    const value = ev.value ?? '';
    if (name === EXPORT_LIST) {
      for (const n of value.split('&')) {
        const t = n.trim().replace(/^_{1,2}/, '');
        if (t.startsWith(VAR_PREFIX)) call.exportNames.add(t);
      }
    } else if (name.startsWith(VAR_PREFIX)) {
      call.omlValues.set(name, value);
    } else if (name === ORIGIN_VAR) {
      if (value !== '') call.origin ??= value;
    } else if (ch.side === 'origin' && value !== '') {
      if (name === 'QUEUESTATUS') call.queueStatus = value;
      else if (name === 'DIALSTATUS' && value !== 'ANSWER') call.dialStatus = value;
    }
  }

  // ---- ringing, answering ------------------------------------------------------------------

  private onDialBegin(ev: AmiEvent): void {
    // An Originate's own dial of its first channel has no calling channel: nothing rings.
    if (!ev.channel || !ev.destuniqueid || !ev.destchannel) return;
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    const destName = ev.destchannel;
    const destUid = ev.destuniqueid;
    const agent = this.opts.agents.fromChannel(destName);
    if (ch.side === 'origin' && call.called.number === null && call.originAgent) {
      const exten = cidOrNull(ev.exten);
      if (exten && exten !== 's') call.called.number = exten;
    }
    if (!call.started && call.originAgent) {
      call.direction = agent || (call.called.number && this.opts.agents.isAgentExtension(call.called.number)) ? 'internal' : 'outbound';
    }
    this.ensureStarted(call);
    // A leg dialling onward (Local/201@agents -> PJSIP/201) is still that agent's leg.
    if (ch.side === 'leg' && ch.legKey) {
      const leg = call.legs.get(ch.legKey);
      if (leg && (!agent || !leg.agent || agent.id === leg.agent.id)) {
        this.addChannel(call, destUid, destName, 'leg', leg.key);
        return;
      }
    }
    if (agent) {
      const leg = this.ring(call, agent, destUid, destName);
      // A helper channel that is nobody's leg yet and dials an agent (Local/202@internal for a
      // transfer target) is part of that agent's leg from now on, with its Local partner.
      if (ch.side === 'leg' && !ch.legKey) this.joinLeg(call, ch, leg);
    } else {
      const key = `remote:${destUid}`;
      this.addLeg(call, key, null, { uniqueid: destUid, name: destName });
      this.addChannel(call, destUid, destName, 'leg', key);
      call.firstRingAt ??= this.now;
    }
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
    this.ring(hit.call, agent, ev.destuniqueid, ev.destchannel);
  }

  private ring(call: Call, agent: Agent, uid: string, name: string): Leg {
    const existing = call.legs.get(agent.id);
    if (existing && existing.state === 'ringing') {
      this.addChannel(call, uid, name, 'leg', existing.key);
      return existing;
    }
    const leg = this.addLeg(call, agent.id, agent, { uniqueid: uid, name });
    this.addChannel(call, uid, name, 'leg', leg.key);
    call.firstRingAt ??= this.now;
    this.emit(call, 'call.ringing', { agent, channel: leg.channel });
    return leg;
  }

  private joinLeg(call: Call, ch: Chan, leg: Leg): void {
    const partner = localPartner(ch.name);
    const partnerUid = partner ? call.byName.get(partner) : undefined;
    for (const c of [ch, partnerUid ? call.channels.get(partnerUid) : undefined]) {
      if (!c || c.legKey) continue;
      c.legKey = leg.key;
      leg.uniqueids.add(c.uniqueid);
    }
  }

  private addLeg(call: Call, key: string, agent: Agent | null, channel: ChannelRef): Leg {
    const leg: Leg = { key, agent, channel, ringStart: this.now, state: 'ringing', uniqueids: new Set([channel.uniqueid]), connectedAt: null };
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

  private onDialEnd(ev: AmiEvent): void {
    if (!ev.channel || !ev.destuniqueid) return;
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const leg = this.legOf(hit.call, ev.destuniqueid);
    if (!leg) return;
    const status = ev.dialstatus ?? '';
    if (status === 'ANSWER') this.connectLeg(hit.call, leg);
    else if (status === 'CANCEL') this.stopRinging(hit.call, leg, this.cancelReason(hit.call, leg));
    else if (status !== '' && status !== 'RINGING' && status !== 'PROCEEDING' && status !== 'PROGRESS') {
      this.stopRinging(hit.call, leg, DIAL_STATUS[status]?.ring ?? 'no_answer');
    }
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

  private cancelReason(call: Call, leg: Leg): RingStopReason {
    if (call.connected && call.connected !== leg && call.connected.state === 'connected') return 'answered_elsewhere';
    if (call.abandonedByOrigin) return 'caller_hangup';
    return 'no_answer';
  }

  private connectLeg(call: Call, leg: Leg): void {
    if (leg.state !== 'ringing') return;
    leg.state = 'connected';
    leg.connectedAt = this.now;
    this.ensureStarted(call);
    const first = call.answeredAt === null;
    call.answeredAt ??= this.now;
    call.connected = leg;
    call.hangupBy = null;
    const agent = leg.agent ?? call.originAgent;
    call.lastAgent = agent;
    if (leg.agent === null && !first) return; // a second remote party: nothing new for the CRM
    this.emit(call, 'call.answered', {
      agent,
      channel: leg.channel,
      ringSeconds: round3(Math.max(0, this.now - leg.ringStart)),
    });
  }

  private stopRinging(call: Call, leg: Leg, reason: RingStopReason): void {
    if (leg.state !== 'ringing') return;
    leg.state = 'ended';
    call.lastRingEnd = this.now;
    if (!leg.agent) return; // the remote party of an outbound call is nobody's ringing phone
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
    if (call.answeredAt === null) {
      if (ch.side === 'origin' && byParty && call.queueStatus === null && call.dialStatus === null) {
        call.abandonedByOrigin = true;
      }
      return;
    }
    if (call.hangupBy !== null) return;
    const leg = ch.legKey ? call.legs.get(ch.legKey) : undefined;
    const connectedChannel = ch.side === 'origin' || (leg !== undefined && leg === call.connected && leg.state === 'connected');
    if (!connectedChannel) return;
    if (!byParty) call.hangupBy = 'system';
    else if (ch.side === 'origin') call.hangupBy = call.direction === 'inbound' ? 'caller' : 'agent';
    else call.hangupBy = leg?.agent ? 'agent' : 'caller';
  }

  private onHangup(ev: AmiEvent): void {
    const hit = this.channelEvent(ev);
    if (!hit) return;
    const { call, ch } = hit;
    if (ch.hungUp) return;
    ch.hungUp = true;
    call.live--;
    const code = ev.cause !== undefined && ev.cause !== '' ? Number(ev.cause) : NaN;
    if (ch.uniqueid === call.firstChannel.uniqueid || call.cause === null) {
      call.cause = { code: Number.isFinite(code) ? code : null, text: cidOrNull(ev['cause-txt']) };
    }
    const leg = ch.legKey ? call.legs.get(ch.legKey) : undefined;
    if (leg && leg.state === 'ringing' && [...leg.uniqueids].every((u) => call.channels.get(u)?.hungUp !== false)) {
      const byCause = Number.isFinite(code) ? causeToStop(code) : null;
      this.stopRinging(call, leg, byCause ?? (call.abandonedByOrigin ? 'caller_hangup' : 'unavailable'));
    }
    if (call.live <= 0) this.endCall(call);
  }

  private endCall(call: Call): void {
    this.ensureStarted(call);
    const answered = call.answeredAt !== null;
    for (const leg of call.legs.values()) {
      if (leg.state === 'ringing') {
        this.stopRinging(call, leg, answered ? 'answered_elsewhere' : call.abandonedByOrigin ? 'caller_hangup' : 'no_answer');
      }
    }
    const end = this.now;
    if (!answered) {
      const reason = this.missedReason(call);
      const q = call.queue;
      const wait = q ? (q.leftAt ?? end) - q.joinedAt : end - call.startTime;
      this.emit(call, 'call.missed', { reason, waitSeconds: round3(Math.max(0, wait)) });
      call.hangupBy = reason === 'abandoned' ? (call.direction === 'inbound' ? 'caller' : 'agent') : 'system';
    } else if (call.transferredAway) {
      call.hangupBy = 'agent';
    }
    const ringEnd = answered ? call.answeredAt : call.lastRingEnd ?? end;
    this.emit(call, 'call.hangup', {
      agent: call.lastAgent,
      channel: call.firstChannel,
      disposition: answered ? 'answered' : 'missed',
      hangupBy: call.hangupBy ?? 'system',
      cause: call.cause ?? { code: null, text: null },
      durations: {
        ringSeconds: call.firstRingAt === null ? 0 : round3(Math.max(0, (ringEnd ?? end) - call.firstRingAt)),
        talkSeconds: answered ? round3(Math.max(0, end - (call.answeredAt ?? end))) : 0,
        totalSeconds: round3(Math.max(0, end - call.startTime)),
      },
    });
    for (const uid of call.channels.keys()) {
      if (this.channelCall.get(uid) === call.id) this.channelCall.delete(uid);
    }
    this.calls.delete(call.id);
  }

  private missedReason(call: Call): MissedReason {
    if (call.abandonedByOrigin) return 'abandoned';
    const byQueue = call.queueStatus ? QUEUE_STATUS[call.queueStatus] : undefined;
    if (byQueue) return byQueue;
    if (call.dialStatus === 'CANCEL') return 'abandoned';
    const byDial = call.dialStatus ? DIAL_STATUS[call.dialStatus]?.missed : undefined;
    return byDial ?? (call.firstRingAt !== null ? 'no_answer' : 'unavailable');
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
    const targetUid = ev.transfertargetuniqueid;
    const targetCall = this.callOf(targetUid, ev.transfertargetlinkedid);
    let targetLeg: Leg | undefined = targetCall && targetUid ? this.legOf(targetCall, targetUid) : undefined;
    let number: string | null = null;
    if (targetCall && targetCall !== call && targetUid) {
      // Two calls joined: the target's leg moves into the caller's call; the consult call
      // keeps only the transferer and ends on its own.
      number = targetCall.called.number;
      targetLeg = this.moveLeg(targetCall, call, targetUid);
      targetCall.transferredAway = true;
    }
    // The target channel can be plumbing no leg owns (a Local helper the transfer dialled);
    // the target is then whom the transferer consulted: the latest connected leg but theirs.
    targetLeg ??= this.latestConnected(call, fromLeg);
    const toAgent = targetLeg?.agent ?? (ev.transfertargetchannel ? this.opts.agents.fromChannel(ev.transfertargetchannel) : null);
    number ??= toAgent?.extension ?? cidOrNull(ev.transfertargetexten);
    if (fromLeg && fromLeg !== targetLeg && fromLeg.state === 'connected') fromLeg.state = 'ended';
    if (targetLeg) {
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

  /** Moves the channel `uid` (with its Local partner) and its leg from one call to another. */
  private moveLeg(from: Call, to: Call, uid: string): Leg | undefined {
    const ch = from.channels.get(uid);
    if (!ch) return undefined;
    const moving = [ch];
    const partner = localPartner(ch.name);
    const partnerUid = partner ? from.byName.get(partner) : undefined;
    const p = partnerUid ? from.channels.get(partnerUid) : undefined;
    if (p) moving.push(p);
    const oldLeg = ch.legKey ? from.legs.get(ch.legKey) : undefined;
    const agent = oldLeg?.agent ?? this.opts.agents.fromChannel(ch.name);
    const key = agent?.id ?? `remote:${uid}`;
    const leg: Leg = { key, agent, channel: { uniqueid: ch.uniqueid, name: ch.name }, ringStart: this.now, state: 'connected', uniqueids: new Set(), connectedAt: this.now };
    to.legs.set(key, leg);
    for (const c of moving) {
      from.channels.delete(c.uniqueid);
      from.byName.delete(c.name);
      if (!c.hungUp) from.live--;
      this.addChannel(to, c.uniqueid, c.name, 'leg', key);
      const moved = to.channels.get(c.uniqueid);
      if (moved) moved.hungUp = c.hungUp;
      if (c.hungUp) to.live--;
    }
    if (oldLeg) oldLeg.state = 'ended';
    if (from.live <= 0) this.endCall(from);
    return leg;
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
    const status = ev.status !== undefined ? MEMBER_STATUS[ev.status] : undefined;
    if (agent && status) this.agentStatusChange(agent, status);
  }

  private onDeviceState(ev: AmiEvent): void {
    const device = ev.device;
    if (!device || !device.includes('/')) return;
    const status = ev.state !== undefined ? DEVICE_STATUS[ev.state] : undefined;
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

