// What a webhook sink remembers of each call in progress (flow.ts: the held call.started, the
// calls told to the receiver, the answers already sent), in the outbox's SQLite file beside the
// call ledger: the bridge hands events to the sinks inside the ledger's transaction, so this
// row and the outbox rows of the same event commit together. A restart in the middle of a call
// therefore never sends a second newCall or a second answer. A row lives while its call does.
import type Database from 'better-sqlite3';
import type { CallState } from './flow.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS webhook_calls (
    sink       TEXT    NOT NULL,
    call       TEXT    NOT NULL,     -- server|callId
    updated_at INTEGER NOT NULL,
    state      TEXT    NOT NULL,     -- a CallState (src/sinks/webhook/flow.ts) as JSON
    PRIMARY KEY (sink, call)
  );
`;

export class CallStates {
  private readonly stmt;

  constructor(
    db: Database.Database,
    private readonly sink: string,
  ) {
    db.exec(SCHEMA);
    this.stmt = {
      get: db.prepare<[string, string], { state: string }>('SELECT state FROM webhook_calls WHERE sink = ? AND call = ?'),
      put: db.prepare('INSERT INTO webhook_calls (sink, call, updated_at, state) VALUES (?, ?, ?, ?) ON CONFLICT (sink, call) DO UPDATE SET updated_at = excluded.updated_at, state = excluded.state'),
      end: db.prepare('DELETE FROM webhook_calls WHERE sink = ? AND call = ?'),
      expire: db.prepare('DELETE FROM webhook_calls WHERE sink = ? AND updated_at < ?'),
    };
  }

  get(call: string): CallState | null {
    const row = this.stmt.get.get(this.sink, call);
    if (!row) return null;
    try {
      return JSON.parse(row.state) as CallState;
    } catch {
      return null;
    }
  }

  set(call: string, state: CallState | null, now = Date.now()): void {
    if (state) this.stmt.put.run(this.sink, call, now, JSON.stringify(state));
    else this.stmt.end.run(this.sink, call);
  }

  /** Forgets calls not heard of since `before` (a call whose hangup this sink never saw). */
  expire(before: number): number {
    return this.stmt.expire.run(this.sink, before).changes;
  }
}
