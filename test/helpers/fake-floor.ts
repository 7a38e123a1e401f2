// A FAKE supervisor server for the wallboard page's browser test (test/e2e/supervisor-page.test.ts):
// it serves web/supervisor/ with the daemon's CSP, answers /supervisor/me, and streams whatever
// snapshot and patches the test hands it on /supervisor/events; POST /api/v1/calls is recorded and
// answered as the test says. It is NOT the daemon: the real routes are tested in
// test/e2e/supervisor.test.ts against real Asterisk. Its shapes are the daemon's own types.
import { readFileSync } from 'node:fs';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentFigures, ChartSlot, FloorPatch, FloorSnapshot, MissedCall, QueueFigures } from '../../dist/supervisor/types.js';

const WEB = new URL('../../web/', import.meta.url);
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; frame-src *; connect-src *; object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

export interface CallBackRequest {
  authorization: string | undefined;
  body: unknown;
}

export interface FakeFloor {
  url: string;
  /** Sent as the first event of every new stream. */
  snapshot: FloorSnapshot;
  /** Streams open now. */
  readonly streams: number;
  patch(p: Omit<FloorPatch, 'now'> & { now?: string }): void;
  /** A `status` event (the bridge's connection to its source), as the agent stream sends it. */
  status(s: { source: string; state: string; since: string }): void;
  /** A new snapshot to every open stream (midnight). */
  resend(s?: FloorSnapshot): void;
  /** Drops every open stream (the page must reconnect and get a new snapshot). */
  cut(): void;
  callBacks: CallBackRequest[];
  /** How POST /api/v1/calls answers. */
  callBackAnswer: { status: number; body: unknown };
  close(): Promise<void>;
}

export async function startFakeFloor(opts: { supervisorToken: string; agentToken: string; snapshot: FloorSnapshot; me?: Record<string, unknown> }): Promise<FakeFloor> {
  const streams = new Set<ServerResponse>();
  const send = (res: ServerResponse, event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const tokenOf = (req: http.IncomingMessage, url: URL) => url.searchParams.get('token') ?? /^bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;
  const refuse = (res: ServerResponse, token: string | null) => {
    if (token === opts.supervisorToken) return false;
    const status = token === opts.agentToken ? 403 : 401;
    res.writeHead(status, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 'about:blank', title: status === 403 ? 'Forbidden' : 'Unauthorized', status, detail: status === 403 ? 'not a supervisor token' : 'invalid token' }));
    return true;
  };
  const floor: FakeFloor = {
    url: '',
    snapshot: opts.snapshot,
    get streams() {
      return streams.size;
    },
    patch(p) {
      for (const res of streams) send(res, 'patch', { now: new Date().toISOString(), ...p });
    },
    status(s) {
      for (const res of streams) send(res, 'status', s);
    },
    resend(s) {
      if (s) floor.snapshot = s;
      for (const res of streams) send(res, 'snapshot', { ...floor.snapshot, now: new Date().toISOString() });
    },
    cut() {
      for (const res of streams) res.socket?.destroy();
      streams.clear();
    },
    callBacks: [],
    callBackAnswer: { status: 202, body: { id: 'cb-1', agent: '', number: '', status: 'originating' } },
    close: () =>
      new Promise<void>((r) => {
        floor.cut();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  /** A file of web/ as the daemon serves it (type, CSP, no-cache), or 404. */
  const serveFile = (res: http.ServerResponse, file: string): void => {
    try {
      const body = readFileSync(new URL(file, WEB));
      res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'content-security-policy': CSP, 'cache-control': 'no-cache' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    // The wallboard's files, and the agent page's modules it imports (as the daemon serves them).
    const agentFile = /^\/agent\/assets\/([A-Za-z0-9_.-]+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && agentFile) return serveFile(res, `agent/${agentFile}`);
    const file = url.pathname === '/supervisor' ? 'index.html' : /^\/supervisor\/assets\/([A-Za-z0-9_.-]+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && file) {
      if (url.searchParams.has('token') && refuse(res, url.searchParams.get('token'))) return;
      return serveFile(res, `supervisor/${file}`);
    }
    if (req.method === 'GET' && url.pathname === '/supervisor/me') {
      if (refuse(res, tokenOf(req, url))) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(opts.me ?? { name: 'floor', callBack: true, timeZone: floor.snapshot.timeZone }));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/supervisor/events') {
      if (refuse(res, tokenOf(req, url))) return;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': hello\n\n');
      send(res, 'snapshot', { ...floor.snapshot, now: new Date().toISOString() });
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/calls') {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        floor.callBacks.push({ authorization: req.headers.authorization, body: JSON.parse(text) });
        const { status, body } = floor.callBackAnswer;
        res.writeHead(status, { 'content-type': status < 300 ? 'application/json' : 'application/problem+json' });
        res.end(JSON.stringify(body));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  floor.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return floor;
}

const zeroMissed = () => ({ abandoned: 0, no_answer: 0, busy: 0, unavailable: 0, timeout: 0 });

export function queueFigures(name: string, o: Partial<QueueFigures> = {}): QueueFigures {
  return {
    name,
    waiting: 0,
    longestWaitSince: null,
    agents: { loggedIn: 0, available: 0, onCall: 0, paused: 0 },
    answered: 0,
    missed: zeroMissed(),
    abandoned: 0,
    abandonRate: null,
    serviceLevel: { seconds: 20, answeredWithin: 0, ratio: null },
    averageWaitSeconds: null,
    averageTalkSeconds: null,
    ...o,
  };
}

export function agentFigures(id: string, o: Partial<AgentFigures> = {}): AgentFigures {
  return { id, name: `Agent ${id}`, extension: id, state: 'available', since: new Date().toISOString(), pausedReason: null, queues: [], call: null, callsToday: 0, talkSecondsToday: 0, ...o };
}

export function emptyChart(): ChartSlot[] {
  return Array.from({ length: 96 }, (_, i) => ({ label: `${String(Math.floor(i / 4)).padStart(2, '0')}:${String((i % 4) * 15).padStart(2, '0')}`, answered: 0, missed: zeroMissed() }));
}

export function missedCall(id: string, o: Partial<MissedCall> = {}): MissedCall {
  return { id, time: new Date().toISOString(), caller: { number: '+4915112345678', name: null }, queue: 'sales', reason: 'abandoned', waitSeconds: 12, calledBack: null, ...o };
}

/** A contact centre's size: `queues` queues, `agents` agents spread over them, deterministic. */
export function bigFloor(queues: number, agents: number): FloorSnapshot {
  const states: AgentFigures['state'][] = ['available', 'on_call', 'paused', 'ringing', 'on_hold', 'unavailable', 'logged_out'];
  const now = Date.now();
  const qs = Array.from({ length: queues }, (_, i) => queueFigures(`q${String(i).padStart(3, '0')}`, { waiting: i % 4, longestWaitSince: i % 4 ? new Date(now - (i % 60) * 1000).toISOString() : null, answered: i * 3, abandoned: i % 5, abandonRate: i ? (i % 5) / (i * 3 + (i % 5)) : null }));
  const as = Array.from({ length: agents }, (_, i) => {
    const state = states[i % states.length]!;
    return agentFigures(String(1000 + i), { name: `Agent ${1000 + i}`, state, since: new Date(now - (i % 300) * 1000).toISOString(), queues: [qs[i % queues]!.name], pausedReason: state === 'paused' ? 'break' : null, callsToday: i % 9 });
  });
  return { day: new Date(now).toISOString().slice(0, 10), timeZone: 'UTC', now: new Date(now).toISOString(), queues: qs, agents: as, calls: [], chart: emptyChart(), missed: [] };
}
