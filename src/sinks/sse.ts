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

/** The comment each stream gets (EventSource ignores it; proxies see traffic). */
const KEEP_ALIVE_FRAME = ': keep-alive\n\n';

/**
 * Keep-alive comments, staggered: every stream gets one every `intervalMs`, each at its own phase.
 * The streams are dealt round-robin into one bucket per tick (250 ms), and each tick writes to one
 * bucket. Writing to every stream at once, as a single timer did, was ~1,000 socket writes in one
 * turn of the event loop with 1,000 agents: a 40–60 ms stall every interval, and every pop that
 * arrived in it waited (BENCHMARKS.md, issue 18, fourth pass).
 */
export class KeepAlive<S> {
  private readonly buckets: Array<Set<S>>;
  private readonly bucketOf = new Map<S, Set<S>>();
  private readonly tickMs: number;
  private dealt = 0;
  private turn = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    intervalMs: number,
    private readonly send: (stream: S, frame: string) => void,
    tickMs = 250,
  ) {
    const n = Math.max(1, Math.round(intervalMs / tickMs));
    this.buckets = Array.from({ length: n }, () => new Set<S>());
    this.tickMs = intervalMs / n;
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  add(stream: S): void {
    const bucket = this.buckets[this.dealt++ % this.buckets.length] as Set<S>;
    bucket.add(stream);
    this.bucketOf.set(stream, bucket);
  }

  delete(stream: S): void {
    this.bucketOf.get(stream)?.delete(stream);
    this.bucketOf.delete(stream);
  }

  /** One bucket's turn (exposed for tests: a tick without waiting for the timer). */
  tick(): void {
    const bucket = this.buckets[this.turn++ % this.buckets.length] as Set<S>;
    // A send may close its stream (too far behind): a Set goes on past an entry deleted meanwhile.
    for (const stream of bucket) this.send(stream, KEEP_ALIVE_FRAME);
  }
}
