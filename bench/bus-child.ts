// The measuring ends of bench/bus.ts, each in a process of its own so that what they do is not
// charged to (or delayed by) the AMI load generator. Not run by hand.
//
//   --role receiver   the CRM: an HTTP server taking the webhook nodes' POSTs (node i posts to
//                     /n<i>); records, per unique `webhook-id`, the arrival (Date.now() when the
//                     request's headers are parsed), the event's `time`, the node; counts
//                     duplicates and events of a call arriving out of order (by `seq`);
//   --role sse        the agents' browsers: one SSE stream per agent (GET /agent/events?token=…),
//                     each parsed; records, for every call.ringing, the stream's agent, the event's
//                     agent and call, arrival (Date.now() when the chunk is read) and `time`.
//
// Talks to the parent over IPC: requests { id, type, … }, answers { id, … }; id 0 is the
// unsolicited 'ready'. Exits when the parent goes away.
import http from 'node:http';
import type net from 'node:net';
import { parseArgs } from 'node:util';

export interface ReceiverDump {
  id: string[];
  /** 1: an agent event (agent.*: partitioned by agent), 0: a call event (by call). */
  agentEvent: number[];
  at: number[];
  time: number[];
  node: number[];
  requests: number;
  duplicates: number;
  bad: number;
  /** Events whose `seq` is lower than one of the same call that arrived before them. */
  outOfOrder: number;
}

export interface SseDump {
  /** Per call.ringing message: the event id, the stream's agent, the event's agent and call, arrival, time. */
  id: string[];
  streamAgent: string[];
  eventAgent: string[];
  callId: string[];
  at: number[];
  time: number[];
  messages: number;
  /** Messages naming another agent where only the stream's own agent may appear. */
  foreign: number;
  bad: number;
  cut: number;
  refused: Array<{ agent: string; status: number | string }>;
}

type Request = { id: number; type: string; [k: string]: unknown };
const send = (m: Record<string, unknown>) => process.send?.(m);

async function receiver(): Promise<void> {
  const d: ReceiverDump = { id: [], agentEvent: [], at: [], time: [], node: [], requests: 0, duplicates: 0, bad: 0, outOfOrder: 0 };
  const seen = new Set<string>();
  const lastSeq = new Map<string, number>();
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      d.requests++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
      const id = req.headers['webhook-id'];
      if (typeof id !== 'string') return void d.bad++;
      if (seen.has(id)) return void d.duplicates++;
      let ev: { time?: unknown; seq?: unknown; callId?: unknown; type?: unknown };
      try {
        ev = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof ev;
      } catch {
        return void d.bad++;
      }
      const time = typeof ev.time === 'string' ? Date.parse(ev.time) : Number.NaN;
      if (!Number.isFinite(time)) return void d.bad++;
      seen.add(id);
      d.id.push(id);
      d.agentEvent.push(String(ev.type).startsWith('agent.') ? 1 : 0);
      d.at.push(at);
      d.time.push(time);
      d.node.push(Number(/^\/n(\d+)/.exec(req.url ?? '')?.[1] ?? 0));
      if (typeof ev.callId === 'string' && typeof ev.seq === 'number') {
        const last = lastSeq.get(ev.callId) ?? -Infinity;
        if (ev.seq < last) d.outOfOrder++;
        else lastSeq.set(ev.callId, ev.seq);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  process.on('message', (m: Request) => {
    if (m.type === 'count') send({ id: m.id, unique: d.at.length, requests: d.requests });
    else if (m.type === 'dump') send({ id: m.id, dump: d });
  });
  send({ id: 0, port: (server.address() as net.AddressInfo).port });
}

async function sse(): Promise<void> {
  const d: SseDump = { id: [], streamAgent: [], eventAgent: [], callId: [], at: [], time: [], messages: 0, foreign: 0, bad: 0, cut: 0, refused: [] };
  const reqs = new Set<http.ClientRequest>();
  let open = 0;
  let closing = false;
  const AGENT_SPECIFIC = new Set(['call.ringing', 'call.answered', 'call.ring_stopped']);

  const onBlock = (agent: string, block: string, at: number) => {
    let data: string | null = null;
    for (const line of block.split('\n')) if (line.startsWith('data: ')) data = data === null ? line.slice(6) : `${data}\n${line.slice(6)}`;
    if (data === null) return; // a comment (keep-alive) or the retry hint
    let ev: { id?: unknown; type?: unknown; time?: unknown; callId?: unknown; agent?: { id?: unknown } | null };
    try {
      ev = JSON.parse(data) as typeof ev;
    } catch {
      return void d.bad++;
    }
    d.messages++;
    const type = String(ev.type);
    const evAgent = ev.agent && typeof ev.agent.id === 'string' ? ev.agent.id : '';
    if ((AGENT_SPECIFIC.has(type) || type.startsWith('agent.')) && evAgent !== agent) d.foreign++;
    if (type !== 'call.ringing') return;
    const time = typeof ev.time === 'string' ? Date.parse(ev.time) : Number.NaN;
    if (!Number.isFinite(time)) return void d.bad++;
    d.id.push(String(ev.id));
    d.streamAgent.push(agent);
    d.eventAgent.push(evAgent);
    d.callId.push(typeof ev.callId === 'string' ? ev.callId : '?');
    d.at.push(at);
    d.time.push(time);
  };

  const connectOne = (port: number, agent: string, token: string): Promise<boolean> =>
    new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (!settled) {
          settled = true;
          resolve(ok);
        }
      };
      const timer = setTimeout(() => settle(false), 30_000);
      const req = http.get({ host: '127.0.0.1', port, path: `/agent/events?token=${encodeURIComponent(token)}`, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          d.refused.push({ agent, status: res.statusCode ?? 0 });
          res.resume();
          req.destroy();
          clearTimeout(timer);
          return settle(false);
        }
        open++;
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          const at = Date.now();
          clearTimeout(timer);
          settle(true); // the retry hint arrived: the stream is attached
          buf += chunk;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            onBlock(agent, buf.slice(0, end), at);
            buf = buf.slice(end + 2);
          }
          if (buf.length > 4 << 20) {
            d.bad++;
            buf = '';
          }
        });
        res.on('close', () => {
          open--;
          reqs.delete(req);
          if (!closing) d.cut++;
          settle(false);
        });
      });
      reqs.add(req);
      req.on('error', (err) => {
        if (!settled) d.refused.push({ agent, status: (err as NodeJS.ErrnoException).code ?? err.message });
        clearTimeout(timer);
        settle(false);
      });
    });

  process.on('message', (m: Request) => {
    if (m.type === 'connect') {
      void (async () => {
        const streams = m.streams as Array<{ agent: string; token: string }>;
        const t0 = Date.now();
        let ok = 0;
        // 50 handshakes in flight at a time.
        for (let i = 0; i < streams.length; i += 50) {
          const res = await Promise.all(streams.slice(i, i + 50).map((s) => connectOne(m.port as number, s.agent, s.token)));
          for (const r of res) if (r) ok++;
        }
        send({ id: m.id, ok, failed: streams.length - ok, ms: Date.now() - t0 });
      })();
    } else if (m.type === 'count') send({ id: m.id, rings: d.at.length, messages: d.messages, open, cut: d.cut });
    else if (m.type === 'dump') send({ id: m.id, dump: d });
    else if (m.type === 'closing') {
      closing = true;
      for (const r of reqs) r.destroy();
      send({ id: m.id });
    }
  });
  send({ id: 0 });
}

const { values } = parseArgs({ options: { role: { type: 'string' } }, strict: true });
process.on('disconnect', () => process.exit(0));
if (values.role === 'receiver') await receiver();
else if (values.role === 'sse') await sse();
else throw new Error(`bench/bus-child.ts: --role receiver|sse (is '${String(values.role)}')`);
