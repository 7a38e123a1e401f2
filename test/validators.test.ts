// Third-party validators on what the real server serves, as the bridge wires it (API, agent
// routes, health, metrics) on 127.0.0.1:0 without a PBX:
// - `redocly lint` (@redocly/cli, its recommended rules) on the OpenAPI document GET
//   /api/v1/openapi.json answers: no error, no warning;
// - every documented operation and status that can be reached without a PBX, called for real:
//   the status, the media type and the body (against the document's own schema) are what the
//   document says, so every error is a Problem (application/problem+json, RFC 9457);
// - `promtool check metrics` (Debian's prometheus package) on a real /metrics scrape: clean.
// A validator that is missing FAILS the test: CI installs them (.ci/run, package.json).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import pino from 'pino';
import t from 'tap';
import { apiRoutes } from '../dist/api/router.js';
import { defaultConfig } from '../dist/config/load.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { HttpServer, type Handler } from '../dist/http/server.js';
import { TokenVerifier, type Principal } from '../dist/http/tokens.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { BridgeMetrics } from '../dist/ops/metrics.js';
import { opsRoutes, tokenMatcher } from '../dist/ops/routes.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';
import { WallboardSink } from '../dist/sinks/wallboard.js';
import { queued, ringing } from './helpers/sample-events.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const API_TOKEN = 'validators-api-crm-5e0b7a13c9d2f846';
const LIMITED_TOKEN = 'validators-api-limited-8c3f1d06b2e9a574';
const TOKEN_201 = 'validators-agent-201-2f9a6c14e07b3d85';
const TOKEN_202 = 'validators-agent-202-b41e8d3a07f5c926';
const TOKEN_SUP = 'validators-supervisor-6d0c2b8f4a17e953';
const METRICS_TOKEN = 'validators-metrics-93a5e1c7f0d24b68';

class FakeAmi {
  state = 'connected';
  fail: Error | null = null;
  get status() {
    return { state: this.state };
  }
  async action(): Promise<unknown> {
    if (this.fail) throw this.fail;
    return { response: 'Success' };
  }
}

// The server as src/bridge.ts wires it, plus one route that throws (the 500 every route can give).
const config = defaultConfig({
  agents: [
    { id: '201', extension: '201', interfaces: [], token: TOKEN_201 },
    { id: '202', extension: '202', interfaces: [], token: TOKEN_202 },
  ],
  http: { listen: '127.0.0.1:0', supervisors: [{ name: 'floor', token: TOKEN_SUP }], metricsToken: METRICS_TOKEN, streams: { perToken: 1, perAddress: 50 } },
  api: {
    tokens: [
      { name: 'crm', token: API_TOKEN },
      { name: 'limited', token: LIMITED_TOKEN },
    ],
    rateLimit: { perMinute: 1, burst: 40 },
  },
  screenpop: [{ events: ['call.ringing'], target: 'clipboard', text: 'Call from {callerNumber}' }],
});
const log = pino({ level: 'silent' });
const screenpop = new ScreenPopSink({ log, keepAliveSeconds: 15, retryMs: 1000, bufferPerAgent: 10, agentQueues: new Map() });
const statics: Array<{ token: string; who: Principal }> = [
  ...config.agents.map((a) => ({ token: a.token!, who: { kind: 'agent' as const, agentId: a.id } })),
  { token: TOKEN_SUP, who: { kind: 'supervisor' as const, name: 'floor' } },
];
const tokens = new TokenVerifier(statics, undefined);
const agents = new AgentDirectory({ agents: config.agents, agentContexts: config.calls.agentContexts, extensionPattern: config.calls.extensionPattern });
const wallboard = new WallboardSink({
  config: { type: 'wallboard', timeZone: 'UTC', serviceLevelSeconds: 20, queues: [], path: ':memory:', retentionDays: 31, pushIntervalMs: 250, keepAliveSeconds: 15, retryMs: 1000, agents: config.agents },
  log,
});
const metrics = new BridgeMetrics({ callsInProgress: () => 0, sseClients: () => screenpop.streams + wallboard.streams, outbox: () => null, queues: () => wallboard.queues() });
const ami = new FakeAmi();
let ready = true;
const metricsToken = tokenMatcher(METRICS_TOKEN);
const boom: Handler = () => {
  throw new Error('a handler that fails');
};
const server = new HttpServer({
  config: config.http!,
  rules: config.screenpop,
  screenpop,
  tokens,
  agents,
  log,
  metrics,
  wallboard,
  isApiToken: (token) => token === API_TOKEN || token === LIMITED_TOKEN,
  callBack: true,
  extraRoutes: [
    // A clock that stands still: the limited token, once used up, stays limited.
    ...apiRoutes({ config: config.api!, ami, presence: null, agents, tokens, floor: wallboard, log, now: () => 0 }),
    ...opsRoutes({
      readiness: () => ({ ready, checks: { ami: ready ? 'ok' : 'AMI disconnected' } }),
      metrics,
      mayScrape: (token) => metricsToken(token) || tokens.verify(token)?.kind === 'supervisor',
      knows: (token) => tokens.verify(token) !== null || token === API_TOKEN || token === LIMITED_TOKEN,
    }),
    ['GET', /^\/test\/boom$/, boom],
  ],
});
await screenpop.start();
await wallboard.start();
await server.start();
const open: http.ClientRequest[] = [];
t.teardown(async () => {
  open.forEach((r) => r.destroy());
  await screenpop.stop();
  await wallboard.stop();
  await server.stop();
});
const port = server.address!.port;

interface Answer {
  status: number;
  type: string;
  body: string;
}

/**
 * One request, from `from` (another loopback address is another client for the throttle). An
 * event stream is answered as soon as its headers arrive, and left open until the end.
 */
function request(method: string, path: string, opts: { headers?: Record<string, string>; body?: string; from?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: opts.headers, localAddress: opts.from ?? '127.0.0.1', agent: false }, (res) => {
      const type = res.headers['content-type'] ?? '';
      if (type.startsWith('text/event-stream')) {
        open.push(req);
        return resolve({ status: res.statusCode ?? 0, type, body: '' });
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = (token: string) => ({ ...bearer(token), 'content-type': 'application/json' });
const GOOD_CALL = JSON.stringify({ agent: '201', number: '5551234' });

const doc = JSON.parse((await request('GET', '/api/v1/openapi.json')).body) as {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
};

t.test('given the OpenAPI document the server serves, when redocly lints it, then there is no error and no warning', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'crm-bridge-openapi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'openapi.json');
  writeFileSync(file, JSON.stringify(doc, null, 2));
  // No redocly.yaml in `dir`: the CLI's own recommended rules. No telemetry, no update check.
  const run = spawnSync(path.join(ROOT, 'node_modules/.bin/redocly'), ['lint', '--format=json', file], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
  });
  if (run.error) return t.fail(`redocly cannot run (${run.error.message}): it is a devDependency, run npm ci`);
  const report = JSON.parse(run.stdout) as { totals: Record<string, number>; problems: Array<{ ruleId: string; message: string; location?: Array<{ pointer?: string }> }> };
  const problems = report.problems.map((p) => `${p.ruleId} at ${p.location?.[0]?.pointer ?? '?'}: ${p.message}`);
  t.same(problems, [], 'then redocly reports nothing');
  t.match(report.totals, { errors: 0, warnings: 0 });
  t.equal(run.status, 0, run.stderr);
});

// Every documented (operation, status) this test produces, and how. A documented status missing
// here must be listed in NOT_REACHABLE with why: a new one cannot go unchecked.
type Case = [operation: string, status: string, call: () => Promise<Answer>];
const THROTTLED_FROM = '127.0.0.3';
const cases: Case[] = [
  ['GET /api/v1/openapi.json', '200', () => request('GET', '/api/v1/openapi.json')],
  ['POST /api/v1/calls', '202', () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: GOOD_CALL })],
  ['POST /api/v1/calls', '400', () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: '{}' })],
  ['POST /api/v1/calls', '401', () => request('POST', '/api/v1/calls', { headers: { 'content-type': 'application/json' }, body: GOOD_CALL })],
  // An agent's token, for another agent (a supervisor's may name any agent: the wallboard's call-back).
  ['POST /api/v1/calls', '403', () => request('POST', '/api/v1/calls', { headers: json(TOKEN_202), body: GOOD_CALL })],
  ['POST /api/v1/calls', '413', () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: JSON.stringify({ agent: '201', number: '5551234', vars: { Omlcrmbig: 'x'.repeat(20_000) } }) })],
  ['POST /api/v1/calls', '415', () => request('POST', '/api/v1/calls', { headers: { ...bearer(API_TOKEN), 'content-type': 'text/plain' }, body: 'call 201' })],
  ['POST /api/v1/calls', '422', () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: JSON.stringify({ agent: 'nobody', number: '12' }) })],
  ['POST /api/v1/calls', '429', () => request('POST', '/api/v1/calls', { headers: json(LIMITED_TOKEN), body: '{}' })],
  ['POST /api/v1/calls', '502', () => withAmi({ fail: new Error('AMI action Originate failed: Permission denied') }, () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: GOOD_CALL }))],
  ['POST /api/v1/calls', '503', () => withAmi({ state: 'disconnected' }, () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: GOOD_CALL }))],
  ['POST /api/v1/calls', '504', () => withAmi({ fail: new Error('AMI action Originate timed out after 10000 ms') }, () => request('POST', '/api/v1/calls', { headers: json(API_TOKEN), body: GOOD_CALL }))],
  ['PUT /api/v1/agents/{id}/presence', '401', () => request('PUT', '/api/v1/agents/201/presence', { headers: { 'content-type': 'application/json' }, body: '{}' })],
  ['PUT /api/v1/agents/{id}/presence', '403', () => request('PUT', '/api/v1/agents/201/presence', { headers: json(TOKEN_SUP), body: '{}' })],
  ['PUT /api/v1/agents/{id}/presence', '429', () => request('PUT', '/api/v1/agents/201/presence', { headers: json(LIMITED_TOKEN), body: '{}' })],
  ['PUT /api/v1/agents/{id}/presence', '503', () => request('PUT', '/api/v1/agents/201/presence', { headers: json(API_TOKEN), body: '{"state":"ready"}' })],
  ['GET /api/v1/agents/{id}/presence', '401', () => request('GET', '/api/v1/agents/201/presence', { headers: bearer('not-a-token-0123456789abcdef') })],
  ['GET /api/v1/agents/{id}/presence', '403', () => request('GET', '/api/v1/agents/201/presence', { headers: bearer(TOKEN_SUP) })],
  ['GET /api/v1/agents/{id}/presence', '429', () => request('GET', '/api/v1/agents/201/presence', { headers: bearer(LIMITED_TOKEN) })],
  ['GET /api/v1/agents/{id}/presence', '503', () => request('GET', '/api/v1/agents/201/presence', { headers: bearer(API_TOKEN) })],
  ['GET /agent/me', '200', () => request('GET', '/agent/me', { headers: bearer(TOKEN_201) })],
  ['GET /agent/me', '401', () => request('GET', '/agent/me')],
  ['GET /agent/events', '200', () => request('GET', `/agent/events?token=${TOKEN_202}`)],
  ['GET /agent/events', '401', () => request('GET', '/agent/events?token=wrong-token-0123456789abcdef')],
  // http.streams.perToken is 1 here, and 202's stream is open (the case above).
  ['GET /agent/events', '429', () => request('GET', '/agent/events', { headers: bearer(TOKEN_202) })],
  ['GET /agent/pops/{eventId}', '200', () => request('GET', `/agent/pops/${ringing.id}`, { headers: bearer(TOKEN_201) })],
  ['GET /agent/pops/{eventId}', '401', () => request('GET', `/agent/pops/${ringing.id}`)],
  ['GET /agent/pops/{eventId}', '404', () => request('GET', '/agent/pops/no-such-event', { headers: bearer(TOKEN_201) })],
  ...['', '/queues', '/agents', '/calls', '/today'].flatMap((sub): Case[] => [
    [`GET /api/v1/supervisor${sub}`, '200', () => request('GET', `/api/v1/supervisor${sub}`, { headers: bearer(sub === '/calls' ? TOKEN_SUP : API_TOKEN) })],
    [`GET /api/v1/supervisor${sub}`, '401', () => request('GET', `/api/v1/supervisor${sub}`)],
    [`GET /api/v1/supervisor${sub}`, '403', () => request('GET', `/api/v1/supervisor${sub}`, { headers: bearer(TOKEN_201) })],
    [`GET /api/v1/supervisor${sub}`, '429', () => request('GET', `/api/v1/supervisor${sub}`, { headers: bearer(LIMITED_TOKEN) })],
  ]),
  ['GET /supervisor/me', '200', () => request('GET', '/supervisor/me', { headers: bearer(TOKEN_SUP) })],
  ['GET /supervisor/me', '401', () => request('GET', '/supervisor/me')],
  ['GET /supervisor/me', '403', () => request('GET', '/supervisor/me', { headers: bearer(API_TOKEN) })],
  ['GET /supervisor/events', '200', () => request('GET', `/supervisor/events?token=${TOKEN_SUP}`)],
  ['GET /supervisor/events', '401', () => request('GET', '/supervisor/events?token=wrong-token-0123456789abcdef')],
  ['GET /supervisor/events', '403', () => request('GET', `/supervisor/events?token=${TOKEN_201}`)],
  // http.streams.perToken is 1 here, and the supervisor's stream is open (the case above).
  ['GET /supervisor/events', '429', () => request('GET', '/supervisor/events', { headers: bearer(TOKEN_SUP) })],
  ['GET /', '200', () => request('GET', '/')],
  ['GET /healthz', '200', () => request('GET', '/healthz')],
  ['GET /readyz', '200', () => request('GET', '/readyz')],
  ['GET /readyz', '503', () => notReady(() => request('GET', '/readyz'))],
  ['GET /metrics', '200', () => request('GET', '/metrics', { headers: bearer(METRICS_TOKEN) })],
  ['GET /metrics', '401', () => request('GET', '/metrics')],
  ['GET /metrics', '403', () => request('GET', '/metrics', { headers: bearer(TOKEN_201) })],
];
/** Documented, but only reachable with a PBX (presence needs a running PresenceSync on AMI). */
const NOT_REACHABLE = [
  'PUT /api/v1/agents/{id}/presence 200',
  'PUT /api/v1/agents/{id}/presence 400',
  'PUT /api/v1/agents/{id}/presence 404',
  'PUT /api/v1/agents/{id}/presence 409',
  'PUT /api/v1/agents/{id}/presence 413',
  'PUT /api/v1/agents/{id}/presence 415',
  'PUT /api/v1/agents/{id}/presence 502',
  'GET /api/v1/agents/{id}/presence 200',
  'GET /api/v1/agents/{id}/presence 400',
  'GET /api/v1/agents/{id}/presence 404',
];

/** 4xx/5xx answers that are not errors: /readyz's 503 is its report (the same body as its 200). */
const NOT_ERRORS = ['GET /readyz 503'];

async function notReady(run: () => Promise<Answer>): Promise<Answer> {
  ready = false;
  try {
    return await run();
  } finally {
    ready = true;
  }
}

async function withAmi(state: Partial<Pick<FakeAmi, 'state' | 'fail'>>, run: () => Promise<Answer>): Promise<Answer> {
  Object.assign(ami, state);
  try {
    return await run();
  } finally {
    Object.assign(ami, { state: 'connected', fail: null });
  }
}

/** The documented media type fits the answer's: same type, and every parameter documented is sent. */
function fits(documented: string, actual: string): boolean {
  const parse = (s: string) => {
    const [essence = '', ...params] = s.split(';').map((p) => p.trim().toLowerCase());
    return { essence, params };
  };
  const d = parse(documented);
  const a = parse(actual);
  return d.essence === a.essence && d.params.every((p) => a.params.includes(p));
}

t.test('given every documented operation and status reachable without a PBX, when called on the real server, then it answers as documented', async (t) => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(doc as object, 'openapi');
  const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');
  // Rate limits and caps first used up, then the PBX-less answers, then 429 from a throttled address.
  for (let i = 0; i < 40; i++) await request('GET', '/api/v1/agents/201/presence', { headers: bearer(LIMITED_TOKEN) });
  screenpop.deliver(ringing as BridgeEvent);
  wallboard.deliver(queued as BridgeEvent);
  wallboard.deliver(ringing as BridgeEvent);
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).flatMap(([m, op]) => Object.keys(op.responses).map((s) => `${m.toUpperCase()} ${p} ${s}`)));
  // A throttled address: every operation answers 429 to a request that carries a token.
  for (let i = 0; i < 10; i++) await request('GET', '/agent/me', { headers: bearer(`guess-${i}-0123456789abcdef`), from: THROTTLED_FROM });
  const throttled: Case[] = Object.entries(doc.paths).flatMap(([p, ops]) =>
    Object.keys(ops)
      .filter((m) => !cases.some(([op, s]) => op === `${m.toUpperCase()} ${p}` && s === '429'))
      .map((m): Case => [`${m.toUpperCase()} ${p}`, '429', () => request(m.toUpperCase(), p.replace('{id}', '201').replace('{eventId}', ringing.id), { headers: bearer(TOKEN_201), from: THROTTLED_FROM })]),
  );
  const exercised = new Set<string>();
  for (const [operation, status, call] of [...cases, ...throttled]) {
    const [method = '', route = ''] = operation.split(' ');
    const what = `${operation} ${status}`;
    exercised.add(what);
    const response = doc.paths[route]?.[method.toLowerCase()]?.responses[status];
    if (!response) {
      t.fail(`${what} is not documented`);
      continue;
    }
    const answer = await call();
    t.equal(answer.status, Number(status), `${what}: the status`);
    const [mediaType, media] = Object.entries(response.content ?? {})[0] ?? [];
    if (!mediaType) {
      t.equal(answer.body, '', `${what}: no body, as documented`);
      continue;
    }
    t.ok(fits(mediaType, answer.type), `${what}: ${answer.type} is the documented ${mediaType}`);
    if (Number(status) >= 400 && !NOT_ERRORS.includes(what)) t.equal(answer.type, 'application/problem+json; charset=utf-8', `${what}: a problem`);
    if (!mediaType.endsWith('json') || !media) continue;
    const validate = ajv.getSchema(`openapi#/${pointer('paths', route, method.toLowerCase(), 'responses', status, 'content', mediaType, 'schema')}`)!;
    const body = JSON.parse(answer.body) as unknown;
    t.ok(validate(body), `${what}: the body fits the documented schema ${JSON.stringify(validate.errors ?? [])}`);
  }
  t.same(
    documented.filter((d) => !exercised.has(d)),
    NOT_REACHABLE,
    'then every documented status was produced, but those that need a PBX',
  );
});

t.test('given the errors of no operation (unknown path, wrong method, a failing handler), then each is a problem too', async (t) => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(doc as object, 'openapi');
  const problem = ajv.getSchema('openapi#/components/schemas/Problem')!;
  const answers: Array<[string, number, Answer]> = [
    ['an unknown path', 404, await request('GET', '/nope')],
    ['an unknown API path', 404, await request('GET', '/api/v1/nope', { headers: bearer(API_TOKEN) })],
    ['a page file that is not there', 404, await request('GET', '/agent/assets/nope.js')],
    ['the wrong method', 405, await request('DELETE', '/api/v1/calls', { headers: bearer(API_TOKEN) })],
    ['a handler that throws', 500, await request('GET', '/test/boom')],
  ];
  for (const [what, status, answer] of answers) {
    t.equal(answer.status, status, `${what}: ${status}`);
    t.equal(answer.type, 'application/problem+json; charset=utf-8', `${what}: problem+json`);
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    t.ok(problem(body), `${what}: a Problem ${JSON.stringify(problem.errors ?? [])}`);
    t.match(body, { type: 'about:blank', title: http.STATUS_CODES[status], status });
  }
});

t.test('given a real /metrics scrape, when promtool checks it, then it says nothing', async (t) => {
  // Some activity first, so the labelled series exist as in production.
  metrics.authFailure('invalid_token');
  metrics.capHit('sse_per_token');
  const scrape = await request('GET', '/metrics', { headers: bearer(METRICS_TOKEN) });
  t.equal(scrape.status, 200);
  t.match(scrape.body, /^crm_bridge_process_cpu_seconds_total /m, 'the process metrics are there');
  t.match(scrape.body, /^crm_bridge_queue_agents\{queue="sales",state="logged_in"\} \d+$/m, "the wallboard's per-queue gauges are");
  t.match(scrape.body, /^crm_bridge_nodejs_active_handles\{type="\w+"\} \d+$/m, 'the labelled handle counts are, whose sum the dropped …_total gauge was (README)');
  const run = spawnSync('promtool', ['check', 'metrics'], { input: scrape.body, encoding: 'utf8' });
  if (run.error) return t.fail(`promtool cannot run (${run.error.message}): install Debian's prometheus package (.ci/run does)`);
  t.equal(`${run.stdout}${run.stderr}`, '', 'then promtool has nothing to say');
  t.equal(run.status, 0);
});
