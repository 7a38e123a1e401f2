// The HTTP server under attack, on a real http.Server: a guesser hammering wrong tokens is
// throttled per address on every route that takes a token (agent routes, event stream, API,
// /metrics), with a bounded number of log lines; event streams are capped per token and per
// address; every static file carries a CSP with frame-ancestors; every module and stylesheet of the
// agent page is served, with its content type and the CSP; the Bearer scheme is matched in any case.
import { readdirSync } from 'node:fs';
import http from 'node:http';
import pino from 'pino';
import t, { type Test } from 'tap';
import { apiRoutes } from '../dist/api/router.js';
import { defaultConfig, type ConfigOverrides } from '../dist/config/load.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';
import { addressKey, AuthThrottle } from '../dist/http/auth-throttle.js';
import { HttpServer } from '../dist/http/server.js';
import { TokenVerifier, type Principal } from '../dist/http/tokens.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { BridgeMetrics } from '../dist/ops/metrics.js';
import { opsRoutes, tokenMatcher } from '../dist/ops/routes.js';
import { connectSse, type SseClient } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

const TOKEN_201 = 'defences-agent-201-0b7e3f91c4a2d658';
const TOKEN_202 = 'defences-agent-202-9d41a6c0e2f87b35';
const TOKEN_203 = 'defences-agent-203-5c2e8a17f0b94d63';
const TOKEN_SUP = 'defences-supervisor-e6f0b3a9d18c2475';
const API_TOKEN = 'defences-api-crm-4a9c1e7b02f6d835';
const METRICS_TOKEN = 'defences-metrics-71d3b8e0a5c26f94';
const CRM = 'https://crm.example.com';

type Line = Record<string, unknown> & { level: number; msg: string };

async function startServer(t: Test, overrides: ConfigOverrides = {}) {
  const config = defaultConfig({
    agents: [
      { id: '201', extension: '201', interfaces: [], token: TOKEN_201 },
      { id: '202', extension: '202', interfaces: [], token: TOKEN_202 },
      { id: '203', extension: '203', interfaces: [], token: TOKEN_203 },
    ],
    http: { listen: '127.0.0.1:0', allowedOrigins: [CRM], supervisors: [{ name: 'floor', token: TOKEN_SUP }], metricsToken: METRICS_TOKEN, ...overrides.http },
    api: { tokens: [{ name: 'crm', token: API_TOKEN }] },
  });
  const logs: Line[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Line) });
  const channel = new ScreenPopSink({ log, keepAliveSeconds: 15, retryMs: 1000, bufferPerAgent: 10, agentQueues: new Map() });
  const statics: Array<{ token: string; who: Principal }> = [
    ...config.agents.map((a) => ({ token: a.token!, who: { kind: 'agent' as const, agentId: a.id } })),
    ...config.http!.supervisors.map((s) => ({ token: s.token, who: { kind: 'supervisor' as const, name: s.name } })),
  ];
  const tokens = new TokenVerifier(statics, undefined);
  const agents = new AgentDirectory({ agents: config.agents, agentContexts: config.calls.agentContexts, extensionPattern: config.calls.extensionPattern });
  const metrics = new BridgeMetrics({ callsInProgress: () => 0, sseClients: () => channel.streams, outbox: () => null });
  const metricsToken = tokenMatcher(METRICS_TOKEN);
  const server = new HttpServer({
    config: config.http!,
    rules: [],
    screenpop: channel,
    tokens,
    agents,
    log,
    metrics,
    // As the bridge wires them (src/bridge.ts: the API's routes, then the operations routes).
    extraRoutes: [
      ...apiRoutes({ config: config.api!, ami: null, presence: null, agents, tokens, log }),
      ...opsRoutes({
        readiness: () => ({ ready: true, checks: {} }),
        metrics,
        mayScrape: (token) => metricsToken(token) || tokens.verify(token)?.kind === 'supervisor',
        knows: (token) => tokens.verify(token) !== null || token === API_TOKEN,
      }),
    ],
  });
  await channel.start();
  await server.start();
  t.teardown(async () => {
    await channel.stop();
    await server.stop();
  });
  const port = server.address!.port;
  const base = `http://127.0.0.1:${port}`;
  const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  return { base, port, logs, channel, scrape };
}

/** A GET from a given local address (127.0.0.2 is another client on the loopback). */
function getFrom(localAddress: string, port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** The problem body of a 429; anything else (an event stream that was let through) is left unread. */
async function problemOf(res: Response): Promise<unknown> {
  if (res.status === 429) return res.json();
  await res.body?.cancel();
  return null;
}

const warnings = (logs: Line[]) => logs.filter((l) => l.level >= 40);
const metric = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);

t.test('given a client hammering /agent/me with wrong tokens', async (t) => {
  const srv = await startServer(t, { http: { listen: '127.0.0.1:0', authThrottle: { maxFailures: 5, windowSeconds: 60 } } });
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${srv.base}/agent/me`, { headers: { authorization: `Bearer guess-${i}-0123456789abcdef` } });
    await res.arrayBuffer();
    statuses.push(res.status);
    if (res.status === 429) retryAfter = res.headers.get('retry-after');
  }
  t.same(statuses.slice(0, 5), [401, 401, 401, 401, 401], 'then the first 5 wrong tokens get 401');
  t.ok(statuses.slice(5).every((s) => s === 429), 'then every later request gets 429');
  t.ok(Number(retryAfter) > 0 && Number(retryAfter) <= 60, `then 429 says when to come back (Retry-After ${retryAfter})`);

  const right = await fetch(`${srv.base}/agent/me`, { headers: { authorization: `Bearer ${TOKEN_201}` } });
  t.equal(right.status, 429, 'then even a right token from that address is refused unchecked while it is throttled');
  t.equal(right.headers.get('content-type'), 'application/problem+json; charset=utf-8', 'with a problem body');
  t.match(await problemOf(right), { status: 429, title: 'Too Many Requests', detail: /too many failed authentications/ });

  const other = await getFrom('127.0.0.2', srv.port, '/agent/me', { authorization: `Bearer ${TOKEN_201}` });
  t.equal(other.status, 200, 'then another address is not affected');
  const noToken = await fetch(`${srv.base}/agent`);
  t.equal(noToken.status, 200, 'then requests without a token (the page itself) are served as usual');

  const lines = warnings(srv.logs);
  t.ok(lines.length <= 3, `then ${lines.length} warning lines for 301 refusals, not one per refusal`);
  t.ok(lines.some((l) => /throttling this address/.test(l.msg)), 'then one line says the address is throttled');
  t.notOk(JSON.stringify(srv.logs).includes('guess-'), 'then no token is logged');

  const m = await getFrom('127.0.0.2', srv.port, '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
  t.equal(metric(m.body, 'crm_bridge_auth_failures_total{reason="invalid_token"}'), 5, 'then the metric counts the wrong tokens');
  t.equal(metric(m.body, 'crm_bridge_auth_failures_total{reason="throttled"}'), 296, 'and the requests refused unchecked');
});

t.test('given wrong tokens spread over every route that takes one, then they add up and every route is throttled', async (t) => {
  const srv = await startServer(t, { http: { listen: '127.0.0.1:0', authThrottle: { maxFailures: 6, windowSeconds: 60 } } });
  const tries: Array<() => Promise<Response>> = [
    () => fetch(`${srv.base}/agent/events?token=wrong-stream-token-0123456789`),
    () => fetch(`${srv.base}/agent/pops/some-event`, { headers: { authorization: 'Bearer wrong-pops-token-0123456789' } }),
    () => fetch(`${srv.base}/api/v1/calls`, { method: 'POST', headers: { authorization: 'Bearer wrong-api-token-0123456789', 'content-type': 'application/json' }, body: '{}' }),
    () => fetch(`${srv.base}/metrics`, { headers: { authorization: 'Bearer wrong-metrics-token-0123456789' } }),
    () => fetch(`${srv.base}/api/v1/agents/201/presence`, { headers: { authorization: 'Bearer wrong-presence-token-0123456789' } }),
    () => fetch(`${srv.base}/agent/me?token=wrong-me-token-0123456789`),
  ];
  for (const attempt of tries) {
    const res = await attempt();
    await res.arrayBuffer();
    t.equal(res.status, 401, `${res.url}: 401`);
  }
  for (const attempt of tries) {
    const res = await attempt();
    await problemOf(res);
    t.equal(res.status, 429, `then ${new URL(res.url).pathname}: 429`);
  }
  const stream = await connectSse(`${srv.base}/agent/events?token=${TOKEN_201}`);
  t.equal(stream.status, 429, 'then the event stream is refused too, even with a right token');
  stream.cut();
  const metrics = await getFrom('127.0.0.2', srv.port, '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
  t.equal(metrics.status, 200, 'then the metrics token works from another address');
  const agentOnMetrics = await getFrom('127.0.0.2', srv.port, '/metrics', { authorization: `Bearer ${TOKEN_201}` });
  t.equal(agentOnMetrics.status, 403, "then an agent's (valid) token on /metrics is still 403, not a failed authentication");
});

t.test('given the throttle on its own clock', async (t) => {
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) });
  const clock = { now: 1_000_000 };
  const throttle = new AuthThrottle({ maxFailures: 3, windowMs: 60_000, log, maxAddresses: 100, now: () => clock.now });

  t.test('when the window has passed, then the address may try again, and a summary is logged', async (t) => {
    for (let i = 0; i < 3; i++) throttle.failure('10.0.0.1', '/agent/me');
    t.equal(throttle.admit('10.0.0.1').ok, false);
    for (let i = 0; i < 50; i++) throttle.admit('10.0.0.1');
    clock.now += 30_000;
    t.match(throttle.admit('10.0.0.1'), { ok: false, retryAfterSeconds: 30 }, 'then Retry-After counts down');
    clock.now += 30_000;
    t.same(throttle.admit('10.0.0.1'), { ok: true }, 'then after the window it is let through');
    const summary = lines.find((l) => l.msg === 'address no longer throttled');
    t.match(summary, { remote: '10.0.0.1', failures: 3, refused: 52 }, 'then one summary counts what was refused meanwhile');
  });

  t.test('when failures spread over more than a window, then they do not add up', async (t) => {
    throttle.failure('10.0.0.2', '/agent/me');
    throttle.failure('10.0.0.2', '/agent/me');
    clock.now += 61_000;
    throttle.failure('10.0.0.2', '/agent/me');
    t.same(throttle.admit('10.0.0.2'), { ok: true });
  });

  t.test('when 200,000 addresses fail once each, then at most maxAddresses are remembered and the log stays short', async (t) => {
    clock.now += 61_000;
    throttle.sweep();
    const before = lines.length;
    for (let i = 0; i < 200_000; i++) throttle.failure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '/agent/me');
    t.ok(throttle.size <= 100, `then ${throttle.size} entries`);
    t.equal(lines.length - before, 100, 'then 100 first-failure lines, the rest counted');
    clock.now += 61_000;
    throttle.sweep();
    t.equal(throttle.size, 0, 'then a sweep after the window forgets them');
    t.match(lines.at(-1), { addresses: 199_900, msg: /more addresses than are logged/ }, 'then one line says how many were not logged');
  });

  t.test('then IPv6 addresses count per /64 and IPv4-mapped ones as IPv4', async (t) => {
    t.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:ffff:1:2:3'));
    t.not(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
    t.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    t.equal(addressKey('::1'), '0:0:0:0::/64');
  });
});

t.test('given event streams capped at 2 per token and 3 per address', async (t) => {
  const srv = await startServer(t, { http: { listen: '127.0.0.1:0', streams: { perToken: 2, perAddress: 3 } } });
  const open: SseClient[] = [];
  t.teardown(() => open.forEach((c) => c.cut()));
  const stream = async (token: string) => {
    const c = await connectSse(`${srv.base}/agent/events?token=${token}`);
    open.push(c);
    return c;
  };
  t.equal((await stream(TOKEN_201)).status, 200);
  t.equal((await stream(TOKEN_201)).status, 200);
  const third = await fetch(`${srv.base}/agent/events?token=${TOKEN_201}`);
  t.equal(third.status, 429, "then agent 201's third stream is refused");
  t.equal(third.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  t.match(await problemOf(third), { status: 429, detail: /2 event streams are already open for this token/ }, 'with a problem body that says why');
  for (let i = 0; i < 20; i++) {
    const again = await fetch(`${srv.base}/agent/events?token=${TOKEN_201}`);
    await problemOf(again);
    t.equal(again.status, 429);
  }
  const capLines = srv.logs.filter((l) => l.cap === 'sse_per_token');
  t.equal(capLines.length, 1, 'then one log line for 21 refusals');
  t.match(capLines[0], { level: 40, who: 'agent:201', limit: 2 });

  t.equal((await stream(TOKEN_202)).status, 200, 'then another agent from the same address still gets one');
  const fourth = await fetch(`${srv.base}/agent/events?token=${TOKEN_203}`);
  t.equal(fourth.status, 429, 'then a fourth stream from the address is refused');
  t.match(await problemOf(fourth), { detail: /from this address/ });
  t.ok(srv.logs.some((l) => l.cap === 'sse_per_address'), 'and logged');
  const fromOther = await new Promise<number>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path: `/agent/events?token=${TOKEN_203}`, localAddress: '127.0.0.2', agent: false }, (res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', reject);
  });
  t.equal(fromOther, 200, 'then another address has its own count');

  open[0]!.cut();
  await waitUntil(() => srv.channel.streams === 2, 'the cut streams to be closed on the server', 5000);
  t.equal((await stream(TOKEN_201)).status, 200, 'then once one of its streams closes, agent 201 may open another');

  const m = await srv.scrape();
  t.equal(metric(m, 'crm_bridge_caps_hit_total{cap="sse_per_token"}'), 21);
  t.equal(metric(m, 'crm_bridge_caps_hit_total{cap="sse_per_address"}'), 1);
});

t.test('given the agent page, its assets and the widget, then every one forbids framing except by whom it should', async (t) => {
  const srv = await startServer(t);
  const agentFiles = ['/agent', '/agent/assets/agent.js', '/agent/assets/agent.css'];
  const widgetFiles = ['/widget/', '/widget/frame.js', '/widget.js'];
  for (const path of [...agentFiles, ...widgetFiles]) {
    const res = await fetch(`${srv.base}${path}`);
    await res.arrayBuffer();
    t.equal(res.status, 200, `${path}: 200`);
    const csp = res.headers.get('content-security-policy') ?? '';
    const ancestors = /frame-ancestors ([^;]*)/.exec(csp)?.[1];
    t.equal(ancestors, agentFiles.includes(path) ? "'self'" : `'self' ${CRM}`, `${path}: frame-ancestors`);
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${path}: nosniff`);
  }
});

t.test('given the agent page, then every module and stylesheet it loads is served with its content type and the CSP, and every file of web/agent is one of them', async (t) => {
  const srv = await startServer(t);
  const page = await fetch(`${srv.base}/agent`);
  const csp = page.headers.get('content-security-policy') ?? '';
  t.match(csp, /script-src 'self';/, 'the page runs only its own scripts');
  // The browser's module loader, by hand: the page's <script>/<link> tags, then each module's static imports.
  const html = await page.text();
  const tags = [...html.matchAll(/<script type="module" src="([^"]+)"|<link rel="stylesheet" href="([^"]+)"/g)];
  const queue = tags.map((m) => new URL(m[1] ?? m[2] ?? '', `${srv.base}/agent`));
  t.ok(queue.length > 1, 'the page names its script and stylesheets');
  const served = new Set<string>();
  for (let url = queue.shift(); url; url = queue.shift()) {
    const name = url.pathname;
    if (served.has(name)) continue;
    served.add(name);
    const res = await fetch(url);
    const body = await res.text();
    t.equal(res.status, 200, `${name}: 200`);
    t.match(res.headers.get('content-type') ?? '', name.endsWith('.css') ? /^text\/css\b/ : /^text\/javascript\b/, `${name}: content type`);
    t.equal(res.headers.get('content-security-policy'), csp, `${name}: the same CSP as the page`);
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${name}: nosniff`);
    if (name.endsWith('.js')) for (const m of body.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm)) queue.push(new URL(m[1] ?? m[2] ?? '', url));
  }
  const files = readdirSync(new URL('../web/agent/', import.meta.url)).filter((f) => /\.(js|css)$/.test(f));
  t.same([...served].sort(), files.map((f) => `/agent/assets/${f}`).sort(), 'then what the page loads is exactly the scripts and stylesheets of web/agent');
});

t.test('given the Bearer scheme in any case (RFC 7235), then every route accepts it', async (t) => {
  const srv = await startServer(t);
  for (const scheme of ['Bearer', 'BEARER', 'bearer', 'bEaReR']) {
    const me = await fetch(`${srv.base}/agent/me`, { headers: { authorization: `${scheme} ${TOKEN_201}` } });
    t.equal(me.status, 200, `/agent/me with ${scheme}`);
    const stream = await connectSse(`${srv.base}/agent/events`, { authorization: `${scheme} ${TOKEN_SUP}` });
    t.equal(stream.status, 200, `/agent/events with ${scheme}`);
    stream.cut();
    const metrics = await fetch(`${srv.base}/metrics`, { headers: { authorization: `${scheme} ${METRICS_TOKEN}` } });
    await metrics.arrayBuffer();
    t.equal(metrics.status, 200, `/metrics with ${scheme}`);
    const api = await fetch(`${srv.base}/api/v1/agents/201/presence`, { headers: { authorization: `${scheme} ${API_TOKEN}` } });
    await api.arrayBuffer();
    t.equal(api.status, 503, `/api/v1 with ${scheme} gets past authentication (503: no AMI here)`);
  }
});
