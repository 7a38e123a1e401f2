// Everything the tracker knows between inputs (the calls, the agents' last status, who is in
// which bridge), the clock of the input being handled, and the events that input yields. The
// handler modules are functions over one TrackerState; CallTracker (tracker.ts) owns it and feeds
// it one input at a time.
//
// Emitting. `emit` and `emitAgent` build the envelope and the fields every event of a call (or an
// agent) shares; the caller supplies the rest, typed from the event type in src/events/types.ts,
// so a handler cannot emit a call.ring_stopped without a reason or a call.ringing without a
// channel. Ids are name-based on (server, AMI event, channel, Timestamp, event type, call, n):
// the same AMI event always gives the same ids (HA peers, replays).
import type { Agent, AgentEvent, AgentStatus, BridgeEvent, CallEvent, CallFields, Envelope } from '../events/types.js';
import { SPEC_VERSION } from '../events/types.js';
import type { AgentDirectory } from './agents.js';
import type { AmiEvent } from './ami-event.js';
import type { CallRecord } from './call-record.js';
import { type Call, exportedVars, queueInfo } from './model.js';
import type { IdSource, TrackerOptions } from './tracker.js';

/** Which bound was reached: calls in progress (calls.maxInProgress) or agents (calls.maxAgents). */
export type Cap = 'calls' | 'agents';

/** Default bounds of what the tracker keeps (config calls.maxInProgress, calls.maxAgents). */
export const DEFAULT_MAX_CALLS = 50_000;
export const DEFAULT_MAX_AGENTS = 10_000;

/** The fields every event of a call takes from the call itself. */
type FromCall = Exclude<keyof CallFields, 'agent' | 'channel'>;

/**
 * What emitting a call event of type T takes: whose event it is (`agent`), its `channel`, and T's
 * own fields. (The Pick only spells out, for a generic T, that every call event has both.)
 */
export type CallEventFields<T extends CallEvent['type']> = Omit<Extract<CallEvent, { type: T }>, keyof Envelope | 'type' | FromCall> & Pick<CallFields, 'agent' | 'channel'>;

/** What emitting an agent event of type T takes besides the agent: T's own fields. */
export type AgentEventFields<T extends AgentEvent['type']> = Omit<Extract<AgentEvent, { type: T }>, keyof Envelope | 'type' | 'agent'>;

/** How many dropped CRM variable names are reported (each once); later ones are dropped silently. */
export const MAX_DROPPED_NAMES = 100;

export class TrackerState {
  /** The calls in progress, by the Linkedid they started with. */
  readonly calls = new Map<string, Call>();
  /**
   * Calls a previous run of the bridge had announced and not ended (src/outbox/call-ledger.ts),
   * by call id, until their first channel is seen again (createCall) or the first snapshot of
   * the live channels says they are gone (resync: they get their one call.hangup).
   */
  readonly restored = new Map<string, CallRecord>();
  /** At most this many calls in progress: a new one beyond ends the oldest. */
  readonly maxCalls: number;
  /** At most this many agents' seq and status are kept: the least recently seen is forgotten. */
  readonly maxAgents: number;
  /** Calls created so far (Call.order). */
  callsCreated = 0;
  /** uniqueid -> call id, for every channel of every live call. */
  readonly channelCall = new Map<string, string>();
  readonly agentSeq = new Map<string, number>();
  /** The status last announced per agent id: agent.status is sent on a change only. */
  readonly agentStatus = new Map<string, AgentStatus>();
  /** Agent id -> queue -> its pause state, as announced (agent.login … agent.logout). */
  readonly memberships = new Map<string, Map<string, { paused: boolean; reason: string | null }>>();
  /** Bridge id -> the channels in it now (conferences, parking retrievals, plain calls). */
  readonly bridges = new Map<string, string[]>();
  /** Contexts whose calls are inbound whoever places them (lower case). */
  readonly inbound: Set<string>;
  readonly server: string;
  readonly agents: AgentDirectory;
  private readonly ids: IdSource;
  private readonly onCap: (cap: Cap, evicted: string) => void;
  /** Time of the input being handled, in seconds (AMI Timestamp, else when it arrived). */
  now = 0;
  /** Inputs handled so far: a channel's birth mark (see CallTracker.markResync). */
  inputs = 0;
  /** While resync adds the snapshot's channels: calls are announced once their variables are in. */
  deferAnnounce = false;
  /**
   * Reports a CRM variable name the contract cannot carry (src/events/crm-vars.ts), dropped: once per
   * name, and at most MAX_DROPPED_NAMES names (hostile input could name millions).
   */
  readonly dropVariable: (name: string) => void;
  private seedBase: string | null = null;
  /** The AMI event whose ids are to be seeded from, while seedBase is not written yet (beginEvent). */
  private seedEvent: AmiEvent | null = null;
  private seedName = '';
  private seedN = 0;
  /** The input's events so far; null until it has one (most AMI events yield none). */
  private out: BridgeEvent[] | null = null;

  constructor(opts: TrackerOptions) {
    this.server = opts.server;
    this.agents = opts.agents;
    this.ids = opts.ids;
    this.maxCalls = Math.max(1, opts.maxCalls ?? DEFAULT_MAX_CALLS);
    this.maxAgents = Math.max(1, opts.maxAgents ?? DEFAULT_MAX_AGENTS);
    this.onCap = opts.onCap ?? (() => undefined);
    this.inbound = new Set(opts.inboundContexts.map((c) => c.toLowerCase()));
    const dropped = new Set<string>();
    const report = opts.onDroppedVariable;
    this.dropVariable = (name) => {
      // Remembered by their first 200 characters: a hostile name may be megabytes long.
      const key = name.length > 200 ? name.slice(0, 200) : name;
      if (!report || dropped.has(key) || dropped.size >= MAX_DROPPED_NAMES) return;
      dropped.add(key);
      report(name, dropped.size === MAX_DROPPED_NAMES);
    };
  }

  /** Starts an input: its time, and the seed of its event ids (null: unique ids). */
  begin(now: number, seedBase: string | null): void {
    this.now = now;
    this.seedBase = seedBase;
    this.seedEvent = null;
    this.seedN = 0;
    this.out = null;
  }

  /**
   * Starts an AMI event named `name` (lower case): the seed of its ids comes from `ev` (null:
   * unique ids). Most AMI events yield nothing: the seed is only written when an id is needed.
   */
  beginEvent(now: number, name: string, ev: AmiEvent | null): void {
    this.begin(now, null);
    this.seedEvent = ev;
    this.seedName = name;
  }

  /** The events the input yielded, in order. */
  take(): BridgeEvent[] {
    const out = this.out ?? [];
    this.out = null;
    return out;
  }

  /** Announces the call (call.started, dated when it started) unless it is announced already. */
  ensureStarted(call: Call): void {
    if (call.started) return;
    call.started = true;
    const now = this.now;
    this.now = call.startTime;
    this.emit(call, 'call.started', { agent: call.originAgent, channel: call.firstChannel });
    this.now = now;
  }

  emit<T extends CallEvent['type']>(call: Call, type: T, fields: CallEventFields<T>): void {
    call.seq++;
    const { agent, channel, ...own } = fields;
    // The key order is the wire order: envelope, the call's fields, then the event's own.
    const event = {
      specVersion: SPEC_VERSION,
      id: this.nextId(call.id, type),
      type,
      time: new Date(Math.round(this.now * 1000)).toISOString(),
      server: this.server,
      callId: call.id,
      seq: call.seq,
      direction: call.direction,
      caller: { ...call.caller },
      called: { ...call.called },
      agent,
      queue: queueInfo(call, this.now),
      vars: exportedVars(call),
      channel,
      ...(call.origin !== null ? { origin: call.origin } : {}),
      ...own,
    };
    // For a generic T, TypeScript does not reduce this spread to the event type; `fields` was
    // checked against the event's own fields, and the rest is what every call event has
    // (call.queued's non-null queue included: the caller joined a queue before it is sent).
    (this.out ??= []).push(event as Extract<CallEvent, { type: T }>);
  }

  /** A bound was reached and `evicted` (a call id, an agent id) made room: told once per eviction. */
  capHit(cap: Cap, evicted: string): void {
    this.onCap(cap, evicted);
  }

  emitAgent<T extends AgentEvent['type']>(agent: Agent, type: T, fields: AgentEventFields<T>): void {
    const seq = (this.agentSeq.get(agent.id) ?? 0) + 1;
    // Re-inserted so that the map's first key is the agent seen least recently (evicted first).
    this.agentSeq.delete(agent.id);
    this.agentSeq.set(agent.id, seq);
    if (this.agentSeq.size > this.maxAgents) this.forgetAgent();
    const event = {
      specVersion: SPEC_VERSION,
      id: this.nextId(`agent:${agent.id}`, type),
      type,
      time: new Date(Math.round(this.now * 1000)).toISOString(),
      server: this.server,
      seq,
      agent,
      ...fields,
    };
    // As in emit: `fields` is typed from the event type, the rest is every agent event's.
    (this.out ??= []).push(event as Extract<AgentEvent, { type: T }>);
  }

  /** The agent seen least recently: its seq starts again at 1 and its status is announced again. */
  private forgetAgent(): void {
    const oldest = this.agentSeq.keys().next().value;
    if (oldest === undefined) return;
    this.agentSeq.delete(oldest);
    this.agentStatus.delete(oldest);
    this.capHit('agents', oldest);
  }

  private nextId(key: string, type: string): string {
    const ev = this.seedEvent;
    if (this.seedBase === null && ev !== null) this.seedBase = `${this.server}|${this.seedName}|${ev.uniqueid ?? ev.destuniqueid ?? ''}|${ev.timestamp}`;
    const seed = this.seedBase !== null ? `${this.seedBase}|${type}|${key}|${this.seedN++}` : null;
    return this.ids(seed);
  }
}
