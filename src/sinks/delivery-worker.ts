// The delivery thread itself (delivery-thread.ts has the whole picture). It owns the durable
// sinks (webhook, nats: built from the same sink table as on the main thread, on this thread's
// own connection to the outbox file) and the call ledger. Each batch of events from the main
// thread is written in ONE transaction: the ledger's record of each event, every sink's outbox
// rows (and a webhook preset's call state), and the number of the batch, so that after a crash
// of this thread the main thread knows which batches to hand over again. Then the sinks'
// dispatchers deliver, here; outcomes go to the main thread for metrics, log lines through the
// main thread's logger.
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import type { BridgeEvent } from '../events/types.js';
import { CallLedger } from '../outbox/call-ledger.js';
import type { DeliveryOutcome } from '../outbox/dispatcher.js';
import { Outbox } from '../outbox/outbox.js';
import { DeliveryPace } from '../outbox/pace.js';
import { collectGarbage } from '../util/gc.js';
import type { FromWorker, OutcomeRecord, ToWorker, WorkerData } from './delivery-thread.js';
import { SINKS } from './registry.js';
import type { Sink } from './sink.js';
import { warmUp } from './warm-up.js';

const port = parentPort;
if (!port) throw new Error('delivery-worker.ts runs as a worker thread (src/sinks/delivery-thread.ts starts it)');
const data = workerData as WorkerData;
const post = (m: FromWorker) => port.postMessage(m);

// Every line goes to the main thread, which writes it with its own logger (level, redaction,
// destination): the daemon keeps one log stream.
const log = pino({ level: data.logLevel, base: null, timestamp: false }, { write: (line: string) => post({ t: 'log', line }) });

// The WAL's checkpoints (and their fsyncs) run on the process's checkpointer thread (the main
// thread registers the outbox there: delivery-thread.ts), not in this thread's commits.
const outbox = Outbox.open(data.outboxPath, { log: log.child({ module: 'outbox' }), busyTimeoutMs: data.busyTimeoutMs, synchronous: data.synchronous, checkpoints: 'elsewhere' });
const db = outbox.database;
db.exec('CREATE TABLE IF NOT EXISTS delivery_batches (id INTEGER PRIMARY KEY CHECK (id = 1), run TEXT NOT NULL, seq INTEGER NOT NULL)');
const markBatch = db.prepare('INSERT INTO delivery_batches (id, run, seq) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET run = excluded.run, seq = excluded.seq');
const lastBatch = db.prepare<[string], { seq: number }>('SELECT seq FROM delivery_batches WHERE id = 1 AND run = ?').get(data.run)?.seq ?? null;

/** The pace every sink's dispatcher here draws from while screen pops go out (src/outbox/pace.ts). */
const pace = new DeliveryPace(data.deliveriesPerSecondWhilePopping);

const sinks = new Map<string, Sink>();
/** Each started sink's row of the sink table (the warm-up makes loopback copies of them). */
const specs = new Map<string, { type: string; config: { type: string } }>();
let ledger: CallLedger | null = null;

// Outcomes go back in one message per sink per turn, not one per attempt. Each sink keeps its
// entry (its list is swapped for a new one): a Map cleared every turn would chain its discarded
// tables and promote every outcome (src/util/churn-map.ts says why).
const outcomes = new Map<string, OutcomeRecord[]>();
let outcomesQueued = false;
function flushOutcomes(): void {
  outcomesQueued = false;
  for (const [name, list] of outcomes) {
    if (list.length === 0) continue;
    post({ t: 'outcomes', sink: name, list });
    outcomes.set(name, []);
  }
}
function outcome(sink: string, o: DeliveryOutcome): void {
  let list = outcomes.get(sink);
  if (!list) outcomes.set(sink, (list = []));
  list.push({ ...o, item: { ...o.item, payload: '' } } as OutcomeRecord);
  if (outcomesQueued) return;
  outcomesQueued = true;
  setImmediate(flushOutcomes);
}

async function start(type: string, name: string, config: { type: string }): Promise<void> {
  const def = SINKS[type];
  if (!def) throw new Error(`unknown sink type '${type}'`);
  const sink = def.create(config, {
    log: log.child({ module: 'sink', sink: name }),
    server: data.server,
    outbox: () => outbox,
    userAgent: data.userAgent,
    onOutcome: outcome,
    pace,
  });
  await sink.start();
  sinks.set(name, sink);
  specs.set(name, { type, config });
}

function deliverTo(targets: Iterable<Sink>, event: BridgeEvent, json: string): void {
  for (const sink of targets) {
    try {
      // The JSON the main thread sent is the sinks' outbox row as it is: not serialized again.
      sink.deliver(event, json);
    } catch (err) {
      log.error({ err, sink: sink.name, eventId: event.id }, 'sink threw while accepting an event');
    }
  }
}

type EventsMessage = Extract<ToWorker, { t: 'events' }>;

/** Batches received in this turn of the event loop, written together by commit(). */
let queued: EventsMessage[] = [];
let commitScheduled = false;

/**
 * Writes the batches received in this turn in ONE transaction — the ledger, every sink's rows,
 * and the number of the last batch — and tells the main thread they are durable. A turn usually
 * holds one batch; when the thread is busy (a burst), the batches that came meanwhile share the
 * commit. A failed transaction is not acknowledged, and no later batch is written (they would
 * commit out of order): the thread exits, and the main thread starts it again and hands those
 * batches over again.
 */
function commit(): void {
  commitScheduled = false;
  if (queued.length === 0 || broken) return;
  const batches = queued;
  queued = [];
  try {
    outbox.batch(() => {
      for (const m of batches) {
        const events = m.events.map((json) => JSON.parse(json) as BridgeEvent);
        // Each parsed event with the text it was parsed from (the ledger hands deliver the event alone).
        const json = new Map(events.map((e, i) => [e, m.events[i]!]));
        const targets = m.sinks.flatMap((name) => sinks.get(name) ?? []);
        const deliver = (event: BridgeEvent) => deliverTo(targets, event, json.get(event)!);
        if (ledger && m.ledger) ledger.acceptBatch(events, deliver);
        else events.forEach(deliver);
      }
      markBatch.run(data.run, batches[batches.length - 1]?.seq ?? 0);
    });
  } catch (err) {
    broken = true;
    log.error({ err, batches: batches.length }, 'could not write events to the outbox; the delivery thread restarts and takes them again');
    setImmediate(() => process.exit(1));
    return;
  }
  commits += 1;
  if (commits === data.exitAfterCommit) process.exit(1);
  post({ t: 'committed', seq: batches[batches.length - 1]?.seq ?? 0 });
}
let commits = 0;

// Messages are handled one at a time, in order: a sink's start completes before the events that
// follow it are written.
let chain = Promise.resolve();
/** A batch failed to commit: nothing more is written (order), and the thread exits to be started again. */
let broken = false;
port.on('message', (m: ToWorker) => {
  chain = chain.then(() => handle(m)).catch((err: unknown) => log.error({ err }, 'the delivery thread could not handle a message'));
});

async function handle(m: ToWorker): Promise<void> {
  if (m.t === 'popping') return pace.setPopping(m.on);
  // Whatever came before a start, stop or ledger message is written first (in order).
  if (m.t !== 'events') commit();
  switch (m.t) {
    case 'start': {
      const { type, name, config } = m.spec;
      try {
        if (!sinks.has(name)) await start(type, name, config);
        post({ t: 'started', sink: name });
      } catch (err) {
        post({ t: 'started', sink: name, error: (err as Error).message });
      }
      return;
    }
    case 'warm-up': {
      const report = await warmUp({ events: m.events, sinks: [...specs.values()], outboxPath: data.outboxPath, synchronous: data.synchronous, server: data.server, userAgent: data.userAgent, maxCalls: m.maxCalls, maxAgents: m.maxAgents });
      // Its garbage (the scratch outbox's rows, the copies' state) goes now, before the first real batch.
      collectGarbage();
      post({ t: 'warmed', report });
      return;
    }
    case 'ledger':
      ledger ??= CallLedger.open(db, { log: log.child({ module: 'call-ledger' }), maxCalls: m.maxCalls, maxAgents: m.maxAgents });
      return;
    case 'events':
      queued.push(m);
      if (!commitScheduled) {
        commitScheduled = true;
        setImmediate(commit);
      }
      return;
    case 'stop': {
      const sink = sinks.get(m.sink);
      sinks.delete(m.sink);
      specs.delete(m.sink);
      try {
        await sink?.stop();
      } catch (err) {
        log.error({ err, sink: m.sink }, 'stopping a sink failed');
      }
      flushOutcomes();
      outcomes.delete(m.sink);
      post({ t: 'stopped', sink: m.sink });
      return;
    }
  }
}

post({ t: 'ready', last: lastBatch });
