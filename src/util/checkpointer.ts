// Checkpoints of an SQLite file's WAL on a thread of their own (checkpoint-worker.ts says why):
// the outbox's (its writer is the delivery thread) and the wallboard's (its writer is the main
// thread, which pops screens). The connections that write set `wal_autocheckpoint` to
// SAFETY_NET_PAGES (leaveCheckpointsElsewhere): they checkpoint only when the WAL has grown that
// far because this thread is behind or gone. Durability does not depend on it: a committed row is
// in the WAL whether or not it was copied.
import type Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

/** How often the checkpointer copies the WAL into the database. */
export const CHECKPOINT_INTERVAL_MS = 200;
/** A writer whose connection leaves checkpoints elsewhere still makes one past this many pages (64 MB at 4 KB). */
export const SAFETY_NET_PAGES = 16_384;

function workerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './checkpoint-worker.ts' : './checkpoint-worker.js', import.meta.url);
}

export interface Checkpointer {
  /** Checkpoints done so far (tests, metrics). */
  readonly count: number;
  /** Resolves after the next checkpoint (tests). */
  next(): Promise<void>;
  stop(): Promise<void>;
}

/** This connection no longer checkpoints in its commits (but past SAFETY_NET_PAGES): a checkpointer does. */
export function leaveCheckpointsElsewhere(db: Database.Database): void {
  db.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`);
}

/** Starts checkpointing the SQLite file at `path` (a file in WAL mode; not for :memory:). */
export function startCheckpointer(path: string, log: Logger, intervalMs = CHECKPOINT_INTERVAL_MS): Checkpointer {
  const worker = new Worker(workerUrl(), { workerData: { path, intervalMs }, name: 'crm-bridge SQLite checkpoints' });
  // It must not keep the process alive on its own.
  worker.unref();
  let count = 0;
  let stopped = false;
  let waiters: Array<() => void> = [];
  worker.on('message', (m: { t: string; message?: string }) => {
    if (m.t === 'checkpoint') {
      count += 1;
      const done = waiters;
      waiters = [];
      for (const w of done) w();
    }
    else if (m.t === 'error') log.warn({ path, error: m.message }, `SQLite checkpoints failing; the writers checkpoint themselves once the WAL reaches ${SAFETY_NET_PAGES} pages`);
    else if (m.t === 'recovered') log.info({ path }, 'SQLite checkpoints working again');
  });
  worker.on('error', (err) => log.warn({ err, path }, `the SQLite checkpointer failed; the writers checkpoint themselves once the WAL reaches ${SAFETY_NET_PAGES} pages`));
  worker.on('exit', () => {
    stopped = true;
  });
  return {
    get count() {
      return count;
    },
    next: () => new Promise<void>((resolve) => waiters.push(resolve)),
    async stop() {
      if (stopped) return;
      // Held alive until it has closed its connection.
      worker.ref();
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ t: 'stop' });
      });
    },
  };
}
