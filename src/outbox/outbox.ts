// Why this file is long: the SQLite schema and every statement on it live together, so each
// transaction can be read whole (the dispatcher, partitions and call ledger are apart).
//
// The durable outbox: every accepted event is written here, one row per sink, BEFORE any sink
// tries to deliver it. A Dispatcher (dispatcher.ts) per sink takes rows out when the sink has
// them. Because a row is deleted only after its sink said "delivered", a crash at any moment
// (kill -9 included) loses nothing: rows in flight at the crash are simply delivered again,
// with the same event id, and receivers de-duplicate.
//
// Ordering is kept per (sink, partition); a partition is a call (its callId) or an agent
// (`agent:<id>`). Only the oldest row of a partition — its *head* — may be delivered, and only
// one at a time. To find due heads without scanning the backlog, only a head carries a
// `next_attempt_at`; the rows queued behind it have NULL there and get a time when they become the
// head (the head was delivered or dead-lettered). "Which heads of sink S are due?" is then a range
// scan of a partial index, however many rows are waiting behind failing heads.
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { leaveCheckpointsElsewhere } from '../util/checkpointer.js';

/** One row waiting for delivery to one sink. */
export interface OutboxItem {
  /** Position in the outbox; increases with every enqueue (and redrive), never reused. */
  seq: number;
  sink: string;
  /** Order is kept within (sink, partition): a callId, or `agent:<id>`. */
  partition: string;
  eventId: string;
  /** The serialized event, as given to enqueue(). */
  payload: string;
  /** Failed attempts so far (this delivery is attempt `attempts + 1`). */
  attempts: number;
  /** When the row entered the outbox (enqueue or redrive), epoch ms. `maxAgeMs` counts from here. */
  createdAt: number;
  /** When it may be attempted next, epoch ms; null while an older row of its partition is pending. */
  nextAttemptAt: number | null;
  lastError: string | null;
}

/**
 * Why an event was given up on: the receiver refused it (`rejected`), the request could not be
 * built or sent for it (`invalid-request`: a URL or header the HTTP client refuses), it kept
 * failing (`max-attempts`, `max-age`), or it broke the event contract and went to no sink
 * (`invalid`, under INVALID_SINK).
 */
export type DeadReason = 'rejected' | 'invalid-request' | 'max-attempts' | 'max-age' | 'invalid';

/**
 * The pseudo-sink under which events that fail schema/events.v1.json are kept as dead letters
 * (src/outbox/invalid-events.ts): no durable sink can have this name (theirs match [A-Za-z0-9_.:-]), and `retry`
 * leaves them where they are, since no dispatcher would ever take them.
 */
export const INVALID_SINK = '(invalid)';

/** An event given up on; `retry()` puts it back into the outbox. */
export interface DeadLetter {
  /** Its outbox seq when it died; redriving gives it a new one. */
  seq: number;
  sink: string;
  partition: string;
  eventId: string;
  payload: string;
  /** Attempts made, the last one included. */
  attempts: number;
  createdAt: number;
  lastError: string | null;
  reason: DeadReason;
  failedAt: number;
}

export interface EnqueueEntry {
  sink: string;
  partition: string;
  eventId: string;
  payload: string;
}

export interface OutboxOptions {
  log?: Logger;
  /**
   * `normal` (default): in WAL mode a commit is not fsynced, so every committed row survives a
   * crash of this process (kill -9, OOM kill, an exception) but the last commits before an OS
   * crash or power loss may be lost. `full`: fsync on every commit, survives power loss too, at
   * the cost of one disk flush per enqueue (a few hundred per second on common disks instead of
   * tens of thousands).
   */
  synchronous?: 'normal' | 'full';
  /** How long a statement waits for another process's lock (the CLI) before failing. */
  busyTimeoutMs?: number;
  /**
   * `auto` (default): SQLite's, the commit that grows the WAL past 1,000 pages copies it into the
   * database (and fsyncs). `elsewhere`: a checkpointer thread does that (checkpointer.ts); this
   * connection checkpoints only past SAFETY_NET_PAGES.
   */
  checkpoints?: 'auto' | 'elsewhere';
}

/** Selects rows by sink and/or by ids; no filter selects everything. */
export interface Selection {
  sink?: string;
  /** Outbox seqs (for dead letters: their seq when they died). */
  seqs?: number[];
  eventIds?: string[];
}

export interface ListOptions {
  sink?: string;
  /** List dead letters instead of pending rows. */
  dead?: boolean;
  /** At most this many rows, oldest first (default 100). */
  limit?: number;
}

/** Raised when the file was written by a newer version of the bridge. */
export class OutboxVersionError extends Error {
  override name = 'OutboxVersionError';
}

// Each entry takes the schema from version i to i + 1; the file's `PRAGMA user_version` says how
// many have been applied. Append, never edit: files in the field are at every version.
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: seqs are never reused
    sink            TEXT    NOT NULL,
    partition       TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER,                            -- NULL: waiting behind an older row
    last_error      TEXT
  );
  -- The head of a partition, and "does this partition have rows?" at enqueue.
  CREATE INDEX outbox_partition ON outbox (sink, partition, seq);
  -- Heads only: "the heads of sink S that are due, oldest due first".
  CREATE INDEX outbox_due ON outbox (sink, next_attempt_at, seq) WHERE next_attempt_at IS NOT NULL;

  CREATE TABLE dead_letters (
    seq        INTEGER PRIMARY KEY,                     -- its outbox seq when it died
    sink       TEXT    NOT NULL,
    partition  TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_error TEXT,
    reason     TEXT    NOT NULL,
    failed_at  INTEGER NOT NULL
  );
  CREATE INDEX dead_letters_sink ON dead_letters (sink, seq);
  `,
];

interface OutboxRow {
  seq: number;
  sink: string;
  partition: string;
  event_id: string;
  payload: string;
  attempts: number;
  created_at: number;
  next_attempt_at: number | null;
  last_error: string | null;
}

interface DeadRow extends Omit<OutboxRow, 'next_attempt_at'> {
  reason: DeadReason;
  failed_at: number;
}

const toItem = (r: OutboxRow): OutboxItem => ({
  seq: r.seq,
  sink: r.sink,
  partition: r.partition,
  eventId: r.event_id,
  payload: r.payload,
  attempts: r.attempts,
  createdAt: r.created_at,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
});

const toDead = (r: DeadRow): DeadLetter => ({
  seq: r.seq,
  sink: r.sink,
  partition: r.partition,
  eventId: r.event_id,
  payload: r.payload,
  attempts: r.attempts,
  createdAt: r.created_at,
  lastError: r.last_error,
  reason: r.reason,
  failedAt: r.failed_at,
});

/** Builds `AND (seq IN (…) OR event_id IN (…))` for a selection, with its parameters. */
function where(sel: Selection): { sql: string; params: unknown[] } {
  const terms: string[] = [];
  const params: unknown[] = [];
  if (sel.sink !== undefined) {
    terms.push('sink = ?');
    params.push(sel.sink);
  }
  const ids: string[] = [];
  if (sel.seqs?.length) {
    ids.push(`seq IN (${sel.seqs.map(() => '?').join(',')})`);
    params.push(...sel.seqs);
  }
  if (sel.eventIds?.length) {
    ids.push(`event_id IN (${sel.eventIds.map(() => '?').join(',')})`);
    params.push(...sel.eventIds);
  }
  if (ids.length) terms.push(`(${ids.join(' OR ')})`);
  // An explicitly empty id list selects nothing rather than everything.
  else if (sel.seqs || sel.eventIds) terms.push('0');
  return { sql: terms.length ? `WHERE ${terms.join(' AND ')}` : '', params };
}

export class Outbox {
  /** Why the last enqueue failed; null once one succeeds. */
  private lastWriteError: string | null = null;
  private readonly stmt;
  private readonly enqueueTx;
  private readonly ackManyTx;
  private readonly deadTx;

  private constructor(
    private readonly db: Database.Database,
    private readonly log: Logger | undefined,
  ) {
    const prepare = <R>(sql: string) => db.prepare<unknown[], R>(sql);
    this.stmt = {
      // One statement, so it is atomic even against another process: a row is the head iff its
      // partition had no row when it was inserted.
      insert: prepare(`
        INSERT INTO outbox (sink, partition, event_id, payload, created_at, next_attempt_at)
        VALUES (@sink, @partition, @eventId, @payload, @now,
          CASE WHEN EXISTS (SELECT 1 FROM outbox WHERE sink = @sink AND partition = @partition) THEN NULL ELSE @now END)`),
      // Makes the oldest remaining row of a partition its head (no-op if it already is one).
      promote: prepare(`
        UPDATE outbox SET next_attempt_at = @now
        WHERE seq = (SELECT seq FROM outbox WHERE sink = @sink AND partition = @partition ORDER BY seq LIMIT 1)
          AND next_attempt_at IS NULL`),
      // The payload is read only for the heads a dispatcher starts (payloadOf): the heads it has
      // in flight are due too, and come back on every look.
      due: prepare<Omit<OutboxRow, 'payload'>>(`
        SELECT seq, sink, partition, event_id, attempts, created_at, next_attempt_at, last_error
        FROM outbox WHERE sink = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?`),
      payloadOf: prepare<{ payload: string }>(`SELECT payload FROM outbox WHERE seq = ?`),
      nextAttemptAt: prepare<{ t: number | null }>(`
        SELECT MIN(next_attempt_at) AS t FROM outbox WHERE sink = ? AND next_attempt_at > ?`),
      delete: prepare(`DELETE FROM outbox WHERE seq = ?`),
      reschedule: prepare(`
        UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?`),
      bury: prepare(`
        INSERT INTO dead_letters (seq, sink, partition, event_id, payload, attempts, created_at, last_error, reason, failed_at)
        SELECT seq, sink, partition, event_id, payload, attempts + 1, created_at, ?, ?, ? FROM outbox WHERE seq = ?`),
      get: prepare<OutboxRow>(`SELECT * FROM outbox WHERE seq = ?`),
      // An invalid event, never attempted: its row (for a seq from the outbox's sequence) goes
      // straight to the dead letters.
      buryUnsent: prepare(`
        INSERT INTO dead_letters (seq, sink, partition, event_id, payload, attempts, created_at, last_error, reason, failed_at)
        SELECT seq, sink, partition, event_id, payload, 0, created_at, ?, 'invalid', created_at FROM outbox WHERE seq = ?`),
    };

    this.enqueueTx = db.transaction((entries: readonly EnqueueEntry[], now: number) => {
      for (const e of entries) this.stmt.insert.run({ sink: e.sink, partition: e.partition, eventId: e.eventId, payload: e.payload, now });
    });
    this.ackManyTx = db.transaction((items: readonly OutboxItem[], now: number) => {
      for (const item of items) {
        this.stmt.delete.run(item.seq);
        this.stmt.promote.run({ sink: item.sink, partition: item.partition, now });
      }
    });
    this.deadTx = db.transaction((item: OutboxItem, reason: DeadReason, error: string, now: number) => {
      this.stmt.bury.run(error, reason, now, item.seq);
      this.stmt.delete.run(item.seq);
      this.stmt.promote.run({ sink: item.sink, partition: item.partition, now });
    });
  }

  /**
   * Opens (creating it and its directory if needed) an outbox file in WAL mode and brings its
   * schema up to date. One daemon per file: the CLI may use it at the same time (WAL readers and
   * `busy_timeout` writers), but two dispatchers of the same sink in two processes would deliver
   * rows twice and out of order.
   */
  static open(path: string, opts: OutboxOptions = {}): Outbox {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true });
      createPrivate(path, opts.log);
    }
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(opts.busyTimeoutMs ?? 5000))}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && path !== ':memory:') throw new Error(`${path}: could not switch the outbox to WAL mode (got '${String(mode)}')`);
      db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      if (opts.checkpoints === 'elsewhere') leaveCheckpointsElsewhere(db);
      migrate(db, path, opts.log);
      const outbox = new Outbox(db, opts.log);
      outbox.repairHeads(Date.now());
      return outbox;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The open database: state kept beside the outbox commits with its rows (src/outbox/call-ledger.ts). */
  get database(): Database.Database {
    return this.db;
  }

  /**
   * null if the outbox looks usable, else why not (for /readyz). Read-only: a health check that
   * wrote would add a commit (and a WAL frame) per probe, and contend with the real writers. It
   * reports the last failed enqueue (cleared by the next one that succeeds) and whether the file
   * can still be read.
   */
  problem(): string | null {
    if (!this.db.open) return 'the outbox is closed';
    if (this.lastWriteError) return `the last enqueue failed: ${this.lastWriteError}`;
    try {
      this.db.pragma('user_version', { simple: true });
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Accepts one event for one sink. Synchronous: when it returns, the row is committed. */
  enqueue(sink: string, partition: string, eventId: string, payload: string, now = Date.now()): void {
    this.tracked(() => this.stmt.insert.run({ sink, partition, eventId, payload, now }));
  }

  /**
   * Runs `write` (enqueues, and whatever else the caller writes in this file) in one transaction:
   * one commit for all of it. Inside one already, it is a savepoint of that one.
   */
  batch(write: () => void): void {
    this.db.transaction(write)();
  }

  /** Accepts several rows in one transaction (one commit): all of them or none. */
  enqueueMany(entries: readonly EnqueueEntry[], now = Date.now()): void {
    this.tracked(() => this.enqueueTx(entries, now));
  }

  /** Runs a write, remembering whether it failed (for problem()). */
  private tracked(write: () => unknown): void {
    try {
      write();
      this.lastWriteError = null;
    } catch (err) {
      this.lastWriteError = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  // --- used by the Dispatcher ---------------------------------------------------------------

  /**
   * At most `limit` heads of `sink` whose time has come, oldest due first, leaving out the
   * partitions in `skip` (the dispatcher's deliveries in flight: the outbox does not know about
   * them, and their heads are still due).
   */
  due(sink: string, now: number, limit: number, skip?: { has(partition: string): boolean; readonly size: number }): OutboxItem[] {
    const items: OutboxItem[] = [];
    for (const row of this.stmt.due.all(sink, now, limit + (skip?.size ?? 0))) {
      if (items.length >= limit) break;
      if (skip?.has(row.partition)) continue;
      const payload = this.stmt.payloadOf.get(row.seq)?.payload;
      if (payload !== undefined) items.push(toItem({ ...row, payload }));
    }
    return items;
  }

  /** The earliest next attempt of `sink` after `now`, or null if nothing is scheduled later. */
  nextAttemptAfter(sink: string, now: number): number | null {
    return this.stmt.nextAttemptAt.get(sink, now)?.t ?? null;
  }

  /** Delivered: deletes the row; the next row of its partition becomes due. */
  ack(item: OutboxItem, now = Date.now()): void {
    this.ackManyTx([item], now);
  }

  /** ack() for several rows in one transaction (one commit): what a dispatcher delivered in one turn. */
  ackMany(items: readonly OutboxItem[], now = Date.now()): void {
    this.ackManyTx(items, now);
  }

  /** A failed attempt to be retried at `nextAttemptAt`; the partition waits until then. */
  reschedule(item: OutboxItem, nextAttemptAt: number, error: string): void {
    this.stmt.reschedule.run(nextAttemptAt, error, item.seq);
  }

  /**
   * A failed attempt given up on: the row moves to dead_letters (attempts counting this one) and
   * the next row of its partition becomes due. A dead event does not hold back the rest of its
   * call: a receiver that rejects one event would otherwise never see that call again.
   */
  deadLetter(item: OutboxItem, reason: DeadReason, error: string, now = Date.now()): void {
    this.deadTx(item, reason, error, now);
  }

  /** Keeps an event that no sink may have (it broke the contract) as a dead letter of INVALID_SINK, reason `invalid`. */
  keepInvalid(partition: string, eventId: string, payload: string, error: string, now = Date.now()): void {
    this.db.transaction(() => {
      const { lastInsertRowid } = this.stmt.insert.run({ sink: INVALID_SINK, partition, eventId, payload, now });
      this.stmt.buryUnsent.run(error, lastInsertRowid);
      this.stmt.delete.run(lastInsertRowid);
    })();
  }

  /** The row as stored now, or null if it is gone (delivered, purged). */
  get(seq: number): OutboxItem | null {
    const row = this.stmt.get.get(seq);
    return row ? toItem(row) : null;
  }

  // --- metrics --------------------------------------------------------------------------------

  /** Rows waiting for delivery (in flight included). */
  depth(sink?: string): number {
    return this.count('outbox', sink);
  }

  /** Age of the oldest waiting row in ms; 0 if none. */
  oldestAgeMs(sink?: string, now = Date.now()): number {
    const sql = `SELECT MIN(created_at) AS t FROM outbox ${sink === undefined ? '' : 'WHERE sink = ?'}`;
    const row = this.db.prepare<unknown[], { t: number | null }>(sql).get(...(sink === undefined ? [] : [sink]));
    return row?.t == null ? 0 : Math.max(0, now - row.t);
  }

  deadCount(sink?: string): number {
    return this.count('dead_letters', sink);
  }

  // --- operations (crm-bridge outbox list|retry|purge) ---------------------------------------

  /** Pending rows (or dead letters), oldest first. */
  list(opts: ListOptions & { dead: true }): DeadLetter[];
  list(opts?: ListOptions & { dead?: false }): OutboxItem[];
  list(opts?: ListOptions): OutboxItem[] | DeadLetter[];
  list(opts: ListOptions = {}): OutboxItem[] | DeadLetter[] {
    const { sql, params } = where({ sink: opts.sink });
    const limit = Math.max(0, Math.trunc(opts.limit ?? 100));
    if (opts.dead) {
      return this.db.prepare<unknown[], DeadRow>(`SELECT * FROM dead_letters ${sql} ORDER BY seq LIMIT ?`).all(...params, limit).map(toDead);
    }
    return this.db.prepare<unknown[], OutboxRow>(`SELECT * FROM outbox ${sql} ORDER BY seq LIMIT ?`).all(...params, limit).map(toItem);
  }

  /**
   * Puts dead letters back into the outbox with attempts reset, in their original order, and
   * returns how many. They join the END of their partition (behind rows still pending there) with
   * a new seq, and `created_at` restarts so `maxAgeMs` gives them a full new life. A running
   * daemon in another process notices them at its next wake-up for that sink (its next enqueue
   * for it, or a retry timer) — there is no polling; in-process, call the Dispatcher's notify().
   */
  retry(sel: Selection = {}, now = Date.now()): number {
    const { sql: selected, params: selParams } = where(sel);
    // Invalid events stay dead: no sink may have them (INVALID_SINK).
    const sql = `${selected ? `${selected} AND` : 'WHERE'} sink <> ?`;
    const params = [...selParams, INVALID_SINK];
    return this.db.transaction(() => {
      // Inserted as waiting rows in dead-letter order (seq order follows insertion order), then
      // repairHeads() makes the oldest row of each partition due: set-wise, however many there are.
      const n = this.db
        .prepare(`INSERT INTO outbox (sink, partition, event_id, payload, created_at, next_attempt_at)
                  SELECT sink, partition, event_id, payload, ?, NULL FROM dead_letters ${sql} ORDER BY seq`)
        .run(now, ...params).changes;
      this.db.prepare(`DELETE FROM dead_letters ${sql}`).run(...params);
      if (n) {
        this.repairHeads(now);
        this.log?.info({ count: n, sink: sel.sink }, 'dead letters put back into the outbox');
      }
      return n;
    }).immediate();
  }

  /** Deletes pending rows (or dead letters) and returns how many. Pending rows are then never delivered. */
  purge(sel: Selection & { dead?: boolean } = {}, now = Date.now()): number {
    const { sql, params } = where(sel);
    return this.db.transaction(() => {
      const n = this.db.prepare(`DELETE FROM ${sel.dead ? 'dead_letters' : 'outbox'} ${sql}`).run(...params).changes;
      // Purging a head by id leaves its partition headless.
      if (!sel.dead && n) this.repairHeads(now);
      if (n) this.log?.warn({ count: n, sink: sel.sink, dead: Boolean(sel.dead) }, 'outbox rows purged');
      return n;
    }).immediate();
  }

  /**
   * Restores "exactly the oldest row of each partition has a next_attempt_at". Every write keeps
   * that true by itself; this is for rows removed by id (purge) and a safety net at open.
   */
  private repairHeads(now: number): void {
    const older = 'SELECT 1 FROM outbox AS o WHERE o.sink = outbox.sink AND o.partition = outbox.partition AND o.seq < outbox.seq';
    this.db.transaction(() => {
      const demoted = this.db.prepare(`UPDATE outbox SET next_attempt_at = NULL WHERE next_attempt_at IS NOT NULL AND EXISTS (${older})`).run().changes;
      const promoted = this.db.prepare(`UPDATE outbox SET next_attempt_at = ? WHERE next_attempt_at IS NULL AND NOT EXISTS (${older})`).run(now).changes;
      if (demoted) this.log?.warn({ rows: demoted }, 'outbox: rows behind an older row of their partition were marked due; fixed');
      if (promoted) this.log?.debug({ rows: promoted }, 'outbox: partitions without a due head fixed');
    }).immediate();
  }

  private count(table: 'outbox' | 'dead_letters', sink?: string): number {
    const sql = `SELECT COUNT(*) AS n FROM ${table} ${sink === undefined ? '' : 'WHERE sink = ?'}`;
    return this.db.prepare<unknown[], { n: number }>(sql).get(...(sink === undefined ? [] : [sink]))?.n ?? 0;
  }
}

/**
 * Creates the outbox file readable by its owner only (0600) before SQLite opens it: it holds
 * every event (caller numbers and names, CRM variables). SQLite gives the -wal and -shm files the
 * main file's permissions. An existing file keeps its mode (an operator may have chosen it), but
 * a file others can read is named in a warning.
 */
function createPrivate(path: string, log: Logger | undefined): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) log?.warn({ path, mode: mode.toString(8) }, 'the outbox file can be read by other users (it holds caller numbers and names); chmod 600 it');
  }
}

function migrate(db: Database.Database, path: string, log: Logger | undefined): void {
  // Read and migrate under one write lock: the daemon and the CLI may open a new file together.
  const from = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new OutboxVersionError(`${path}: outbox schema version ${version} is newer than this bridge understands (${MIGRATIONS.length}); upgrade the bridge or move the file away`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    if (version < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
    return version;
  }).immediate();
  if (from < MIGRATIONS.length) log?.info({ path, from, to: MIGRATIONS.length }, 'outbox schema migrated');
}
