// Real HTTP servers on 127.0.0.1 that receive webhooks in tests. The Zammad and sipgate ones
// enforce the receiver rules documented in ../shared/receivers.md, and record every violation.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  requests: Received[];
  /** Broken receiver rules, in words; empty when the sender behaved. */
  violations: string[];
  /** Resolves once `pred(requests)` holds (checked on every request). */
  waitFor(pred: (requests: Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

type Respond = (req: Received) => { status: number; headers?: Record<string, string>; body?: string } | Promise<{ status: number; headers?: Record<string, string>; body?: string }>;

export async function startReceiver(respond: Respond = () => ({ status: 200, body: '{}' })): Promise<Receiver & { respond: Respond; setRespond(r: Respond): void }> {
  const requests: Received[] = [];
  const violations: string[] = [];
  const waiters = new Set<() => void>();
  let current = respond;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const rec: Received = { method: req.method ?? '', url: req.url ?? '', path: u.pathname, query: u.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      let out;
      try {
        out = await current(rec);
      } catch (err) {
        out = { status: 500, body: String(err) };
      }
      if (out.status >= 200 && out.status < 300) requests.push(rec);
      res.writeHead(out.status, { 'content-type': 'application/json', ...(out.headers ?? {}) });
      res.end(out.body ?? '');
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    violations,
    get respond() {
      return current;
    },
    setRespond(r: Respond) {
      current = r;
    },
    waitFor(pred, what, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pred(requests)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${requests.length} requests so far)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const CAUSES = new Set(['normalClearing', 'busy', 'cancel', 'noAnswer', 'congestion', 'notFound', 'forwarded']);

/** Reads a JSON or form body into a flat record (form `user[]` repeated -> array). */
function fields(rec: Received): Record<string, string | string[]> {
  const type = String(rec.headers['content-type'] ?? '');
  if (type.includes('application/json')) return JSON.parse(rec.body) as Record<string, string | string[]>;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(rec.body)) {
    if (k.endsWith('[]')) out[k] = [...((out[k] as string[] | undefined) ?? []), v];
    else out[k] = v;
  }
  return out;
}

/**
 * Zammad's generic CTI endpoint, `POST /api/v1/cti/{token}`, JSON or form. Enforces: valid token
 * (401), `direction` in|out (422), required fields, exactly one `newCall` per callId and first,
 * `answer`/`hangup` only for a call it saw (Zammad raises an error: 500), `cause` from the
 * documented list, nothing after `hangup`.
 */
export async function startZammadReceiver(token: string): Promise<Receiver & { calls: Map<string, string[]> }> {
  const calls = new Map<string, string[]>();
  const r = await startReceiver();
  const v = r.violations;
  r.setRespond((req) => {
    if (req.method !== 'POST') return { status: 404, body: '{"error":"not found"}' };
    if (req.path !== `/api/v1/cti/${token}`) return { status: 401, body: '{"error":"Invalid token, please contact your admin!"}' };
    if (req.query.size > 0) v.push(`query-string variables are not supported: ${req.url}`);
    const f = fields(req);
    const event = String(f.event ?? '');
    for (const k of ['event', 'from', 'to', 'direction', 'callId']) if (!f[k]) v.push(`${event || '?'}: missing ${k}`);
    if (f.direction !== 'in' && f.direction !== 'out') {
      v.push(`${event}: invalid direction ${String(f.direction)}`);
      return { status: 422, body: '{"error":"Invalid direction!"}' };
    }
    const id = String(f.callId ?? '');
    const seen = calls.get(id);
    if (event === 'newCall') {
      if (seen) v.push(`newCall for ${id} a second time`);
      calls.set(id, ['newCall']);
      return { status: 200, body: '{}' };
    }
    if (event !== 'answer' && event !== 'hangup') {
      v.push(`unknown event ${event}`);
      return { status: 422, body: '{"error":"Invalid event!"}' };
    }
    if (!seen) {
      v.push(`${event} for unknown call ${id}`);
      return { status: 500, body: '{"error":"No such call_id"}' };
    }
    if (seen.includes('hangup')) v.push(`${event} after hangup for ${id}`);
    if (event === 'hangup' && !CAUSES.has(String(f.cause))) v.push(`hangup with cause ${String(f.cause)}`);
    seen.push(event);
    return { status: 200, body: '{}' };
  });
  return Object.assign(r, { calls });
}

/**
 * A sipgate.io push receiver: form-encoded POSTs, `newCall` first and once per callId with
 * `user[]` in array form, `origCallId` (its own callId, or a call it saw: a transfer) and `xcid`,
 * one `fullUserId[]` per `userId[]`; `answer`/`hangup` only after it, `cause` from the documented list.
 */
export async function startSipgateReceiver(): Promise<Receiver & { calls: Map<string, string[]> }> {
  const calls = new Map<string, string[]>();
  const r = await startReceiver();
  const v = r.violations;
  r.setRespond((req) => {
    const type = String(req.headers['content-type'] ?? '');
    if (!type.startsWith('application/x-www-form-urlencoded')) v.push(`not form-encoded: ${type}`);
    const f = fields(req);
    const event = String(f.event ?? '');
    for (const k of ['event', 'callId', 'from', 'to', 'direction']) if (!f[k]) v.push(`${event || '?'}: missing ${k}`);
    if (f.direction !== 'in' && f.direction !== 'out') v.push(`${event}: invalid direction ${String(f.direction)}`);
    if ('user' in f && event === 'newCall') v.push('newCall: user must be sent as user[]');
    const id = String(f.callId ?? '');
    const seen = calls.get(id);
    if (event === 'newCall') {
      if (seen) v.push(`newCall for ${id} a second time`);
      const orig = String(f.origCallId ?? '');
      if (!orig) v.push(`newCall for ${id} without origCallId`);
      else if (orig !== id && !calls.has(orig)) v.push(`newCall for ${id}: origCallId ${orig} is no call seen before`);
      if (!f.xcid) v.push(`newCall for ${id} without xcid`);
      const count = (k: string) => (Array.isArray(f[k]) ? f[k].length : f[k] === undefined ? 0 : -1);
      if (count('fullUserId[]') !== count('userId[]')) v.push(`newCall for ${id}: fullUserId[] does not match userId[]`);
      calls.set(id, ['newCall']);
    } else if (event === 'answer' || event === 'hangup') {
      if (!seen) v.push(`${event} for unknown call ${id}`);
      else {
        if (seen.includes('hangup')) v.push(`${event} after hangup for ${id}`);
        seen.push(event);
      }
      if (event === 'hangup' && !CAUSES.has(String(f.cause))) v.push(`hangup with cause ${String(f.cause)}`);
    } else v.push(`unknown event ${event}`);
    return { status: 200, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Response/>' };
  });
  return Object.assign(r, { calls });
}
