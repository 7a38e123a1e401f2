// A CRM that only counts: the webhook receiver of the screen-pop benchmark's backlog
// (bench/screenpop.ts --webhook-backlog). That run measures pops, not webhooks, and its receiver
// shares a CPU with the SSE clients: node:http and a JSON.parse per request (receiver.ts, which
// the webhook benchmark needs for its latencies) took 14 % of that CPU at 2,200 requests/s; this
// one takes 15 % at 5,400/s (BENCHMARKS.md, issue 18, sixth pass). It reads HTTP/1.1 requests
// straight off the socket — the head up to the blank line, `content-length` bytes of body —
// keeps each `webhook-id` once, and answers `200 {}` to each, in order, as keep-alive (pipelined
// requests too). Chunked bodies are not needed (the daemon always sends a content-length) and
// are answered 400.
import net from 'node:net';
import { benchFile } from './env.js';
import { WARM_UP_PATH, warmReceiver } from './receiver.js';
import { startIpcChild } from './run.js';

const OK = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}', 'latin1');
const BAD = Buffer.from('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n', 'latin1');
/** warmReceiver's requests: answered, not counted. */
const WARM_UP_REQUEST = `POST ${WARM_UP_PATH} `;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** A head longer than this is not the daemon's: answered 400. */
const MAX_HEAD = 16 * 1024;

export interface Counts {
  /** Distinct webhook-ids seen (warm-up requests, without one, are not counted). */
  unique: number;
  requests: number;
  bad: number;
}

export async function listenCountingReceiver(): Promise<{ server: net.Server; counts: () => Counts }> {
  const ids = new Set<string>();
  let requests = 0;
  let bad = 0;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    /** Body bytes of the current request still to come (after its head). */
    let bodyLeft = 0;
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let answers = 0;
      for (;;) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, buf.length);
          bodyLeft -= take;
          buf = buf.subarray(take);
          if (bodyLeft > 0) break;
          answers += 1;
          continue;
        }
        const end = buf.indexOf(HEAD_END);
        if (end < 0) {
          if (buf.length > MAX_HEAD) return fail(socket);
          break;
        }
        const head = buf.toString('latin1', 0, end);
        buf = buf.subarray(end + 4);
        requests += 1;
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!length && /\r\ntransfer-encoding:/i.test(head)) return fail(socket);
        const id = /\r\nwebhook-id:\s*([^\r]*)/i.exec(head)?.[1]?.trim();
        if (id && !head.startsWith(WARM_UP_REQUEST)) ids.add(id);
        bodyLeft = length ? Number(length[1]) : 0;
        if (bodyLeft === 0) answers += 1;
      }
      if (answers > 0) socket.write(answers === 1 ? OK : Buffer.concat(Array.from({ length: answers }, () => OK)));
    });
    socket.on('error', () => socket.destroy());
  });
  const fail = (socket: net.Socket) => {
    bad += 1;
    socket.end(BAD);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return { server, counts: () => ({ unique: ids.size, requests, bad }) };
}

/** The counting receiver in a child process of its own (measure-child.ts --role counter), warmed up like receiver.ts's. */
export async function startCountingReceiver(nodeArgs: string[] = []): Promise<{ port: number; pid: number; unique(): Promise<number>; close(): Promise<void> }> {
  const c = await startIpcChild('receiver', benchFile('harness/measure-child.ts'), ['--role', 'counter'], null, nodeArgs);
  const port = c.ready.port as number;
  await warmReceiver(port);
  return { port, pid: c.pid, unique: async () => (await c.ask<Counts>({ type: 'count' }, 10_000)).unique, close: () => c.close() };
}
