// The call ledger: what each call in progress has told the sinks (its seq, that it started,
// who answered, who still rings), and each agent's last seq, kept in the outbox's SQLite file
// so that a restarted bridge (kill -9, OOM kill, upgrade) goes on with its calls instead of
// announcing them again: no second call.started, seq continues, the answer is known, and a call
// that ended while no bridge ran gets its one call.hangup at the first resync.
//
// Written in the same transaction as the outbox rows of the event (accept), so there is no
// moment at which an event is in the outbox (and may be sent) while the ledger does not know it,
// nor the reverse. A row lives while its call does: call.hangup deletes it. Nothing of it stays
// in memory: per call in progress the bridge keeps no more heap than without it.
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { type BridgeEvent, isCallEvent } from '../events/types.js';
import { type CallRecord, recordEvent } from '../normalizer/call-record.js';

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

  private constructor(
    private readonly db: Database.Database,
    private readonly opts: CallLedgerOptions,
  ) {
    db.exec(SCHEMA);
    this.stmt = {
      get: db.prepare<[string], { record: string }>('SELECT record FROM call_ledger WHERE call_id = ?'),
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
    const calls: CallRecord[] = [];
    for (const row of this.db.prepare<[], { call_id: string; record: string }>('SELECT call_id, record FROM call_ledger ORDER BY updated_at, rowid').all()) {
      try {
        calls.push(JSON.parse(row.record) as CallRecord);
      } catch (err) {
        this.opts.log?.warn({ err, callId: row.call_id }, 'call ledger: unreadable entry dropped');
        this.stmt.end.run(row.call_id);
      }
    }
    const agents = this.db.prepare<[], { id: string; seq: number }>('SELECT agent_id AS id, seq FROM agent_ledger ORDER BY updated_at, rowid').all();
    return { calls, agents };
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
    } catch (err) {
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
    } catch (err) {
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
    const row = this.stmt.get.get(event.callId);
    const next = recordEvent(row ? (JSON.parse(row.record) as CallRecord) : null, event);
    if (next) this.stmt.put.run(event.callId, now, JSON.stringify(next));
    else this.stmt.end.run(event.callId);
  }
}
