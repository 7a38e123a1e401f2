// The screen-pop channel: a sink that routes each event to the agents it concerns and streams it
// to their browsers as Server-Sent Events. An agent sees only events about itself (calls it
// rang for, answered, transferred; its own agent.* events) and, if configured, its queues' calls;
// a supervisor sees everything. Per-agent buffers let a reconnecting browser (Last-Event-ID)
// miss nothing, and a fresh connection starts with the agent's calls still in progress.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { type BridgeEvent, eventJson, isCallEvent } from '../events/types.js';
import type { SourceKind, SourceStatus } from '../sources/source.js';
import type { Sink, SinkDefinition } from './sink.js';
import { KeepAlive, openEventStream, StatusFrame, tooFarBehind } from './sse.js';

/**
 * A buffered event: only its SSE message, a flat string, and what the buffer looks it up by. Not
 * the event object beside it: a buffered event lives for minutes, and its object graph (dozens of
 * objects and strings) cost memory the message already holds: a full buffer took 419 KB per agent
 * with it, 327 KB without (BENCHMARKS.md, issue 18, fourth pass). The rare reader of the event
 * itself (GET /agent/pops/:id) parses it back from the message.
 */
interface Buffered {
  id: string;
  /** server|callId of a call event (callKey), null for an agent event. */
  call: string | null;
  /** The SSE message, serialized once for every stream it goes to. */
  frame: string;
}

const DATA = '\ndata: ';

/** The event a buffered SSE message carries (its JSON is one line: JSON.stringify escapes newlines). */
function eventOf(b: Buffered): BridgeEvent {
  const from = b.frame.indexOf(DATA) + DATA.length;
  return JSON.parse(b.frame.slice(from, b.frame.length - 2)) as BridgeEvent;
}

/** A bounded FIFO of events with lookup by id. */
class EventBuffer {
  private items: Buffered[] = [];
  constructor(private readonly max: number) {}

  push(b: Buffered): void {
    this.items.push(b);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }

  /** Events after `id`, or null when `id` is no longer (or never was) in the buffer. */
  after(id: string): Buffered[] | null {
    const i = this.items.findIndex((b) => b.id === id);
    return i < 0 ? null : this.items.slice(i + 1);
  }

  find(id: string): Buffered | undefined {
    return this.items.find((b) => b.id === id);
  }

  /** Every buffered event of the given calls, in order. */
  ofCalls(callIds: ReadonlySet<string>): Buffered[] {
    return this.items.filter((b) => b.call !== null && callIds.has(b.call));
  }

  get size(): number {
    return this.items.length;
  }
}

/** Who a stream is for: an agent sees its own calls (and its queues'), a supervisor every event. */
export type Viewer = { kind: 'agent'; agentId: string } | { kind: 'supervisor'; name: string };

interface Session {
  who: Viewer;
  res: ServerResponse;
}

export interface ScreenPopOptions {
  log: Logger;
  keepAliveSeconds: number;
  retryMs: number;
  bufferPerAgent: number;
  /** Queues whose calls an agent also follows (agents[].queues). */
  agentQueues: ReadonlyMap<string, readonly string[]>;
  /** An event went to at least one stream (src/outbox/pace.ts: deliveries give way while pops go out). */
  popped?: () => void;
}

/** Calls are told apart by server too: two PBXs (one delivery node) may reuse a Linkedid. */
function callKey(e: { server: string; callId: string }): string {
  return `${e.server}|${e.callId}`;
}

const AGENT_SPECIFIC = new Set(['call.ringing', 'call.answered', 'call.ring_stopped']);


export class ScreenPopSink implements Sink {
  readonly name = 'screenpop';
  private readonly buffers = new Map<string, EventBuffer>();
  private readonly all: EventBuffer;
  /** server|callId -> agents the call concerns so far; freed at call.hangup. */
  private readonly involved = new Map<string, Set<string>>();
  /** agentId -> calls of theirs still in progress. */
  private readonly inProgress = new Map<string, Set<string>>();
  private readonly sessions = new Set<Session>();
  /**
   * The open streams by whom they are for: an event is written to its agents' streams and the
   * supervisors', without a look at every other stream (1,000 agents: 1,000 checks per event).
   */
  private readonly byAgent = new Map<string, Set<Session>>();
  private readonly supervisors = new Set<Session>();
  private readonly keepAlive: KeepAlive<Session>;
  /** The bridge's event source status as the streams tell it (a named `status` event), once known. */
  private readonly status = new StatusFrame();

  constructor(private opts: ScreenPopOptions) {
    this.all = new EventBuffer(opts.bufferPerAgent * 10);
    // One timer for every stream, not one per stream: cheap with thousands of agents.
    this.keepAlive = new KeepAlive(opts.keepAliveSeconds * 1000, (s, frame) => this.write(s, frame));
  }

  async start(): Promise<void> {
    this.keepAlive.start();
  }

  async stop(): Promise<void> {
    this.keepAlive.stop();
    for (const s of this.sessions) {
      s.res.end();
      this.detach(s);
    }
  }

  /** Which queues' calls each agent also follows (SIGHUP reload). */
  setAgentQueues(agentQueues: ReadonlyMap<string, readonly string[]>): void {
    this.opts = { ...this.opts, agentQueues };
  }

  /** A reload: the agents' queues may have changed (the stream settings need a restart). */
  reconfigure(config: unknown): void {
    this.setAgentQueues(agentQueues((config as ScreenPopConfig).agents));
  }

  get streams(): number {
    return this.sessions.size;
  }

  deliver(event: BridgeEvent): void {
    // join() makes one flat string; a template literal would make a tree of five, kept as long as the buffer keeps it.
    const frame = ['id: ', event.id, DATA, eventJson(event), '\n\n'].join('');
    const call = isCallEvent(event) ? callKey(event) : null;
    const b: Buffered = { id: event.id, call, frame };
    const agents = this.recipients(event);
    for (const agentId of agents) this.bufferOf(agentId).push(b);
    this.all.push(b);
    let written = this.supervisors.size > 0;
    for (const agentId of agents) {
      const streams = this.byAgent.get(agentId);
      if (!streams) continue;
      for (const s of streams) this.write(s, frame);
      written ||= streams.size > 0;
    }
    for (const s of this.supervisors) this.write(s, frame);
    if (written) this.opts.popped?.();
    if (event.type === 'call.hangup' && call !== null) {
      for (const agentId of this.involved.get(call) ?? []) this.inProgress.get(agentId)?.delete(call);
      this.involved.delete(call);
    }
  }

  /**
   * The bridge's connection to its event source changed. Every stream is told, as a named `status`
   * event without an id (EventSource's `onmessage` never sees it, and it does not move
   * Last-Event-ID): a browser connected to a bridge that lost its PBX gets no calls, and must not
   * look live. Only the kind and state: the error text may name hosts the agents need not know.
   */
  setSourceStatus(source: SourceKind, status: SourceStatus): void {
    const frame = this.status.update(source, status);
    if (frame) for (const s of this.sessions) this.write(s, frame);
  }

  /** Attaches an SSE response for `who`, replaying what it missed since `lastEventId`. */
  open(who: Viewer, res: ServerResponse, lastEventId: string | null): void {
    openEventStream(res);
    res.write(`retry: ${this.opts.retryMs}\n\n`);
    if (this.status.frame) res.write(this.status.frame);
    const session: Session = { who, res };
    const buffer = who.kind === 'supervisor' ? this.all : this.buffers.get(who.agentId);
    let replay: Buffered[] = [];
    const resumed = lastEventId && buffer ? buffer.after(lastEventId) : null;
    if (resumed) replay = resumed;
    else if (buffer && who.kind === 'agent') {
      if (lastEventId) this.opts.log.info({ agent: who.agentId }, 'Last-Event-ID no longer buffered; sending the calls in progress');
      replay = buffer.ofCalls(this.inProgress.get(who.agentId) ?? new Set());
    }
    for (const b of replay) res.write(b.frame);
    this.attach(session);
    res.on('close', () => this.detach(session));
    this.opts.log.debug({ who: describe(who), replayed: replay.length, streams: this.sessions.size }, 'event stream opened');
  }

  /** An event this principal received, for rendering its pops (isolation: none other). */
  eventFor(who: Viewer, eventId: string): BridgeEvent | undefined {
    const buffer = who.kind === 'supervisor' ? this.all : this.buffers.get(who.agentId);
    const b = buffer?.find(eventId);
    return b ? eventOf(b) : undefined;
  }

  /** The agents an event concerns. */
  private recipients(event: BridgeEvent): Set<string> {
    const out = new Set<string>();
    if (!isCallEvent(event)) {
      out.add(event.agent.id);
      return out;
    }
    const key = callKey(event);
    let involved = this.involved.get(key);
    const add = (id: string | undefined) => {
      if (!id) return;
      involved ??= new Set();
      this.involved.set(key, involved);
      if (!involved.has(id)) {
        involved.add(id);
        let calls = this.inProgress.get(id);
        if (!calls) this.inProgress.set(id, (calls = new Set()));
        calls.add(key);
      }
    };
    add(event.agent?.id);
    if (event.type === 'call.transferred') add(event.transfer.to.agent?.id);
    // One agent's ringing, answer or stop is that agent's business alone; the rest of the call
    // (queued, transferred, missed, hangup) goes to every agent the call concerns.
    if (AGENT_SPECIFIC.has(event.type)) {
      if (event.agent) {
        out.add(event.agent.id);
        return out;
      }
      // A party that is not an agent rang or stopped: nobody's pop. Its answer (the remote
      // party of an outbound call picking up) concerns the agents already in the call.
      if (event.type !== 'call.answered') return out;
    }
    if (event.queue) {
      for (const [agentId, queues] of this.opts.agentQueues) if (queues.includes(event.queue.name)) add(agentId);
    }
    for (const id of involved ?? []) out.add(id);
    return out;
  }

  private bufferOf(agentId: string): EventBuffer {
    let b = this.buffers.get(agentId);
    if (!b) this.buffers.set(agentId, (b = new EventBuffer(this.opts.bufferPerAgent)));
    return b;
  }

  private attach(s: Session): void {
    this.sessions.add(s);
    this.keepAlive.add(s);
    if (s.who.kind === 'supervisor') return void this.supervisors.add(s);
    let streams = this.byAgent.get(s.who.agentId);
    if (!streams) this.byAgent.set(s.who.agentId, (streams = new Set()));
    streams.add(s);
  }

  private detach(s: Session): void {
    if (!this.sessions.delete(s)) return;
    this.keepAlive.delete(s);
    if (s.who.kind === 'supervisor') return void this.supervisors.delete(s);
    const streams = this.byAgent.get(s.who.agentId);
    streams?.delete(s);
    if (streams?.size === 0) this.byAgent.delete(s.who.agentId);
  }

  private write(s: Session, frame: string): void {
    if (tooFarBehind(s.res)) {
      this.opts.log.warn({ who: describe(s.who) }, 'event stream too far behind; closing it (the browser resumes from its buffer)');
      s.res.destroy();
      this.detach(s);
      return;
    }
    s.res.write(frame);
  }
}

export function describe(who: Viewer): string {
  return who.kind === 'agent' ? `agent:${who.agentId}` : `supervisor:${who.name}`;
}

/** The screen-pop sink's entry, derived from `http` and `agents` (it is never listed under `sinks:`). */
export interface ScreenPopConfig {
  type: 'screenpop';
  keepAliveSeconds: number;
  retryMs: number;
  bufferPerAgent: number;
  agents: ReadonlyArray<{ id: string; queues?: string[] }>;
}

/** What of the whole config implies a screen-pop sink. */
interface ScreenPopSettings {
  http?: { keepAliveSeconds: number; retryMs: number; bufferPerAgent: number };
  agents: ReadonlyArray<{ id: string; queues?: string[] }>;
}

function agentQueues(agents: ScreenPopConfig['agents']): Map<string, readonly string[]> {
  return new Map(agents.filter((a) => a.queues?.length).map((a) => [a.id, a.queues ?? []]));
}

/** The screen-pop row of the sink table: one sink, implied by `http` (the agent page and streams). */
export const screenpopSink: SinkDefinition<ScreenPopConfig, ScreenPopSettings> = {
  type: 'screenpop',
  // Never validated: implied sinks are not accepted under `sinks:` (config/schema.ts skips them).
  schema: { type: 'object', properties: { type: { const: 'screenpop' } } },
  implied: (config) =>
    config.http
      ? { type: 'screenpop', keepAliveSeconds: config.http.keepAliveSeconds, retryMs: config.http.retryMs, bufferPerAgent: config.http.bufferPerAgent, agents: config.agents }
      : null,
  create: (config, ctx) =>
    new ScreenPopSink({
      log: ctx.log,
      keepAliveSeconds: config.keepAliveSeconds,
      retryMs: config.retryMs,
      bufferPerAgent: config.bufferPerAgent,
      agentQueues: agentQueues(config.agents),
      ...(ctx.popped ? { popped: ctx.popped } : {}),
    }),
};
