// The checkpointer thread (checkpointer.ts starts one per process and hands it every file). In WAL
// mode every commit appends to the -wal file, and a checkpoint copies those pages into the database
// and fsyncs it: on this project's VM disk ~10 ms of waiting, which SQLite by default does inside
// the commit that crosses 1,000 pages, on the thread that wrote it (the one delivering webhooks, or
// the one popping screens). Here it is done instead, PASSIVE (it never waits for, nor blocks, a
// writer or a reader), every `intervalMs`, on a connection of its own per file. One thread for all
// the files: each thread is a V8 isolate of its own (~8 MB of resident memory).
import { existsSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';

const port = parentPort;
if (!port) throw new Error('checkpoint-worker.ts runs as a worker thread (src/util/checkpointer.ts starts it)');

interface File {
  path: string;
  db: Database.Database | null;
  timer: NodeJS.Timeout;
  failing: boolean;
}
const files = new Map<number, File>();

function checkpoint(id: number, f: File): void {
  try {
    // The writer may not have made the file yet (a first start): nothing to copy until it has.
    if (!f.db) {
      if (!existsSync(f.path)) return;
      f.db = new Database(f.path, { fileMustExist: true });
      f.db.pragma('busy_timeout = 1000');
      // Never checkpoints on its own commits (it makes none) and needs no more than a read lock.
      f.db.pragma('wal_autocheckpoint = 0');
    }
    const [row] = f.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    if (f.failing) port?.postMessage({ t: 'recovered', id });
    f.failing = false;
    port?.postMessage({ t: 'checkpoint', id, log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 });
  } catch (err) {
    if (!f.failing) port?.postMessage({ t: 'error', id, message: (err as Error).message });
    f.failing = true;
  }
}

function remove(id: number): void {
  const f = files.get(id);
  if (!f) return;
  clearInterval(f.timer);
  if (f.db?.open) f.db.close();
  files.delete(id);
}

port.on('message', (m: { t: 'add'; id: number; path: string; intervalMs: number } | { t: 'remove'; id: number } | { t: 'stop' }) => {
  if (m.t === 'add') {
    const f: File = { path: m.path, db: null, failing: false, timer: setInterval(() => checkpoint(m.id, f), m.intervalMs) };
    files.set(m.id, f);
  } else if (m.t === 'remove') {
    remove(m.id);
    port.postMessage({ t: 'removed', id: m.id });
  } else {
    for (const id of [...files.keys()]) remove(id);
    port.close();
  }
});
