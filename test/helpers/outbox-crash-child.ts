// A process for the outbox crash test to kill -9. It enqueues events in small batches while a
// dispatcher delivers them, and reports each fact on stdout, one line each, written synchronously
// so a line on the pipe means the fact happened before the kill:
//   E <eventId> <partition>   enqueue() returned: the row is committed
//   D <eventId>               the (pretend) receiver got this event
// Usage: outbox-crash-child.ts DB_PATH TOTAL PARTITIONS
import { writeSync } from 'node:fs';
import pino from 'pino';
import { Dispatcher, Outbox, type DeliveryResult } from '../../dist/outbox/index.js';

const [path, totalArg, partitionsArg] = process.argv.slice(2);
if (!path || !totalArg || !partitionsArg) throw new Error('usage: outbox-crash-child.ts DB_PATH TOTAL PARTITIONS');
const total = Number(totalArg);
const partitions = Number(partitionsArg);
// Synchronous, so a line is out before the next step (the parent kills at any moment). Standard
// output is a non-blocking pipe: when the parent is slow to read (a busy machine) a write fails
// with EAGAIN and is simply tried again, rest of the line included.
const say = (line: string) => {
  let data = Buffer.from(`${line}\n`);
  while (data.length > 0) {
    try {
      data = data.subarray(writeSync(1, data));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
};

const outbox = Outbox.open(path);
let attempts = 0;
const dispatcher = new Dispatcher(
  outbox,
  {
    sink: 'crash',
    concurrency: 4,
    retry: { initialDelayMs: 1, maxDelayMs: 4, factor: 2, jitter: 0 },
    maxAttempts: 1_000_000,
    maxAgeMs: 3_600_000,
    log: pino({ level: 'silent' }),
  },
  async (item): Promise<DeliveryResult> => {
    say(`D ${item.eventId}`);
    // Answer on a later turn so deliveries overlap each other and the enqueue batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return ++attempts % 7 === 0 ? { ok: false, retry: true, error: 'pretend 503' } : { ok: true };
  },
);
dispatcher.start();

let next = 0;
const batch = () => {
  for (const end = Math.min(total, next + 10); next < end; next++) {
    const partition = `call-${next % partitions}`;
    outbox.enqueue('crash', partition, `ev-${next}`, JSON.stringify({ id: `ev-${next}`, n: next }));
    say(`E ev-${next} ${partition}`);
    dispatcher.notify();
  }
  if (next < total) setImmediate(batch);
  else say('ALL');
};
batch();
// Stay up once everything is delivered: this process ends only by the parent's kill -9.
setInterval(() => {}, 60_000);
