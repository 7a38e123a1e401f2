// Checkpoints of SQLite files' WALs on one thread of their own for the process (checkpoint-worker.ts
// says why): the outbox's (its writer is the delivery thread) and the wallboard's (its writer is
// the main thread, which pops screens). The connections that write set `wal_autocheckpoint` to
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

interface Registered {
  path: string;
  log: Logger;
  count: number;
  waiters: Array<() => void>;
  removed: (() => void) | null;
}

/** The process's one checkpointer thread, while it has files; null when it has none. */
interface Thread {
  worker: Worker;
  files: Map<number, Registered>;
  exited: boolean;
  /** stop()s waiting for the thread to let a file go. */
  stopping: number;
}
let shared: Thread | null = null;

/** The thread stops holding the process alive once nobody waits for it (a stop, a next()). */
function release(t: Thread): void {
  if (t.stopping === 0 && [...t.files.values()].every((f) => f.waiters.length === 0)) t.worker.unref();
}
let nextId = 1;

function thread(): Thread {
  if (shared) return shared;
  const worker = new Worker(workerUrl(), { name: 'crm-bridge SQLite checkpoints' });
  // It must not keep the process alive on its own.
  worker.unref();
  const files = new Map<number, Registered>();
  const mine: Thread = { worker, files, exited: false, stopping: 0 };
  worker.on('message', (m: { t: string; id: number; message?: string }) => {
    const f = files.get(m.id);
    if (!f) return;
    if (m.t === 'checkpoint') {
      f.count += 1;
      const done = f.waiters;
      f.waiters = [];
      for (const w of done) w();
      if (done.length > 0) release(mine);
    } else if (m.t === 'error') f.log.warn({ path: f.path, error: m.message }, `SQLite checkpoints failing; the writers checkpoint themselves once the WAL reaches ${SAFETY_NET_PAGES} pages`);
    else if (m.t === 'recovered') f.log.info({ path: f.path }, 'SQLite checkpoints working again');
    else if (m.t === 'removed') {
      files.delete(m.id);
      f.removed?.();
    }
  });
  worker.on('error', (err) => {
    for (const f of files.values()) f.log.warn({ err, path: f.path }, `the SQLite checkpointer failed; the writers checkpoint themselves once the WAL reaches ${SAFETY_NET_PAGES} pages`);
  });
  worker.on('exit', () => {
    mine.exited = true;
    if (shared === mine) shared = null;
    for (const f of files.values()) f.removed?.();
    files.clear();
  });
  shared = mine;
  return mine;
}

/** Whether the process's checkpointer thread is running (tests: one thread for every file, gone with the last). */
export function checkpointerRunning(): boolean {
  return shared !== null;
}

/**
 * Starts checkpointing the SQLite file at `path` (a file in WAL mode; not for :memory:) on the
 * process's checkpointer thread, started with the first file and ended with the last. A file that
 * does not exist yet is checkpointed from when it does.
 */
export function startCheckpointer(path: string, log: Logger, intervalMs = CHECKPOINT_INTERVAL_MS): Checkpointer {
  const t = thread();
  const id = nextId++;
  const file: Registered = { path, log, count: 0, waiters: [], removed: null };
  t.files.set(id, file);
  t.worker.postMessage({ t: 'add', id, path, intervalMs });
  let stopped = false;
  return {
    get count() {
      return file.count;
    },
    next: () =>
      new Promise<void>((resolve) => {
        // Someone waits for it: the thread keeps the process alive until then.
        t.worker.ref();
        file.waiters.push(resolve);
      }),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!t.files.has(id) || t.exited) return;
      // Held alive until the thread has closed this file's connection.
      t.stopping += 1;
      t.worker.ref();
      await new Promise<void>((resolve) => {
        file.removed = resolve;
        t.worker.postMessage({ t: 'remove', id });
      });
      t.stopping -= 1;
      if (t.files.size > 0) return release(t);
      // The last file: the thread ends (a file started meanwhile gets a new one).
      if (shared === t) shared = null;
      if (t.exited) return;
      await new Promise<void>((resolve) => {
        t.worker.once('exit', () => resolve());
        t.worker.postMessage({ t: 'stop' });
      });
    },
  };
}
