// A small Server-Sent Events client for tests: it exposes what EventSource hides (comments such
// as keep-alives, the retry hint, the HTTP status) and lets a test cut the connection at will.
import http from 'node:http';

export interface SseMessage {
  id: string | null;
  event: string | null;
  data: string;
}

export interface SseClient {
  status: number;
  messages: SseMessage[];
  comments: string[];
  retry: number | null;
  /** Resolves once `pred` holds (checked on every line received). */
  waitFor(pred: (c: SseClient) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Drops the TCP connection, as a network failure would. */
  cut(): void;
  closed: Promise<void>;
}

export function connectSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const waiters = new Set<() => void>();
      let closedResolve!: () => void;
      const client: SseClient = {
        status: res.statusCode ?? 0,
        messages: [],
        comments: [],
        retry: null,
        waitFor(pred, what, timeoutMs = 10_000) {
          return new Promise<void>((ok, fail) => {
            const check = () => {
              if (!pred(client)) return;
              clearTimeout(timer);
              waiters.delete(check);
              ok();
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${client.messages.length} messages)`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        cut() {
          req.destroy();
        },
        closed: new Promise<void>((r) => (closedResolve = r)),
      };
      res.setEncoding('utf8');
      let buf = '';
      let cur: SseMessage = { id: null, event: null, data: '' };
      let hasData = false;
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (hasData) client.messages.push(cur);
            cur = { id: null, event: null, data: '' };
            hasData = false;
          } else if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
          else {
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'data') {
              cur.data = hasData ? `${cur.data}\n${value}` : value;
              hasData = true;
            } else if (field === 'id') cur.id = value;
            else if (field === 'event') cur.event = value;
            else if (field === 'retry') client.retry = Number(value);
          }
        }
        for (const w of [...waiters]) w();
      });
      res.on('close', () => closedResolve());
      res.on('error', () => closedResolve());
      resolve(client);
    });
    req.on('error', reject);
  });
}
