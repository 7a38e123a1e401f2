// The delivery thread (src/sinks/delivery-thread.ts): the durable sinks run on a second thread
// that owns the outbox's writes. Real parts: the real worker thread, a real SQLite file, a real
// HTTP receiver, events of a real Asterisk recording.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import pino from 'pino';
import t from 'tap';
import { DeliveryThread, HIGH_WATER, LOW_WATER } from '../dist/sinks/delivery-thread.js';
import { type CallRecord, recordEvent } from '../dist/normalizer/call-record.js';
import { CallLedger } from '../dist/outbox/call-ledger.js';
import { Outbox } from '../dist/outbox/index.js';
import { defaultConfig } from '../dist/config/load.js';
import { type BridgeEvent, isCallEvent } from '../dist/events/types.js';
import { runBridgeOnTrace } from './helpers/bridge-replay.js';
import { startReceiver } from './helpers/receivers.js';

const TEN_CALLS = readFileSync(new URL('../lab/recordings/ten-calls.ami', import.meta.url));

/** The events of ten real queue calls, from a bridge with no durable sink. */
async function recordedEvents(): Promise<BridgeEvent[]> {
  const run = await runBridgeOnTrace(TEN_CALLS, { sinks: [] });
  await run.stop();
  return run.events;
}

/** `n` distinct copies of `events` (ids made unique), in order. */
function copies(events: readonly BridgeEvent[], n: number): BridgeEvent[] {
  const out: BridgeEvent[] = [];
  for (let i = 0; i < n; i++) for (const e of events) out.push({ ...e, id: `${e.id}-${i}` } as BridgeEvent);
  return out;
}

function rig(t: Tap.Test, url: string, extra: { onPressure?: (high: boolean) => void; exitAfterCommit?: number; deliveriesPerSecondWhilePopping?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-thread-'));
  const path = join(dir, 'outbox.db');
  // The main thread opens (creates, migrates) the file first, as the bridge does.
  const outbox = Outbox.open(path);
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const thread = new DeliveryThread({ outboxPath: path, busyTimeoutMs: 5000, synchronous: 'normal', userAgent: 'test', server: 'pbx1', log, onOutcome: () => undefined, deliveriesPerSecondWhilePopping: 1000, ...extra });
  const config = defaultConfig({ sinks: [{ type: 'webhook', url, concurrency: 8, retry: { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 } }] }).sinks[0]!;
  t.teardown(async () => {
    await thread.close();
    outbox.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const rows = () => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare<[], { event_id: string }>('SELECT event_id FROM outbox').all().map((r) => r.event_id);
    } finally {
      db.close();
    }
  };
  return { thread, config, logs, rows, path };
}

/** The thread's worker, for fault injection (a crash is what it simulates). */
const workerOf = (thread: DeliveryThread) => (thread as unknown as { worker: Worker | null }).worker;

t.test('given a delivery thread whose worker dies again and again, then every event handed over is written once and delivered, none lost', async (t) => {
  const events = copies(await recordedEvents(), 8);
  // The receiver refuses everything at first: what the outbox holds is exactly what was written.
  const receiver = await startReceiver(() => ({ status: 503 }));
  t.teardown(() => receiver.close());
  // And each new worker exits right after its third commit, before it can say so: those batches
  // must not be written again.
  const { thread, config, logs, rows } = rig(t, `${receiver.url}/hook`, { exitAfterCommit: 3 });
  await thread.register({ type: 'webhook', name: 'crm', config });
  const chunks = 20;
  const size = Math.ceil(events.length / chunks);
  for (let i = 0; i < chunks; i++) {
    const batch = events.slice(i * size, (i + 1) * size);
    thread.accept(batch, ['crm']);
    // Killed right after the hand-over, before it could commit: the batch is handed over again.
    if (i % 4 === 1) await workerOf(thread)?.terminate();
  }
  await thread.unregister('crm');
  const written = rows();
  t.equal(written.length, events.length, 'then the outbox holds as many rows as events were handed over');
  t.same([...written].sort(), events.map((e) => e.id).sort(), 'then each event once: none lost, none written twice');
  t.ok(logs.some((l) => String(l['msg']).includes('the delivery thread exited; starting it again')), 'then each crash is logged');
  t.equal(thread.pending, 0, 'then nothing is left in flight');

  receiver.setRespond(() => ({ status: 200 }));
  await thread.register({ type: 'webhook', name: 'crm', config });
  await receiver.waitFor((r) => new Set(r.map((x) => x.headers['webhook-id'])).size >= events.length, 'every event delivered', 60_000);
  const byCall = new Map<string, string[]>();
  for (const r of receiver.requests) {
    const e = JSON.parse(r.body) as BridgeEvent;
    if ('callId' in e) byCall.set(`${e.callId}`, [...(byCall.get(`${e.callId}`) ?? []), e.id]);
  }
  const expected = new Map<string, string[]>();
  for (const e of events) if ('callId' in e) expected.set(`${e.callId}`, [...(expected.get(`${e.callId}`) ?? []), e.id]);
  // Copies share call ids: a call's events are in order within each copy, and copies in order.
  t.same(byCall, expected, 'then each call’s events arrived in the order they were handed over');
});

t.test('given a worker that dies right after a commit, before saying so, then the batch is not written again', async (t) => {
  const events = copies(await recordedEvents(), 2);
  const receiver = await startReceiver(() => ({ status: 503 }));
  t.teardown(() => receiver.close());
  const { thread, config, logs, rows } = rig(t, `${receiver.url}/hook`, { exitAfterCommit: 1 });
  await thread.register({ type: 'webhook', name: 'crm', config });
  thread.accept(events, ['crm']);
  await thread.drained();
  t.ok(logs.some((l) => String(l['msg']).includes('the delivery thread exited')), 'then the worker did die');
  t.same([...rows()].sort(), events.map((e) => e.id).sort(), 'then each event is in the outbox once');
  await thread.unregister('crm');
});

t.test('given a worker with the call ledger that dies after commits and while batches are in flight, then the ledger in the file is what the committed batches said', async (t) => {
  // The first 60 % of ten real calls: some end, some are still in progress.
  const all = await recordedEvents();
  const events = all.slice(0, Math.floor(all.length * 0.6));
  const receiver = await startReceiver(() => ({ status: 503 }));
  t.teardown(() => receiver.close());
  const { thread, config, path } = rig(t, `${receiver.url}/hook`, { exitAfterCommit: 2 });
  thread.useLedger(1000, 1000);
  await thread.register({ type: 'webhook', name: 'crm', config });
  const chunks = 12;
  const size = Math.ceil(events.length / chunks);
  for (let i = 0; i < chunks; i++) {
    thread.accept(events.slice(i * size, (i + 1) * size), ['crm']);
    if (i % 5 === 2) await workerOf(thread)?.terminate();
  }
  await thread.unregister('crm');
  await thread.close();
  const expected = new Map<string, CallRecord>();
  for (const e of events) {
    if (!isCallEvent(e)) continue;
    const next = recordEvent(expected.get(e.callId) ?? null, e);
    if (next) expected.set(e.callId, next);
    else expected.delete(e.callId);
  }
  t.ok(expected.size > 0, `then calls are in progress at the end (${expected.size})`);
  const outbox = Outbox.open(path);
  const saved = CallLedger.open(outbox.database, { maxCalls: 1000, maxAgents: 1000 }).load();
  outbox.close();
  const byId = (records: CallRecord[]) => Object.fromEntries(records.map((r) => [r.callId, r]));
  t.same(byId(saved.calls), Object.fromEntries(expected), 'then each call in progress has the record of all its events, each taken once');
});

t.test('given more events in flight than the high-water mark, then the source is asked to pause, and to read again once the thread caught up', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const pressure: boolean[] = [];
  let resumed!: () => void;
  const readAgain = new Promise<void>((resolve) => (resumed = resolve));
  const { thread, config } = rig(t, `${receiver.url}/hook`, {
    onPressure: (high) => {
      pressure.push(high);
      if (!high) resumed();
    },
  });
  await thread.register({ type: 'webhook', name: 'crm', config });
  const events = copies(await recordedEvents(), Math.ceil((HIGH_WATER + 1) / 74));
  // Handed over in one go: no acknowledgement can arrive meanwhile (this thread is busy).
  for (let i = 0; i < events.length; i += 50) thread.accept(events.slice(i, i + 50), ['crm']);
  t.same(pressure, [true], `then past ${HIGH_WATER} events in flight the source is paused`);
  t.ok(thread.pending >= HIGH_WATER);
  await readAgain;
  t.same(pressure, [true, false], 'then it is told to read again');
  t.ok(thread.pending <= LOW_WATER, `then at most ${LOW_WATER} events were still in flight`);
  await thread.unregister('crm');
});

t.test('given a bridge with two webhook sinks, then their deliveries run on the delivery thread and each gets every event', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(TEN_CALLS, {
    sinks: [
      { type: 'webhook', url: `${receiver.url}/a` },
      // Same host, no name: it gets a name of its own (`#2`), so the two do not share rows.
      { type: 'webhook', url: `${receiver.url}/b`, format: 'form' },
    ],
  });
  t.teardown(() => run.stop());
  const thread = (run.bridge as unknown as { deliveryThread: DeliveryThread | null }).deliveryThread;
  t.ok(thread && workerOf(thread), 'then the bridge runs a delivery thread');
  await receiver.waitFor((r) => r.length >= 2 * run.events.length, 'both sinks got every event');
  const ids = (path: string) => receiver.requests.filter((r) => r.path === path).map((r) => r.headers['webhook-id']).sort();
  t.same(ids('/a'), run.events.map((e) => e.id).sort(), 'then the first sink got every event once');
  t.same(ids('/b'), run.events.map((e) => e.id).sort(), 'then the second too');
  t.ok(receiver.requests.filter((r) => r.path === '/b').every((r) => r.headers['content-type'] === 'application/x-www-form-urlencoded'), 'then each in its own format');
});

t.test('given screen pops going out and deliveriesPerSecondWhilePopping 2, then the delivery thread holds its webhooks to that pace, and delivers at full speed once the pops stop', async (t) => {
  const events = copies(await recordedEvents(), 1);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { thread, config } = rig(t, `${receiver.url}/hook`, { deliveriesPerSecondWhilePopping: 2 });
  await thread.register({ type: 'webhook', name: 'crm', config });
  thread.popping(true);
  thread.accept(events.slice(0, 5), ['crm']);
  await receiver.waitFor((r) => r.length >= 5, 'the five events sent while popping', 30_000);
  const at = receiver.requests.map((r) => r.at);
  // A burst of one, then one every 500 ms: the fifth at least 2 s after the first. A slow machine
  // only makes it later; without the pace all five go within milliseconds.
  t.ok(at[4]! - at[0]! >= 1900, `then they are spread out: the fifth ${at[4]! - at[0]!} ms after the first`);
  thread.popping(false);
  const rest = events.slice(5, 45);
  thread.accept(rest, ['crm']);
  // At 2 a second these 40 would take 20 s.
  await receiver.waitFor((r) => r.length >= 45, 'the next 40 events, the pops having stopped', 15_000);
  t.same(receiver.requests.map((r) => r.headers['webhook-id']).slice(5).sort(), rest.map((e) => e.id).sort(), 'then each once');
  await thread.unregister('crm');
});
