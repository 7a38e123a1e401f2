// Events that break the contract (schema/events.v1.json) never reach a sink: the bridge checks
// every event before handing it to any (src/bridge.ts), and one that fails is logged (error, with
// every problem), counted (crm_bridge_events_invalid_total) and kept as a dead letter:
//   - in the outbox, when it is open (a webhook or NATS sink is configured): a dead letter of the
//     pseudo-sink `(invalid)`, reason `invalid`, so `crm-bridge outbox list --dead --sink
//     '(invalid)'` shows it and `purge --dead` removes it (`retry` leaves it: no sink may have it);
//   - else in `invalid-events.jsonl` next to where the outbox would be (the state directory), one
//     JSON object per line { at, problems, event }, created 0600, written up to MAX_FILE_BYTES.
// The normalizer is written never to produce such an event (issue 15); this is the last guard, so
// a mistake costs one event in the dead letters instead of a CRM that chokes on it.
import { appendFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Outbox } from './index.js';

/** The JSONL file stops growing here (a bug that makes every event invalid must not fill the disk). */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** At most this many problems go into the log line and the dead letter. */
const MAX_PROBLEMS = 10;

export interface InvalidEventsOptions {
  log: Logger;
  /** The outbox if it is open (a durable sink uses it), else null. */
  outbox: () => Outbox | null;
  /** The JSONL file for when there is no outbox; null keeps nothing but the log line (replay). */
  file: string | null;
  /** Counts one invalid event (the metric). */
  count: () => void;
}

export class InvalidEvents {
  private fileBytes: number | null = null;
  private fileFull = false;

  constructor(private readonly opts: InvalidEventsOptions) {}

  /** Logs, counts and keeps one event that failed validation with `problems`. */
  keep(event: unknown, problems: readonly string[]): void {
    this.opts.count();
    const shown = problems.slice(0, MAX_PROBLEMS);
    const e = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
    let keptIn: string;
    try {
      keptIn = this.store(e, event, shown);
    } catch (err) {
      keptIn = `nowhere (${err instanceof Error ? err.message : String(err)})`;
    }
    this.opts.log.error(
      { eventId: e.id, type: e.type, callId: e.callId, problems: shown, keptIn, ...(keptIn.startsWith('nowhere') || this.opts.file === null ? { event } : {}) },
      'event does not match the event contract (schema/events.v1.json): sent to no sink, kept as a dead letter',
    );
  }

  private store(e: Record<string, unknown>, event: unknown, problems: readonly string[]): string {
    const outbox = this.opts.outbox();
    if (outbox) {
      outbox.keepInvalid(partitionOf(e), typeof e.id === 'string' && e.id !== '' ? e.id : '(none)', JSON.stringify(event) ?? 'null', problems.join('; '));
      return "outbox dead letters, sink '(invalid)'";
    }
    const file = this.opts.file;
    if (file === null) return 'nowhere (no outbox, no file: this log line)';
    if (this.fileFull) return `nowhere (${file} reached ${MAX_FILE_BYTES} bytes)`;
    if (this.fileBytes === null) {
      mkdirSync(dirname(file), { recursive: true });
      this.fileBytes = statSize(file);
    }
    const line = `${JSON.stringify({ at: new Date().toISOString(), problems, event })}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.fileBytes + bytes > MAX_FILE_BYTES) {
      this.fileFull = true;
      this.opts.log.warn({ file, maxBytes: MAX_FILE_BYTES }, 'the invalid-events file is full: further invalid events are only logged');
      return `nowhere (${file} reached ${MAX_FILE_BYTES} bytes)`;
    }
    appendFileSync(file, line, { mode: 0o600 });
    this.fileBytes += bytes;
    return file;
  }
}

/** The event's outbox partition (src/outbox/partition.ts), for whatever shape an invalid event has. */
function partitionOf(e: Record<string, unknown>): string {
  if (typeof e.callId === 'string' && e.callId !== '') return e.callId;
  const agent = e.agent as { id?: unknown } | null | undefined;
  return typeof agent?.id === 'string' ? `agent:${agent.id}` : '(none)';
}

function statSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
