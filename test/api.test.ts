// The JSON API (/api/v1) on a real http.Server (127.0.0.1:0), without Asterisk: a stand-in AMI
// records the actions the API sends. Tokens, validation, rate limit, click-to-call's checks and
// Originate, the OpenAPI document; and the normalizer's `origin` from CRMBRIDGE_ORIGIN.
import pino from 'pino';
import t, { type Test } from 'tap';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { apiEndpoints, apiRoutes, type ApiContext } from '../dist/api/router.js';
import { SERVER_ENDPOINTS } from '../dist/api/server-docs.js';
import { escapeVariableValue, normalizeNumber } from '../dist/api/click-to-call.js';
import { RateLimiter } from '../dist/api/rate-limit.js';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import { defaultConfig, type ConfigOverrides } from '../dist/config/load.js';
import { validateEvent } from '../dist/events/validator.js';
import type { CallEvent } from '../dist/events/types.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';
import { HttpServer } from '../dist/http/server.js';
import { mintToken, TokenVerifier, type Principal } from '../dist/http/tokens.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { createTracker } from '../dist/normalizer/index.js';
import { contractViolations } from './helpers/contract.js';

const API_TOKEN = 'api-token-for-the-crm-0123456789abcdef';
const OTHER_API_TOKEN = 'api-token-for-reports-0123456789abcdef';
const SECRET = '9f2c41d7a0e35b86c4f19e72d08a3b5e6c1f47a9d2e08b35f6c71a94e0d2b853';
// Tokens as check-config wants them: 128 bits or more (`openssl rand -hex 32`), all different.
const TOKEN_201 = 'agent-u201-token-7d1e94b2c05a38f6';
const TOKEN_202 = 'agent-u202-token-e83b5f0c291da476';
const TOKEN_SUP = 'supervisor-floor-token-4c9a2e7f1b83d605';

class FakeAmi {
  state = 'connected';
  readonly actions: Record<string, string>[] = [];
  fail: Error | null = null;
  get status() {
    return { state: this.state };
  }
  async action(fields: Record<string, string>): Promise<unknown> {
    if (this.fail) throw this.fail;
    this.actions.push(fields);
    return { response: 'Success', message: 'Originate successfully queued' };
  }
}

interface Started {
  base: string;
  ami: FakeAmi;
  clock: { now: number };
  logs: Record<string, unknown>[];
  ctx: ApiContext;
  post(body: unknown, token?: string | null, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
}

async function startApi(t: Test, overrides: ConfigOverrides = {}): Promise<Started> {
  const config = defaultConfig({
    calls: { agentContexts: ['agents', 'phones'] },
    agents: [
      { id: 'u-201', name: 'Ana "the boss" Pérez', extension: '201', interfaces: [], token: TOKEN_201 },
      { id: 'u-202', extension: '202', interfaces: ['PJSIP/ana-desk', 'Local/202@agents'], token: TOKEN_202 },
      { id: 'u-nodevice', name: 'Nobody', interfaces: [] },
    ],
    http: { listen: '127.0.0.1:0', supervisors: [{ name: 'floor', token: TOKEN_SUP }], tokenSecret: SECRET },
    api: { tokens: [{ name: 'crm', token: API_TOKEN }, { name: 'reports', token: OTHER_API_TOKEN }], rateLimit: { perMinute: 60, burst: 100 } },
    ...overrides,
  });
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const channel = new ScreenPopSink({ log, keepAliveSeconds: 15, retryMs: 1000, bufferPerAgent: 10, agentQueues: new Map() });
  const statics: Array<{ token: string; who: Principal }> = [
    ...config.agents.filter((a) => a.token).map((a) => ({ token: a.token!, who: { kind: 'agent' as const, agentId: a.id } })),
    ...config.http!.supervisors.map((s) => ({ token: s.token, who: { kind: 'supervisor' as const, name: s.name } })),
  ];
  const tokens = new TokenVerifier(statics, SECRET);
  const agents = new AgentDirectory({ agents: config.agents, agentContexts: config.calls.agentContexts, extensionPattern: config.calls.extensionPattern });
  const ami = new FakeAmi();
  const clock = { now: 1_000_000 };
  let n = 0;
  const ctx: ApiContext = { config: config.api!, ami, agents, tokens, log, now: () => clock.now, newId: () => `call-${++n}` };
  const server = new HttpServer({ config: config.http!, rules: [], screenpop: channel, tokens, agents, log, extraRoutes: apiRoutes(ctx) });
  await server.start();
  t.teardown(() => server.stop());
  const base = `http://127.0.0.1:${server.address!.port}`;
  const post = async (body: unknown, token: string | null = API_TOKEN, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/api/v1/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
  return { base, ami, clock, logs, ctx, post };
}

const GOOD = { agent: 'u-201', number: '+49 (30) 1234-5678' };

t.test('authentication', async (t) => {
  const api = await startApi(t);

  t.test('given no Authorization header, then 401 says a token is required, and nothing is dialled', async (t) => {
    const r = await api.post(GOOD, null);
    t.equal(r.status, 401);
    t.match(r.body.error, /token is required.*Authorization: Bearer/);
    t.equal(r.headers.get('www-authenticate'), 'Bearer');
    t.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8', 'then an RFC 9457 problem');
    t.match(r.body, { type: 'about:blank', title: 'Unauthorized', status: 401, detail: r.body.error });
  });

  t.test('given an unknown token, a Basic header or a token in the query string, then 401', async (t) => {
    t.equal((await api.post(GOOD, 'not-a-token')).status, 401);
    t.match((await api.post(GOOD, 'not-a-token')).body.error, 'invalid or expired token');
    const basic = await api.post(GOOD, null, { authorization: 'Basic dXNlcjpwYXNz' });
    t.equal(basic.status, 401);
    t.match(basic.body.error, 'malformed Authorization header');
    const query = await fetch(`${api.base}/api/v1/calls?token=${API_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(GOOD) });
    t.equal(query.status, 401, 'a token in the query string does not count');
  });

  t.test("given a supervisor token, then it may call back from any agent (the wallboard's call-back), and set no presence", async (t) => {
    const before = api.ami.actions.length;
    const r = await api.post({ agent: 'u-202', number: '5551234' }, TOKEN_SUP);
    t.equal(r.status, 202);
    t.equal(api.ami.actions.length, before + 1, 'the Originate was sent');
    const presence = await fetch(`${api.base}/api/v1/agents/u-201/presence`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN_SUP}`, 'content-type': 'application/json' }, body: JSON.stringify({ state: 'ready' }) });
    t.equal(presence.status, 403);
    t.match(((await presence.json()) as { detail: string }).detail, "a supervisor's token cannot use this endpoint");
  });

  t.test("given an agent's token, then it may call for itself, and not for another agent", async (t) => {
    const before = api.ami.actions.length;
    const self = await api.post({ agent: 'u-201', number: '5551234' }, TOKEN_201);
    t.equal(self.status, 202);
    const other = await api.post({ agent: 'u-202', number: '5551234' }, TOKEN_201);
    t.equal(other.status, 403);
    t.match(other.body.error, "for that agent only ('u-201'), not for 'u-202'");
    const minted = await api.post({ agent: 'u-202', number: '5551234' }, mintToken(SECRET, { kind: 'agent', agentId: 'u-202' }, 60));
    t.equal(minted.status, 202, 'a minted agent token works too');
    t.equal(api.ami.actions.length, before + 2, 'then only the allowed calls were sent to Asterisk');
  });

  t.test('then no token ever appears in the logs', async (t) => {
    const text = JSON.stringify(api.logs);
    for (const secret of [API_TOKEN, TOKEN_201, TOKEN_SUP]) t.notOk(text.includes(`"${secret}"`) || text.includes(`Bearer ${secret}`), `${secret} is not logged`);
  });
});

t.test('request validation', async (t) => {
  const api = await startApi(t);

  t.test('given an empty object, then 400 lists both missing fields', async (t) => {
    const r = await api.post({});
    t.equal(r.status, 400);
    t.same(r.body, {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'invalid request: 2 problems',
      error: 'invalid request: 2 problems',
      problems: ['agent: is required', 'number: is required'],
    });
  });

  t.test('given every kind of mistake at once, then each is listed with its field', async (t) => {
    const r = await api.post({ agent: '', number: 5551234, vars: { Omlcrmok: 'fine', Customer: 'x', Omlcrmnum: 7, Omlcrmbad: 'a\r\nAction: Hangup' }, extra: true });
    t.equal(r.status, 400);
    t.same(r.body.problems.sort(), [
      'agent: must not be empty',
      'extra: unknown field',
      'number: must be string',
      'vars.Customer: not an allowed name (must match ^Omlcrm[A-Za-z0-9_]{1,64}$)',
      'vars.Omlcrmbad: must not contain control characters',
      'vars.Omlcrmnum: must be string',
    ]);
  });

  t.test('given a body that is not JSON, an array, or no content type, then a clear 400 / 415', async (t) => {
    const broken = await api.post('{"agent": "u-201",');
    t.equal(broken.status, 400);
    t.match(broken.body.error, /^the body is not valid JSON: /);
    const array = await api.post([GOOD]);
    t.equal(array.status, 400);
    t.same(array.body.problems, ['(body): must be object']);
    const empty = await api.post('');
    t.equal(empty.status, 400);
    t.match(empty.body.error, 'the body is empty');
    const form = await api.post('agent=u-201&number=5551234', API_TOKEN, { 'content-type': 'application/x-www-form-urlencoded' });
    t.equal(form.status, 415);
    t.match(form.body.error, "send Content-Type: application/json (got 'application/x-www-form-urlencoded')");
  });

  t.test('given a body over 16 KiB, then 413', async (t) => {
    const r = await api.post({ ...GOOD, vars: { Omlcrmbig: 'x'.repeat(20_000) } });
    t.equal(r.status, 413);
    t.match(r.body.error, 'larger than 16384 bytes');
  });

  t.test('given the wrong method or an unknown API path, then 405 / 404 as problems', async (t) => {
    const get = await fetch(`${api.base}/api/v1/calls`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    t.equal(get.status, 405);
    t.equal(get.headers.get('allow'), 'POST');
    t.match(await get.json(), { title: 'Method Not Allowed', status: 405, detail: 'method GET not allowed here' });
    const missing = await fetch(`${api.base}/api/v1/nope`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    t.equal(missing.status, 404);
    t.equal(missing.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    t.same(await missing.json(), { type: 'about:blank', title: 'Not Found', status: 404, detail: 'not found', error: 'not found' });
  });

  t.test('then none of these reached Asterisk', async (t) => {
    t.equal(api.ami.actions.length, 0);
  });
});

t.test('click-to-call', async (t) => {
  t.test('given a configured agent and a formatted number, then one Originate rings the agent first, tagged and with the vars exported', async (t) => {
    const api = await startApi(t);
    const r = await api.post({ ...GOOD, vars: { Omlcrmcustomerid: '12345', Omlcrmnote: 'Acme, Inc. (VIP) "gold" [a\\b]' } });
    t.equal(r.status, 202);
    t.same(r.body, { id: 'call-1', agent: 'u-201', number: '+493012345678', status: 'originating' });
    t.equal(api.ami.actions.length, 1);
    t.same(api.ami.actions[0], {
      action: 'Originate',
      channel: 'PJSIP/201',
      context: 'from-internal',
      exten: '+493012345678',
      priority: '1',
      async: 'true',
      timeout: '30000',
      callerid: '"+493012345678" <201>',
      channelid: 'call-1',
      variable:
        'CRMBRIDGE_ORIGIN=click-to-call,Omlcrmcustomerid=12345,Omlcrmnote=Acme\\, Inc. \\(VIP\\) \\"gold\\" \\[a\\\\b\\],OMLCUSTOMDIALPLANVARS=Omlcrmcustomerid&Omlcrmnote',
    });
    t.ok(api.logs.some((l) => l['msg'] === 'click-to-call: ringing the agent, then the number' && l['id'] === 'call-1'), 'then it is logged with its id');
  });

  t.test('given the agent has interfaces, then its first one rings; without vars, only the origin is set', async (t) => {
    const api = await startApi(t);
    t.equal((await api.post({ agent: 'u-202', number: '555-1234' })).status, 202);
    t.equal(api.ami.actions[0]?.['channel'], 'PJSIP/ana-desk');
    t.equal(api.ami.actions[0]?.['variable'], 'CRMBRIDGE_ORIGIN=click-to-call');
    t.equal(api.ami.actions[0]?.['callerid'], '"5551234" <202>');
  });

  t.test('given an unconfigured extension, then the agentChannel template names its device; {name} and {id} fill the caller ID', async (t) => {
    const api = await startApi(t, {
      api: { tokens: [{ name: 'crm', token: API_TOKEN }], clickToCall: { agentChannel: 'Local/{extension}@phones', context: 'outbound', callerId: '{name} <{id}>', ringTimeoutSeconds: 20 } },
    });
    t.equal((await api.post({ agent: '203', number: '5551234' })).status, 202);
    t.match(api.ami.actions[0], { channel: 'Local/203@phones', context: 'outbound', timeout: '20000', callerid: '203 <203>' });
    t.equal((await api.post({ agent: 'u-201', number: '5551234' })).status, 202);
    t.equal(api.ami.actions[1]?.['callerid'], 'Ana the boss Pérez <u-201>', 'quotes in a name cannot break the caller ID');
    t.same(api.logs.filter((l) => l['level'] === 40).map((l) => l['msg']), [], 'then no warning: the bridge recognises those devices as the agents');
  });

  t.test('given bad agents and numbers, then 422 names each problem, and nothing is dialled', async (t) => {
    const api = await startApi(t);
    const cases: Array<[unknown, RegExp | string, string[]?]> = [
      [{ agent: 'nobody', number: '5551234' }, "agent: no agent 'nobody' (neither a configured agent id nor an extension matching calls.extensionPattern)"],
      [{ agent: '201', number: '5551234' }, "agent: no agent '201' (extension 201 belongs to agent 'u-201': name that id)"],
      [{ agent: 'u-nodevice', number: '5551234' }, "agent: agent 'u-nodevice' has no device to ring"],
      [{ agent: 'u-201', number: '12' }, "number: '12' is not allowed (api.clickToCall.numberPattern ^\\+?[0-9]{3,15}$)"],
      [{ agent: 'u-201', number: '0800-FLOWERS' }, "number: '0800-FLOWERS' is not a phone number"],
      [{ agent: 'u-201', number: '555,1234&Dial(x)' }, "number: '555,1234&Dial(x)' is not a phone number"],
      [{ agent: 'u-201', number: '+1 +2 345' }, "number: '+1 +2 345' is not a phone number"],
      [
        { agent: 'nobody', number: '12' },
        'cannot place this call: 2 problems',
        ["agent: no agent 'nobody' (neither a configured agent id nor an extension matching calls.extensionPattern)", "number: '12' is not allowed (api.clickToCall.numberPattern ^\\+?[0-9]{3,15}$)"],
      ],
    ];
    for (const [body, error, problems] of cases) {
      const r = await api.post(body);
      t.equal(r.status, 422, JSON.stringify(body));
      t.match(r.body.error, error);
      if (problems) t.same(r.body.problems, problems);
    }
    t.equal(api.ami.actions.length, 0);
  });

  t.test('given AMI is not connected, then 503 with Retry-After; given Asterisk refuses or times out, then 502 / 504', async (t) => {
    const api = await startApi(t);
    api.ami.state = 'disconnected';
    const down = await api.post(GOOD);
    t.equal(down.status, 503);
    t.match(down.body.error, 'the PBX is not reachable right now (AMI disconnected)');
    t.equal(down.headers.get('retry-after'), '5');
    t.equal((await api.post({ agent: 'nobody', number: '5551234' })).status, 422, 'bad input is still a 4xx while AMI is down');
    api.ami.state = 'connected';
    api.ami.fail = new Error('AMI action Originate failed: Permission denied');
    const refused = await api.post(GOOD);
    t.equal(refused.status, 502);
    t.match(refused.body.error, 'Asterisk refused the call: AMI action Originate failed: Permission denied');
    api.ami.fail = new Error('AMI action Originate timed out after 10000 ms');
    t.equal((await api.post(GOOD)).status, 504);
    api.ami.fail = new Error('AMI is not connected');
    t.equal((await api.post(GOOD)).status, 503, 'a connection lost in between is a 503 too');
  });
});

t.test('rate limit', async (t) => {
  t.test('given a burst of 3, then the 4th request of a token gets 429 with Retry-After, other tokens are unaffected, and time refills', async (t) => {
    const api = await startApi(t, { api: { tokens: [{ name: 'crm', token: API_TOKEN }, { name: 'reports', token: OTHER_API_TOKEN }], rateLimit: { perMinute: 6, burst: 3 } } });
    for (let i = 0; i < 3; i++) t.equal((await api.post(GOOD)).status, 202, `request ${i + 1} passes`);
    const limited = await api.post(GOOD);
    t.equal(limited.status, 429);
    t.equal(limited.headers.get('retry-after'), '10', 'then it says when the next token is due (6 a minute: 10 s)');
    t.match(limited.body.error, 'rate limit exceeded: 6 requests a minute, bursts of 3; retry in 10 s');
    t.equal((await api.post({})).status, 429, 'a limited token is refused before its body is even read');
    t.equal((await api.post(GOOD, OTHER_API_TOKEN)).status, 202, 'then another token has its own bucket');
    t.equal((await api.post({ agent: 'u-201', number: '5551234' }, TOKEN_201)).status, 202, "and so has an agent's token");
    api.clock.now += 10_000;
    t.equal((await api.post(GOOD)).status, 202, 'then after Retry-After seconds, the token may call again');
    t.equal((await api.post(GOOD)).status, 429, 'once');
    t.equal(api.ami.actions.length, 6);
  });

  t.test('given a bucket, when time passes, then it refills to the burst and no further', async (t) => {
    let now = 0;
    const limiter = new RateLimiter(60, 2, () => now);
    t.same([limiter.take('a'), limiter.take('a'), limiter.take('a')].map((r) => r.ok), [true, true, false]);
    t.same(limiter.take('a'), { ok: false, retryAfterSeconds: 1 });
    now += 60_000;
    t.same([limiter.take('a'), limiter.take('a'), limiter.take('a')].map((r) => r.ok), [true, true, false]);
  });
});

t.test('the OpenAPI document', async (t) => {
  const api = await startApi(t);
  const res = await fetch(`${api.base}/api/v1/openapi.json`);
  t.equal(res.status, 200, 'then it is public: no token needed');
  t.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  const doc = JSON.parse(await res.text()) as any;

  t.test('then it is OpenAPI 3.1 with a bearer scheme', async (t) => {
    t.match(doc.openapi, /^3\.1\.\d+$/);
    t.type(doc.info.title, 'string');
    t.type(doc.info.version, 'string');
    t.same(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: doc.components.securitySchemes.bearer.description });
    t.same(doc.security, [{ bearer: [] }]);
  });

  // test/validators.test.ts calls every documented route on a server wired as the bridge wires it.
  t.test('then it describes every API route, and the routes of the server around it, and nothing else', async (t) => {
    const endpoints = apiEndpoints(api.ctx);
    const described = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    t.same(described.sort(), [...endpoints, ...SERVER_ENDPOINTS].map((e) => `${e.method} ${e.path}`).sort());
    t.same(described.sort(), [
      'GET /',
      'GET /agent/events',
      'GET /agent/me',
      'GET /agent/pops/{eventId}',
      'GET /api/v1/agents/{id}/presence',
      'GET /api/v1/openapi.json',
      'GET /healthz',
      'GET /metrics',
      'GET /readyz',
      'GET /supervisor/events',
      'GET /supervisor/me',
      'POST /api/v1/calls',
      'PUT /api/v1/agents/{id}/presence',
    ]);
    for (const e of endpoints) {
      const op = doc.paths[e.path][e.method.toLowerCase()];
      t.type(op.operationId, 'string', `${e.method} ${e.path} has an operationId`);
      t.ok(Object.keys(op.responses).length > 0, `${e.method} ${e.path} has responses`);
      t.equal(op.security === undefined, e.auth === 'api', `${e.method} ${e.path}: ${e.auth === 'api' ? 'needs a token' : 'public'}`);
      if (e.auth === 'api') for (const status of ['401', '403', '429']) t.ok(op.responses[status], `${e.method} ${e.path} documents ${status}`);
      // The route exists: whatever the answer, it is not the server's 404.
      const r = await fetch(`${api.base}${e.path}`, { method: e.method, headers: { 'content-type': 'application/json' }, body: e.method === 'GET' ? undefined : '{}' });
      t.not(r.status, 404, `${e.method} ${e.path} is served`);
    }
  });

  t.test('then every $ref resolves and the request schema is the one the API validates with', async (t) => {
    const refs: string[] = [];
    const walk = (n: unknown): void => {
      if (Array.isArray(n)) n.forEach(walk);
      else if (n && typeof n === 'object') for (const [k, v] of Object.entries(n)) k === '$ref' ? refs.push(String(v)) : walk(v);
    };
    walk(doc);
    t.ok(refs.length >= 3);
    for (const ref of refs) {
      const target = ref.replace(/^#\//, '').split('/').reduce<any>((o, k) => o?.[k], doc);
      t.ok(target, `${ref} resolves`);
    }
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(doc.components.schemas.CallRequest);
    t.ok(validate({ agent: 'u-201', number: '+49 30 1234', vars: { Omlcrmcustomerid: '1' } }), 'a valid request validates');
    t.notOk(validate({ agent: 'u-201', number: '1', vars: { Other: '1' } }), 'a bad variable name does not');
    const accepted = ajv.compile(doc.components.schemas.CallAccepted);
    const r = await api.post(GOOD);
    t.ok(accepted(r.body), 'then a real 202 response matches CallAccepted');
    const problem = ajv.compile(doc.components.schemas.Problem);
    t.ok(problem((await api.post({})).body), 'and a real 400 matches Problem');
    t.match(doc.paths['/api/v1/calls'].post.description, '^\\+?[0-9]{3,15}$', "then it states this bridge's number allow-list");
  });
});

t.test('given no api section, then the HTTP server serves no API', async (t) => {
  const config = defaultConfig({ http: { listen: '127.0.0.1:0' } });
  const log = pino({ level: 'silent' });
  const channel = new ScreenPopSink({ log, keepAliveSeconds: 15, retryMs: 1000, bufferPerAgent: 10, agentQueues: new Map() });
  const server = new HttpServer({ config: config.http!, rules: [], screenpop: channel, tokens: new TokenVerifier([], undefined), agents: new AgentDirectory({ agents: [], agentContexts: [], extensionPattern: '^[0-9]+$' }), log });
  await server.start();
  t.teardown(() => server.stop());
  t.equal((await fetch(`http://127.0.0.1:${server.address!.port}/api/v1/openapi.json`)).status, 404);
});

t.test('helpers', async (t) => {
  t.test('normalizeNumber removes spaces, dashes, dots and parentheses and keeps a leading +', async (t) => {
    t.equal(normalizeNumber(' +49 (30) 1234-56.78 '), '+493012345678');
    t.equal(normalizeNumber('0049\u00a030\u20131234'), '0049301234');
    t.equal(normalizeNumber('5551234'), '5551234');
  });
  t.test('escapeVariableValue backslashes what Asterisk would otherwise parse', async (t) => {
    t.equal(escapeVariableValue('a,b (c) "d" [e] \\f = g'), 'a\\,b \\(c\\) \\"d\\" \\[e\\] \\\\f = g');
  });
});

// The normalizer side: the VarSet Asterisk raises for the Originate's variable, right after the
// first Newchannel (as in a real Asterisk 22 trace of a click-to-call), tags every event.
t.test('given the AMI events of a click-to-call, when normalized, then every event says origin click-to-call, call.started included', async (t) => {
  const tracker = createTracker({ server: 'pbx1', inboundContexts: ['from-pstn'], agentContexts: ['agents', 'phones'], extensionPattern: '^[0-9]{2,6}$', agents: [] });
  const id = 'c2c-1';
  let ts = 1795429325;
  const ev = (e: Record<string, string>): AmiEvent => ({ timestamp: `${ts++}.000000`, ...e }) as AmiEvent;
  const agent1 = { channel: 'Local/201@phones-00000000;1', uniqueid: id, linkedid: id };
  const agent2 = { channel: 'Local/201@phones-00000000;2', uniqueid: `${id};2`, linkedid: id };
  const remote1 = { channel: 'Local/5551234@pstn-out-00000001;1', uniqueid: '1795429325.2', linkedid: id };
  const remote2 = { channel: 'Local/5551234@pstn-out-00000001;2', uniqueid: '1795429325.3', linkedid: id };
  const trace: AmiEvent[] = [
    ev({ event: 'Newchannel', ...agent1, context: 'phones', exten: '201', calleridnum: '<unknown>' }),
    ev({ event: 'Newchannel', ...agent2, context: 'phones', exten: '201', calleridnum: '<unknown>' }),
    ev({ event: 'VarSet', ...agent1, variable: 'OMLCUSTOMDIALPLANVARS', value: 'Omlcrmcustomerid' }),
    ev({ event: 'VarSet', ...agent1, variable: 'Omlcrmcustomerid', value: '12345' }),
    ev({ event: 'VarSet', ...agent1, variable: 'CRMBRIDGE_ORIGIN', value: 'click-to-call' }),
    ev({ event: 'NewCallerid', ...agent1, calleridnum: '201', calleridname: '5551234' }),
    ev({ event: 'VarSet', ...agent2, variable: 'CRMBRIDGE_ORIGIN', value: 'something-else' }),
    ev({ event: 'Newchannel', ...remote1, context: 'pstn-out', exten: '5551234' }),
    ev({ event: 'Newchannel', ...remote2, context: 'pstn-out', exten: '5551234' }),
    ev({ event: 'DialBegin', ...agent1, exten: '5551234', destchannel: remote1.channel, destuniqueid: remote1.uniqueid, destlinkedid: id }),
    ev({ event: 'DialEnd', ...agent1, destchannel: remote1.channel, destuniqueid: remote1.uniqueid, dialstatus: 'ANSWER' }),
    ev({ event: 'Hangup', ...remote2, cause: '16' }),
    ev({ event: 'Hangup', ...remote1, cause: '16' }),
    ev({ event: 'Hangup', ...agent2, cause: '16' }),
    ev({ event: 'Hangup', ...agent1, cause: '16' }),
  ];
  const events = trace.flatMap((e) => tracker.handle(e, 0)) as CallEvent[];
  // The number is a party that is not an agent: it rings and answers (agent null).
  t.same(events.map((e) => e.type), ['call.started', 'call.ringing', 'call.answered', 'call.hangup']);
  for (const e of events) {
    t.equal(e.origin, 'click-to-call', `${e.type} carries the origin (the first value wins)`);
    t.same(e.vars, { Omlcrmcustomerid: '12345' }, `${e.type} carries the exported variable`);
    t.same(validateEvent(e), [], `${e.type} is schema-valid`);
  }
  t.match(events[0], { callId: id, direction: 'outbound', agent: { id: '201' }, called: { number: '5551234' } });
  t.same(contractViolations(events), []);

  const plain = createTracker({ server: 'pbx1', inboundContexts: [], agentContexts: ['phones'], extensionPattern: '^[0-9]{2,6}$', agents: [] });
  const untagged = trace.filter((e) => e.variable !== 'CRMBRIDGE_ORIGIN').flatMap((e) => plain.handle(e, 0));
  t.ok(untagged.every((e) => !('origin' in e)), 'then a call without the variable has no origin key at all');
});
