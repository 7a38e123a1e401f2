// The delivery thread, seen from the main thread. Two threads, one job each:
//
//   main thread      AMI socket -> parser -> normalizer -> contract gate -> screen pop, log sink
//                                                            |  one batch per AMI read
//                                                            v  (postMessage, bounded)
//   delivery thread  one SQLite transaction per batch: call ledger + outbox rows of every durable
//                    sink (webhook, nats) -> their dispatchers -> HTTP / JetStream
//
// so a burst of AMI input and a busy CRM each get a core, and the outbox has one writer (the
// delivery thread): the main thread never waits for SQLite nor for a receiver.
//
// Where an event becomes durable: when the delivery thread commits the transaction of its batch
// (normally within a millisecond or two of its AMI read). Until then the main thread keeps the
// batch (`unacked`): should the delivery thread die, it is started again with every sink and the
// ledger, told what it already committed (a row written in the same transaction names the last
// batch), and given the rest again, in order; nothing is lost and nothing is written twice. A
// stop waits for every batch to commit before the sinks stop. Only a crash of the whole process
// loses the batches in flight, as it loses the AMI bytes not yet read; the call ledger and the
// resync after the restart end those calls.
//
// The hand-over is bounded: past HIGH_WATER events in flight (the delivery thread cannot keep up
// with writing, e.g. a disk that stalls), `onPressure(true)` asks the bridge to stop reading its
// source until they are down to LOW_WATER. Asterisk then buffers; a stall long enough makes it
// drop the manager session, which the AMI source reports and recovers from by reconnecting and
// resyncing.
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import pino, { type Logger } from 'pino';
import { type BridgeEvent, eventJson } from '../events/types.js';
import type { DeliveryOutcome } from '../outbox/dispatcher.js';
import { backoffDelay } from '../util/backoff.js';
import { startCheckpointer, type Checkpointer } from '../util/checkpointer.js';
import type { WarmUpReport } from './warm-up.js';

/** A durable sink whose deliveries run on the thread: its row of the sink table and its entry. */
export interface ThreadSink {
  type: string;
  name: string;
  config: { type: string };
}

/** Main -> worker. */
export type ToWorker =
  | { t: 'start'; spec: ThreadSink }
  | { t: 'stop'; sink: string }
  | { t: 'ledger'; maxCalls: number; maxAgents: number }
  /** Events (JSON) for these sinks, and for the ledger (false: held across a reload, recorded already). */
  | { t: 'events'; seq: number; events: string[]; sinks: string[]; ledger: boolean }
  /** Warm the delivery path up with these events (a recorded call's), on a scratch outbox: src/sinks/warm-up.ts. */
  | { t: 'warm-up'; events: string[]; maxCalls: number; maxAgents: number }
  /** Screen pops are going out (true) or have stopped: the deliveries' pace (src/outbox/pace.ts). */
  | { t: 'popping'; on: boolean };

/** What of an outcome crosses back (the row's payload stays behind). */
export type OutcomeRecord = Omit<DeliveryOutcome, 'item'> & { item: Omit<DeliveryOutcome['item'], 'payload'> & { payload: '' } };

/** Worker -> main. */
export type FromWorker =
  /** The thread's outbox is open; `last`: the last batch it committed for this run, if any. */
  | { t: 'ready'; last: number | null }
  | { t: 'started'; sink: string; error?: string }
  | { t: 'stopped'; sink: string }
  /** Every batch up to `seq` has committed. */
  | { t: 'committed'; seq: number }
  | { t: 'outcomes'; sink: string; list: OutcomeRecord[] }
  /** A log line of the worker's pino (JSON), to be written by the main thread's logger. */
  | { t: 'log'; line: string }
  /** The warm-up is over (src/sinks/warm-up.ts). */
  | { t: 'warmed'; report: WarmUpReport };

/** What the worker is started with (workerData). */
export interface WorkerData {
  outboxPath: string;
  busyTimeoutMs: number;
  synchronous: 'normal' | 'full';
  logLevel: string;
  userAgent: string;
  server: string;
  /** This daemon run: the worker's record of committed batches counts only for the same run. */
  run: string;
  /** outbox.deliveriesPerSecondWhilePopping (src/outbox/pace.ts). */
  deliveriesPerSecondWhilePopping: number;
  /**
   * Fault injection for tests: the worker exits right after committing its n-th transaction,
   * before it says so (the crash the batch record exists for). Never set by the daemon.
   */
  exitAfterCommit?: number;
}

export interface DeliveryThreadOptions extends Omit<WorkerData, 'logLevel' | 'run'> {
  log: Logger;
  onOutcome: (sink: string, outcome: DeliveryOutcome) => void;
  /** true: too many events in flight, stop reading the source; false: read again. */
  onPressure?: (high: boolean) => void;
  /** The thread exited on its own and is being started again (metrics). */
  onRestart?: () => void;
}

/** Events in flight (posted, not committed) at which the source is paused, and resumed. */
export const HIGH_WATER = 20_000;
export const LOW_WATER = 5_000;

const RESTART = { initialDelayMs: 100, maxDelayMs: 10_000, factor: 2, jitter: 0.2 };

type EventsMessage = Extract<ToWorker, { t: 'events' }>;

/** The worker's module: compiled beside this one (dist/), or the TypeScript source under a TS loader (tests). */
function workerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './delivery-worker.ts' : './delivery-worker.js', import.meta.url);
}

export class DeliveryThread {
  private worker: Worker | null = null;
  /** The outbox's WAL checkpoints, on the process's checkpointer thread while this thread writes. */
  private checkpointer: Checkpointer | null = null;
  /** The worker said `ready`: messages may go to it. */
  private ready = false;
  private readonly sinks = new Map<string, ThreadSink>();
  private ledger: Extract<ToWorker, { t: 'ledger' }> | null = null;
  private readonly waiting = new Map<string, Array<(error?: string) => void>>();
  private warming: ((report: WarmUpReport | null) => void) | null = null;
  private readonly run = randomUUID();
  private seq = 0;
  /** Screen pops are going out (PopActivity): told to every worker, the one started again too. */
  private poppingNow = false;
  /** Batches posted and not yet committed, oldest first. */
  private unacked: EventsMessage[] = [];
  private inFlight = 0;
  private paused = false;
  private drainWaiters: Array<() => void> = [];
  private closing = false;
  /** close() was called: warmUp() starts nothing. */
  private closed = false;
  private crashes = 0;
  private spawned = 0;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: DeliveryThreadOptions) {}

  /** Starts a durable sink on the thread (the thread itself on first use); throws what its start threw. */
  async register(spec: ThreadSink): Promise<void> {
    this.sinks.set(spec.name, spec);
    const error = await this.request(spec.name, { t: 'start', spec });
    if (error !== undefined) {
      this.sinks.delete(spec.name);
      throw new Error(error);
    }
  }

  /** The thread records each event in the call ledger (a PBX source), with these caps. */
  useLedger(maxCalls: number, maxAgents: number): void {
    this.ledger = { t: 'ledger', maxCalls, maxAgents };
    this.post(this.ledger);
  }

  /**
   * Runs `events` (JSON) through the thread's delivery path on a scratch outbox, to loopback copies
   * of its webhook sinks, before the first real event (src/sinks/warm-up.ts). Resolves with what
   * was done, or null if the thread went away meanwhile. Nothing reaches a real sink or the outbox.
   */
  warmUp(events: string[], maxCalls: number, maxAgents: number): Promise<WarmUpReport | null> {
    // Closed meanwhile (a stop during the start): no thread is started again for it.
    if (this.warming || this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.warming = resolve;
      this.post({ t: 'warm-up', events, maxCalls, maxAgents });
    });
  }

  /** Hands over one batch (the events of one AMI read) for `sinks`, and for the ledger. */
  accept(events: readonly BridgeEvent[], sinks: string[], ledger = true): void {
    if (events.length === 0) return;
    const message: EventsMessage = { t: 'events', seq: ++this.seq, events: events.map(eventJson), sinks, ledger };
    this.unacked.push(message);
    this.inFlight += message.events.length;
    this.post(message);
    if (!this.paused && this.inFlight >= HIGH_WATER) {
      this.paused = true;
      this.opts.log.warn({ inFlight: this.inFlight, highWater: HIGH_WATER }, 'the delivery thread is behind in writing events to the outbox; reading from the source is paused until it catches up');
      this.opts.onPressure?.(true);
    }
  }

  /** Stops a sink's deliveries after every batch handed over has committed; the rest stays in the outbox. */
  async unregister(sink: string): Promise<void> {
    if (!this.sinks.has(sink)) return;
    await this.drained();
    this.sinks.delete(sink);
    if (this.worker && this.ready) await this.request(sink, { t: 'stop', sink });
  }

  /** Ends the thread: batches handed over commit first, then its sinks stop (SinkSet.stop did), then it exits. */
  async close(): Promise<void> {
    // A worker that crashed is being started again (restartTimer): it gets them once it is back.
    if (this.unacked.length > 0 && (this.worker || this.restartTimer)) await this.drained();
    this.closing = true;
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const worker = this.worker;
    this.worker = null;
    this.ready = false;
    this.warmed(null);
    if (worker) await worker.terminate();
    await this.checkpointer?.stop();
    this.checkpointer = null;
    this.closing = false;
  }

  /** Events handed over and not yet committed (a metric). */
  get pending(): number {
    return this.inFlight;
  }

  /** Resolves when every batch handed over so far has committed. */
  drained(): Promise<void> {
    if (this.unacked.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Screen pops started (true) or stopped going out: the worker paces its deliveries (src/outbox/pace.ts). */
  popping(on: boolean): void {
    this.poppingNow = on;
    if (this.worker && this.ready) this.worker.postMessage({ t: 'popping', on } satisfies ToWorker);
  }

  private post(message: ToWorker): void {
    const worker = this.spawn();
    if (this.ready) worker.postMessage(message);
  }

  private request(sink: string, message: ToWorker): Promise<string | undefined> {
    return new Promise((resolve) => {
      const list = this.waiting.get(sink) ?? [];
      list.push(resolve);
      this.waiting.set(sink, list);
      this.post(message);
    });
  }

  private settle(sink: string, error?: string): void {
    const list = this.waiting.get(sink);
    const resolve = list?.shift();
    if (list?.length === 0) this.waiting.delete(sink);
    resolve?.(error);
  }

  private spawn(): Worker {
    if (this.worker) return this.worker;
    const { log, onOutcome: _o, onPressure: _p, onRestart: _r, exitAfterCommit, ...data } = this.opts;
    // The fault (tests) is injected into the first worker only: the one started again must live.
    const fault = this.spawned++ === 0 && exitAfterCommit !== undefined ? { exitAfterCommit } : {};
    this.checkpointer ??= startCheckpointer(data.outboxPath, log.child({ module: 'outbox' }));
    const worker = new Worker(workerUrl(), {
      workerData: { ...data, ...fault, logLevel: log.level, run: this.run } satisfies WorkerData,
      name: 'crm-bridge deliveries',
    });
    this.worker = worker;
    this.ready = false;
    worker.on('message', (m: FromWorker) => this.receive(m));
    worker.on('error', (err) => log.error({ err }, 'the delivery thread failed'));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.ready = false;
      this.crashed(code);
    });
    return worker;
  }

  private receive(m: FromWorker): void {
    switch (m.t) {
      case 'ready':
        return this.onReady(m.last);
      case 'started':
        if (!m.error) this.crashes = 0;
        return this.settle(m.sink, m.error);
      case 'stopped':
        return this.settle(m.sink);
      case 'committed':
        return this.committed(m.seq);
      case 'outcomes':
        for (const o of m.list) this.opts.onOutcome(m.sink, o as DeliveryOutcome);
        return;
      case 'log':
        return this.relay(m.line);
      case 'warmed':
        return this.warmed(m.report);
    }
  }

  private warmed(report: WarmUpReport | null): void {
    const resolve = this.warming;
    this.warming = null;
    resolve?.(report);
  }

  /**
   * The worker's outbox is open: it gets its sinks and the ledger, then every batch not committed
   * yet, in order (after a crash: those after the last one it had committed).
   */
  private onReady(last: number | null): void {
    const worker = this.worker;
    if (!worker) return;
    this.ready = true;
    if (last !== null) this.committed(last);
    if (this.poppingNow) worker.postMessage({ t: 'popping', on: true } satisfies ToWorker);
    for (const spec of this.sinks.values()) worker.postMessage({ t: 'start', spec } satisfies ToWorker);
    if (this.ledger) worker.postMessage(this.ledger);
    for (const message of this.unacked) worker.postMessage(message);
  }

  private committed(seq: number): void {
    while (this.unacked.length > 0 && (this.unacked[0]?.seq ?? Infinity) <= seq) this.inFlight -= this.unacked.shift()?.events.length ?? 0;
    if (this.paused && this.inFlight <= LOW_WATER) {
      this.paused = false;
      this.opts.log.info({ inFlight: this.inFlight }, 'the delivery thread caught up; reading from the source again');
      this.opts.onPressure?.(false);
    }
    if (this.unacked.length === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Writes a worker's log line through the main thread's logger (its level, redaction and destination). */
  private relay(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, ...fields } = record;
    const name = pino.levels.labels[Number(level)] ?? 'info';
    const write = (this.opts.log as unknown as Record<string, (obj: object, msg?: string) => void>)[name];
    write?.call(this.opts.log, fields, typeof msg === 'string' ? msg : undefined);
  }

  /** The worker ended on its own: it comes back with every sink and the batches not committed. */
  private crashed(code: number): void {
    // A start or stop it never answered: the restart starts every sink still registered anyway.
    for (const sink of [...this.waiting.keys()]) while (this.waiting.has(sink)) this.settle(sink);
    this.warmed(null);
    if (this.closing || (this.sinks.size === 0 && this.unacked.length === 0)) return;
    this.crashes += 1;
    this.opts.onRestart?.();
    const delay = backoffDelay(RESTART, this.crashes, Math.random);
    this.opts.log.error(
      { code, restartInMs: delay, sinks: [...this.sinks.keys()], eventsNotCommitted: this.inFlight },
      'the delivery thread exited; starting it again (events not yet committed are handed over again, undelivered ones wait in the outbox)',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.spawn();
    }, delay);
  }
}
