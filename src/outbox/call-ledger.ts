// The call ledger: what each call in progress has told the sinks (its seq, that it started,
// who answered, who still rings), and each agent's last seq, kept in the outbox's SQLite file
// so that a restarted bridge (kill -9, OOM kill, upgrade) goes on with its calls instead of
// announcing them again: no second call.started, seq continues, the answer is known, and a call
// that ended while no bridge ran gets its one call.hangup at the first resync.
//
// Written in the same transaction as the outbox rows of the event (accept), so there is no
// moment at which an event is in the outbox (and may be sent) while the ledger does not know it,
// nor the reverse. A row lives while its call does: call.hangup deletes it.
//
// The records of the calls in progress are also kept in memory, read from the file once (load,
// or the first event), so an event is a write only: no SELECT and JSON.parse of the call's row
// before each write (the profile of issue 18 put that read-modify-write at 4.9 % of the delivery
// thread). The memory follows the file: what a transaction changes is applied only once it
// succeeded, and a transaction that fails leaves both as they were. Nested in a caller's
// transaction (the delivery thread's batch), ours is a savepoint: should the caller's then fail
// to commit, the caller must drop this ledger (the delivery thread exits and is started again,
// reading the file). It costs one CallRecord per call in progress (a few hundred bytes), and is
// bounded as the calls are: the tracker ends its oldest call at calls.maxInProgress, and that
// call.hangup deletes the entry.
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { type BridgeEvent, isCallEvent } from '../events/types.js';
import { type CallRecord, recordEvent } from '../normalizer/call-record.js';
import { ChurnMap } from '../util/churn-map.js';

export interface CallLedgerOptions {
  log?: Logger;
  /** Rows kept at most at load (calls.maxInProgress, calls.maxAgents): the most recently updated. */
  maxCalls: number;
  maxAgents: number;
}

/** What a previous run left: its calls in progress and its agents' seq. */
export interface LedgerContents {
  calls: CallRecord[];
  agents: Array<{ id: string; seq: number }>;
}

// Not in the outbox's numbered migrations: the ledger is the bridge's own state beside the
// outbox, created if missing, and an older bridge opening the file simply ignores it.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS call_ledger (
    call_id    TEXT    PRIMARY KEY,
    updated_at INTEGER NOT NULL,
    record     TEXT    NOT NULL      -- a CallRecord (src/normalizer/call-record.ts) as JSON
  );
  CREATE TABLE IF NOT EXISTS agent_ledger (
    agent_id   TEXT    PRIMARY KEY,
    updated_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL
  );
`;

export class CallLedger {
  private readonly stmt;
  private readonly tx;
  private readonly batchTx;
  /**
   * The calls in progress as the file has them (null until read: load() or the first event). A
   * ChurnMap, as is `pending`: every event updates its call's entry and every call ends (Maps under
   * that churn promote what they hold: src/util/churn-map.ts).
   */
  private calls: ChurnMap<CallRecord> | null = null;
  /** What the transaction running now changes (null: the call ended); applied once it succeeds. */
  private readonly pending = new ChurnMap<CallRecord | null>();

  private constructor(
    private readonly db: Database.Database,
    private readonly opts: CallLedgerOptions,
  ) {
    db.exec(SCHEMA);
    this.stmt = {
      put: db.prepare('INSERT INTO call_ledger (call_id, updated_at, record) VALUES (?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET updated_at = excluded.updated_at, record = excluded.record'),
      end: db.prepare('DELETE FROM call_ledger WHERE call_id = ?'),
      agent: db.prepare('INSERT INTO agent_ledger (agent_id, updated_at, seq) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET updated_at = excluded.updated_at, seq = excluded.seq'),
    };
    this.tx = db.transaction((event: BridgeEvent, deliver: () => void, now: number) => {
      this.record(event, now);
      deliver();
    });
    this.batchTx = db.transaction((events: readonly BridgeEvent[], deliver: (event: BridgeEvent) => void, now: number) => {
      for (const event of events) {
        this.record(event, now);
        deliver(event);
      }
    });
  }

  /** The ledger in the database `db` (the outbox's: Outbox.database), its tables created if missing. */
  static open(db: Database.Database, opts: CallLedgerOptions): CallLedger {
    return new CallLedger(db, opts);
  }

  /**
   * What the previous run left, bounded: beyond maxCalls / maxAgents the rows updated least
   * recently are dropped (logged), so a file from a run that leaked cannot flood this one.
   */
  load(): LedgerContents {
    const drop = (table: string, max: number): number =>
      this.db.prepare(`DELETE FROM ${table} WHERE rowid NOT IN (SELECT rowid FROM ${table} ORDER BY updated_at DESC, rowid DESC LIMIT ?)`).run(max).changes;
    const dropped = { calls: drop('call_ledger', this.opts.maxCalls), agents: drop('agent_ledger', this.opts.maxAgents) };
    if (dropped.calls || dropped.agents) this.opts.log?.warn(dropped, 'call ledger: more entries than the caps allow; dropped the oldest');
    const calls = this.read();
    this.calls = new ChurnMap(calls);
    const agents = this.db.prepare<[], { id: string; seq: number }>('SELECT agent_id AS id, seq FROM agent_ledger ORDER BY updated_at, rowid').all();
    return { calls: [...calls.values()], agents };
  }

  /** The calls in the file, least recently updated first; an unreadable entry is dropped. */
  private read(): Map<string, CallRecord> {
    const calls = new Map<string, CallRecord>();
    for (const row of this.db.prepare<[], { call_id: string; record: string }>('SELECT call_id, record FROM call_ledger ORDER BY updated_at, rowid').all()) {
      try {
        calls.set(row.call_id, JSON.parse(row.record) as CallRecord);
      } catch (err) {
        this.opts.log?.warn({ err, callId: row.call_id }, 'call ledger: unreadable entry dropped');
        this.stmt.end.run(row.call_id);
      }
    }
    return calls;
  }

  /**
   * Records `event` and runs `deliver` (which hands it to the sinks, the outbox's among them) in
   * one transaction: the ledger and the outbox rows commit together. Should the ledger fail
   * (disk full), the event is still delivered: a restart then repeats what today's bridge would.
   */
  accept(event: BridgeEvent, deliver: () => void, now = Date.now()): void {
    let delivered = false;
    try {
      this.tx(event, () => {
        delivered = true;
        deliver();
      }, now);
      this.settle();
    } catch (err) {
      this.pending.clear();
      this.opts.log?.error({ err, eventId: event.id }, 'call ledger: could not record an event; delivered it anyway (a restart may repeat its call)');
      if (!delivered) deliver();
    }
  }

  /**
   * accept() for several events in ONE transaction (one commit): the bridge hands over everything
   * one AMI read produced at once (src/bridge.ts, flush). Should the transaction fail, it was
   * rolled back whole (the sinks' rows and call states with it), and each event is taken again
   * on its own, as accept() does.
   */
  acceptBatch(events: readonly BridgeEvent[], deliver: (event: BridgeEvent) => void, now = Date.now()): void {
    try {
      this.batchTx(events, deliver, now);
      this.settle();
    } catch (err) {
      this.pending.clear();
      this.opts.log?.error({ err, events: events.length }, 'call ledger: could not record a batch of events; taking them one by one');
      for (const event of events) this.accept(event, () => deliver(event), now);
    }
  }

  /** Entries in the ledger now (for tests and metrics). */
  get size(): { calls: number; agents: number } {
    const count = (table: string) => this.db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).get()?.n ?? 0;
    return { calls: count('call_ledger'), agents: count('agent_ledger') };
  }

  private record(event: BridgeEvent, now: number): void {
    if (!isCallEvent(event)) {
      this.stmt.agent.run(event.agent.id, now, event.seq);
      return;
    }
    const id = event.callId;
    this.calls ??= new ChurnMap(this.read());
    // recordEvent copies what it changes: the record in `calls` stays as committed. (Records
    // share the events' objects — caller, vars… — which no sink changes.)
    const pending = this.pending.get(id);
    const prev = pending !== undefined ? pending : (this.calls.get(id) ?? null);
    const next = recordEvent(prev, event);
    if (next) this.stmt.put.run(id, now, JSON.stringify(next));
    else this.stmt.end.run(id);
    this.pending.set(id, next);
  }

  /** The transaction succeeded: what it wrote is what the file has now. */
  private settle(): void {
    const calls = (this.calls ??= new ChurnMap(this.read()));
    for (const [id, record] of this.pending) {
      if (record) calls.set(id, record);
      else calls.delete(id);
    }
    this.pending.clear();
  }
}

