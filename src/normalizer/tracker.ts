// Call and agent state built from AMI events, and the normalized events it yields.
//
// Deterministic and free of I/O: `handle(event)` mutates only this tracker's own state and
// returns the events to emit, so the same AMI trace always gives the same output (replay,
// fixtures, HA pairs). Ids come from an injected IdSource.
//
// CallTracker is the orchestrator: it dates each input, follows Linkedids, and hands the event
// to its row of the mapping table. The parts, each in its own file under src/normalizer/:
//   ami-events.ts      the AMI -> call-event mapping: one table of named handlers and filters
//   ami-fields.ts      reading AMI headers; the filters
//   *-events.ts        the handlers: channel, dial, queue, hangup, transfer, agent events
//   bridges.ts         who shares a bridge; parties connected without a Dial
//   resync.ts          reconciling with the live channels after a reconnect
//   model.ts           the call model: calls, channels, legs
//   dial-tree.ts       walks of a call's dial tree
//   calls.ts, legs.ts  a call's and a party's life, and the events that tell it
//   state.ts           the tracker's state, clock and typed emits
//   statuses.ts, local-channels.ts   what Asterisk's statuses, causes and Local channels mean
import { type AmiEvent, eventName } from './ami-event.js';
import type { BridgeEvent } from '../events/types.js';
import type { AgentDirectory, QueueMembership } from './agents.js';
import { reconcileMemberships } from './agent-events.js';
import { amiHandler } from './ami-events.js';
import { eventTime } from './ami-fields.js';
import { followLinkedid } from './calls.js';
import { resync } from './resync.js';
import type { CallRecord } from './call-record.js';
import { type Cap, TrackerState } from './state.js';

/** Makes event ids: a name-based id from `seed` when given (same AMI event -> same id), else unique. */
export type IdSource = (seed: string | null) => string;

export interface TrackerOptions {
  server: string;
  inboundContexts: readonly string[];
  agents: AgentDirectory;
  ids: IdSource;
  /**
   * Told once per CRM variable name that the contract cannot carry (`Omlcrm x`): the variable
   * is dropped. `last` is true for the last name reported (MAX_DROPPED_NAMES in state.ts).
   */
  onDroppedVariable?: (name: string, last: boolean) => void;
  /** Bounds (config calls.maxInProgress, calls.maxAgents); defaults in state.ts. */
  maxCalls?: number;
  maxAgents?: number;
  /** Told when a bound is reached and something was evicted (for a log line and a metric). */
  onCap?: (cap: Cap, evicted: string) => void;
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

export class CallTracker {
  private readonly s: TrackerState;
  private resyncMark = Number.POSITIVE_INFINITY;
  /** Channels that hung up after the resync query went out (the snapshot may still list them). */
  private goneDuringResync = new Set<string>();

  constructor(private readonly opts: TrackerOptions) {
    this.s = new TrackerState(opts);
  }

  /** Who is an agent: shared with the HTTP side (pops, API), so both know the same agents. */
  get agents(): AgentDirectory {
    return this.opts.agents;
  }

  /** Number of calls in progress (for metrics and tests). */
  get activeCalls(): number {
    return this.s.calls.size;
  }

  /**
   * Calls a previous run had announced and not ended (src/outbox/call-ledger.ts): they go on when
   * their channels are seen again, and end with their call.hangup if the next snapshot of the
   * live channels has none of them.
   */
  restore(records: Iterable<CallRecord>, agents: Iterable<{ id: string; seq: number }> = []): void {
    for (const r of records) this.s.restored.set(r.callId, r);
    for (const a of agents) this.s.agentSeq.set(a.id, a.seq);
  }

  /** Number of calls a restart brought back and not yet seen again (for tests). */
  get pendingRestored(): number {
    return this.s.restored.size;
  }

  /** Number of channels tracked (for tests: state must be freed when calls end). */
  get trackedChannels(): number {
    return this.s.channelCall.size;
  }

  /**
   * Feeds one AMI event. `receivedAt` (ms) stands in for the Timestamp header when Asterisk
   * does not send one (manager.conf timestampevents = no), or one no event can be dated with
   * (eventTime in ami-fields.ts: `1e20`, year 10000, 0 or less).
   */
  handle(ev: AmiEvent, receivedAt: number): BridgeEvent[] {
    const name = eventName(ev);
    const handler = amiHandler(name);
    const ts = eventTime(ev);
    // Ids are name-based only when the event carries Asterisk's own Timestamp: then every
    // replica of the bridge, and every replay, names this event the same.
    this.s.beginEvent(ts ?? receivedAt / 1000, name, ts !== null ? ev : null);
    this.s.inputs++;
    // A snapshot being taken may still list a channel that hangs up meanwhile: remember it.
    if (name === 'hangup' && this.resyncMark !== Number.POSITIVE_INFINITY && ev.uniqueid) this.goneDuringResync.add(ev.uniqueid);
    followLinkedid(this.s, ev);
    handler(this.s, ev);
    return this.s.take();
  }

  /** Reconciles the queue memberships announced with the PBX's list (see reconcileMemberships). */
  memberships(list: readonly QueueMembership[], now: number): BridgeEvent[] {
    this.s.begin(now / 1000, null);
    reconcileMemberships(this.s, list);
    return this.s.take();
  }

  /** Marks the moment a CoreShowChannels query went out. */
  markResync(): void {
    this.resyncMark = this.s.inputs;
    this.goneDuringResync.clear();
  }

  /**
   * Reconciles state with the channels Asterisk reports live (CoreShowChannels after a
   * (re)connect): calls that ended while we were away get their hang-up now; calls that began
   * while we were away are picked up. Calls we already know continue untouched.
   */
  resync(channels: readonly SnapshotChannel[], now: number): BridgeEvent[] {
    const mark = this.resyncMark;
    this.resyncMark = Number.POSITIVE_INFINITY;
    const gone = this.goneDuringResync;
    this.goneDuringResync = new Set();
    this.s.begin(now / 1000, null);
    resync(
      this.s,
      channels.filter((c) => !gone.has(c.uniqueid)),
      mark,
    );
    return this.s.take();
  }
}
