// The agents' browsers of the screen-pop benchmarks (bench/screenpop.ts, bench/bus.ts): one SSE
// stream per agent (GET /agent/events?token=…), in a process of their own (measure-child.ts
// --role sse), each stream parsed (SSE framing, JSON). Records, per message, arrival (Date.now()
// when the chunk is read) − Date.parse(event.time) by phase and type, and for every call.ringing
// the stream's agent, the event's agent, call and id, so that each ring is checked to reach
// exactly its agent, once.
import http from 'node:http';
import { benchFile } from './env.js';
import { serveParent, startIpcChild, within } from './run.js';
import { round } from './stats.js';

export interface RingDump {
  id: string[];
  /** The stream's agent. */
  agent: string[];
  callId: string[];
  /** The event's agent id (to check isolation). */
  evAgent: string[];
  at: number[];
  time: number[];
  phase: number[];
}

export interface ClientsDump {
  rings: RingDump;
  /** `${phase}|${type}` -> latencies (ms) of every message of that type. */
  latency: Record<string, number[]>;
  messagesByPhase: number[];
  /** Messages of call.* types (agent.status excluded), per phase. */
  callMessagesByPhase: number[];
  comments: number;
  /** Messages naming another agent where only the stream's own agent may appear. */
  foreign: number;
  badMessages: number;
  /** Named SSE events (`event: status`): counted, not measured. */
  namedEvents: number;
  idMismatch: number;
  /** Streams that ended while they were expected to stay open. */
  cut: Array<{ agent: string; at: number; phase: number }>;
  refused: Array<{ agent: string; status: number | string }>;
  connected: number;
}

export interface Counts {
  rings: number;
  messages: number;
  messagesThisPhase: number;
  callMessagesThisPhase: number;
  open: number;
  cut: number;
}

const AGENT_SPECIFIC = new Set(['call.ringing', 'call.answered', 'call.ring_stopped']);
const emptyDump = (): ClientsDump => ({ rings: { id: [], agent: [], callId: [], evAgent: [], at: [], time: [], phase: [] }, latency: {}, messagesByPhase: [0], callMessagesByPhase: [0], comments: 0, foreign: 0, badMessages: 0, namedEvents: 0, idMismatch: 0, cut: [], refused: [], connected: 0 });

/** The child's side (measure-child.ts --role sse). */
export function sseClients(): void {
  const dump = emptyDump();
  let phase = 0;
  let closing = false;
  let open = 0;
  const onBlock = (agent: string, block: string, at: number) => {
    let id: string | null = null;
    let data: string | null = null;
    let comment = false;
    let named: string | null = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comment = true;
      else if (line.startsWith('data: ')) data = data === null ? line.slice(6) : `${data}\n${line.slice(6)}`;
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('event: ')) named = line.slice(7);
    }
    // A named event (the agent stream's `status`, since issue 17) is not a contract event.
    if (named !== null && named !== 'message') {
      dump.namedEvents++;
      return;
    }
    if (data === null) {
      if (comment) dump.comments++;
      return;
    }
    let ev: { id?: unknown; type?: unknown; time?: unknown; callId?: unknown; agent?: { id?: unknown } | null };
    try {
      ev = JSON.parse(data) as typeof ev;
    } catch {
      return void dump.badMessages++;
    }
    const time = typeof ev.time === 'string' ? Date.parse(ev.time) : Number.NaN;
    const type = String(ev.type);
    if (!Number.isFinite(time)) return void dump.badMessages++;
    if (ev.id !== id) dump.idMismatch++;
    const evAgent = ev.agent && typeof ev.agent.id === 'string' ? ev.agent.id : '';
    if ((AGENT_SPECIFIC.has(type) || type.startsWith('agent.')) && evAgent !== agent) dump.foreign++;
    dump.messagesByPhase[phase] = (dump.messagesByPhase[phase] ?? 0) + 1;
    if (type.startsWith('call.')) dump.callMessagesByPhase[phase] = (dump.callMessagesByPhase[phase] ?? 0) + 1;
    (dump.latency[`${phase}|${type}`] ??= []).push(at - time);
    if (type === 'call.ringing') {
      const r = dump.rings;
      r.id.push(String(ev.id));
      r.agent.push(agent);
      r.callId.push(typeof ev.callId === 'string' ? ev.callId : '?');
      r.evAgent.push(evAgent);
      r.at.push(at);
      r.time.push(time);
      r.phase.push(phase);
    }
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
      const req = http.get({ host: '127.0.0.1', port, path: `/agent/events?token=${encodeURIComponent(token)}`, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          dump.refused.push({ agent, status: res.statusCode ?? 0 });
          res.resume();
          req.destroy();
          return settle(false);
        }
        open++;
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          const at = Date.now();
          settle(true); // the retry hint arrived: the stream is attached
          buf += chunk;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            onBlock(agent, block, at);
          }
          if (buf.length > 4 << 20) {
            dump.badMessages++;
            buf = '';
          }
        });
        res.on('close', () => {
          open--;
          if (!closing) dump.cut.push({ agent, at: Date.now(), phase });
          settle(false);
        });
      });
      req.on('error', (err) => {
        if (!settled) dump.refused.push({ agent, status: (err as NodeJS.ErrnoException).code ?? err.message });
        settle(false);
      });
      req.setTimeout(0);
    });
  serveParent(
    {},
    {
      connect: async (m) => {
        const streams = m.streams as Array<{ agent: string; token: string }>;
        const t = performance.now();
        let ok = 0;
        let failed = 0;
        // 50 handshakes in flight at a time.
        for (let i = 0; i < streams.length; i += 50) {
          const res = await Promise.all(streams.slice(i, i + 50).map((s) => within(connectOne(m.port as number, s.agent, s.token), 30_000, `stream of ${s.agent}`).catch(() => false)));
          for (const r of res) r ? ok++ : failed++;
        }
        dump.connected += ok;
        return { ok, failed, ms: round(performance.now() - t, 0) };
      },
      phase: (m) => {
        phase = m.phase as number;
        dump.messagesByPhase[phase] ??= 0;
        dump.callMessagesByPhase[phase] ??= 0;
        return {};
      },
      count: () => ({ rings: dump.rings.at.length, messages: dump.messagesByPhase.reduce((a, b) => a + (b ?? 0), 0), messagesThisPhase: dump.messagesByPhase[phase] ?? 0, callMessagesThisPhase: dump.callMessagesByPhase[phase] ?? 0, open, cut: dump.cut.length }),
      dump: () => ({ dump }),
      closing: () => {
        closing = true;
        return {};
      },
    },
  );
}

export interface Clients {
  pid: number;
  connect(port: number, streams: Array<{ agent: string; token: string }>): Promise<{ ok: number; failed: number; ms: number }>;
  phase(p: number): Promise<void>;
  count(): Promise<Counts>;
  /** From now on a stream that ends is not a cut one. */
  closing(): Promise<void>;
  dump(): Promise<ClientsDump>;
  close(): Promise<void>;
}

/** `nodeArgs`: node options for the client process (bench/screenpop.ts: --single-threaded-gc). */
export async function startClients(cpu: string | null = null, nodeArgs: string[] = []): Promise<Clients> {
  const c = await startIpcChild('clients', benchFile('harness/measure-child.ts'), ['--role', 'sse'], cpu, nodeArgs);
  return {
    pid: c.pid,
    connect: (port, streams) => c.ask({ type: 'connect', port, streams }, 180_000),
    phase: async (p) => void (await c.ask({ type: 'phase', phase: p }, 10_000)),
    count: () => c.ask<Counts>({ type: 'count' }, 10_000),
    closing: async () => void (await c.ask({ type: 'closing' }, 10_000)),
    dump: async () => (await c.ask<{ dump: ClientsDump }>({ type: 'dump' }, 60_000)).dump,
    close: () => c.close(),
  };
}

/** The dumps of several client processes as one. */
export function mergeDumps(ds: ClientsDump[]): ClientsDump {
  const out = emptyDump();
  out.messagesByPhase = [];
  out.callMessagesByPhase = [];
  for (const d of ds) {
    for (const k of Object.keys(out.rings) as Array<keyof RingDump>) (out.rings[k] as unknown[]).push(...(d.rings[k] as unknown[]));
    for (const [k, v] of Object.entries(d.latency)) (out.latency[k] ??= []).push(...v);
    d.messagesByPhase.forEach((n, i) => (out.messagesByPhase[i] = (out.messagesByPhase[i] ?? 0) + (n ?? 0)));
    d.callMessagesByPhase.forEach((n, i) => (out.callMessagesByPhase[i] = (out.callMessagesByPhase[i] ?? 0) + (n ?? 0)));
    out.comments += d.comments;
    out.foreign += d.foreign;
    out.badMessages += d.badMessages;
    out.namedEvents += d.namedEvents;
    out.idMismatch += d.idMismatch;
    out.cut.push(...d.cut);
    out.refused.push(...d.refused);
    out.connected += d.connected;
  }
  return out;
}
