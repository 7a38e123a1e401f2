// Today's wallboard counters and missed calls, kept in SQLite beside the outbox
// (supervisor.path, default <outbox dir>/wallboard.db) so a restart shows the same figures. A
// file of its own, not a table of the outbox: the outbox is written by the delivery thread, and
// two writers on one WAL file would wait on each other's locks.
//
// One row per counter (`["q","sales","answered"]` = 12) and one per missed call, per day;
// the writes of one event-loop turn go in one transaction. Days older than
// supervisor.retentionDays are deleted at start and at midnight.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import pino, { type Logger } from 'pino';
import { leaveCheckpointsElsewhere, startCheckpointer, type Checkpointer } from '../util/checkpointer.js';
import type { CounterKey } from './floor.js';
import type { MissedCall } from './types.js';

export class FloorStore {
  private readonly db: Database.Database;
  private readonly putCounter: Database.Statement<[string, string, number]>;
  private readonly putMissed: Database.Statement<[string, string, string]>;
  /** Copies the WAL into the file on a thread of its own: this one pops screens (a checkpoint's fsync took ~10 ms). */
  private readonly checkpointer: Checkpointer | null = null;

  /** `log`: where the checkpointer's problems are told (the sink passes its own). */
  constructor(path: string, log: Logger = pino({ level: 'silent' })) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    if (path !== ':memory:') {
      leaveCheckpointsElsewhere(this.db);
      this.checkpointer = startCheckpointer(path, log);
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS floor_counters (day TEXT NOT NULL, key TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (day, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS floor_missed (day TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (day, id)) WITHOUT ROWID;
    `);
    this.putCounter = this.db.prepare('INSERT INTO floor_counters (day, key, value) VALUES (?, ?, ?) ON CONFLICT (day, key) DO UPDATE SET value = excluded.value');
    this.putMissed = this.db.prepare('INSERT INTO floor_missed (day, id, data) VALUES (?, ?, ?) ON CONFLICT (day, id) DO UPDATE SET data = excluded.data');
  }

  /** The day's counters and missed calls (oldest first). */
  load(day: string): { counters: Array<[CounterKey, number]>; missed: MissedCall[] } {
    const counters = this.db.prepare('SELECT key, value FROM floor_counters WHERE day = ?').all(day) as Array<{ key: string; value: number }>;
    const missed = this.db.prepare('SELECT data FROM floor_missed WHERE day = ?').all(day) as Array<{ data: string }>;
    const calls: MissedCall[] = [];
    for (const m of missed) {
      try {
        calls.push(JSON.parse(m.data) as MissedCall);
      } catch {
        // A row this version cannot read is skipped, not fatal.
      }
    }
    calls.sort((a, b) => a.time.localeCompare(b.time));
    return { counters: counters.map((r) => [r.key, r.value]), missed: calls };
  }

  write(counters: ReadonlyArray<[string, CounterKey, number]>, missed: ReadonlyArray<[string, MissedCall]>): void {
    this.db.transaction(() => {
      for (const [day, key, value] of counters) this.putCounter.run(day, key, value);
      for (const [day, m] of missed) this.putMissed.run(day, m.id, JSON.stringify(m));
    })();
  }

  /** Deletes the days before `day`. */
  prune(before: string): number {
    return this.db.transaction(() => {
      const a = this.db.prepare('DELETE FROM floor_counters WHERE day < ?').run(before).changes;
      const b = this.db.prepare('DELETE FROM floor_missed WHERE day < ?').run(before).changes;
      return a + b;
    })();
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }
}
