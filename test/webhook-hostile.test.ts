// The webhook sink against hostile values and misbehaving receivers (issue 15): a caller name in
// Chinese, a receiver that never answers or stalls its body, a Retry-After of decades, a `..`
// path value, a sink that stopped delivering, credentials in URLs. Real sink, real outbox, real
// dispatcher, real HTTP servers on 127.0.0.1, and the built daemon for the logs.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { startReplayServer } from '../dist/sources/ami/replay-server.js';
import { defaultConfig } from '../dist/config/load.js';
import type { BridgeEvent, CallStarted } from '../dist/events/types.js';
import { Dispatcher, Outbox, type DeliveryOutcome, type DeliveryResult } from '../dist/outbox/index.js';
import { webhookSink, type WebhookSinkConfig } from '../dist/sinks/webhook.js';
import { compileHeader, compileUrl, UrlRenderError } from '../dist/template/index.js';
import { createHttpAgent, send } from '../dist/sinks/webhook/http.js';
import { redactUrl, redactUrls } from '../dist/util/redact.js';
import { runBridgeOnTrace } from './helpers/bridge-replay.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { startReceiver, type Received } from './helpers/receivers.js';
import { started } from './helpers/sample-events.js';
import { waitUntil } from './helpers/wait.js';

const QUEUE = readFileSync(new URL('../lab/recordings/queue-answered.ami', import.meta.url));
const FAST_RETRY = { retry: { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0 } };

/** A call.started of its own call, from `name` at `number`. */
function callFrom(name: string | null, number = '+4915112345678'): CallStarted {
  return { ...started, id: randomUUID(), callId: `${Date.now()}.${Math.floor(Math.random() * 1e6)}`, caller: { number, name } };
}

interface SinkRig {
  outbox: Outbox;
  outcomes: Array<{ sink: string; outcome: DeliveryOutcome }>;
  deliver(e: BridgeEvent): void;
}

/** A real webhook sink with its own outbox file; stopped at the end of the test. */
async function sinkRig(t: Test, sink: Partial<WebhookSinkConfig> & { url: string }): Promise<SinkRig> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-hostile-'));
  const config = defaultConfig({ outbox: { path: join(dir, 'outbox.db') }, sinks: [{ type: 'webhook', name: 'crm', ...FAST_RETRY, ...sink }] });
  const outbox = Outbox.open(config.outbox.path!);
  const outcomes: SinkRig['outcomes'] = [];
  const webhook = webhookSink.create(config.sinks[0] as WebhookSinkConfig, {
    log: pino({ level: 'silent' }),
    server: 'pbx1',
    outbox: () => outbox,
    userAgent: 'test',
    onOutcome: (s, o) => outcomes.push({ sink: s, outcome: o }),
  });
  await webhook.start();
  t.teardown(async () => {
    await webhook.stop();
    outbox.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { outbox, outcomes, deliver: (e) => webhook.deliver(e) };
}

const eventOf = (r: Received) => JSON.parse(r.body) as BridgeEvent;

t.test('given a header template and a caller name in Chinese, when two calls come in, then both arrive and the header decodes to the name', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const rig = await sinkRig(t, {
    url: `${receiver.url}/calls`,
    headers: { 'X-Caller': '"{callerName}"', 'X-Plain': 'from {callerNumber}', 'Content-Disposition': 'inline; filename*={callerName}' },
    concurrency: 2,
  });
  const chinese = callFrom('王小明');
  const next = callFrom('王小明', '+8613800138000');
  const latin = callFrom('Zoë 50% Łukasik\r\nX-Injected: 1');
  rig.deliver(chinese);
  rig.deliver(next);
  rig.deliver(latin);
  await receiver.waitFor((r) => r.length >= 3, 'the three calls', 10_000);
  const by = (e: CallStarted) => receiver.requests.find((r) => eventOf(r).id === e.id)!;
  for (const e of [chinese, next, latin]) {
    const req = by(e);
    t.ok(req, `then ${e.caller.name} (${e.callId}) arrived`);
    const header = String(req.headers['x-caller']);
    t.match(header, /^"[\x20-\x7e]*"$/, 'then the header is visible ASCII between the template quotes');
    t.equal(decodeURIComponent(header.slice(1, -1)), e.caller.name, 'then one percent-decode gives the name back');
    t.equal(req.headers['x-plain'], `from ${e.caller.number}`, 'then a plain ASCII value is sent as it is');
    t.equal(req.headers['x-injected'], undefined, 'then a CR/LF in the value adds no header');
    const cd = String(req.headers['content-disposition']);
    const ext = /filename\*=UTF-8''(.*)$/.exec(cd);
    t.ok(ext, `then filename*= carries an RFC 8187 ext-value (${cd})`);
    t.equal(decodeURIComponent(ext?.[1] ?? ''), e.caller.name, 'then the ext-value decodes to the name');
  }
  t.same(rig.outcomes.filter((o) => o.outcome.kind !== 'delivered'), [], 'then nothing was retried or dead-lettered');
});

t.test('given header templates, then every rendered value is a valid field value whatever the value', async (t) => {
  const header = compileHeader('x {callerName} y');
  for (const value of ['王小明', '\u0000\r\n', 'é', '\uD800', '%41', 'tab\there', '😀']) {
    const out = header.render({ callerName: value });
    t.match(out, /^[\x20-\x7e]*$/, `${JSON.stringify(value)}: printable ASCII`);
    t.doesNotThrow(() => new Headers({ 'x-h': out }), 'and fetch/undici accept it');
    if (value !== '\uD800') t.equal(decodeURIComponent(out.slice(2, -2)), value, `${JSON.stringify(value)}: decodes back`);
  }
  t.throws(() => compileHeader('Müller {callerName}'), /printable ASCII/, 'then non-ASCII literal text is a config error');
  t.equal(compileHeader("attachment; filename*=UTF-8''{callerName}").render({ callerName: 'a b' }), "attachment; filename*=UTF-8''a%20b", 'then a written-out charset is not repeated');
  t.equal(compileHeader('f*={callerName}').render({}), "f*=UTF-8''", 'then an absent value is still a valid ext-value');
});

t.test('given a header name that is not a token, then the config is refused', async (t) => {
  t.throws(() => defaultConfig({ sinks: [{ type: 'webhook', url: 'http://127.0.0.1/x', headers: { 'X Caller': '{callerName}' } }] }), /X Caller.*header name/s);
});

/** A server that accepts connections and then does what `behave` says with each request. */
async function rawServer(t: Test, behave: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    behave(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

t.test('given a receiver that accepts and never answers one call, then each attempt ends at its deadline and the other calls still go (concurrency 1)', async (t) => {
  const stuck = callFrom('Stuck');
  const srv = await rawServer(t, (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (body.includes(stuck.id)) return; // never answers
      res.end('ok');
    });
  });
  const rig = await sinkRig(t, { url: `${srv.url}/e`, concurrency: 1, timeouts: { connectMs: 200, readMs: 300 } });
  rig.deliver(stuck);
  await waitUntil(() => srv.hits.length === 1, 'the stuck request to arrive');
  const others = [callFrom('A'), callFrom('B')];
  for (const e of others) rig.deliver(e);
  await waitUntil(() => others.every((e) => rig.outcomes.some((o) => o.outcome.kind === 'delivered' && o.outcome.item.eventId === e.id)), 'the other calls delivered', 10_000);
  const retry = rig.outcomes.find((o) => o.outcome.kind === 'retry' && o.outcome.item.eventId === stuck.id);
  t.ok(retry, 'then the stuck attempt failed and is retried');
  t.ok((retry?.outcome.durationMs ?? Infinity) < 2000, `then it ended within its deadline (${retry?.outcome.durationMs} ms)`);
});

t.test('given a receiver that sends its headers and then trickles the body, then the attempt ends at connectMs + readMs and frees its slot', async (t) => {
  const stuck = callFrom('Trickle');
  const timers = new Set<NodeJS.Timeout>();
  t.teardown(() => timers.forEach((x) => clearInterval(x)));
  const srv = await rawServer(t, (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (!body.includes(stuck.id)) return void res.end('ok');
      // One byte every 100 ms: never 300 ms without a byte, so undici's bodyTimeout never trips.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const every = setInterval(() => res.write('.'), 100);
      timers.add(every);
      res.on('close', () => clearInterval(every));
    });
  });
  const rig = await sinkRig(t, { url: `${srv.url}/e`, concurrency: 1, timeouts: { connectMs: 200, readMs: 300 } });
  rig.deliver(stuck);
  await waitUntil(() => srv.hits.length === 1, 'the trickled request to arrive');
  const other = callFrom('Other');
  rig.deliver(other);
  await waitUntil(() => rig.outcomes.some((o) => o.outcome.kind === 'delivered' && o.outcome.item.eventId === other.id), 'the other call delivered through the only slot', 10_000);
  const first = rig.outcomes.find((o) => o.outcome.item.eventId === stuck.id)!;
  t.equal(first.outcome.kind, 'retry', 'then the trickled attempt is a retryable failure');
  t.match(first.outcome.kind === 'retry' ? first.outcome.error : '', /deadline/, 'then its error names the deadline');
  t.ok(first.outcome.durationMs! >= 450 && first.outcome.durationMs! < 2000, `then it ended at about 500 ms (${first.outcome.durationMs} ms)`);
});

t.test('given a deliver function that never settles and ignores its signal, then the dispatcher ends the attempt at attemptTimeoutMs and the next call goes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-hostile-'));
  const outbox = Outbox.open(join(dir, 'o.db'));
  const outcomes: DeliveryOutcome[] = [];
  const dispatcher = new Dispatcher(
    outbox,
    { sink: 's', concurrency: 1, retry: { initialDelayMs: 10_000, maxDelayMs: 10_000, factor: 1, jitter: 0 }, maxAttempts: 5, maxAgeMs: 60_000, attemptTimeoutMs: 100, log: pino({ level: 'silent' }), onOutcome: (o) => outcomes.push(o) },
    (item): Promise<DeliveryResult> => (item.eventId === 'hang' ? new Promise(() => {}) : Promise.resolve({ ok: true })),
  );
  t.teardown(async () => {
    await dispatcher.stop({ deadlineMs: 0 });
    outbox.close();
    rmSync(dir, { recursive: true, force: true });
  });
  outbox.enqueue('s', 'a', 'hang', '{}');
  outbox.enqueue('s', 'b', 'next', '{}');
  dispatcher.start();
  await waitUntil(() => outcomes.some((o) => o.kind === 'delivered' && o.item.eventId === 'next'), 'the next call delivered', 5000);
  t.match(outcomes[0], { kind: 'retry', item: { eventId: 'hang' } }, 'then the hung attempt counts as a failed attempt');
  t.equal(dispatcher.inFlightCount, 0, 'then no slot is held');
});

t.test('given send() and a header undici refuses, then the outcome is not retried', async (t) => {
  const agent = new Agent();
  t.teardown(() => agent.close());
  const out = await send(agent, { method: 'POST', url: 'http://127.0.0.1:9/x', headers: { 'x-caller': '王小明' }, body: '{}' });
  t.match(out, { ok: false, retry: false, invalid: true }, 'then the request is reported as one that can never be sent');
});

t.test('given send() with a deadline and a receiver that never answers, then the request is aborted at the deadline (undici\'s own timeouts far off) and reported as the deadline', async (t) => {
  const closed: Promise<void>[] = [];
  const srv = await rawServer(t, (req) => {
    req.resume();
    closed.push(new Promise<void>((r) => req.socket.once('close', () => r())));
  });
  const agent = createHttpAgent({ connectTimeoutMs: 60_000, readTimeoutMs: 60_000, connections: 1 });
  t.teardown(() => agent.destroy());
  const began = performance.now();
  const out = await send(agent, { method: 'POST', url: `${srv.url}/e`, headers: {}, body: '{}' }, new AbortController().signal, 200);
  const took = performance.now() - began;
  t.match(out, { ok: false, retry: true, error: /attempt deadline \(200 ms: connect \+ read\)/ }, 'then it is a retryable failure naming the deadline');
  t.ok(took >= 190 && took < 2000, `then it ended at the deadline (${Math.round(took)} ms)`);
  t.equal(srv.hits.length, 1);
  await closed[0];
  t.pass('then the receiver sees the request given up (its connection closed)');
});

t.test('given send() and its caller\'s signal aborted mid-request (shutdown), then it ends with that reason, not as the deadline', async (t) => {
  let arrive = () => {};
  const arrived = new Promise<void>((r) => (arrive = r));
  const srv = await rawServer(t, (req) => {
    req.resume();
    arrive();
  });
  const agent = createHttpAgent({ connectTimeoutMs: 60_000, readTimeoutMs: 60_000, connections: 1 });
  t.teardown(() => agent.destroy());
  const shutdown = new AbortController();
  const sending = send(agent, { method: 'POST', url: `${srv.url}/e`, headers: {}, body: '{}' }, shutdown.signal, 60_000);
  await arrived;
  shutdown.abort(new Error('dispatcher stopping'));
  const out = await sending;
  t.match(out, { ok: false, retry: true, error: /dispatcher stopping/ });
  t.notMatch(out.ok ? '' : out.error, /deadline/);
});

t.test('given send() with a deadline and a signal, then it makes no AbortSignal.timeout and no AbortSignal.any (one AbortController of its own)', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const agent = createHttpAgent({ connectTimeoutMs: 1000, readTimeoutMs: 1000, connections: 1 });
  t.teardown(() => agent.close());
  const made = { timeout: 0, any: 0 };
  const { timeout, any } = AbortSignal;
  AbortSignal.timeout = (ms) => (made.timeout++, timeout.call(AbortSignal, ms));
  AbortSignal.any = (signals) => (made.any++, any.call(AbortSignal, signals));
  t.teardown(() => Object.assign(AbortSignal, { timeout, any }));
  for (let i = 0; i < 3; i++) {
    t.match(await send(agent, { method: 'POST', url: `${receiver.url}/e`, headers: {}, body: '{}' }, new AbortController().signal, 2000), { ok: true });
  }
  t.same(made, { timeout: 0, any: 0 });
});

t.test('given a path value of . or .., when it fills a URL segment of a webhook, then the event goes to the dead letters at once and the next one of its call goes', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const rig = await sinkRig(t, { url: `${receiver.url}/contacts/{callerNumber}/calls` });
  const climb = callFrom('Climber', '..');
  const sameCall = { ...callFrom('Climber', '+4930123'), callId: climb.callId };
  rig.deliver(climb);
  rig.deliver(sameCall);
  await receiver.waitFor((r) => r.length >= 1, 'the next event of the call');
  t.same(receiver.requests.map((r) => r.path), ['/contacts/%2B4930123/calls'], 'then only the buildable request was sent');
  const [dead] = rig.outbox.list({ dead: true });
  t.match(dead, { eventId: climb.id, reason: 'invalid-request', attempts: 1, lastError: /cannot be built.*'\.' or '\.\.'/ }, 'then the dead letter says why, after one attempt');

  const url = compileUrl('https://crm.example.com/contacts/{callerNumber}/calls');
  for (const value of ['.', '..']) {
    t.throws(() => url.renderChecked({ callerNumber: value }), UrlRenderError, `${value}: renderChecked throws`);
  }
  t.equal(url.renderChecked({ callerNumber: '...' }), 'https://crm.example.com/contacts/.../calls', 'then ... is an ordinary segment');
});

t.test('given a receiver answering 429 with a Retry-After of decades, then the retry comes after maxDelayMs at most', async (t) => {
  for (const retryAfter of ['999999999', 'Fri, 31 Dec 9999 23:59:59 GMT']) {
    let refused = 0;
    const receiver = await startReceiver(() => (refused++ === 0 ? { status: 429, headers: { 'retry-after': retryAfter } } : { status: 200 }));
    t.teardown(() => receiver.close());
    const rig = await sinkRig(t, { url: `${receiver.url}/e` });
    const e = callFrom('Patient');
    rig.deliver(e);
    await waitUntil(() => rig.outcomes.some((o) => o.outcome.kind === 'retry'), 'the refused attempt');
    const retry = rig.outcomes.find((o) => o.outcome.kind === 'retry')!.outcome;
    const waitMs = retry.kind === 'retry' ? retry.nextAttemptAt - Date.now() : Infinity;
    t.ok(waitMs <= 200, `Retry-After: ${retryAfter}: then the next attempt is within maxDelayMs (in ${waitMs} ms)`);
    await receiver.waitFor((r) => r.length >= 1, 'the retried delivery', 5000);
  }
});

t.test('given a webhook whose receiver keeps failing, then /readyz and the metrics show the stalled sink, and it recovers', async (t) => {
  let failing = true;
  const receiver = await startReceiver(() => (failing ? { status: 503 } : { status: 200 }));
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(QUEUE, {
    sinks: [{ type: 'webhook', name: 'crm', url: `${receiver.url}/e`, retry: { initialDelayMs: 20, maxDelayMs: 50, factor: 2, jitter: 0 }, maxAttempts: 1000 }],
    outbox: { stalledAfterMs: 300 },
  });
  t.teardown(() => run.stop());
  await waitUntil(() => (run.bridge.readiness().checks['sink:crm'] ?? '').startsWith('stalled'), 'the sink to be reported stalled', 10_000);
  const stalled = run.bridge.readiness();
  t.equal(stalled.ready, false, 'then the bridge is not ready');
  t.match(stalled.checks['sink:crm'], /^stalled: \d+ event\(s\) waiting, the oldest for \d+ s; deliveries: none since start/);
  t.match((await run.bridge.metrics.render()).body, /crm_bridge_sink_stalled\{sink="crm"\} 1/, 'then crm_bridge_sink_stalled is 1');
  failing = false;
  await waitUntil(() => run.bridge.readiness().checks['sink:crm'] === undefined, 'the sink to recover', 10_000);
  const body = (await run.bridge.metrics.render()).body;
  t.match(body, /crm_bridge_sink_stalled\{sink="crm"\} 0/, 'then crm_bridge_sink_stalled is back to 0');
  const last = Number(/crm_bridge_sink_last_delivery_timestamp_seconds\{sink="crm"\} ([\d.e+]+)/.exec(body)?.[1]);
  t.ok(Math.abs(Date.now() / 1000 - last) < 30, `then the last delivery time is now (${last})`);
});

t.test('given /readyz is asked, then the outbox file is not written', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(QUEUE, { sinks: [{ type: 'webhook', name: 'crm', url: `${receiver.url}/e` }] });
  t.teardown(() => run.stop());
  await waitUntil(() => pendingRows(run.outboxPath) === 0, 'the outbox to drain');
  const other = new Database(run.outboxPath, { readonly: true });
  t.teardown(() => other.close());
  const version = () => other.pragma('data_version', { simple: true }) as number;
  const before = version();
  for (let i = 0; i < 5; i++) t.equal(run.bridge.readiness().checks.outbox, 'ok');
  t.equal(version(), before, 'then no commit happened (data_version unchanged)');
});

/** Rows waiting in the outbox file, read through a connection of its own. */
function pendingRows(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

t.test('given a new outbox, then its file, -wal and -shm are readable by the owner only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const path = join(dir, 'outbox.db');
  const outbox = Outbox.open(path);
  outbox.enqueue('s', 'p', 'e', '{}');
  for (const f of [path, `${path}-wal`, `${path}-shm`]) t.equal((statSync(f).mode & 0o777).toString(8), '600', `${f.slice(dir.length + 1)}: 0600`);
  outbox.close();
});

t.test('given URLs with credentials, then redactUrl hides them and keeps the rest', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://crm:S3cret@crm.example.com/x', 'https://[redacted]@crm.example.com/x'],
    ['https://crm.example.com/x?apikey=abc&event={event}&token=t&key=k&secret=s&password=p', 'https://crm.example.com/x?apikey=[redacted]&event={event}&token=[redacted]&key=[redacted]&secret=[redacted]&password=[redacted]'],
    ['https://zammad.example.com/api/v1/cti/Zt0kenValue', 'https://zammad.example.com/api/v1/cti/[redacted]'],
    ['https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXX1', 'https://hooks.slack.com/services/T000/B000/[redacted]'],
    ['https://crm.example.com/calls/{callId}?lang=es#access_token=x', 'https://crm.example.com/calls/{callId}?lang=es#access_token=[redacted]'],
    ['https://crm.example.com/api/v2/calls', 'https://crm.example.com/api/v2/calls'],
  ];
  for (const [url, want] of cases) t.equal(redactUrl(url), want, url);
  t.equal(redactUrls('HTTP 400: bad request to http://u:p@h/x?apikey=1 (retry)'), 'HTTP 400: bad request to http://[redacted]@h/x?apikey=[redacted] (retry)');
});

t.test('given webhook URLs with credentials, when the daemon runs, delivers, fails and is checked, then no secret appears in any of its output', async (t) => {
  const SECRETS = ['Pw-userinfo-77', 'APIKEY-query-55', 'ZammadTok3n-99', 'tok-query-33'];
  // A receiver that rejects what comes to /reject and echoes the URL it was called with.
  const receiver = await startReceiver((r) => (r.path.startsWith('/reject') ? { status: 400, body: `no: http://127.0.0.1${r.url}` } : { status: 200 }));
  t.teardown(() => receiver.close());
  const host = receiver.url.replace('http://', '');
  const ami = await startReplayServer(QUEUE, { endAfter: false });
  t.teardown(() => ami.close());
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const outboxPath = join(dir, 'outbox.db');
  const config = writeConfig(`pbx:
  name: pbx1
  ami: { host: 127.0.0.1, port: ${ami.port}, username: replay, secret: { env: AMI_SECRET }, resync: false }
sinks:
  - type: webhook
    name: userinfo
    url: http://crm:${SECRETS[0]}@${host}/ok?event={event}
  - type: webhook
    name: query
    url: http://${host}/reject?apikey=${SECRETS[1]}&token=${SECRETS[3]}&event={event}
    maxAttempts: 1
  - type: webhook
    preset: zammad
    url: http://${host}/api/v1/cti/${SECRETS[2]}
outbox:
  path: ${outboxPath}
log:
  level: debug
`);
  const daemon = startDaemon(config, { AMI_SECRET: 'x' });
  await daemon.waitForLog((l) => l.msg === 'crm-bridge starting', 'the start-up line');
  await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('moved to dead letters'), 'a dead letter', 30_000);
  await receiver.waitFor((r) => r.some((x) => x.path.startsWith('/api/v1/cti/')) && r.some((x) => x.path === '/ok'), 'deliveries to both good sinks', 30_000);
  t.equal(await daemon.stop(), 0);
  const logText = daemon.logs.map((l) => JSON.stringify(l)).join('\n');
  t.match(logText, /"url":"http:\/\/\[redacted\]@127\.0\.0\.1/, 'then the start-up log shows the URL, redacted');
  const outbox = Outbox.open(outboxPath);
  const deadText = JSON.stringify(outbox.list({ dead: true }).map((d) => d.lastError));
  outbox.close();
  t.match(deadText, /apikey=\[redacted\]/, 'then the dead letter keeps the error, redacted');
  // check-config on the same file, and on one with an error that quotes the URL.
  const { spawnSync } = await import('node:child_process');
  const bin = new URL('../bin/crm-bridge.js', import.meta.url).pathname;
  const check = spawnSync(process.execPath, [bin, 'check-config', '--config', config], { env: { PATH: process.env.PATH, AMI_SECRET: 'x' }, encoding: 'utf8' });
  // A sink name that is a URL: the error quotes the value it refuses.
  const bad = writeConfig(readFileSync(config, 'utf8').replace('    preset: zammad\n', `    preset: zammad\n    name: http://x:${SECRETS[0]}@h/?apikey=${SECRETS[1]}\n`));
  const badCheck = spawnSync(process.execPath, [bin, 'check-config', '--config', bad], { env: { PATH: process.env.PATH, AMI_SECRET: 'x' }, encoding: 'utf8' });
  t.not(badCheck.status, 0, 'then the broken config is refused');
  t.match(badCheck.stderr, /name.*\(is 'http:\/\/\[redacted\]@h\/\?apikey=\[redacted\]'\)/, 'then the error quotes the value, redacted');
  const all = [logText, deadText, check.stdout, check.stderr, badCheck.stdout, badCheck.stderr].join('\n');
  for (const secret of SECRETS) t.notOk(all.includes(secret), `then ${secret} appears nowhere`);
});
