// What the two SSE sinks (screenpop.ts: the agents' streams; wallboard.ts: the supervisors')
// share: the response headers, the bound on a stream's backlog, and the `status` event that tells
// a page whether the bridge still has its event source.
import type { ServerResponse } from 'node:http';
import type { SourceKind, SourceStatus } from '../sources/source.js';

/** Streams this far behind are cut; the browser reconnects (and resumes, or gets a snapshot). */
export const MAX_BACKLOG_BYTES = 1 << 20;

export function openEventStream(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
}

export function tooFarBehind(res: ServerResponse): boolean {
  return res.writableLength > MAX_BACKLOG_BYTES;
}

/**
 * The named `status` event (no id: never replayed): the source's kind and state only, since the
 * error text may name hosts the pages need not know. Only a change of state is news (a retry that
 * fails again is not).
 */
export class StatusFrame {
  frame: string | null = null;
  private state = '';

  /** The new frame to send, or null when the state did not change. */
  update(source: SourceKind, status: SourceStatus): string | null {
    if (this.frame && this.state === `${source} ${status.state}`) return null;
    this.state = `${source} ${status.state}`;
    this.frame = `event: status\ndata: ${JSON.stringify({ source, state: status.state, since: status.since })}\n\n`;
    return this.frame;
  }
}
