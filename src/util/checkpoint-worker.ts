// A checkpointer thread (checkpointer.ts starts it). In WAL mode every commit appends to the
// -wal file, and a checkpoint copies those pages into the database and fsyncs it: on this
// project's VM disk ~10 ms of waiting, which SQLite by default does inside the commit that crosses
// 1,000 pages, on the thread that wrote it (the one delivering webhooks, or the one popping
// screens). Here it is done instead, PASSIVE (it never
// waits for, nor blocks, a writer or a reader), every `intervalMs`, on a connection of its own.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const port = parentPort;
if (!port) throw new Error('checkpoint-worker.ts runs as a worker thread (src/util/checkpointer.ts starts it)');
const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new Database(path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
// Never checkpoints on its own commits (it makes none) and needs no more than a read lock.
db.pragma('wal_autocheckpoint = 0');
let failing = false;
const timer = setInterval(() => {
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    if (failing) port.postMessage({ t: 'recovered' });
    failing = false;
    port.postMessage({ t: 'checkpoint', log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 });
  } catch (err) {
    if (!failing) port.postMessage({ t: 'error', message: (err as Error).message });
    failing = true;
  }
}, intervalMs);
port.on('message', (m: { t: string }) => {
  if (m.t !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
