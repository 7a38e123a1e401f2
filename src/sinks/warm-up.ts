// The delivery thread's half of the warm-up at start (the main thread's half is src/warm-up.ts).
//
// A freshly started daemon runs its delivery path for the first time when the first calls come
// in: V8 has not compiled it yet, SQLite's statements and the HTTP client's request path are new,
// and at 1,000 events/s the first second falls behind and takes seconds to catch up (BENCHMARKS.md,
// "Issue 18, third pass"). So before the source connects, the events a recorded call produced on
// the main thread go through the same code here, with nothing real at the end of it:
//
// - a scratch outbox (a file of its own beside the real one, deleted afterwards) with its own call
//   ledger, written batch by batch in one transaction each, as commit() writes real batches;
// - for every webhook sink, a copy of its entry whose URL is a loopback server in this thread
//   (same templates, format, preset, signing secret; no `auth`, so no token is fetched from an
//   identity provider), delivered through a real dispatcher and the real HTTP client;
// - other durable sinks (nats) are not copied: they would publish.
//
// Nothing here can touch the real outbox, a real receiver or the ledger, and nothing it does is
// counted in metrics. It ends when every copy has delivered what it was given, or at the deadline.
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { BridgeEvent } from '../events/types.js';
import { CallLedger } from '../outbox/call-ledger.js';
import { Outbox } from '../outbox/outbox.js';
import { SINKS } from './registry.js';
import type { Sink } from './sink.js';

/** The warm-up gives up waiting for its deliveries after this long (they are then abandoned). */
export const WARM_UP_DEADLINE_MS = 10_000;
/** Events per scratch transaction: about what one AMI read of a busy PBX hands over. */
const BATCH = 20;

export interface WarmUpReport {
  /** Milliseconds the delivery thread's warm-up took. */
  ms: number;
  /** Events written to the scratch outbox. */
  events: number;
  /** Requests the loopback server answered. */
  requests: number;
  /** What went wrong, if anything (the daemon starts anyway). */
  error?: string;
}

export interface WarmUpInput {
  events: readonly string[];
  /** The thread's sinks: their rows of the sink table. */
  sinks: ReadonlyArray<{ type: string; config: { type: string } }>;
  outboxPath: string;
  synchronous: 'normal' | 'full';
  server: string;
  userAgent: string;
  maxCalls: number;
  maxAgents: number;
}

const silent = pino({ level: 'silent' });

function removeScratch(path: string): void {
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export async function warmUp(input: WarmUpInput): Promise<WarmUpReport> {
  const started = performance.now();
  const webhooks = input.sinks.filter((s) => s.type === 'webhook');
  const report: WarmUpReport = { ms: 0, events: 0, requests: 0 };
  const scratchPath = `${input.outboxPath}.warm-up`;
  let requests = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests += 1;
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 5_000;
  const copies: Sink[] = [];
  let outbox: Outbox | null = null;
  try {
    // Left behind by a warm-up that was killed: never read, only replaced.
    removeScratch(scratchPath);
    outbox = Outbox.open(scratchPath, { log: silent, synchronous: input.synchronous });
    const scratch = outbox;
    const ledger = CallLedger.open(scratch.database, { log: silent, maxCalls: input.maxCalls, maxAgents: input.maxAgents });
    const port = webhooks.length > 0 ? await listen(server) : 0;
    let settled: () => void = () => {};
    const allDelivered = new Promise<void>((resolve) => (settled = resolve));
    const check = () => {
      if (copies.every((c) => scratch.depth(c.name) === 0)) settled();
    };
    for (const { type, config } of webhooks) {
      const def = SINKS[type];
      if (!def) continue;
      const { auth: _auth, ...rest } = config as { type: string; auth?: unknown };
      const sink = def.create({ ...rest, url: `http://127.0.0.1:${port}/warm-up` }, { log: silent, server: input.server, outbox: () => scratch, userAgent: input.userAgent, onOutcome: () => setImmediate(check) });
      await sink.start();
      copies.push(sink);
    }
    const events = input.events.map((json) => [JSON.parse(json) as BridgeEvent, json] as const);
    for (let i = 0; i < events.length; i += BATCH) {
      const batch = events.slice(i, i + BATCH);
      const json = new Map(batch);
      scratch.batch(() =>
        ledger.acceptBatch(
          batch.map(([e]) => e),
          (event) => {
            for (const sink of copies) sink.deliver(event, json.get(event));
          },
        ),
      );
      report.events += batch.length;
      // One batch per turn, as AMI reads come: the dispatchers deliver in between.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    check();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), WARM_UP_DEADLINE_MS)));
    const how = await Promise.race([allDelivered.then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (how === 'late') report.error = `the loopback deliveries did not all end within ${WARM_UP_DEADLINE_MS} ms`;
  } catch (err) {
    report.error = (err as Error).message;
  } finally {
    for (const sink of copies) await sink.stop().catch(() => undefined);
    outbox?.close();
    server.closeAllConnections();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      removeScratch(scratchPath);
    } catch (err) {
      report.error ??= `could not remove ${scratchPath}: ${(err as Error).message}`;
    }
  }
  report.requests = requests;
  report.ms = Math.round(performance.now() - started);
  return report;
}
