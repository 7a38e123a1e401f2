// Sends one prepared webhook request and says what to do next: delivered, retry (5xx, 408,
// 429, timeouts, connection errors; Retry-After honoured), or stop (other 4xx, 410, and a request
// the HTTP client refuses to send: it would be refused the same way on every retry).
import { Agent, request } from 'undici';

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
 * One AbortController of its own per request, aborted by the deadline's timer or by `signal`, both undone
 * when the exchange ends: AbortSignal.timeout and AbortSignal.any cost a signal each and a
 * composite signal's bookkeeping per request (4.7 % of the delivery thread in the issue 18
 * profile), for the same effect.
 */
export async function send(agent: Agent, req: PreparedRequest, signal?: AbortSignal, deadlineMs?: number): Promise<SendOutcome> {
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const stop = () => controller!.abort(signal!.reason);
  if (deadlineMs) {
    controller = new AbortController();
    const c = controller;
    timer = setTimeout(() => {
      timedOut = true;
      c.abort(new DOMException(`no complete answer within ${deadlineMs} ms`, 'TimeoutError'));
    }, deadlineMs);
    if (signal?.aborted) controller.abort(signal.reason);
    else signal?.addEventListener('abort', stop, { once: true });
  }
  try {
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body ?? undefined,
      dispatcher: agent,
      signal: controller?.signal ?? signal,
    });
    // Read (a bounded part of) the body so the connection can be reused, and for the log.
    let text = '';
    for await (const chunk of res.body) {
      if (text.length < 512) text += (chunk as Buffer).toString('utf8');
    }
    const outcome = classify(res.statusCode, retryAfterMs(res.headers['retry-after']));
    if (!outcome.ok) outcome.error = `HTTP ${res.statusCode}${text ? `: ${text.slice(0, 200)}` : ''}`;
    return outcome;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // undici refused to build the request (a header or the URL it cannot send): the same
    // request would be refused on every retry. Retrying it is how one bad value once blocked a sink.
    if (e.code === 'UND_ERR_INVALID_ARG' || e.code === 'ERR_INVALID_URL' || e.code === 'ERR_INVALID_CHAR' || e.code === 'ERR_INVALID_HTTP_TOKEN') {
      return { ok: false, retry: false, invalid: true, error: `the request cannot be sent: ${e.message}` };
    }
    if (timedOut) {
      return { ok: false, retry: true, error: `no complete answer within the attempt deadline (${deadlineMs} ms: connect + read)` };
    }
    // Timeouts, refused/reset connections, DNS: the CRM may come back; retry. (Error texts quote
    // URLs: the dispatcher redacts every one before it is logged or kept.)
    return { ok: false, retry: true, error: `${e.code ?? e.name ?? 'Error'}: ${e.message}` };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}
