// Takes one sink's rows out of the outbox and hands them to the sink's deliver function.
//
// Scheduling, in one paragraph: at most `concurrency` deliveries in flight, at most one per
// partition, and only a partition's head (its oldest row) is ever attempted, so a call's events
// reach the receiver in order. A head waiting for its retry time holds back its own partition and
// nothing else. The dispatcher wakes up on notify() (something was enqueued), when a delivery
// finishes, and on ONE timer set for the earliest retry time; it never polls. However many of
// those come in one turn of the event loop, it looks for due heads once in that turn (turn()),
// and not at all while every slot is taken. A slow or dead sink only fills its own slots: enqueue
// stays synchronous and other sinks have their own dispatcher.
//
// Nothing here throws to the caller: a throwing deliver() is a retryable failure, and an outbox
// error is logged and retried later (the rows are still in the outbox).
import type { Logger } from 'pino';
import { backoffDelay, type BackoffPolicy } from '../util/backoff.js';
import { ChurnMap } from '../util/churn-map.js';
import { redactUrls } from '../util/redact.js';
import type { DeadReason, Outbox, OutboxItem } from './outbox.js';
import type { DeliveryPace } from './pace.js';

/** What a sink says about one attempt. */
export type DeliveryResult =
  | { ok: true }
  /** A temporary failure (5xx, timeout, connection refused…); `afterMs`: the receiver's Retry-After. */
  | { ok: false; retry: true; afterMs?: number; error: string }
  /**
   * The receiver will never take it (most 4xx), or — `invalid` — the request cannot even be built
   * or sent for this event (a header or URL the HTTP client refuses): dead-lettered at once.
   */
  | { ok: false; retry: false; invalid?: boolean; error: string };

export type Deliver = (item: OutboxItem, signal: AbortSignal) => Promise<DeliveryResult>;

export type RetryPolicy = BackoffPolicy;

/** Time, injectable so tests can drive retries without waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What became of one attempt; for metrics and tests. `durationMs`: how long the attempt took. */
export type DeliveryOutcome = (
  | { kind: 'delivered'; item: OutboxItem; attempt: number }
  | { kind: 'retry'; item: OutboxItem; attempt: number; error: string; nextAttemptAt: number }
  | { kind: 'dead'; item: OutboxItem; attempt: number; error: string; reason: DeadReason }
  /** Cut short by stop(): the row is left as it was and will be attempted again after a restart. */
  | { kind: 'aborted'; item: OutboxItem; attempt: number }
) & { durationMs?: number };

export interface DispatcherOptions {
  sink: string;
  /** Deliveries in flight at once (each to a different partition). */
  concurrency: number;
  retry: RetryPolicy;
  /** Attempts in all (the first included) before an event is dead-lettered. */
  maxAttempts: number;
  /**
   * After a failed attempt, an event older than this (since enqueue) is dead-lettered — at once
   * also when its next attempt would come after that age, rather than after waiting for it.
   */
  maxAgeMs: number;
  /**
   * The longest one attempt may take: then its signal is aborted and it counts as a retryable
   * failure, and its slot is free, whether or not deliver() ever settles. Absent: no limit.
   */
  attemptTimeoutMs?: number;
  log: Logger;
  /** Shared with the other durable sinks: held to a rate while pops go out (src/outbox/pace.ts). */
  pace?: DeliveryPace;
  clock?: Clock;
  /** Source of jitter, in [0, 1). */
  random?: () => number;
  onOutcome?: (outcome: DeliveryOutcome) => void;
}

export interface StopOptions {
  /** How long in-flight deliveries may take to finish before they are aborted (default 5000). */
  deadlineMs?: number;
}

/** Longest error text kept in logs and in the outbox row. */
export const MAX_ERROR_LENGTH = 300;
/** After stop() aborts deliveries, how long it waits for them to let go. */
const ABORT_GRACE_MS = 1000;
/** When the outbox itself fails (disk full, locked too long), the pause before trying again. */
const OUTBOX_ERROR_PAUSE_MS = 1000;
/** setTimeout's limit; a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Capped exponential backoff with jitter, as the AMI reconnect uses: attempt 1 waits initialDelayMs. */
export function truncate(text: string, max = MAX_ERROR_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

interface InFlight {
  item: OutboxItem;
  controller: AbortController;
  done: Promise<void>;
}

export class Dispatcher {
  private readonly clock: Clock;
  private readonly random: () => number;
  /** Keyed by partition: at most one delivery per partition (a ChurnMap: one set and one delete per delivery). */
  private readonly inFlight = new ChurnMap<InFlight>();
  private timer: { handle: unknown; at: number } | null = null;
  private turnQueued = false;
  /** Delivered, not yet written to the outbox (flushAcks). */
  private acks: Array<{ item: OutboxItem; attempt: number; durationMs: number }> = [];
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(
    private readonly outbox: Outbox,
    private readonly opts: DispatcherOptions,
    private readonly deliver: Deliver,
  ) {
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
  }

  /** Starts delivering, beginning with whatever an earlier run left in the outbox. */
  start(): void {
    if (this.state !== 'idle') return;
    const { concurrency, maxAttempts, maxAgeMs, retry } = this.opts;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`outbox dispatcher ${this.opts.sink}: concurrency must be an integer ≥ 1 (is ${concurrency})`);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`outbox dispatcher ${this.opts.sink}: maxAttempts must be an integer ≥ 1 (is ${maxAttempts})`);
    if (!(maxAgeMs > 0)) throw new RangeError(`outbox dispatcher ${this.opts.sink}: maxAgeMs must be > 0 (is ${maxAgeMs})`);
    if (!(retry.initialDelayMs >= 0 && retry.maxDelayMs >= retry.initialDelayMs && retry.factor >= 1 && retry.jitter >= 0 && retry.jitter <= 1)) {
      throw new RangeError(`outbox dispatcher ${this.opts.sink}: retry needs 0 ≤ initialDelayMs ≤ maxDelayMs, factor ≥ 1 and 0 ≤ jitter ≤ 1 (is ${JSON.stringify(retry)})`);
    }
    this.state = 'running';
    this.scheduleTurn();
  }

  /** Something was enqueued for this sink: look in this turn. Cheap; calls in a turn coalesce. */
  notify(): void {
    this.scheduleTurn();
  }

  /** Deliveries in flight right now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Takes no new work, lets deliveries in flight finish until the deadline, then aborts the rest.
   * Whatever was not delivered stays in the outbox for the next start.
   */
  async stop({ deadlineMs = 5000 }: StopOptions = {}): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.clearTimer();
    try {
      if (this.inFlight.size === 0) return;
      const all = () => Promise.all([...this.inFlight.values()].map((f) => f.done));
      if (await this.within(all(), deadlineMs)) return;
      this.opts.log.warn({ sink: this.opts.sink, inFlight: this.inFlight.size, deadlineMs }, 'deliveries still in flight at the stop deadline; aborted (they stay in the outbox)');
      for (const f of this.inFlight.values()) f.controller.abort(new Error('dispatcher stopping'));
      await this.within(all(), ABORT_GRACE_MS);
    } finally {
      // What was delivered is written before the outbox closes.
      this.flushAcks();
    }
  }

  /** Starts every due head it has room for, then sets the timer for the earliest later retry (only turn() calls it). */
  private pump(): void {
    if (this.state !== 'running') return;
    const { sink, concurrency, pace } = this.opts;
    const now = this.clock.now();
    let next: number | null;
    try {
      const free = concurrency - this.inFlight.size;
      let started = 0;
      /** Slots the pace leaves empty for now (src/outbox/pace.ts). */
      let held = 0;
      // No slot: no look. The next one comes with the turn in which a delivery ends.
      if (free > 0) {
        const allowed = pace ? pace.allowance(free, now) : free;
        // In-flight heads are still in the outbox and still due: the outbox leaves them out.
        if (allowed > 0) {
          for (const item of this.outbox.due(sink, now, allowed, this.inFlight)) {
            this.begin(item);
            started += 1;
          }
        }
        pace?.spend(started);
        // Every row the pace allowed was there: more may be due, held back by the pace.
        if (started === allowed) held = free - allowed;
      }
      // Rows due now but left for lack of a slot start when a slot frees; only later ones need
      // the timer, and while every slot is taken the next look comes with the next free slot.
      next = started === Math.max(0, free) ? (this.timer?.at ?? null) : this.outbox.nextAttemptAfter(sink, now);
      // Held back by the pace: look again when it allows them (or a burst of them).
      if (held > 0 && pace) next = Math.min(next ?? Infinity, pace.readyAt(held, now));
    } catch (err) {
      this.opts.log.error({ err, sink }, `outbox unavailable; trying again in ${OUTBOX_ERROR_PAUSE_MS} ms`);
      next = now + OUTBOX_ERROR_PAUSE_MS;
    }
    this.setTimer(next, now);
  }

  private setTimer(at: number | null, now: number): void {
    if (this.timer && this.timer.at === at) return;
    this.clearTimer();
    if (at === null) return;
    const handle = this.clock.setTimeout(() => {
      this.timer = null;
      this.scheduleTurn();
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - now)));
    this.timer = { handle, at };
  }

  private clearTimer(): void {
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    this.timer = null;
  }

  private begin(item: OutboxItem): void {
    const controller = new AbortController();
    const flight: InFlight = { item, controller, done: Promise.resolve() };
    this.inFlight.set(item.partition, flight);
    flight.done = this.attempt(item, controller).finally(() => {
      this.inFlight.delete(item.partition);
      this.scheduleTurn();
    });
  }

  /**
   * Everything that may give the dispatcher work — rows enqueued (notify), deliveries ending, the
   * retry timer — only asks for a turn; the turn writes the acknowledgements that came in (one
   * transaction, one commit, for all of them) and then looks for due heads ONCE (pump). A look is
   * a query on the outbox (the profile's Outbox.due): one per trigger was several per turn under
   * load, for the same answer. setImmediate runs after every I/O callback of this turn, so the
   * responses and batches that came in together are all in; one queued from inside a turn runs
   * in the next turn, so there is at most one turn per turn of the event loop.
   */
  private scheduleTurn(): void {
    // Before start() and after stop() only acknowledgements still need writing.
    if (this.turnQueued || (this.state !== 'running' && this.acks.length === 0)) return;
    this.turnQueued = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    this.turnQueued = false;
    this.flushAcks();
    this.pump();
  };

  /**
   * Writes the acknowledgements waiting since the last turn, and only then reports them
   * delivered: an outcome `delivered` means the row is gone. Should the write fail, the rows are
   * still in the outbox and will be sent again (at least once).
   */
  private flushAcks(): void {
    if (this.acks.length === 0) return;
    const acks = this.acks;
    this.acks = [];
    try {
      this.outbox.ackMany(acks.map((a) => a.item), this.clock.now());
    } catch (err) {
      this.opts.log.error({ err, sink: this.opts.sink, events: acks.length }, 'could not record deliveries in the outbox; those events will be attempted again');
      return;
    }
    for (const { item, attempt, durationMs } of acks) {
      this.opts.log.debug({ sink: this.opts.sink, eventId: item.eventId, partition: item.partition, attempt: `${attempt}/${this.opts.maxAttempts}` }, 'delivered');
      this.emit({ kind: 'delivered', item, attempt, durationMs });
    }
  }

  private async attempt(item: OutboxItem, controller: AbortController): Promise<void> {
    const { signal } = controller;
    const attempt = item.attempts + 1;
    const started = this.clock.now();
    const limit = this.opts.attemptTimeoutMs;
    let result: DeliveryResult;
    try {
      const delivery = this.deliver(item, signal);
      result = await (limit === undefined ? delivery : this.withDeadline(delivery, controller, limit));
      // A sink written in plain JS (or a bug) may resolve with nothing useful.
      if (typeof result !== 'object' || result === null || typeof result.ok !== 'boolean') {
        result = { ok: false, retry: true, error: `deliver resolved with ${JSON.stringify(result)}` };
      }
    } catch (err) {
      result = { ok: false, retry: true, error: err instanceof Error ? err.message : String(err) };
    }
    try {
      this.record(item, attempt, result, signal, this.clock.now() - started);
    } catch (err) {
      // The row is still in the outbox as it was: it will be attempted (again) later.
      this.opts.log.error({ err, sink: this.opts.sink, eventId: item.eventId }, 'could not record a delivery outcome in the outbox; the event will be attempted again');
    }
  }

  /**
   * `delivery`, or at `limit` ms a retryable failure (and the attempt's signal aborted), whichever
   * comes first: a client that ignores the abort (or a deliver() that never settles) cannot hold
   * the slot. One promise and one timer, cleared when the delivery settles (not Promise.race and a
   * second promise per attempt).
   */
  private withDeadline(delivery: Promise<DeliveryResult>, controller: AbortController, limit: number): Promise<DeliveryResult> {
    return new Promise<DeliveryResult>((resolve, reject) => {
      const deadline = this.clock.setTimeout(() => {
        controller.abort(new Error('attempt deadline'));
        resolve({ ok: false, retry: true, error: `the attempt took longer than its deadline (${limit} ms); aborted` });
      }, limit);
      Promise.resolve(delivery).then(
        (result) => {
          this.clock.clearTimeout(deadline);
          resolve(result);
        },
        (err: unknown) => {
          this.clock.clearTimeout(deadline);
          reject(err);
        },
      );
    });
  }

  private record(item: OutboxItem, attempt: number, result: DeliveryResult, signal: AbortSignal, durationMs: number): void {
    const { sink, maxAttempts, maxAgeMs, log } = this.opts;
    const now = this.clock.now();
    const at = `${attempt}/${maxAttempts}`;
    const base = { sink, eventId: item.eventId, partition: item.partition, attempt: at };
    if (result.ok) {
      // Written with the others of this turn (flushAcks).
      this.acks.push({ item, attempt, durationMs });
      return;
    }
    // Error texts quote URLs (undici's messages, a receiver's echo): no credential may reach the
    // log or the dead letters through them.
    const error = truncate(redactUrls(result.error || 'unknown error'));
    // Aborted by stop(), not by the attempt deadline (that one is a failed attempt like any other).
    if (signal.aborted && this.state === 'stopped') {
      log.info({ ...base, error }, 'delivery aborted by shutdown; the event stays in the outbox');
      return this.emit({ kind: 'aborted', item, attempt , durationMs });
    }
    let reason: DeadReason | null = null;
    let nextAttemptAt = now;
    let delay = 0;
    if (!result.retry) reason = result.invalid ? 'invalid-request' : 'rejected';
    else if (attempt >= maxAttempts) reason = 'max-attempts';
    else {
      // The receiver's Retry-After is honoured up to the longest backoff: a receiver answering
      // `Retry-After: 999999999` (or a date years ahead) must not park the call for years.
      const afterMs = typeof result.afterMs === 'number' && Number.isFinite(result.afterMs) ? Math.min(this.opts.retry.maxDelayMs, Math.max(0, result.afterMs)) : 0;
      delay = Math.max(afterMs, backoffDelay(this.opts.retry, attempt, this.random));
      nextAttemptAt = now + delay;
      // Past its max age by the time of its next attempt: give up now instead of holding the
      // partition until then.
      if (nextAttemptAt - item.createdAt >= maxAgeMs) reason = 'max-age';
    }
    if (reason) {
      this.outbox.deadLetter(item, reason, error, now);
      log.error({ ...base, reason, error }, `delivery failed (attempt ${at}); moved to dead letters (${reason})`);
      return this.emit({ kind: 'dead', item, attempt, error, reason , durationMs });
    }
    this.outbox.reschedule(item, nextAttemptAt, error);
    log.warn({ ...base, retryInMs: delay, error }, `delivery failed (attempt ${at}); retrying in ${delay} ms`);
    this.emit({ kind: 'retry', item, attempt, error, nextAttemptAt , durationMs });
  }

  private emit(outcome: DeliveryOutcome): void {
    try {
      this.opts.onOutcome?.(outcome);
    } catch (err) {
      this.opts.log.error({ err, sink: this.opts.sink }, 'onOutcome threw');
    }
  }

  /** True if `p` settled within `ms` of the dispatcher's clock. */
  private async within(p: Promise<unknown>, ms: number): Promise<boolean> {
    let handle: unknown;
    const timeout = new Promise<false>((resolve) => (handle = this.clock.setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([p.then(() => true), timeout]);
    } finally {
      this.clock.clearTimeout(handle);
    }
  }
}
