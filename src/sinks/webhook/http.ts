// Sends one prepared webhook request and says what to do next: delivered, retry (5xx, 408,
// 429, timeouts, connection errors; Retry-After honoured), or stop (other 4xx, 410, and a request
// the HTTP client refuses to send: it would be refused the same way on every retry).
import { Agent, type Dispatcher } from 'undici';

export interface PreparedRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

export type SendOutcome =
  | { ok: true; status: number }
  | { ok: false; retry: true; afterMs?: number; status?: number; error: string }
  /** `invalid`: the request could not be sent at all (never reached the receiver). */
  | { ok: false; retry: false; status?: number; invalid?: boolean; error: string };

export interface HttpOptions {
  connectTimeoutMs: number;
  /** Between bytes: for the response headers, then for each chunk of the body. */
  readTimeoutMs: number;
  /** Connections kept per origin. */
  connections: number;
}

export function createHttpAgent(opts: HttpOptions): Agent {
  return new Agent({
    connect: { timeout: opts.connectTimeoutMs },
    headersTimeout: opts.readTimeoutMs,
    bodyTimeout: opts.readTimeoutMs,
    connections: opts.connections,
    keepAliveTimeout: 4_000,
  });
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export function classify(status: number, retryAfter?: number): SendOutcome {
  if (status >= 200 && status < 300) return { ok: true, status };
  if (status >= 500 || status === 408 || status === 429) return { ok: false, retry: true, status, afterMs: retryAfter, error: `HTTP ${status}` };
  return { ok: false, retry: false, status, error: `HTTP ${status}` };
}

/** The time one attempt may take in all, connect + headers + body: connectMs + readMs. */
export function attemptDeadlineMs(opts: Pick<HttpOptions, 'connectTimeoutMs' | 'readTimeoutMs'>): number {
  return opts.connectTimeoutMs + opts.readTimeoutMs;
}

/**
 * Sends `req`. `deadlineMs` bounds the whole exchange — connect, headers and body together —
 * where undici's own timeouts only bound the gaps between bytes (a receiver trickling one byte
 * every few seconds never trips them). `signal` is the dispatcher's (shutdown, its own deadline).
 *
 * Built on undici's low-level `dispatch()` (callbacks into one closure per request), not on
 * `request()`: `request()` makes a body stream, promises and an abort bridge per request, and
 * ~2.5 KB of them outlived a young-generation GC each time. At thousands of requests per second
 * that promoted ~12 MB/s into the old generation: a 4–12 ms scavenge every ~200 ms on the
 * delivery thread (with V8's helper threads), which stole the core the screen pops run on, and
 * a mark-compact every few seconds. `dispatch()` promotes next to nothing and sends ~2.5× the
 * requests per core (BENCHMARKS.md, issue 18 fifth pass).
 *
 * One timer per request for the deadline, undone when the exchange ends; the attempt is aborted
 * through undici's controller (or before it starts, if it is still waiting for a connection).
 */
export function send(agent: Agent, req: PreparedRequest, signal?: AbortSignal, deadlineMs?: number): Promise<SendOutcome> {
  return new Promise<SendOutcome>((resolve) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | null = null;
    let abortedWith: unknown = null;
    let timer: NodeJS.Timeout | undefined;
    let status = 0;
    let retryAfter: string | string[] | undefined;
    let text = '';
    const finish = (outcome: SendOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const abort = (reason: unknown): void => {
      if (abortedWith === null) abortedWith = reason;
      controller?.abort(reason as Error);
    };
    // Settled first: undici reports the abort through onResponseError at once, which must not
    // be taken for the outcome.
    function onAbort(): void {
      const reason = signal?.reason as unknown;
      finish(failure(reason, false, deadlineMs));
      abort(reason);
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadlineMs) {
      timer = setTimeout(() => {
        finish(failure(null, true, deadlineMs));
        abort(new DOMException(`no complete answer within ${deadlineMs} ms`, 'TimeoutError'));
      }, deadlineMs);
    }
    let url: URL;
    try {
      url = new URL(req.url);
    } catch (err) {
      return finish(failure(err, false, deadlineMs));
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (abortedWith !== null) c.abort(abortedWith as Error);
      },
      onResponseStart(_c, statusCode, headers) {
        // 1xx (100 Continue, 103 Early Hints) precede the answer.
        if (statusCode < 200) return;
        status = statusCode;
        retryAfter = headers['retry-after'];
      },
      onResponseData(_c, chunk) {
        // Read (a bounded part of) the body so the connection can be reused, and for the log.
        if (text.length < 512) text += chunk.toString('utf8');
      },
      onResponseEnd() {
        const outcome = classify(status, retryAfterMs(retryAfter));
        if (!outcome.ok) outcome.error = `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
        finish(outcome);
      },
      onResponseError(_c, err) {
        finish(failure(err, false, deadlineMs));
      },
    };
    try {
      agent.dispatch({ origin: url.origin, path: `${url.pathname}${url.search}`, method: req.method, headers: req.headers, body: req.body ?? null }, handler);
    } catch (err) {
      finish(failure(err, false, deadlineMs));
    }
  });
}

/** What a request that got no answer means: never (it cannot be sent), or retry. */
function failure(err: unknown, timedOut: boolean, deadlineMs: number | undefined): SendOutcome {
  if (timedOut) return { ok: false, retry: true, error: `no complete answer within the attempt deadline (${deadlineMs} ms: connect + read)` };
  const e = (err ?? {}) as NodeJS.ErrnoException;
  // undici refused to build the request (a header or the URL it cannot send): the same
  // request would be refused on every retry. Retrying it is how one bad value once blocked a sink.
  if (e.code === 'UND_ERR_INVALID_ARG' || e.code === 'ERR_INVALID_URL' || e.code === 'ERR_INVALID_CHAR' || e.code === 'ERR_INVALID_HTTP_TOKEN') {
    return { ok: false, retry: false, invalid: true, error: `the request cannot be sent: ${e.message}` };
  }
  // Timeouts, refused/reset connections, DNS, a shutdown: the CRM may come back; retry. (Error
  // texts quote URLs: the dispatcher redacts every one before it is logged or kept.)
  return { ok: false, retry: true, error: `${e.code ?? e.name ?? 'Error'}: ${e.message ?? String(err)}` };
}
