// The wallboard over HTTP (src/sinks/wallboard.ts, the /supervisor routes of src/http/server.ts,
// /api/v1/supervisor in src/api/supervisor.ts): a real server, real SSE, real SQLite, events
// recorded on the lab's real Asterisk. Who may see it, what the stream sends, and the counters
// surviving a restart of the sink.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { apiRoutes } from '../dist/api/router.js';
import { defaultConfig } from '../dist/config/load.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { HttpServer } from '../dist/http/server.js';
import { TokenVerifier } from '../dist/http/tokens.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';
import { WallboardSink, type WallboardConfig } from '../dist/sinks/wallboard.js';
import type { FloorPatch, FloorSnapshot } from '../dist/supervisor/types.js';
import { connectSse } from './helpers/sse.js';
import { replayTrace } from './helpers/replay.js';

const SUP = 'supervisor-wallboard-token-7d1e93c0a4b2';
const AGENT = 'agent-201-wallboard-token-51f0c8e2d96a';
const API = 'api-wallboard-token-0b7e4d19c3a85f62';

async function recorded(name: string): Promise<BridgeEvent[]> {
  return (await replayTrace(readFileSync(new URL(`../lab/recordings/${name}`, import.meta.url)))).events;
}

async function start(t: Test, dir: string, now: () => number) {
  const log = pino({ level: 'silent' });
  const config = defaultConfig({ agents: [{ id: '201', extension: '201', name: 'Ana', interfaces: ['Local/201@agents'], token: AGENT }], http: { listen: '127.0.0.1:0', supervisors: [{ name: 'floor', token: SUP }] }, api: { tokens: [{ name: 'crm', token: API }] } });
  const wb: WallboardConfig = { type: 'wallboard', timeZone: 'Europe/Berlin', serviceLevelSeconds: 20, queues: [], path: join(dir, 'wallboard.db'), retentionDays: 31, pushIntervalMs: 50, keepAliveSeconds: 15, retryMs: 1000, agents: config.agents };
  const wallboard = new WallboardSink({ config: wb, log, now });
  await wallboard.start();
  const tokens = new TokenVerifier([{ token: AGENT, who: { kind: 'agent', agentId: '201' } }, { token: SUP, who: { kind: 'supervisor', name: 'floor' } }], undefined);
  const agents = new AgentDirectory({ agents: config.agents, agentContexts: ['agents'], extensionPattern: '^[0-9]{2,6}$' });
  const screenpop = new ScreenPopSink({ log, keepAliveSeconds: 15, retryMs: 1000, bufferPerAgent: 10, agentQueues: new Map() });
  const server = new HttpServer({
    config: config.http!,
    rules: [],
    screenpop,
    tokens,
    agents,
    log,
    wallboard,
    isApiToken: (x) => x === API,
    callBack: true,
    extraRoutes: apiRoutes({ config: config.api!, ami: null, presence: null, agents, tokens, floor: wallboard, log }),
  });
  await server.start();
  const base = `http://127.0.0.1:${server.address!.port}`;
  const stop = async () => {
    await server.stop();
    await wallboard.stop();
  };
  return { base, wallboard, stop };
}

t.test('the wallboard over HTTP', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wallboard-http-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const answered = await recorded('queue-answered.ami');
  const abandoned = await recorded('queue-abandoned.ami');
  // The sink's clock on the recordings' day, so their events are today's.
  const day = () => Date.parse(answered[0]!.time);
  const first = await start(t, dir, day);

  t.test('given each kind of token, then only a supervisor opens the page, its stream and its details', async (t) => {
    const status = async (path: string, token?: string, bearer = false) =>
      (await fetch(`${first.base}${path}${token && !bearer ? `${path.includes('?') ? '&' : '?'}token=${token}` : ''}`, { headers: bearer && token ? { authorization: `Bearer ${token}` } : {} })).status;
    t.equal(await status('/supervisor'), 200, 'no token: the page, with its login form');
    t.equal(await status('/supervisor', SUP), 200);
    t.equal(await status('/supervisor', AGENT), 403, "an agent's token");
    t.equal(await status('/supervisor', API), 403, 'an API token');
    t.equal(await status('/supervisor', 'not-a-token'), 401);
    t.equal(await status('/supervisor/me', SUP, true), 200);
    t.equal(await status('/supervisor/me', AGENT, true), 403);
    t.equal(await status('/supervisor/events', AGENT), 403);
    t.equal(await status('/supervisor/events'), 401);
    t.equal(await status('/api/v1/supervisor/queues', API, true), 200, 'the API: an API token');
    t.equal(await status('/api/v1/supervisor/queues', SUP, true), 200, 'and a supervisor token');
    t.equal(await status('/api/v1/supervisor/queues', AGENT, true), 403, "not an agent's");
    const me = (await (await fetch(`${first.base}/supervisor/me`, { headers: { authorization: `Bearer ${SUP}` } })).json()) as Record<string, unknown>;
    t.same(me, { name: 'floor', callBack: true, timeZone: 'Europe/Berlin' });
    const page = await fetch(`${first.base}/supervisor`);
    t.match(page.headers.get('content-security-policy'), "script-src 'self'", 'the same CSP as the agent page');
  });

  t.test('given an open stream, then a snapshot, then patches with the recorded calls as they happen', async (t) => {
    const sse = await connectSse(`${first.base}/supervisor/events?token=${SUP}`);
    t.teardown(() => sse.cut());
    t.equal(sse.status, 200);
    await sse.waitFor((c) => c.messages.some((m) => m.event === 'snapshot'), 'the snapshot');
    const snap = JSON.parse(sse.messages[0]!.data) as FloorSnapshot;
    t.equal(snap.chart.length, 96);
    t.same(snap.agents.map((a) => [a.id, a.state]), [['201', 'logged_out']], 'the configured agent, before any event');
    const patches = () => sse.messages.filter((m) => m.event === 'patch').map((m) => JSON.parse(m.data) as FloorPatch);
    const queued = answered.findIndex((e) => e.type === 'call.queued');
    for (const e of answered.slice(0, queued + 1)) first.wallboard.deliver(e);
    await sse.waitFor(() => patches().some((p) => p.queues?.some((q) => q.name === 'sales' && q.waiting === 1)), 'a caller waiting in sales');
    for (const e of [...answered.slice(queued + 1), ...abandoned]) first.wallboard.deliver(e);
    await sse.waitFor(() => patches().some((p) => p.queues?.some((q) => q.name === 'sales' && q.answered === 1 && q.abandoned === 1 && q.waiting === 0)), 'one answered and one abandoned');
    const ended = patches().flatMap((p) => p.callsEnded ?? []);
    t.ok(ended.length >= 1, 'ended calls are removed by id');
    const missed = patches().flatMap((p) => p.missed ?? []);
    t.equal(missed.at(-1)?.reason, 'abandoned');
    const api = (await (await fetch(`${first.base}/api/v1/supervisor/today`, { headers: { authorization: `Bearer ${API}` } })).json()) as { missed: unknown[]; chart: unknown[] };
    t.equal(api.missed.length, 1, 'the API has the same missed call');
  });

  t.test("given a restart, then today's counters are back", async (t) => {
    await first.stop();
    const again = await start(t, dir, day);
    t.teardown(() => again.stop());
    const sales = again.wallboard.snapshot().queues.find((q) => q.name === 'sales');
    t.equal(sales?.answered, 1, 'answered, from SQLite');
    t.equal(sales?.abandoned, 1, 'abandoned, from SQLite');
    t.equal(again.wallboard.snapshot().missed.length, 1, 'the missed call to call back');
    t.equal(again.wallboard.snapshot().agents.find((a) => a.id === '201')?.callsToday, 1);
    const next = await start(t, mkdtempSync(join(dir, 'other-')), () => day() + 86_400_000);
    t.teardown(() => next.stop());
    t.equal(next.wallboard.snapshot().queues.length, 0, 'another file, another day: nothing');
  });
});

t.test('given supervisor.enabled false, then the config implies no wallboard (no page, no API, no gauges)', async (t) => {
  const { wallboardSink } = await import('../dist/sinks/wallboard.js');
  const base = defaultConfig({ http: { listen: '127.0.0.1:0', supervisors: [{ name: 'floor', token: SUP }] } });
  t.ok(wallboardSink.implied!(base), 'on by default with http');
  t.equal(wallboardSink.implied!({ ...base, supervisor: { ...base.supervisor, enabled: false } }), null);
  t.equal(wallboardSink.implied!({ ...base, http: undefined }), null, 'and never without http');
});
