// The CRM end of the webhook benchmarks (bench/webhook.ts, bench/bus.ts): an HTTP server taking
// the webhook sink's POSTs, recording per unique `webhook-id` the arrival (Date.now() when the
// request's headers are parsed), the event's `time`, call or agent, type and seq, and which node
// posted it (node i posts to /n<i>). In the bench process, or in a child of its own
// (measure-child.ts --role receiver) so that it is not charged to, or delayed by, the AMI feeder.
import http from 'node:http';
import type net from 'node:net';
import { benchFile } from './env.js';
import { startIpcChild, type IpcChild } from './run.js';

export interface ReceiverDump {
  id: string[];
  at: number[];
  time: number[];
  seq: number[];
  /** The event's callId, or agent:<id> for an agent event (its partition). */
  part: string[];
  type: string[];
  node: number[];
  requests: number;
  duplicates: number;
  /** Requests without a webhook-id, a JSON body or a time. */
  bad: number;
  /** Events whose `seq` is lower than one of the same call that arrived before them. */
  outOfOrder: number;
}

export class Collector {
  private readonly ids = new Set<string>();
  private readonly lastSeq = new Map<string, number>();
  readonly d: ReceiverDump = { id: [], at: [], time: [], seq: [], part: [], type: [], node: [], requests: 0, duplicates: 0, bad: 0, outOfOrder: 0 };
  add(at: number, id: string | undefined, body: string, url: string): void {
    const d = this.d;
    d.requests++;
    if (!id) return void d.bad++;
    if (this.ids.has(id)) return void d.duplicates++;
    let ev: { time?: unknown; callId?: unknown; seq?: unknown; type?: unknown; agent?: { id?: unknown } };
    try {
      ev = JSON.parse(body) as typeof ev;
    } catch {
      return void d.bad++;
    }
    const time = typeof ev.time === 'string' ? Date.parse(ev.time) : Number.NaN;
    if (!Number.isFinite(time)) return void d.bad++;
    this.ids.add(id);
    d.id.push(id);
    d.at.push(at);
    d.time.push(time);
    d.seq.push(typeof ev.seq === 'number' ? ev.seq : 0);
    d.part.push(typeof ev.callId === 'string' ? ev.callId : `agent:${String(ev.agent?.id ?? '?')}`);
    d.type.push(String(ev.type));
    d.node.push(Number(/^\/n(\d+)/.exec(url)?.[1] ?? 0));
    if (typeof ev.callId === 'string' && typeof ev.seq === 'number') {
      const last = this.lastSeq.get(ev.callId) ?? -Infinity;
      if (ev.seq < last) d.outOfOrder++;
      else this.lastSeq.set(ev.callId, ev.seq);
    }
  }
}

/** Requests to this path are answered like the others and not recorded (warmReceiver). */
export const WARM_UP_PATH = '/bench-warm-up';

export async function listenReceiver(collector: Collector): Promise<http.Server> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const at = Date.now(); // the request's headers have arrived
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = req.headers['webhook-id'];
      if (req.url === WARM_UP_PATH) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
        return void res.end('{}');
      }
      collector.add(at, Array.isArray(id) ? id[0] : id, Buffer.concat(chunks).toString('utf8'), req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

/**
 * The receiver stands for a CRM that has been up for a while: before a run, it answers `requests`
 * POSTs like the daemon's (a JSON event, 8 at a time over kept-alive connections), not recorded,
 * so that the run does not measure the receiver's own first seconds (V8 compiling its request
 * path) as the daemon's latency. BENCHMARKS.md, Method: webhook.
 */
export async function warmReceiver(port: number, requests = 3000): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const body = JSON.stringify({ type: 'call.ringing', time: new Date().toISOString(), callId: '1.1', seq: 1, agent: { id: '201' } });
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: WARM_UP_PATH, method: 'POST', agent, headers: { 'content-type': 'application/json', 'webhook-id': 'warm-up', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  let sent = 0;
  const lane = async () => {
    while (sent < requests) {
      sent += 1;
      await one();
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, lane));
  } finally {
    agent.destroy();
  }
}

export interface Receiver {
  kind: 'child' | 'inproc';
  port: number;
  pid: number;
  unique(): Promise<number>;
  dump(): Promise<ReceiverDump>;
  close(): Promise<void>;
}

export async function startReceiver(kind: 'child' | 'inproc'): Promise<Receiver> {
  if (kind === 'child') {
    const c: IpcChild = await startIpcChild('receiver', benchFile('harness/measure-child.ts'), ['--role', 'receiver']);
    await warmReceiver(c.ready.port as number);
    return {
      kind,
      port: c.ready.port as number,
      pid: c.pid,
      unique: async () => (await c.ask<{ unique: number }>({ type: 'count' }, 10_000)).unique,
      dump: async () => (await c.ask<{ dump: ReceiverDump }>({ type: 'dump' }, 60_000)).dump,
      close: () => c.close(),
    };
  }
  const c = new Collector();
  const server = await listenReceiver(c);
  await warmReceiver((server.address() as net.AddressInfo).port);
  return {
    kind,
    port: (server.address() as net.AddressInfo).port,
    pid: process.pid,
    unique: async () => c.d.at.length,
    dump: async () => c.d,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
