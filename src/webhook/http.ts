// Sends one prepared webhook request and says what to do next: delivered, retry (5xx, 408,
// 429, timeouts, connection errors; Retry-After honoured), or stop (other 4xx, 410).
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
  | { ok: false; retry: false; status?: number; error: string };

export interface HttpOptions {
  connectTimeoutMs: number;
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

export async function send(agent: Agent, req: PreparedRequest, signal?: AbortSignal): Promise<SendOutcome> {
  try {
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body ?? undefined,
      dispatcher: agent,
      signal,
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
    // Timeouts, refused/reset connections, DNS: the CRM may come back; retry.
    return { ok: false, retry: true, error: `${e.code ?? e.name ?? 'Error'}: ${e.message}` };
  }
}
