// The supervisor's wallboard: a sink, implied by `http`, that folds every event into the floor
// (src/supervisor/floor.ts), keeps today's counters in SQLite (src/supervisor/store.ts) and
// streams the floor to supervisors' pages as Server-Sent Events: a whole `snapshot` at open,
// then a `patch` of what changed at most every supervisor.pushIntervalMs, serialized once for
// every stream. Streams that fall behind are cut (the page reconnects and gets a snapshot).
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { BridgeEvent } from '../events/types.js';
import type { SourceKind, SourceStatus } from '../sources/source.js';
import { daysBefore, localTimeZone } from '../supervisor/clock.js';
import { Floor, type FloorOptions } from '../supervisor/floor.js';
import { FloorStore } from '../supervisor/store.js';
import type { FloorSnapshot, QueueFigures } from '../supervisor/types.js';
import type { Sink, SinkDefinition } from './sink.js';
import { KeepAlive, openEventStream, StatusFrame, tooFarBehind } from './sse.js';


export interface WallboardConfig {
  type: 'wallboard';
  timeZone: string;
  serviceLevelSeconds: number;
  queues: ReadonlyArray<{ name: string; serviceLevelSeconds: number }>;
  /** SQLite file for today's counters; ':memory:' keeps them only while the daemon runs. */
  path: string;
  retentionDays: number;
  pushIntervalMs: number;
  keepAliveSeconds: number;
  retryMs: number;
  agents: ReadonlyArray<{ id: string; name?: string; extension?: string }>;
}

interface WallboardSettings {
  http?: { keepAliveSeconds: number; retryMs: number };
  /** Absent in configs built by hand (tests): the schema's defaults. */
  supervisor?: { enabled?: boolean; timeZone?: string; serviceLevelSeconds: number; queues: Array<{ name: string; serviceLevelSeconds: number }>; path?: string; retentionDays: number; pushIntervalMs: number };
  outbox: { path?: string };
  agents: ReadonlyArray<{ id: string; name?: string; extension?: string }>;
}

export interface WallboardOptions {
  config: WallboardConfig;
  log: Logger;
  now?: () => number;
}

export class WallboardSink implements Sink {
  readonly name = 'wallboard';
  private floor: Floor;
  private store: FloorStore | null = null;
  private readonly sessions = new Set<ServerResponse>();
  private push: NodeJS.Timeout | null = null;
  private readonly keepAlive: KeepAlive<ServerResponse>;
  private midnight: NodeJS.Timeout | null = null;
  private flushQueued = false;
  /** The bridge's event source and its state, as the pages are told (a named `status` event). */
  private readonly status = new StatusFrame();
  private readonly now: () => number;
  private config: WallboardConfig;
  private readonly log: Logger;

  constructor(opts: WallboardOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.floor = new Floor(this.floorOptions(opts.config));
    this.keepAlive = new KeepAlive(opts.config.keepAliveSeconds * 1000, (res, frame) => this.write(res, frame));
  }

  private floorOptions(c: WallboardConfig): FloorOptions {
    return {
      timeZone: c.timeZone,
      serviceLevelSeconds: { default: c.serviceLevelSeconds, queues: Object.fromEntries(c.queues.map((q) => [q.name, q.serviceLevelSeconds])) },
      agents: c.agents,
      startedAt: this.now(),
    };
  }

  async start(): Promise<void> {
    this.floor.tick(this.now());
    try {
      this.store = new FloorStore(this.config.path, this.log);
      const pruned = this.store.prune(daysBefore(this.floor.today, this.config.retentionDays));
      const saved = this.store.load(this.floor.today);
      this.floor.restore(this.floor.today, saved.counters, saved.missed);
      this.log.info({ day: this.floor.today, timeZone: this.config.timeZone, counters: saved.counters.length, missed: saved.missed.length, pruned, path: this.config.path }, 'wallboard: today\'s counters loaded');
    } catch (err) {
      // The board still works from now on; only the figures from before this start are missing.
      this.store = null;
      this.log.error({ err, path: this.config.path }, 'wallboard: cannot open its SQLite file; today\'s figures start from zero and will not survive a restart');
    }
    this.push = setInterval(() => this.pushPatch(), this.config.pushIntervalMs);
    this.push.unref();
    this.keepAlive.start();
    // Midnight with no call: the day still turns. A check a minute is enough for counters reset.
    this.midnight = setInterval(() => this.turnOfDay(), 30_000);
    this.midnight.unref();
  }

  deliver(event: BridgeEvent): void {
    this.floor.apply(event);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  /** Today's counters that changed this turn, to SQLite in one transaction. */
  private flush(): void {
    this.flushQueued = false;
    const writes = this.floor.takeWrites();
    if (!writes || !this.store) return;
    try {
      this.store.write(writes.counters, writes.missed);
    } catch (err) {
      this.log.error({ err }, 'wallboard: writing today\'s counters failed; they stay on the board but may not survive a restart');
    }
  }

  private turnOfDay(): void {
    if (!this.floor.tick(this.now())) return;
    this.log.info({ day: this.floor.today, timeZone: this.config.timeZone }, 'wallboard: a new day, counters reset');
    try {
      this.store?.prune(daysBefore(this.floor.today, this.config.retentionDays));
    } catch (err) {
      this.log.warn({ err }, 'wallboard: pruning old days failed');
    }
    this.pushPatch();
  }

  async stop(): Promise<void> {
    for (const t of [this.push, this.midnight]) if (t) clearInterval(t);
    this.push = this.midnight = null;
    this.keepAlive.stop();
    this.flush();
    const store = this.store;
    this.store = null;
    for (const s of this.sessions) s.end();
    this.sessions.clear();
    await store?.close();
  }

  reconfigure(config: unknown): void {
    const next = config as WallboardConfig | null;
    if (!next) return;
    if (next.timeZone !== this.config.timeZone || next.path !== this.config.path) this.log.warn('wallboard: supervisor.timeZone and supervisor.path change with a restart only');
    this.config = { ...next, timeZone: this.config.timeZone, path: this.config.path };
    this.floor.configure(this.floorOptions(this.config));
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  get streams(): number {
    return this.sessions.size;
  }

  get timeZone(): string {
    return this.config.timeZone;
  }

  snapshot(): FloorSnapshot {
    return this.floor.snapshot(this.now());
  }

  queues(): QueueFigures[] {
    return this.floor.allQueues();
  }

  /**
   * The bridge's event source changed state: a wallboard whose bridge lost its PBX shows figures
   * that stopped moving, and must say so. Only the kind and state (as the agent page gets them).
   */
  setSourceStatus(source: SourceKind, status: SourceStatus): void {
    const frame = this.status.update(source, status);
    if (frame) this.broadcast(frame);
  }

  /** Attaches a supervisor's SSE response: the whole floor now, then patches. */
  open(res: ServerResponse): void {
    openEventStream(res);
    // Changes not yet pushed go out to the others first, so this stream's snapshot and the
    // patches that follow it agree.
    this.pushPatch();
    res.write(`retry: ${this.config.retryMs}\n\nevent: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n${this.status.frame ?? ''}`);
    this.sessions.add(res);
    this.keepAlive.add(res);
    res.on('close', () => this.detach(res));
  }

  private pushPatch(): void {
    const patch = this.floor.takePatch(this.now());
    if (patch === null || this.sessions.size === 0) return;
    const frame = patch === 'snapshot' ? `event: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n` : `event: patch\ndata: ${JSON.stringify(patch)}\n\n`;
    this.broadcast(frame);
  }

  private broadcast(frame: string): void {
    for (const res of this.sessions) this.write(res, frame);
  }

  private write(res: ServerResponse, frame: string): void {
    // A snapshot of 1,000 agents is ~400 KB: the 1 MB bound leaves room for two.
    if (tooFarBehind(res)) {
      this.log.warn({ backlogBytes: res.writableLength }, 'wallboard: a supervisor stream fell behind; cut (the page reconnects)');
      this.detach(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }

  private detach(res: ServerResponse): void {
    this.sessions.delete(res);
    this.keepAlive.delete(res);
  }
}

const DEFAULTS: NonNullable<WallboardSettings['supervisor']> = { serviceLevelSeconds: 20, queues: [], retentionDays: 31, pushIntervalMs: 250 };

/** Where today's counters live: supervisor.path, else beside the outbox. */
function storePath(settings: WallboardSettings): string {
  if (settings.supervisor?.path) return settings.supervisor.path;
  const outbox = settings.outbox.path;
  if (outbox === ':memory:') return ':memory:';
  if (outbox) return join(dirname(outbox), 'wallboard.db');
  const state = process.env.STATE_DIRECTORY?.split(':')[0];
  return state ? join(state, 'wallboard.db') : join('data', 'wallboard.db');
}

/** The wallboard's row of the sink table: implied by `http` (unless supervisor.enabled is false), like the screen pop. */
export const wallboardSink: SinkDefinition<WallboardConfig, WallboardSettings> = {
  type: 'wallboard',
  schema: { type: 'object', properties: { type: { const: 'wallboard' } } },
  implied: (config) => {
    if (!config.http || config.supervisor?.enabled === false) return null;
    const s = config.supervisor ?? DEFAULTS;
    return {
      type: 'wallboard',
      timeZone: s.timeZone ?? localTimeZone(),
      serviceLevelSeconds: s.serviceLevelSeconds,
      queues: s.queues,
      path: storePath(config),
      retentionDays: s.retentionDays,
      pushIntervalMs: s.pushIntervalMs,
      keepAliveSeconds: config.http.keepAliveSeconds,
      retryMs: config.http.retryMs,
      agents: config.agents,
    };
  },
  create: (config, ctx) => new WallboardSink({ config, log: ctx.log }),
};
