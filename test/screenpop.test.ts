// The screen-pop channel on a real http.Server: isolation between agents, tokens, resume after a
// forced disconnect, keep-alives, pops rendered server-side, and 1,000 concurrent streams. The
// events are the real ones the normalizer makes of recorded Asterisk traces.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { BehaviorSubject } from 'rxjs';
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';
import { HttpServer } from '../dist/http/server.js';
import { mintToken, TokenVerifier, type Principal } from '../dist/http/tokens.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import type { SourceStatus } from '../dist/sources/source.js';
import { replayTrace } from './helpers/replay.js';
import { connectSse, type SseClient } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

const events = async (name: string) => (await replayTrace(readFileSync(new URL(`../lab/recordings/${name}.ami`, import.meta.url)))).events;
const SECRET = 'k'.repeat(40);

async function startServer(keepAliveSeconds = 15, bufferPerAgent = 200, streams?: { perToken: number; perAddress: number }, status$?: BehaviorSubject<SourceStatus>, popped?: () => void) {
  const log = pino({ level: 'silent' });
  const channel = new ScreenPopSink({ log, keepAliveSeconds, retryMs: 1500, bufferPerAgent, agentQueues: new Map([['203', ['sales']]]), ...(popped ? { popped } : {}) });
  const statics: Array<{ token: string; who: Principal }> = [
    { token: 't-201', who: { kind: 'agent', agentId: '201' } },
    { token: 't-202', who: { kind: 'agent', agentId: '202' } },
    { token: 't-203', who: { kind: 'agent', agentId: '203' } },
    { token: 't-sup', who: { kind: 'supervisor', name: 'floor' } },
  ];
  const server = new HttpServer({
    config: { listen: '127.0.0.1:0', allowedOrigins: ['https://crm.example.com'], keepAliveSeconds, retryMs: 1500, bufferPerAgent, tokenSecret: SECRET, supervisors: [], ...(streams ? { streams } : {}) },
    rules: [
      { events: ['call.ringing'], url: 'https://crm.example.com/contact?phone={callerNumber}&id={Omlcrmcustomerid}', target: 'new-tab' },
      { id: 'copy', events: ['call.answered'], text: 'Call from {callerName} <{callerNumber}>', target: 'clipboard' },
    ],
    screenpop: channel,
    ...(status$ ? { source: { kind: 'ami' as const, status$ } } : {}),
    tokens: new TokenVerifier(statics, SECRET),
    agents: new AgentDirectory({ agents: [], agentContexts: ['agents'], extensionPattern: '^[0-9]{2,6}$' }),
    log,
  });
  await channel.start();
  await server.start();
  const base = `http://127.0.0.1:${server.address!.port}`;
  return {
    channel,
    base,
    server,
    stream: (token: string, headers: Record<string, string> = {}) => connectSse(`${base}/agent/events?token=${encodeURIComponent(token)}`, headers),
    stop: async () => {
      await channel.stop();
      await server.stop();
    },
  };
}

const parsed = (c: SseClient) => c.messages.map((m) => JSON.parse(m.data) as BridgeEvent);

t.test('given agents 201 and 202 rung by one ring-all queue call', async (t) => {
  const all = await events('queue-answered');
  const srv = await startServer();
  t.teardown(() => srv.stop());
  const a = await srv.stream('t-201');
  const b = await srv.stream('t-202');
  const sup = await srv.stream('t-sup');
  const follower = await srv.stream('t-203');
  for (const e of all) srv.channel.deliver(e);
  await sup.waitFor((c) => c.messages.length === all.length, 'the supervisor to get everything');
  await a.waitFor((c) => parsed(c).some((e) => e.type === 'call.hangup'), '201 to see the hangup');
  await b.waitFor((c) => parsed(c).some((e) => e.type === 'call.hangup'), '202 to see the hangup');

  const agentOf = (e: BridgeEvent) => ('agent' in e && e.agent ? e.agent.id : null);
  const personal = new Set(['call.ringing', 'call.answered', 'call.ring_stopped']);
  t.notOk(parsed(a).some((e) => personal.has(e.type) && agentOf(e) !== '201'), "then 201 never sees 202's ringing, answer or ring stop");
  t.notOk(parsed(b).some((e) => personal.has(e.type) && agentOf(e) !== '202'), "then 202 never sees 201's");
  t.ok(parsed(a).some((e) => e.type === 'call.ringing' && agentOf(e) === '201'), 'then 201 sees its own ringing');
  t.ok(parsed(b).some((e) => e.type === 'call.ring_stopped' && agentOf(e) === '202'), 'then 202 sees its ring stop');
  t.notOk(parsed(a).some((e) => e.type.startsWith('agent.') && agentOf(e) !== '201'), "then no other agent's status reaches 201");
  t.same(parsed(sup).map((e) => e.id), all.map((e) => e.id), 'then the supervisor sees every event, in order');
  t.ok(parsed(follower).some((e) => e.type === 'call.queued'), "then an agent following the queue sees its calls queue");
  t.notOk(parsed(follower).some((e) => e.type === 'call.ringing'), "but not other agents' phones ringing");
  for (const c of [a, b, sup]) for (const m of c.messages) t.equal(m.id, (JSON.parse(m.data) as BridgeEvent).id, 'each message id is the event id');
  t.equal(a.retry, 1500, 'then the stream starts with the retry hint');

  const ring202 = all.find((e) => e.type === 'call.ringing' && agentOf(e) === '202')!;
  const ring201 = all.find((e) => e.type === 'call.ringing' && agentOf(e) === '201')!;
  const pops = await fetch(`${srv.base}/agent/pops/${ring201.id}`, { headers: { authorization: 'Bearer t-201' } });
  t.equal(pops.status, 200);
  const body = (await pops.json()) as Array<{ url: string; target: string }>;
  t.same(body.map((p) => p.target), ['new-tab']);
  t.equal(new URL(body[0]!.url).searchParams.get('phone'), '+4915112345678', "then the pop URL carries the caller's number");
  t.equal(new URL(body[0]!.url).searchParams.get('id'), '12345', 'and the dialplan variable');
  const stolen = await fetch(`${srv.base}/agent/pops/${ring202.id}`, { headers: { authorization: 'Bearer t-201' } });
  t.equal(stolen.status, 404, "then 201 cannot fetch the pops of 202's event");
});

t.test('given one agent with two tabs open, when one closes, then both got every event before and the other gets the rest', async (t) => {
  const all = await events('queue-answered');
  const mine = (c: SseClient) => parsed(c).map((e) => e.id);
  const srv = await startServer();
  t.teardown(() => srv.stop());
  const tab1 = await srv.stream('t-201');
  const tab2 = await srv.stream('t-201');
  const half = Math.floor(all.length / 2);
  for (const e of all.slice(0, half)) srv.channel.deliver(e);
  const ring = all.find((e) => e.type === 'call.ringing' && 'agent' in e && e.agent?.id === '201')!;
  t.ok(all.indexOf(ring) < half, 'the ringing comes before the tab closes');
  await tab1.waitFor((c) => mine(c).includes(ring.id), 'tab 1 to get the ringing');
  await tab2.waitFor((c) => c.messages.length === tab1.messages.length, 'tab 2 to get as much');
  t.same(mine(tab2), mine(tab1), 'then both tabs got the same events');
  const before = srv.channel.streams;
  tab1.cut();
  await waitUntil(() => srv.channel.streams === before - 1, 'the server to let the closed tab go');
  for (const e of all.slice(half)) srv.channel.deliver(e);
  await tab2.waitFor((c) => parsed(c).some((e) => e.type === 'call.hangup'), 'tab 2 to see the hangup');
  t.equal(new Set(mine(tab2)).size, mine(tab2).length, 'then the open tab got nothing twice');
});

t.test('given requests without a valid token, then they are refused', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.stop());
  t.equal((await fetch(`${srv.base}/agent/events`)).status, 401, 'no token');
  t.equal((await fetch(`${srv.base}/agent/events?token=nope`)).status, 401, 'a wrong token');
  t.equal((await fetch(`${srv.base}/agent/me`, { headers: { authorization: 'Bearer t-20' } })).status, 401, 'a prefix of a real token');
  const expired = mintToken(SECRET, { kind: 'agent', agentId: '201' }, 60, Date.now() - 120_000);
  t.equal((await fetch(`${srv.base}/agent/events?token=${expired}`)).status, 401, 'an expired signed token');
  const forged = mintToken('x'.repeat(40), { kind: 'agent', agentId: '201' }, 3600);
  t.equal((await fetch(`${srv.base}/agent/events?token=${forged}`)).status, 401, 'a token signed with another key');
  const good = mintToken(SECRET, { kind: 'agent', agentId: '201' }, 3600);
  const me = await fetch(`${srv.base}/agent/me`, { headers: { authorization: `Bearer ${good}` } });
  t.equal(me.status, 200, 'a valid signed token works');
  t.equal(((await me.json()) as { agent: { id: string } }).agent.id, '201');
  t.equal((await fetch(`${srv.base}/agent`)).status, 200, 'the page itself loads without a token (it asks for one)');
});

t.test('given a forced disconnect, when the browser resumes with Last-Event-ID, then it misses nothing and gets nothing twice', async (t) => {
  const all = (await events('ten-calls')).filter((e) => e.type !== 'agent.status');
  const srv = await startServer();
  t.teardown(() => srv.stop());
  // The reference: a second tab of agent 201 that stays connected throughout.
  const whole = await srv.stream('t-201');
  const first = await srv.stream('t-201');
  // A marker for agent 201 after each half tells when 201's streams have everything so far.
  const marker = (id: string) => ({ ...all.find((e) => e.type === 'agent.status' || e.type.startsWith('agent.')) ?? {}, specVersion: '1', id, type: 'agent.status', time: new Date().toISOString(), server: 'pbx1', seq: 1, agent: { id: '201', extension: '201', name: null, interface: null }, status: 'idle' }) as BridgeEvent;
  const has = (id: string) => (c: SseClient) => c.messages.some((m) => m.id === id);
  const half = Math.floor(all.length / 2);
  for (const e of all.slice(0, half)) srv.channel.deliver(e);
  srv.channel.deliver(marker('marker-1'));
  await first.waitFor(has('marker-1'), '201 to get the first half');
  const seen = first.messages.map((m) => m.id);
  first.cut();
  await first.closed;
  for (const e of all.slice(half)) srv.channel.deliver(e);
  srv.channel.deliver(marker('marker-2'));
  await whole.waitFor(has('marker-2'), 'the reference stream to get everything');
  const second = await srv.stream('t-201', { 'last-event-id': seen[seen.length - 1]! });
  const expected = whole.messages.map((m) => m.id);
  t.ok(expected.length > seen.length + 1, `then events arrived while it was away (${expected.length - seen.length})`);
  await second.waitFor(has('marker-2'), 'the resumed stream to catch up');
  t.same([...seen, ...second.messages.map((m) => m.id)], expected, 'then it has every event once, in order');
});

t.test('given a fresh connection during a call, then the agent first gets that call in progress', async (t) => {
  const all = await events('queue-answered');
  const srv = await startServer();
  t.teardown(() => srv.stop());
  const answered = all.findIndex((e) => e.type === 'call.answered');
  for (const e of all.slice(0, answered + 1)) srv.channel.deliver(e);
  const late = await srv.stream('t-201');
  await late.waitFor((c) => parsed(c).some((e) => e.type === 'call.answered'), 'the call in progress');
  t.same(parsed(late).map((e) => e.type).filter((x) => x !== 'agent.status'), ['call.started', 'call.queued', 'call.ringing', 'call.answered'].filter((x) => parsed(late).some((e) => e.type === x)), 'then the events of the call so far, in order');
  t.ok(parsed(late).some((e) => e.type === 'call.ringing'), 'including its own ringing (to pop if it has not yet)');
});

t.test('given an idle stream, then keep-alive comments arrive', async (t) => {
  const srv = await startServer(1);
  t.teardown(() => srv.stop());
  const c = await srv.stream('t-201');
  await c.waitFor((x) => x.comments.filter((m) => m === 'keep-alive').length >= 2, 'two keep-alives', 5000);
  t.equal(c.messages.length, 0);
});

t.test('given 1,000 agents connected at once, then each gets its own pop and only it', async (t) => {
  // All from 127.0.0.1, as behind a reverse proxy: the per-address cap raised accordingly.
  const srv = await startServer(15, 20, { perToken: 10, perAddress: 1000 });
  t.teardown(() => srv.stop());
  const template = (await events('direct-answered')).find((e) => e.type === 'call.ringing')!;
  const clients: SseClient[] = [];
  for (let i = 0; i < 1000; i++) clients.push(await srv.stream(mintToken(SECRET, { kind: 'agent', agentId: `a${i}` }, 3600)));
  t.equal(srv.channel.streams, 1000, 'then 1,000 streams are open');
  for (let i = 0; i < 1000; i++) {
    const agent = { id: `a${i}`, extension: null, name: null, interface: null };
    srv.channel.deliver({ ...template, id: `ring-${i}`, callId: `call-${i}`, agent } as BridgeEvent);
  }
  await Promise.all(clients.map((c, i) => c.waitFor((x) => x.messages.length >= 1, `agent a${i}'s pop`)));
  let wrong = 0;
  clients.forEach((c, i) => {
    if (c.messages.length !== 1 || c.messages[0]!.id !== `ring-${i}`) wrong++;
  });
  t.equal(wrong, 0, 'then every agent got exactly its own event');
  for (const c of clients) c.cut();
});

t.test("given the bridge's AMI connection, when an agent's stream opens and the connection drops, then the stream tells its state as a status event without an id", async (t) => {
  const status = (state: SourceStatus['state']): SourceStatus => ({ state, logins: 1, failures: 0, lastError: 'connect ECONNREFUSED 10.0.0.5:5038', since: new Date().toISOString() });
  const status$ = new BehaviorSubject(status('connected'));
  const srv = await startServer(15, 200, undefined, status$);
  t.teardown(() => srv.stop());
  const c = await srv.stream('t-201');
  await c.waitFor((x) => x.messages.length >= 1, 'the status at open');
  t.match(c.messages[0], { event: 'status', id: null }, 'then the first message is a named status event, with no id (Last-Event-ID stays an event id)');
  t.match(JSON.parse(c.messages[0]!.data), { source: 'ami', state: 'connected' });
  status$.next(status('disconnected'));
  await c.waitFor((x) => x.messages.length >= 2, 'the status change');
  const down = JSON.parse(c.messages[1]!.data) as Record<string, unknown>;
  t.match(down, { source: 'ami', state: 'disconnected' }, 'then the change reaches the open stream');
  t.notOk('lastError' in down, 'then no error text (it may name internal hosts)');
  status$.next(status('disconnected'));
  const all = await events('direct-answered');
  srv.channel.deliver(all.find((e) => e.type === 'call.ringing')!);
  await c.waitFor((x) => x.messages.length >= 3, 'the ringing');
  t.equal(c.messages[2]!.event, null, 'then an unchanged status is not repeated: the next message is the event');
});

t.test('given no API, when GET /, then a page of links without the API line, with the CSP of the agent page', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.stop());
  const res = await fetch(`${srv.base}/`);
  const html = await res.text();
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/html/);
  t.equal(res.headers.get('content-security-policy'), (await fetch(`${srv.base}/agent`)).headers.get('content-security-policy'));
  t.match(html, /href="\/agent"/, 'then it links the agent page');
  t.notMatch(html, /openapi/, 'then no link to an API this bridge does not serve');
});

t.test('given an agent stream, then the sink reports a pop for each event written to a stream, and none for events no stream is open to see (the deliveries pace by it)', async (t) => {
  let pops = 0;
  const s = await startServer(15, 200, undefined, undefined, () => pops++);
  t.teardown(() => s.stop());
  const all = await events('queue-answered');
  for (const e of all) s.channel.deliver({ ...e, id: `${e.id}-nobody` } as BridgeEvent);
  t.equal(pops, 0, 'then no pop while no stream is open');
  const c = await s.stream('t-201');
  t.teardown(() => c.cut());
  await waitUntil(() => s.channel.streams === 1, 'the stream attached');
  const before = c.messages.length;
  for (const e of all) s.channel.deliver({ ...e, id: `${e.id}-live` } as BridgeEvent);
  t.ok(pops > 0, `then pops: ${pops}`);
  await c.waitFor((x) => x.messages.length - before >= pops, 'the popped events on the stream');
  t.equal(c.messages.length - before, pops, 'one pop per event the stream got');
});
