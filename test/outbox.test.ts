// The durable outbox and its dispatcher, on real SQLite files. Time is a fake clock wherever a
// retry delay matters; waiting is for specific outcomes, each with a deadline that names it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pino, { type Logger } from 'pino';
import t, { type Test } from 'tap';
import { backoffDelay } from '../dist/util/backoff.js';
import {
  DeliveryPace,
  Dispatcher,
  MAX_ERROR_LENGTH,
  Outbox,
  OutboxVersionError,
  PopActivity,
  POPPING_WINDOW_MS,
  type Clock,
  type DeliveryOutcome,
  type DeliveryResult,
  type DispatcherOptions,
  type OutboxItem,
} from '../dist/outbox/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'crm-bridge-outbox-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let files = 0;
const dbPath = () => join(tmp, `${++files}`, 'outbox.db');
const silent = pino({ level: 'silent' });

/** Resolves waiters whose condition became true; poked by fake sinks and dispatcher outcomes. */
class Watch {
  private readonly waiters = new Set<() => void>();
  poke(): void {
    for (const w of [...this.waiters]) w();
  }
  until<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const w = () => {
        const v = check();
        if (v === undefined || v === false) return;
        this.waiters.delete(w);
        clearTimeout(timer);
        resolve(v);
      };
      this.waiters.add(w);
      w();
    });
  }
}

/** A clock that moves only when told to; timers fire synchronously inside advance(). */
class FakeClock implements Clock {
  private id = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.id, { at: this.t + ms, fn });
    return this.id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  get nextTimerAt(): number | null {
    const ats = [...this.timers.values()].map((x) => x.at);
    return ats.length ? Math.min(...ats) : null;
  }
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= this.t).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) return;
      this.timers.delete(due[0]);
      due[1].fn();
    }
  }
}

interface Call {
  item: OutboxItem;
  signal: AbortSignal;
  settled: boolean;
  resolve(r: DeliveryResult): void;
  reject(err: unknown): void;
}

/** A sink whose every delivery waits until the test answers it (or `auto` does). */
class FakeSink {
  readonly calls: Call[] = [];
  auto: ((item: OutboxItem) => DeliveryResult | undefined) | null = null;
  constructor(private readonly watch: Watch) {}
  deliver = (item: OutboxItem, signal: AbortSignal): Promise<DeliveryResult> =>
    new Promise<DeliveryResult>((resolve, reject) => {
      const call: Call = {
        item,
        signal,
        settled: false,
        resolve: (r) => ((call.settled = true), resolve(r)),
        reject: (e) => ((call.settled = true), reject(e)),
      };
      this.calls.push(call);
      const answer = this.auto?.(item);
      if (answer) setImmediate(() => call.resolve(answer));
      this.watch.poke();
    });
  /** The n-th call (1-based), once it has been made. */
  call(n: number, what = `delivery #${n}`): Promise<Call> {
    return this.watch.until(() => this.calls[n - 1], what);
  }
  pending(): Call[] {
    return this.calls.filter((c) => !c.settled);
  }
}

interface Rig {
  outbox: Outbox;
  sink: FakeSink;
  dispatcher: Dispatcher;
  outcomes: DeliveryOutcome[];
  watch: Watch;
  /** Resolves with the first outcome (counting from `from`) that matches, once the dispatcher has reacted to it. */
  outcome(pred: (o: DeliveryOutcome) => boolean, what: string, from?: number): Promise<DeliveryOutcome>;
}

function rig(t: Test, opts: Partial<DispatcherOptions> = {}, path = dbPath()): Rig {
  const outbox = Outbox.open(path);
  const watch = new Watch();
  const sink = new FakeSink(watch);
  const outcomes: DeliveryOutcome[] = [];
  const dispatcher = new Dispatcher(
    outbox,
    {
      sink: 'crm',
      concurrency: 2,
      retry: { initialDelayMs: 1000, maxDelayMs: 8000, factor: 2, jitter: 0 },
      maxAttempts: 5,
      maxAgeMs: 86_400_000,
      log: silent,
      ...opts,
      onOutcome: (o) => {
        outcomes.push(o);
        opts.onOutcome?.(o);
        watch.poke();
      },
    },
    sink.deliver,
  );
  t.teardown(async () => {
    for (const c of sink.pending()) c.resolve({ ok: false, retry: true, error: 'test over' });
    await dispatcher.stop({ deadlineMs: 0 });
    outbox.close();
  });
  const outcome = async (pred: (o: DeliveryOutcome) => boolean, what: string, from = 0) => {
    const found = await watch.until(() => outcomes.slice(from).find(pred), what);
    // The dispatcher reacts in its next turn (a setImmediate), which the slot freed after the
    // outcome queues; it may come after a turn queued here now, never after the one after it.
    await turn();
    await turn();
    return found;
  };
  return { outbox, sink, dispatcher, outcomes, watch, outcome };
}

/** One macrotask turn: everything the dispatcher does in reaction to a change has happened by then. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const delivered = (r: Rig, sink = 'crm') => r.outcomes.filter((o) => o.kind === 'delivered' && o.item.sink === sink).map((o) => o.item.eventId);

// --- order and isolation --------------------------------------------------------------------

t.test('given concurrency 4 and failures in the middle, when 8 calls are delivered, then each call arrives in order, one event at a time, while calls proceed in parallel', async (t) => {
  const seed = Date.now() % 100_000;
  t.comment(`seed ${seed}`);
  const random = prng(seed);
  const r = rig(t, { concurrency: 4, maxAttempts: 1000, retry: { initialDelayMs: 1, maxDelayMs: 4, factor: 2, jitter: 0.5 } });
  const calls = 8;
  const perCall = 25;
  const expected = new Map<string, string[]>();
  for (let i = 0; i < calls * perCall; i++) {
    const partition = `call-${i % calls}`;
    r.outbox.enqueue('crm', partition, `ev-${i}`, `{"n":${i}}`);
    expected.set(partition, [...(expected.get(partition) ?? []), `ev-${i}`]);
  }
  let inFlight = 0;
  let maxInFlight = 0;
  const busy = new Set<string>();
  const problems: string[] = [];
  const done = new Map<string, string[]>();
  r.sink.auto = (item) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (busy.has(item.partition)) problems.push(`two deliveries at once in ${item.partition}`);
    busy.add(item.partition);
    const got = done.get(item.partition) ?? [];
    const want = expected.get(item.partition)![got.length];
    if (item.eventId !== want) problems.push(`${item.partition}: attempted ${item.eventId} while ${want} was not delivered yet`);
    const fail = random() < 0.3;
    // Bookkeeping for "at once" happens when the answer is given, one turn later.
    setImmediate(() => {
      inFlight--;
      busy.delete(item.partition);
      if (!fail) done.set(item.partition, [...got, item.eventId]);
    });
    return fail ? { ok: false, retry: true, error: 'HTTP 503' } : { ok: true };
  };
  r.dispatcher.start();
  await r.watch.until(() => delivered(r).length === calls * perCall, 'every event delivered');
  t.same(problems, []);
  t.same(Object.fromEntries(done), Object.fromEntries(expected), 'per call, the delivered order is the enqueue order');
  t.ok(r.outcomes.some((o) => o.kind === 'retry'), 'some attempts failed and were retried');
  t.equal(maxInFlight, 4, 'four calls were delivered in parallel, never more');
  t.equal(r.outbox.depth(), 0);
});

t.test('given one call stuck in delivery and one waiting for its retry, when others are enqueued, then the others are delivered and the stuck calls keep their later events', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { concurrency: 2, clock });
  const now = clock.now();
  r.outbox.enqueue('crm', 'stuck', 's1', '{}', now);
  r.outbox.enqueue('crm', 'backoff', 'b1', '{}', now);
  r.outbox.enqueue('crm', 'stuck', 's2', '{}', now);
  r.outbox.enqueue('crm', 'backoff', 'b2', '{}', now);
  for (let i = 0; i < 6; i++) r.outbox.enqueue('crm', `other-${i % 3}`, `o${i}`, '{}', now);
  r.dispatcher.start();
  const [s1, b1] = [await r.sink.call(1), await r.sink.call(2)];
  t.same([s1.item.eventId, b1.item.eventId], ['s1', 'b1'], 'the oldest heads go first');
  b1.resolve({ ok: false, retry: true, afterMs: 3_600_000, error: 'HTTP 429' });
  // s1 never answers: it holds one of the two slots for the rest of the test.
  r.sink.auto = () => ({ ok: true });
  await r.watch.until(() => delivered(r).length === 6, 'the other calls delivered');
  t.same(delivered(r), ['o0', 'o1', 'o2', 'o3', 'o4', 'o5']);
  t.same(r.sink.calls.map((c) => c.item.eventId).filter((id) => /^[sb]2$/.test(id)), [], 's2 and b2 were not attempted');
  t.same(r.outbox.list().map((i) => i.eventId), ['s1', 'b1', 's2', 'b2']);
});

t.test('given a sink that never answers, when events go to it and to another sink, then the other sink gets all of them', async (t) => {
  const slow = rig(t, { concurrency: 3 });
  const watch = new Watch();
  const fast = new FakeSink(watch);
  fast.auto = () => ({ ok: true });
  let fastDelivered = 0;
  const other = new Dispatcher(
    slow.outbox,
    { sink: 'fast', concurrency: 3, retry: { initialDelayMs: 1, maxDelayMs: 1, factor: 1, jitter: 0 }, maxAttempts: 3, maxAgeMs: 60_000, log: silent, onOutcome: (o) => (o.kind === 'delivered' && fastDelivered++, watch.poke()) },
    fast.deliver,
  );
  t.teardown(() => other.stop({ deadlineMs: 0 }));
  slow.dispatcher.start();
  other.start();
  for (let i = 0; i < 300; i++) {
    for (const sink of ['crm', 'fast']) slow.outbox.enqueue(sink, `call-${i % 30}`, `ev-${i}`, '{}');
    slow.dispatcher.notify();
    other.notify();
  }
  await watch.until(() => fastDelivered === 300, 'the fast sink delivered all 300');
  t.equal(slow.sink.calls.length, 3, 'the slow sink has exactly its 3 slots busy');
  t.equal(slow.outbox.depth('crm'), 300, 'nothing of the slow sink is lost');
  t.equal(slow.outbox.depth('fast'), 0);
});

t.test('given many wake-ups in one turn (rows enqueued, deliveries ending, the retry timer), then the dispatcher looks for due heads once in that turn, oldest due first, and not at all while every slot is taken', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { clock, concurrency: 3 });
  let looks = 0;
  const due = r.outbox.due.bind(r.outbox);
  r.outbox.due = (...args) => (looks++, due(...args));
  const t0 = clock.now();
  for (const [p, id] of [['a', 'a1'], ['b', 'b1'], ['c', 'c1'], ['b', 'b2']]) r.outbox.enqueue('crm', p!, id!, '{}', t0);
  r.dispatcher.start();
  const [a1, b1, c1] = [await r.sink.call(1), await r.sink.call(2), await r.sink.call(3)];
  a1.resolve({ ok: false, retry: true, error: 'HTTP 503' });
  await r.outcome((o) => o.kind === 'retry', 'a1 to be retried');
  t.equal(clock.nextTimerAt, t0 + 1000, 'the retry timer is set (a slot is free)');

  r.outbox.enqueue('crm', 'd', 'd1', '{}', t0);
  r.outbox.enqueue('crm', 'e', 'e1', '{}', t0);
  looks = 0;
  // All in one turn: two deliveries end, the retry timer fires, and five batches say "enqueued".
  b1.resolve({ ok: true });
  c1.resolve({ ok: true });
  clock.advance(1000);
  for (let i = 0; i < 5; i++) r.dispatcher.notify();
  const started = [await r.sink.call(4), await r.sink.call(5), await r.sink.call(6)].map((c) => c.item.eventId);
  await turn();
  await turn();
  t.equal(looks, 1, 'one look for due heads in that turn');
  t.same(started, ['d1', 'e1', 'a1'], 'the oldest due heads first, as before; b2 (due since b1 was delivered) waits for a slot');
  t.same(delivered(r).sort(), ['b1', 'c1'], 'the deliveries that ended were acknowledged in that turn');

  looks = 0;
  for (let i = 0; i < 5; i++) r.dispatcher.notify();
  await turn();
  await turn();
  t.equal(looks, 0, 'no look while every slot is taken');
  t.equal(r.sink.calls.length, 6);
});

// --- the pace while screen pops go out (src/outbox/pace.ts) ----------------------------------

t.test('given a delivery pace of 100/s, then it limits only while popping: a burst of 5, then 100 a second, and a fresh allowance when popping starts again', async (t) => {
  const t0 = 1_700_000_000_000;
  const pace = new DeliveryPace(100, t0);
  t.equal(pace.allowance(50, t0), 50, 'not popping: no limit');
  pace.spend(50);
  pace.setPopping(true, t0);
  t.ok(pace.limited);
  t.equal(pace.allowance(8, t0), 5, 'popping: a burst of 1/20 of a second');
  pace.spend(5);
  t.equal(pace.allowance(8, t0), 0);
  t.equal(pace.readyAt(8, t0), t0 + 50, 'the next burst (5 at 100/s) in 50 ms');
  t.equal(pace.readyAt(2, t0), t0 + 20, 'two wanted: in 20 ms');
  t.equal(pace.allowance(8, t0 + 30), 3, '30 ms later: 3');
  t.equal(pace.allowance(8, t0 + 10_000), 5, 'never more than a burst at once, however long it waited');
  pace.setPopping(false, t0 + 10_000);
  t.equal(pace.allowance(80, t0 + 10_000), 80, 'popping stopped: no limit');
  t.equal(pace.readyAt(80, t0 + 10_000), t0 + 10_000);
  pace.setPopping(true, t0 + 20_000);
  t.equal(pace.allowance(80, t0 + 20_000), 5, 'popping again: a fresh burst, not what accrued meanwhile');
  const off = new DeliveryPace(0, t0);
  off.setPopping(true, t0);
  t.notOk(off.limited, '0: no limit');
  t.equal(off.allowance(1000, t0), 1000);
});

t.test('given pops, then PopActivity says popping at the first and stopped once none came for a window', async (t) => {
  let now = 1_700_000_000_000;
  const changes: boolean[] = [];
  const activity = new PopActivity((on) => changes.push(on), () => now);
  t.teardown(() => activity.stop());
  activity.popped();
  activity.popped();
  t.same(changes, [true], 'told once');
  now += POPPING_WINDOW_MS - 1;
  activity.popped();
  now += POPPING_WINDOW_MS - 1;
  activity.check();
  t.same(changes, [true], 'a pop within the window keeps it on');
  now += 1;
  activity.check();
  t.same(changes, [true, false], 'a window without a pop: stopped');
  t.notOk(activity.popping);
  activity.popped();
  t.same(changes, [true, false, true]);
});

t.test('given a dispatcher on a pace of 100/s while popping, then it starts no more than the pace allows, looks again when it allows more, and goes at full speed once popping stops', async (t) => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const pace = new DeliveryPace(100, t0);
  pace.setPopping(true, t0);
  const r = rig(t, { clock, concurrency: 8, pace });
  r.sink.auto = () => ({ ok: true });
  for (let i = 0; i < 40; i++) r.outbox.enqueue('crm', `p${i}`, `e${i}`, '{}', t0);
  r.dispatcher.start();
  const settle = async () => {
    for (let i = 0; i < 6; i++) await turn();
  };
  await settle();
  t.equal(r.sink.calls.length, 5, 'a burst of 5 at once (1/20 of 100), though 8 slots are free');
  t.ok(clock.nextTimerAt !== null && clock.nextTimerAt > t0 && clock.nextTimerAt <= t0 + 50, 'a timer for when the pace allows more');
  for (let ms = 10; ms <= 200; ms += 10) {
    clock.advance(10);
    await settle();
    t.ok(r.sink.calls.length <= 5 + ms / 10, `at ${ms} ms: ${r.sink.calls.length} started, within 5 + 100/s`);
  }
  t.ok(r.sink.calls.length >= 20, `and the pace is kept up: ${r.sink.calls.length} started in 200 ms`);
  pace.setPopping(false, clock.now());
  clock.advance(50);
  await r.outcome(() => delivered(r).length === 40, 'the rest, at full speed');
  t.equal(r.sink.calls.length, 40, 'each event once');
});

// --- retries --------------------------------------------------------------------------------

t.test('given the retry policy, then delays grow exponentially to the cap, with jitter within ±jitter', async (t) => {
  const policy = { initialDelayMs: 1000, maxDelayMs: 8000, factor: 2, jitter: 0 };
  t.same([1, 2, 3, 4, 5, 9].map((n) => backoffDelay(policy, n)), [1000, 2000, 4000, 8000, 8000, 8000]);
  const jittered = { ...policy, jitter: 0.25 };
  t.same([0, 0.5, 1].map((x) => backoffDelay(jittered, 2, () => x)), [1500, 2000, 2500]);
});

t.test('given a failed attempt, when time passes, then the next attempt is made exactly at its backoff time and not before, and later events of the call wait for it', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { clock, concurrency: 2 });
  r.outbox.enqueue('crm', 'p', 'e1', '{}', clock.now());
  r.outbox.enqueue('crm', 'p', 'e2', '{}', clock.now());
  r.dispatcher.start();
  const expectedDelays = [1000, 2000, 4000];
  for (const [i, delay] of expectedDelays.entries()) {
    const call = await r.sink.call(i + 1);
    t.equal(call.item.eventId, 'e1');
    t.equal(call.item.attempts, i, `attempt ${i + 1} sees ${i} earlier failures`);
    const failedAt = clock.now();
    call.resolve({ ok: false, retry: true, error: 'HTTP 502' });
    await r.outcome((o) => o.kind === 'retry' && o.attempt === i + 1, `retry outcome ${i + 1}`);
    const row = r.outbox.get(call.item.seq)!;
    t.equal(row.nextAttemptAt, failedAt + delay, `after failure ${i + 1} the next attempt is due ${delay} ms later`);
    t.equal(row.attempts, i + 1);
    t.equal(row.lastError, 'HTTP 502');
    t.equal(clock.nextTimerAt, failedAt + delay, 'one timer, set for that moment');
    r.dispatcher.notify();
    clock.advance(delay - 1);
    await turn();
    t.equal(r.sink.calls.length, i + 1, 'nothing is attempted 1 ms early, notify() or not');
    clock.advance(1);
  }
  (await r.sink.call(4)).resolve({ ok: true });
  const e2 = await r.sink.call(5);
  t.equal(e2.item.eventId, 'e2', 'the next event of the call goes once the first is delivered');
  e2.resolve({ ok: true });
  await r.outcome((o) => o.kind === 'delivered' && o.item.eventId === 'e2', 'e2 delivered');
  t.equal(r.outbox.depth(), 0);
});

t.test('given Retry-After, then the next attempt waits for the longer of Retry-After and the backoff', async (t) => {
  const clock = new FakeClock();
  // Retry-After is honoured up to the longest backoff (maxDelayMs): 60 s here, so 30 s is kept.
  const r = rig(t, { clock, concurrency: 1, retry: { initialDelayMs: 1000, maxDelayMs: 60_000, factor: 2, jitter: 0 } });
  r.outbox.enqueue('crm', 'p', 'e1', '{}', clock.now());
  r.dispatcher.start();
  (await r.sink.call(1)).resolve({ ok: false, retry: true, afterMs: 30_000, error: 'HTTP 429' });
  const first = await r.outcome((o) => o.kind === 'retry', 'first retry');
  t.equal(first.kind === 'retry' && first.nextAttemptAt, clock.now() + 30_000, 'Retry-After 30 s beats the 1 s backoff');
  clock.advance(29_999);
  await turn();
  t.equal(r.sink.calls.length, 1, 'not attempted before Retry-After');
  clock.advance(1);
  (await r.sink.call(2)).resolve({ ok: false, retry: true, afterMs: 10, error: 'HTTP 503' });
  const second = await r.outcome((o) => o.kind === 'retry' && o.attempt === 2, 'second retry');
  t.equal(second.kind === 'retry' && second.nextAttemptAt, clock.now() + 2000, 'a Retry-After shorter than the backoff does not shorten it');
});

t.test('given an event that keeps failing, when maxAttempts is reached, then it moves to the dead letters and the rest of its call goes on', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { clock, maxAttempts: 3 });
  r.outbox.enqueue('crm', 'p', 'e1', '{}', clock.now());
  r.outbox.enqueue('crm', 'p', 'e2', '{}', clock.now());
  r.dispatcher.start();
  for (let n = 1; n <= 3; n++) {
    const call = await r.sink.call(n);
    t.equal(call.item.eventId, 'e1');
    call.resolve({ ok: false, retry: true, error: `HTTP 500 #${n}` });
    if (n < 3) {
      await r.outcome((o) => o.kind === 'retry' && o.attempt === n, `retry ${n}`);
      clock.advance(clock.nextTimerAt! - clock.now());
    }
  }
  const dead = await r.outcome((o) => o.kind === 'dead', 'dead letter');
  t.match(dead, { kind: 'dead', reason: 'max-attempts', attempt: 3, error: 'HTTP 500 #3' });
  t.match(r.outbox.list({ dead: true }), [{ eventId: 'e1', sink: 'crm', partition: 'p', attempts: 3, reason: 'max-attempts', lastError: 'HTTP 500 #3', failedAt: clock.now() }]);
  const e2 = await r.sink.call(4);
  t.equal(e2.item.eventId, 'e2', 'a dead event does not block the rest of its call');
  t.equal(r.outbox.deadCount('crm'), 1);
});

t.test('given an event whose next attempt would come after maxAgeMs, when an attempt fails, then it moves to the dead letters at once', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { clock, maxAttempts: 100, maxAgeMs: 5000 });
  const start = clock.now();
  r.outbox.enqueue('crm', 'p', 'e1', '{}', start);
  r.dispatcher.start();
  // Attempts at 0 and 1000 are retried (next at 1000 and 3000: age < 5000); the one at 3000
  // would be retried at 7000, past the max age: given up at 3000, not after waiting until 7000.
  for (let n = 1; n <= 3; n++) {
    (await r.sink.call(n)).resolve({ ok: false, retry: true, error: 'timeout' });
    if (n < 3) {
      await r.outcome((o) => o.kind === 'retry' && o.attempt === n, `retry ${n}`);
      clock.advance(clock.nextTimerAt! - clock.now());
    }
  }
  const dead = await r.outcome((o) => o.kind === 'dead', 'dead letter');
  t.match(dead, { kind: 'dead', reason: 'max-age', attempt: 3 });
  t.equal(clock.now() - start, 3000, 'then at the failed attempt, not at the retry time');
  t.equal(r.outbox.depth(), 0);
});

t.test('given a receiver that rejects an event, then it is dead-lettered at once and the next event of the call goes', async (t) => {
  const r = rig(t, { maxAttempts: 10 });
  r.outbox.enqueue('crm', 'p', 'e1', '{}');
  r.outbox.enqueue('crm', 'p', 'e2', '{}');
  r.dispatcher.start();
  (await r.sink.call(1)).resolve({ ok: false, retry: false, error: 'HTTP 410 Gone' });
  t.match(await r.outcome((o) => o.kind === 'dead', 'dead letter'), { kind: 'dead', reason: 'rejected', attempt: 1, error: 'HTTP 410 Gone' });
  t.equal((await r.sink.call(2)).item.eventId, 'e2');
});

t.test('given a deliver function that throws or resolves nonsense, then that is a retryable failure with its error', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { clock });
  r.outbox.enqueue('crm', 'p', 'e1', '{}', clock.now());
  r.dispatcher.start();
  (await r.sink.call(1)).reject(new Error('socket hang up'));
  t.match(await r.outcome((o) => o.kind === 'retry', 'retry after throw'), { kind: 'retry', attempt: 1, error: 'socket hang up' });
  clock.advance(1000);
  (await r.sink.call(2)).resolve(undefined as unknown as DeliveryResult);
  t.match(await r.outcome((o) => o.kind === 'retry' && o.attempt === 2, 'retry after nonsense'), { kind: 'retry', error: /deliver resolved with/ });
});

t.test('given attemptTimeoutMs, then a delivery that settles in time clears its deadline timer, and one that does not is aborted and failed at the deadline', async (t) => {
  const clock = new FakeClock();
  const r = rig(t, { clock, concurrency: 1, attemptTimeoutMs: 5000 });
  r.outbox.enqueue('crm', 'p', 'e1', '{}', clock.now());
  r.outbox.enqueue('crm', 'p', 'e2', '{}', clock.now());
  r.dispatcher.start();
  const e1 = await r.sink.call(1);
  t.equal(clock.nextTimerAt, clock.now() + 5000, 'the deadline is set when the attempt starts');
  e1.resolve({ ok: true });
  await r.outcome((o) => o.kind === 'delivered', 'e1 delivered');
  const e2 = await r.sink.call(2);
  t.equal(clock.timers.size, 1, "then e1's deadline timer is gone: only e2's is left");
  const started = clock.now();
  clock.advance(4999);
  t.notOk(e2.signal.aborted, 'not aborted 1 ms early');
  clock.advance(1);
  t.ok(e2.signal.aborted, 'aborted at the deadline');
  const failed = await r.outcome((o) => o.kind === 'retry', 'e2 failed at its deadline');
  t.match(failed, { kind: 'retry', item: { eventId: 'e2' }, error: /longer than its deadline \(5000 ms\)/, durationMs: 5000 });
  t.equal(clock.now() - started, 5000);
  e2.resolve({ ok: true });
  await turn();
  t.equal(r.outcomes.filter((o) => o.item.eventId === 'e2').length, 1, 'a late answer after the deadline changes nothing');
});

t.test('given failures, then log lines carry attempt/max, the sink, the event id and the error truncated', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log: Logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const clock = new FakeClock();
  const r = rig(t, { clock, log, maxAttempts: 2 });
  r.outbox.enqueue('crm', 'p', 'e1', '{}', clock.now());
  r.dispatcher.start();
  const long = `HTTP 500: ${'x'.repeat(2000)}`;
  (await r.sink.call(1)).resolve({ ok: false, retry: true, error: long });
  await r.outcome((o) => o.kind === 'retry', 'retry');
  clock.advance(1000);
  (await r.sink.call(2)).resolve({ ok: false, retry: true, error: 'HTTP 500' });
  await r.outcome((o) => o.kind === 'dead', 'dead');
  const warn = lines.find((l) => l.level === 40)!;
  t.match(warn, { sink: 'crm', eventId: 'e1', attempt: '1/2', retryInMs: 1000, msg: /attempt 1\/2.*retrying in 1000 ms/ });
  t.equal((warn.error as string).length, MAX_ERROR_LENGTH, 'a long error is truncated');
  t.ok((warn.error as string).startsWith('HTTP 500: xxx'));
  t.match(lines.find((l) => l.level === 50), { sink: 'crm', eventId: 'e1', attempt: '2/2', reason: 'max-attempts', error: 'HTTP 500' });
  t.equal(r.outbox.list({ dead: true })[0]?.lastError?.length, 'HTTP 500'.length);
});

// --- stop -----------------------------------------------------------------------------------

t.test('given deliveries in flight, when stopped, then stop waits for them and leaves undelivered rows in place', async (t) => {
  const r = rig(t, { concurrency: 2 });
  for (const [p, id] of [['a', 'a1'], ['a', 'a2'], ['b', 'b1'], ['c', 'c1']]) r.outbox.enqueue('crm', p!, id!, '{}');
  r.dispatcher.start();
  const [a1, b1] = [await r.sink.call(1), await r.sink.call(2)];
  let stopped = false;
  const stopping = r.dispatcher.stop({ deadlineMs: 60_000 }).then(() => (stopped = true));
  await turn();
  t.notOk(stopped, 'stop() waits for deliveries in flight');
  a1.resolve({ ok: true });
  b1.resolve({ ok: false, retry: true, error: 'HTTP 503' });
  await stopping;
  // A delivery is reported once its acknowledgement is written (with the others of its turn), so
  // the two may come in either order.
  t.same(r.outcomes.map((o) => [o.kind, o.item.eventId]).sort(), [['delivered', 'a1'], ['retry', 'b1']], 'their outcomes were recorded');
  r.dispatcher.notify();
  await turn();
  t.equal(r.sink.calls.length, 2, 'nothing new is taken after stop()');
  t.same(r.outbox.list().map((i) => [i.eventId, i.attempts]), [['a2', 0], ['b1', 1], ['c1', 0]]);
});

t.test('given a delivery that outlives the stop deadline, then it is aborted and its row stays as it was', async (t) => {
  const r = rig(t, { concurrency: 1 });
  r.outbox.enqueue('crm', 'p', 'e1', '{}');
  r.dispatcher.start();
  const call = await r.sink.call(1);
  call.signal.addEventListener('abort', () => call.reject(call.signal.reason));
  await r.dispatcher.stop({ deadlineMs: 20 });
  t.ok(call.signal.aborted, 'the delivery was told to give up');
  t.match(r.outcomes, [{ kind: 'aborted', item: { eventId: 'e1' } }]);
  t.match(r.outbox.list(), [{ eventId: 'e1', attempts: 0, lastError: null }], 'not counted as a failed attempt');
});

// --- crash safety ---------------------------------------------------------------------------

interface ChildRun {
  enqueued: { id: string; partition: string }[];
  received: string[];
  signal: NodeJS.Signals | null;
}

/** Runs the crash child and kills it (SIGKILL) right after its `killAfter`-th delivery. */
function runChild(path: string, total: number, partitions: number, killAfter: number): Promise<ChildRun> {
  // The child is TypeScript: run it with the loader tap runs this test with.
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  if (!loader.length) throw new Error('run this test with tap (its TypeScript loader is needed for the child)');
  const helper = new URL('./helpers/outbox-crash-child.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [...loader, helper, path, String(total), String(partitions)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const run: ChildRun = { enqueued: [], received: [], signal: null };
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    // A line cut by the kill has no newline: it never happened as far as we know.
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const [kind, id, partition] = line.split(' ');
      if (kind === 'E') run.enqueued.push({ id: id!, partition: partition! });
      if (kind === 'D') {
        run.received.push(id!);
        if (run.received.length === killAfter) child.kill('SIGKILL');
      }
    }
  });
  return new Promise((resolve) =>
    child.on('close', (_code, signal) => {
      run.signal = signal;
      resolve(run);
    }),
  );
}

t.test('given a process killed with kill -9 during delivery, when the outbox is reopened and delivered, then every event it accepted arrives, in order per call', async (t) => {
  const total = 1500;
  const partitions = 12;
  const index = (id: string) => Number(id.slice('ev-'.length));
  for (let round = 1; round <= 3; round++) {
    const killAfter = 1 + Math.floor(Math.random() * total * 0.6);
    const path = dbPath();
    const child = await runChild(path, total, partitions, killAfter);
    t.equal(child.signal, 'SIGKILL', `round ${round}: the child died by kill -9 (after ${killAfter} deliveries, ${child.enqueued.length} enqueued)`);

    const r = rig(t, { sink: 'crash', concurrency: 4, retry: { initialDelayMs: 1, maxDelayMs: 1, factor: 1, jitter: 0 } }, path);
    const left = r.outbox.depth('crash');
    r.sink.auto = () => ({ ok: true });
    r.dispatcher.start();
    await r.watch.until(() => r.outbox.depth('crash') === 0, `round ${round}: the ${left} rows left delivered`);
    const receivedAfter = delivered(r, 'crash');
    t.comment(`round ${round}: killed after ${killAfter} deliveries; ${child.enqueued.length} enqueued, ${left} left in the outbox, ${receivedAfter.length} delivered after reopening`);

    const seen = new Set([...child.received, ...receivedAfter]);
    const missing = child.enqueued.filter((e) => !seen.has(e.id)).map((e) => e.id);
    t.same(missing, [], `round ${round}: every event reported as enqueued reached the receiver at least once`);
    // What the receiver saw, per call, across the crash: never an older event after a newer one
    // (the one in flight at the crash may come twice).
    const byCall = new Map<string, number[]>();
    for (const id of [...child.received, ...receivedAfter]) {
      const key = `call-${index(id) % partitions}`;
      byCall.set(key, [...(byCall.get(key) ?? []), index(id)]);
    }
    const disorder = [...byCall].filter(([, seq]) => seq.some((n, i) => i > 0 && n < seq[i - 1]!)).map(([k]) => k);
    t.same(disorder, [], `round ${round}: per call, events arrived in enqueue order`);
  }
});

// --- operations -----------------------------------------------------------------------------

t.test('given pending rows and dead letters, then list shows them oldest first, filtered by sink and limited', async (t) => {
  const outbox = Outbox.open(dbPath());
  t.teardown(() => outbox.close());
  outbox.enqueue('a', 'p', 'e1', '{"n":1}', 1000);
  outbox.enqueue('b', 'p', 'e1', '{"n":1}', 1000);
  outbox.enqueue('a', 'p', 'e2', '{"n":2}', 2000);
  outbox.enqueue('a', 'q', 'e3', '{"n":3}', 3000);
  t.same(outbox.list().map((i) => `${i.sink}/${i.eventId}`), ['a/e1', 'b/e1', 'a/e2', 'a/e3']);
  t.same(outbox.list({ sink: 'a', limit: 2 }).map((i) => i.eventId), ['e1', 'e2']);
  t.match(outbox.list({ sink: 'a' }), [
    { eventId: 'e1', partition: 'p', payload: '{"n":1}', attempts: 0, createdAt: 1000, nextAttemptAt: 1000 },
    { eventId: 'e2', nextAttemptAt: null },
    { eventId: 'e3', nextAttemptAt: 3000 },
  ], 'only the oldest row of a call has a due time');
  outbox.deadLetter(outbox.list({ sink: 'a' })[0]!, 'rejected', 'HTTP 400', 5000);
  t.match(outbox.list({ dead: true }), [{ sink: 'a', eventId: 'e1', attempts: 1, reason: 'rejected', lastError: 'HTTP 400', failedAt: 5000 }]);
  t.same(outbox.list({ dead: true, sink: 'b' }), []);
  t.equal(outbox.list({ sink: 'a' })[0]?.nextAttemptAt, 5000, 'the next event of the call became due when e1 died');
  t.same([outbox.depth(), outbox.depth('a'), outbox.depth('b'), outbox.deadCount(), outbox.deadCount('b')], [3, 2, 1, 1, 0]);
  t.equal(outbox.oldestAgeMs('a', 10_000), 8000);
  t.equal(outbox.oldestAgeMs('nope', 10_000), 0);
});

t.test('given dead letters, when retried, then they go back to the end of their call in their original order with attempts reset', async (t) => {
  const outbox = Outbox.open(dbPath());
  t.teardown(() => outbox.close());
  for (const [sink, p, id] of [['a', 'p', 'e1'], ['a', 'p', 'e2'], ['a', 'q', 'e3'], ['b', 'p', 'e1'], ['a', 'p', 'e4']] as const) outbox.enqueue(sink, p, id, '{}', 1000);
  const kill = (sink: string, id: string) => outbox.deadLetter(outbox.list({ sink }).find((i) => i.eventId === id)!, 'max-attempts', 'HTTP 503', 2000);
  kill('a', 'e1');
  kill('a', 'e2');
  kill('a', 'e3');
  kill('b', 'e1');
  t.equal(outbox.retry({ sink: 'a', eventIds: [] }), 0, 'an empty id list selects nothing');
  t.equal(outbox.retry({ sink: 'a', eventIds: ['e2', 'e1'] }, 3000), 2);
  t.match(outbox.list({ sink: 'a' }), [
    { eventId: 'e4', partition: 'p', nextAttemptAt: 2000 },
    { eventId: 'e1', partition: 'p', attempts: 0, lastError: null, createdAt: 3000, nextAttemptAt: null },
    { eventId: 'e2', partition: 'p', attempts: 0, nextAttemptAt: null },
  ], 'behind the pending e4, in their original order, waiting their turn');
  t.same(outbox.list({ dead: true }).map((d) => `${d.sink}/${d.eventId}`), ['a/e3', 'b/e1']);
  const seq = outbox.list({ dead: true, sink: 'a' })[0]!.seq;
  t.equal(outbox.retry({ seqs: [seq] }, 4000), 1);
  t.match(outbox.list({ sink: 'a' }).find((i) => i.eventId === 'e3'), { partition: 'q', nextAttemptAt: 4000 }, 'alone in its call, it is due at once');
  t.equal(outbox.retry(), 1, 'no filter: every dead letter');
  t.equal(outbox.deadCount(), 0);
});

t.test('given rows, when purged, then the selected ones are gone, counts are returned and each call keeps a due head', async (t) => {
  const outbox = Outbox.open(dbPath());
  t.teardown(() => outbox.close());
  for (const [sink, p, id] of [['a', 'p', 'e1'], ['a', 'p', 'e2'], ['b', 'p', 'e1'], ['b', 'p', 'e2']] as const) outbox.enqueue(sink, p, id, '{}', 1000);
  outbox.deadLetter(outbox.list({ sink: 'b' })[0]!, 'rejected', 'HTTP 404', 2000);
  t.equal(outbox.purge({ dead: true, sink: 'a' }), 0);
  t.equal(outbox.purge({ dead: true }), 1);
  t.equal(outbox.deadCount(), 0);
  t.equal(outbox.purge({ sink: 'a', eventIds: ['e1'] }, 3000), 1, 'purging the head of a call by id');
  t.match(outbox.list({ sink: 'a' }), [{ eventId: 'e2', nextAttemptAt: 3000 }], 'the next row of the call became its head');
  t.equal(outbox.purge({ sink: 'b' }), 1);
  t.equal(outbox.purge(), 1);
  t.equal(outbox.depth(), 0);
});

// --- the file -------------------------------------------------------------------------------

t.test('given an outbox file, then it is WAL with schema version 1, survives reopening, and a newer schema is refused', async (t) => {
  const path = dbPath();
  const outbox = Outbox.open(path, { synchronous: 'full' });
  outbox.enqueue('a', 'p', 'e1', '{}');
  const raw = new Database(path);
  t.teardown(() => raw.close());
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(raw.pragma('user_version', { simple: true }), 1);
  outbox.close();
  outbox.close();
  const again = Outbox.open(path);
  t.same(again.list().map((i) => i.eventId), ['e1']);
  again.close();
  raw.pragma('user_version = 99');
  t.throws(() => Outbox.open(path), { name: 'OutboxVersionError', message: /schema version 99 is newer than this bridge understands/ });
  let caught: unknown;
  try {
    Outbox.open(path);
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof OutboxVersionError, 'callers can tell it apart from other errors');
});

t.test('given bad dispatcher options, then start() says which one', async (t) => {
  const outbox = Outbox.open(dbPath());
  t.teardown(() => outbox.close());
  const make = (o: Partial<DispatcherOptions>) =>
    new Dispatcher(outbox, { sink: 's', concurrency: 1, retry: { initialDelayMs: 1, maxDelayMs: 1, factor: 2, jitter: 0 }, maxAttempts: 1, maxAgeMs: 1, log: silent, ...o }, async () => ({ ok: true }));
  t.throws(() => make({ concurrency: 0 }).start(), /concurrency must be an integer ≥ 1 \(is 0\)/);
  t.throws(() => make({ maxAttempts: 1.5 }).start(), /maxAttempts/);
  t.throws(() => make({ retry: { initialDelayMs: 10, maxDelayMs: 1, factor: 2, jitter: 0 } }).start(), /retry needs/);
});

// The enqueue rate is a benchmark figure (bench:webhook measures the outbox under load), not a
// timed assertion here: on a busy CI machine any fixed threshold is a coin toss.
t.test('given synchronous = normal, when 5,000 events are enqueued back to back, then every one is stored once, in order per call', async (t) => {
  const outbox = Outbox.open(dbPath());
  t.teardown(() => outbox.close());
  const payload = JSON.stringify({ id: '0190c0de-0000-7000-8000-000000000000', type: 'call.ringing', server: 'pbx1', call: { id: '1700000000.123', from: '+34911234567', to: '201' }, pad: 'x'.repeat(500) });
  const n = 5000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) outbox.enqueue('crm', `call-${i % 100}`, `ev-${i}`, payload);
  t.comment(`enqueue: ${Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9))} events/s (${payload.length}-byte payloads, one commit each; informational)`);
  const rows = outbox.list({ sink: 'crm', limit: n + 1 });
  t.equal(rows.length, n, 'then every event is stored');
  t.equal(new Set(rows.map((r) => r.eventId)).size, n, 'then each exactly once');
  const call7 = rows.filter((r) => r.partition === 'call-7').map((r) => r.eventId);
  t.same(call7, [...call7].sort((a, b) => Number(a.slice(3)) - Number(b.slice(3))), 'then one call keeps its order');
});
