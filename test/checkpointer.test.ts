// The outbox's WAL checkpoints on a thread of their own (src/util/checkpointer.ts): a writer
// opened with `checkpoints: 'elsewhere'` does not copy the WAL into the database in its commits
// (the fsyncs that held the delivery thread ~10 ms each), the checkpointer thread does; real SQLite
// files, a real worker thread.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import t from 'tap';
import { checkpointerRunning, SAFETY_NET_PAGES, startCheckpointer } from '../dist/util/checkpointer.js';
import { Outbox } from '../dist/outbox/outbox.js';

const PAYLOAD = 'x'.repeat(2000);
/** SQLite's own threshold: past it, a writer with the default settings checkpoints in its commit. */
const DEFAULT_PAGES = 1000;

function fill(outbox: Outbox, rows: number, from = 0): void {
  for (let i = from; i < from + rows; i += 1) outbox.enqueue('hook', `call-${i % 50}`, `event-${i}`, PAYLOAD);
}

function setup(t: Tap.Test, checkpoints: 'auto' | 'elsewhere') {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-ckpt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'outbox.db');
  const outbox = Outbox.open(path, { checkpoints });
  t.teardown(() => outbox.close());
  const pageSize = outbox.database.pragma('page_size', { simple: true }) as number;
  return { path, outbox, pageSize, wal: () => statSync(`${path}-wal`).size, db: () => statSync(path).size };
}

t.test('given a writer with checkpoints left elsewhere, when it commits past 1,000 pages of WAL, then it does not checkpoint (its connection sets the safety net)', async (t) => {
  const { outbox, pageSize, wal, db } = setup(t, 'elsewhere');
  const before = db();
  fill(outbox, 3000);
  t.equal(outbox.database.pragma('wal_autocheckpoint', { simple: true }), SAFETY_NET_PAGES);
  t.ok(wal() > DEFAULT_PAGES * pageSize * 1.2, `the WAL grew to ${wal()} bytes`);
  t.equal(db(), before, 'nothing was copied into the database file');
});

t.test('given the default (auto), when a writer commits past 1,000 pages, then it checkpoints itself (the behaviour the delivery thread no longer has)', async (t) => {
  const { outbox, pageSize, wal, db } = setup(t, 'auto');
  const before = db();
  fill(outbox, 3000);
  t.ok(wal() <= (DEFAULT_PAGES + 50) * pageSize, `the WAL stayed at ${wal()} bytes`);
  t.ok(db() > before, 'pages were copied into the database file by the writer');
});

t.test('given a checkpointer on the file, when a writer leaves checkpoints to it, then the checkpointer thread copies the WAL and the writer reuses it', async (t) => {
  const { path, outbox, wal, db } = setup(t, 'elsewhere');
  const checkpointer = startCheckpointer(path, pino({ level: 'silent' }), 20);
  t.teardown(() => checkpointer.stop());
  const before = db();
  fill(outbox, 1500);
  // A checkpoint that started after these commits has copied them.
  await checkpointer.next();
  await checkpointer.next();
  t.ok(db() > before, 'the checkpointer copied the pages into the database file');
  const grown = wal();
  // The WAL was fully copied, so the next commits write it again from its start instead of growing it.
  fill(outbox, 500, 1500);
  t.ok(wal() <= grown, `the WAL did not grow (${grown} -> ${wal()} bytes)`);
  // Every row is there, read by another connection.
  const reader = new Database(path, { readonly: true });
  t.teardown(() => reader.close());
  t.equal((reader.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 2000);
  await checkpointer.stop();
  t.pass('stopped');
});

t.test('given two files, when both are checkpointed, then one thread does both, keeps the other after one stops, and ends with the last', async (t) => {
  const a = setup(t, 'elsewhere');
  const b = setup(t, 'elsewhere');
  const silent = pino({ level: 'silent' });
  t.notOk(checkpointerRunning(), 'no thread before the first file');
  const ca = startCheckpointer(a.path, silent, 20);
  const cb = startCheckpointer(b.path, silent, 20);
  t.teardown(() => Promise.all([ca.stop(), cb.stop()]));
  t.ok(checkpointerRunning(), 'one thread once there are files');
  const [beforeA, beforeB] = [a.db(), b.db()];
  fill(a.outbox, 1500);
  fill(b.outbox, 1500);
  await Promise.all([ca.next().then(() => ca.next()), cb.next().then(() => cb.next())]);
  t.ok(a.db() > beforeA, "the first file's pages were copied");
  t.ok(b.db() > beforeB, "the second file's pages were copied");
  await ca.stop();
  t.ok(checkpointerRunning(), 'the thread stays for the file that is left');
  const countB = cb.count;
  await cb.next();
  t.ok(cb.count > countB, 'and goes on checkpointing it');
  await cb.stop();
  t.notOk(checkpointerRunning(), 'the thread ends with the last file');
});

t.test('given a file that does not exist yet, when its writer makes it, then it is checkpointed from then on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-ckpt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'later.db');
  const checkpointer = startCheckpointer(path, pino({ level: 'silent' }), 20);
  t.teardown(() => checkpointer.stop());
  const outbox = Outbox.open(path, { checkpoints: 'elsewhere' });
  t.teardown(() => outbox.close());
  const before = statSync(path).size;
  fill(outbox, 1500);
  await checkpointer.next();
  await checkpointer.next();
  t.ok(statSync(path).size > before, 'the pages reached the database file');
});
