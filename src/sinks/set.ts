// The running sinks: built from the sink table (./registry.ts), started in order, handed every
// event, swapped on a reload without losing one, stopped in reverse. The bridge holds one set.
import type { Logger } from 'pino';
import type { BridgeEvent } from '../events/types.js';
import type { DeliveryOutcome } from '../outbox/dispatcher.js';
import type { Outbox } from '../outbox/index.js';
import type { DeliveryPace } from '../outbox/pace.js';
import type { DeliveryThread, ThreadSink } from './delivery-thread.js';
import { SINKS } from './registry.js';
import type { Sink } from './sink.js';

/** What of the config the set reads: the `sinks:` list, and whatever implies a sink (`http`). */
export interface SinksConfig {
  pbx: { name: string };
  sinks: ReadonlyArray<{ type: string; name?: string }>;
}

export interface SinkSetContext {
  /** The root logger: each sink gets a child ({ module: 'sink', sink } or, implied, { module: type }). */
  log: Logger;
  /** The daemon's outbox, opened by the first durable sink that asks for it. */
  outbox: () => Outbox;
  userAgent: string;
  onOutcome: (sink: string, outcome: DeliveryOutcome) => void;
  /** The pace of durable sinks on this thread, and what the screen-pop sink calls at each pop (src/outbox/pace.ts). */
  pace?: DeliveryPace;
  popped?: () => void;
  /** The thread deliveries run on (src/sinks/delivery-thread.ts), started on first use; absent: the main thread. */
  deliveryThread?: () => DeliveryThread;
}

export class SinkSet {
  private sinks: Sink[] = [];
  /** Sinks the config implies (the screen-pop sink): kept across reloads, handed the new entry. */
  private readonly implied = new Map<Sink, (config: SinksConfig) => unknown>();
  /** While sinks are being swapped (reload): events held for the new ones. */
  private held: BridgeEvent[] | null = null;
  /** Names of the sinks that use the outbox (outbox metrics). */
  readonly durable = new Set<string>();

  constructor(private readonly ctx: SinkSetContext) {}

  /** Builds the configured and implied sinks (or takes `given`: replay's stdout) and starts them in order. */
  async start(config: SinksConfig, given?: Sink[]): Promise<void> {
    this.sinks = given ?? [...this.create(config), ...this.createImplied(config)];
    for (const sink of this.sinks) {
      await sink.start();
      this.ctx.log.debug({ sink: sink.name }, 'sink started');
    }
  }

  /** The running sink of a class (the HTTP server serves the screen-pop sink's streams). */
  find<T extends Sink>(cls: abstract new (...args: never[]) => T): T | null {
    return (this.sinks.find((s) => s instanceof cls) as T | undefined) ?? null;
  }

  /** Sinks that write to the outbox (SinkDefinition.durable): they take events in batches. */
  private readonly batched = new WeakSet<Sink>();
  /** Durable sinks that run on the delivery thread (SinkSetContext.deliveryThread). */
  private readonly threaded = new WeakSet<Sink>();

  /** The names of the running sinks that are on the delivery thread: a batch goes to these. */
  threadedNames(): string[] {
    return this.sinks.filter((s) => this.threaded.has(s)).map((s) => s.name);
  }

  /** Hands an event to every sink; one that throws does not keep it from the others. */
  deliver(event: BridgeEvent): void {
    this.deliverNow(event);
    this.deliverDurable(event);
  }

  /**
   * The first half of deliver(): the sinks that do not write to the outbox (screen pop, log),
   * at once. Every event passes here exactly once, also when no such sink runs.
   */
  deliverNow(event: BridgeEvent): void {
    this.held?.push(event);
    this.deliverTo(this.sinks, event, false);
  }

  /** The second half: the durable sinks, called by the bridge inside its batch's transaction. */
  deliverDurable(event: BridgeEvent): void {
    this.deliverTo(this.sinks, event, true);
  }

  /** A reload: the implied sinks take their new entry in place (their open streams stay). */
  reconfigure(config: SinksConfig): void {
    for (const [sink, entryOf] of this.implied) sink.reconfigure?.(entryOf(config));
  }

  /**
   * Stops the configured sinks (they drain; the outbox keeps what they had not delivered), then
   * starts the new ones. Events that arrive meanwhile go to the implied sinks (screen pop) at once
   * and are held for the new sinks, so none is lost. If a new sink fails to start, the old ones
   * come back and the error is thrown.
   */
  async swap(next: SinksConfig): Promise<void> {
    const old = this.sinks.filter((s) => !this.implied.has(s));
    const keep = this.sinks.filter((s) => this.implied.has(s));
    this.held = [];
    this.sinks = keep;
    this.ctx.log.info({ stopping: old.map((s) => s.name) }, 'reload: swapping sinks; events meanwhile are held for the new ones');
    let target = old;
    let failure: unknown = null;
    try {
      for (const sink of [...old].reverse()) {
        try {
          await sink.stop();
        } catch (err) {
          this.ctx.log.error({ err, sink: sink.name }, 'stopping a sink for the reload failed');
        }
      }
      const started: Sink[] = [];
      try {
        const fresh = this.create(next);
        for (const sink of fresh) {
          await sink.start();
          started.push(sink);
        }
        target = fresh;
      } catch (err) {
        failure = err;
        for (const sink of started) await sink.stop().catch(() => undefined);
        for (const sink of old) await sink.start();
      }
    } finally {
      const held = this.held ?? [];
      this.held = null;
      this.sinks = [...target, ...keep];
      for (const event of held) this.deliverTo(target, event);
    }
    if (failure) throw failure;
  }

  /** Stops every sink, last started first; each flushes what it accepted. */
  async stop(): Promise<void> {
    for (const sink of [...this.sinks].reverse()) {
      try {
        await sink.stop();
      } catch (err) {
        this.ctx.log.error({ err, sink: sink.name }, 'stopping a sink failed');
      }
    }
  }

  /** The sinks listed under `sinks:`, each built by its row of the sink table. */
  private create(config: SinksConfig): Sink[] {
    const names = new Set<string>();
    return config.sinks.map((entry, i) => {
      const def = SINKS[entry.type];
      if (!def || def.implied) throw new Error(`sinks[${i}].type: unknown sink type '${entry.type}'`);
      const log = this.ctx.log.child({ module: 'sink', sink: entry.name ?? `${entry.type}#${i}` });
      let sink = this.build(def, entry, config, log);
      // A name keys the sink's outbox rows: two sinks with the same default name (two webhooks to
      // one host) must not take each other's rows. The later ones get `#2`, `#3`… by position,
      // the same at every start. (Names given in the config are unique: config/schema.ts.)
      const base = sink.name;
      for (let n = 2; names.has(sink.name) && entry.name === undefined; n++) {
        const name = `${base}#${n}`;
        if (!names.has(name)) sink = this.build(def, { ...entry, name } as typeof entry, config, log);
      }
      names.add(sink.name);
      return sink;
    });
  }

  /** The sinks the config implies (the screen-pop sink, with `http`), built by the same table. */
  private createImplied(config: SinksConfig): Sink[] {
    return Object.values(SINKS).flatMap((def) => {
      const implied = def.implied;
      const entry = implied?.(config);
      if (!implied || !entry) return [];
      const sink = this.build(def, entry, config, this.ctx.log.child({ module: def.type }));
      this.implied.set(sink, (next) => implied(next));
      return [sink];
    });
  }

  private build(def: (typeof SINKS)[string], entry: { type: string }, config: SinksConfig, log: Logger): Sink {
    let sink: Sink | null = null;
    sink = def.create(entry, {
      log,
      server: config.pbx.name,
      outbox: () => {
        if (sink) this.durable.add(sink.name);
        return this.ctx.outbox();
      },
      userAgent: this.ctx.userAgent,
      onOutcome: this.ctx.onOutcome,
      ...(this.ctx.pace ? { pace: this.ctx.pace } : {}),
      ...(this.ctx.popped ? { popped: this.ctx.popped } : {}),
    });
    if (def.durable && this.ctx.deliveryThread) {
      // Built here only for its name: the sink itself runs on the delivery thread.
      sink = new ThreadedSink(sink.name, { type: def.type, name: sink.name, config: entry }, this.ctx.deliveryThread, () => {
        this.durable.add(sink?.name ?? '');
        this.ctx.outbox();
      });
      this.threaded.add(sink);
    }
    if (def.durable) this.batched.add(sink);
    return sink;
  }

  /** To `sinks`, or only to the durable ones (true) or only to the others (false). */
  private deliverTo(sinks: readonly Sink[], event: BridgeEvent, durable?: boolean): void {
    // On the thread: the bridge hands it whole batches (src/bridge.ts, flush).
    if (durable === true && this.ctx.deliveryThread) return;
    for (const sink of sinks) {
      if (durable !== undefined && this.batched.has(sink) !== durable) continue;
      try {
        sink.deliver(event);
      } catch (err) {
        // A sink must not throw; if one does, the others still get the event.
        this.ctx.log.error({ err, sink: sink.name, eventId: event.id }, 'sink threw while accepting an event');
      }
    }
  }
}

/**
 * A durable sink that runs on the delivery thread: its stand-in in the set, so that starting,
 * stopping and reloading work as for any other sink. Events reach the thread in batches (the
 * bridge's flush); deliver() is only for events held across a reload, for this sink alone.
 */
class ThreadedSink implements Sink {
  constructor(
    readonly name: string,
    private readonly spec: ThreadSink,
    private readonly thread: () => DeliveryThread,
    private readonly openOutbox: () => void,
  ) {}

  async start(): Promise<void> {
    // The main thread opens the file first (creating it, migrating it): the thread finds it ready.
    this.openOutbox();
    await this.thread().register(this.spec);
  }

  deliver(event: BridgeEvent): void {
    this.thread().accept([event], [this.name], false);
  }

  stop(): Promise<void> {
    return this.thread().unregister(this.name);
  }
}
