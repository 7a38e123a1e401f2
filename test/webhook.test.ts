// The webhook sink end to end on real sockets: the real bridge fed by recorded real-Asterisk
// traces, delivering through the durable outbox to real HTTP receivers on 127.0.0.1.
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { defaultConfig } from '../dist/config/load.js';
import { assertValidEvent } from '../dist/events/validator.js';
import type { Agent, BridgeEvent, CallEvent } from '../dist/events/types.js';
import { Outbox } from '../dist/outbox/index.js';
import { webhookSink, type WebhookSinkConfig } from '../dist/sinks/webhook.js';
import { contractViolations } from './helpers/contract.js';
import { runBridgeOnTrace } from './helpers/bridge-replay.js';
import { startReceiver, startSipgateReceiver, startZammadReceiver, type Received } from './helpers/receivers.js';

const fixture = (name: string) => readFileSync(new URL(`../lab/recordings/${name}.ami`, import.meta.url));
const QUEUE = fixture('queue-answered');
const FAST_RETRY = { retry: { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0.1 } };

/**
 * Standard Webhooks verification, written from the spec (standardwebhooks.com), independent of
 * the sink's code: HMAC-SHA256 over "id.timestamp.body" with the base64 key after "whsec_",
 * compared in constant time against each "v1,<base64>" signature; timestamp within 5 minutes.
 */
function verifyStandardWebhook(secret: string, req: Received): string | null {
  const id = req.headers['webhook-id'];
  const ts = req.headers['webhook-timestamp'];
  const sigs = req.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigs !== 'string') return 'missing headers';
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return 'timestamp too old';
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${req.body}`).digest();
  for (const part of sigs.split(' ')) {
    const [version, b64] = part.split(',');
    if (version !== 'v1' || !b64) continue;
    const got = Buffer.from(b64, 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return null;
  }
  return 'no valid signature';
}

function callEvents(events: BridgeEvent[], types?: string[]): CallEvent[] {
  return events.filter((e): e is CallEvent => e.type.startsWith('call.') && (!types || types.includes(e.type)));
}

t.test('given the minimal webhook of the issue (POST json, mixed templates, secret, events filter)', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const types = ['call.ringing', 'call.answered', 'call.hangup'];
  const run = await runBridgeOnTrace(QUEUE, {
    sinks: [{ type: 'webhook', url: `${receiver.url}/calls?caller=<%CALLERID%>&customer={Omlcrmcustomerid}&event={event}`, method: 'POST', format: 'json', secret, events: types }],
  });
  t.teardown(() => run.stop());
  const expected = callEvents(run.events, types);
  await receiver.waitFor((r) => r.length >= expected.length, `${expected.length} requests`);
  t.equal(receiver.requests.length, expected.length, 'then exactly the filtered events are sent');
  receiver.requests.forEach((req, i) => {
    const e = expected[i]!;
    t.equal(req.method, 'POST');
    t.equal(verifyStandardWebhook(secret, req), null, `then ${e.type} carries a valid Standard Webhooks signature`);
    t.equal(req.headers['webhook-id'], e.id, 'then webhook-id is the event id');
    t.same(JSON.parse(req.body), e, 'then the body is the event');
    t.equal(req.query.get('caller'), '+4915112345678', 'then <%CALLERID%> is the caller number, + kept');
    t.equal(req.query.get('customer'), '12345', 'then {Omlcrmcustomerid} is the dialplan variable');
    t.equal(req.query.get('event'), e.type);
    t.equal([...req.query.keys()].length, 3);
  });
  const tampered = { ...receiver.requests[0]!, body: receiver.requests[0]!.body.replace('ringing', 'answered') };
  t.equal(verifyStandardWebhook(secret, tampered), 'no valid signature', 'then the verifier rejects a tampered body');
});

t.test('given the OMniLeads examples', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(QUEUE, {
    sinks: [
      {
        type: 'webhook',
        name: 'get',
        url: `${receiver.url}/get`,
        method: 'GET',
        format: 'query',
        events: ['call.answered'],
        params: [
          { from: 'Omlcrmcustomerid', as: 'idClient' },
          { from: 'queue', as: 'idCamp' },
          { value: 'es', as: 'lang' },
          { from: 'callId', as: 'recordingFile' },
        ],
      },
      { type: 'webhook', name: 'clean', url: `${receiver.url}/clean/{Omlcrmcustomerid}/{queue}/es/{callId}`, method: 'GET', format: 'query', events: ['call.answered'] },
      { type: 'webhook', name: 'form', url: `${receiver.url}/form`, method: 'POST', format: 'form', events: ['call.answered'], params: [{ from: 'callerName', as: 'name' }, { from: 'agentName', as: 'agent' }] },
      { type: 'webhook', name: 'put', url: `${receiver.url}/put`, method: 'PUT', format: 'json', events: ['call.answered'], body: { caller: '{callerNumber}', who: '<%USEREXT%>', note: 'Call from {callerName}' } },
    ],
  });
  t.teardown(() => run.stop());
  await receiver.waitFor((r) => r.length >= 4, '4 requests');
  const by = (p: string) => receiver.requests.find((r) => r.path.startsWith(p))!;
  const get = by('/get');
  t.equal(get.method, 'GET');
  t.same(Object.fromEntries(get.query), { idClient: '12345', idCamp: 'sales', lang: 'es', recordingFile: run.events[0]!.type === 'call.started' ? (run.events[0] as CallEvent).callId : '' }, 'then the three-column parameter table maps values to the CRM names');
  t.equal(by('/clean').path, `/clean/12345/sales/es/${encodeURIComponent((run.events[0] as CallEvent).callId)}`, 'then clean URL holders fill path segments');
  const form = new URLSearchParams(by('/form').body);
  t.equal(by('/form').headers['content-type'], 'application/x-www-form-urlencoded');
  t.same(Object.fromEntries(form), { name: 'Acme & Sons', agent: 'Agent 201' }, 'then a form body keeps & inside a value');
  const put = by('/put');
  t.equal(put.method, 'PUT');
  t.same(JSON.parse(put.body), { caller: '+4915112345678', who: '201', note: 'Call from Acme & Sons' });
});

t.test('given hostile caller names, then no value can add, cut or break a parameter or segment', async (t) => {
  const hostile = ['Acme & Sons', 'x#y', 'a=b', '../../admin?x=1', 'Ünïcødé 名前', 'A'.repeat(2048)];
  for (const name of hostile) {
    const trace = Buffer.from(QUEUE.toString('utf8').split('Acme & Sons').join(name), 'utf8');
    const receiver = await startReceiver();
    const run = await runBridgeOnTrace(trace, {
      sinks: [
        { type: 'webhook', url: `${receiver.url}/p/{callerName}/end?name={callerName}&n=<%CALLERID%>#frag`, method: 'GET', format: 'query', events: ['call.answered'], params: [{ from: 'callerName', as: 'again' }] },
        { type: 'webhook', url: `${receiver.url}/json`, format: 'json', events: ['call.answered'], body: { name: '{callerName}' } },
      ],
    });
    await receiver.waitFor((r) => r.length >= 2, '2 requests');
    const get = receiver.requests.find((r) => r.path.startsWith('/p/'))!;
    t.equal(decodeURIComponent(get.path.split('/')[2]!), name, `path segment holds ${JSON.stringify(name.slice(0, 20))} whole`);
    t.equal(get.path.split('/').length, 4, 'no segment added');
    t.same([...get.query.keys()], ['name', 'n', 'again'], 'no parameter added or cut');
    t.equal(get.query.get('name'), name);
    t.equal(get.query.get('again'), name);
    t.same(JSON.parse(receiver.requests.find((r) => r.path === '/json')!.body), { name });
    await run.stop();
    await receiver.close();
  }
});

t.test('given each auth mode, then requests carry the right credentials', async (t) => {
  let tokenFetches = 0;
  const receiver = await startReceiver((req) => {
    if (req.path === '/token') {
      tokenFetches++;
      const basic = Buffer.from(String(req.headers.authorization).replace('Basic ', ''), 'base64').toString();
      if (basic !== 'client-1:s3cret' || !req.body.includes('grant_type=client_credentials')) return { status: 401, body: '{}' };
      return { status: 200, body: JSON.stringify({ access_token: `tok-${tokenFetches}`, expires_in: 3600, token_type: 'Bearer' }) };
    }
    return { status: 200, body: '{}' };
  });
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(fixture('ten-calls'), {
    sinks: [
      { type: 'webhook', name: 'basic', url: `${receiver.url}/basic`, events: ['call.answered'], auth: { type: 'basic', username: 'crm', password: 'p@ss:w0rd' } },
      { type: 'webhook', name: 'bearer', url: `${receiver.url}/bearer`, events: ['call.answered'], auth: { type: 'bearer', token: 'static-token' } },
      { type: 'webhook', name: 'oauth', url: `${receiver.url}/oauth`, events: ['call.answered'], auth: { type: 'oauth2', tokenUrl: `${receiver.url}/token`, clientId: 'client-1', clientSecret: 's3cret' } },
    ],
  });
  t.teardown(() => run.stop());
  await receiver.waitFor((r) => r.filter((x) => x.path !== '/token').length >= 30, '10 answered calls x 3 sinks');
  for (const r of receiver.requests.filter((x) => x.path === '/basic')) t.equal(r.headers.authorization, `Basic ${Buffer.from('crm:p@ss:w0rd').toString('base64')}`);
  for (const r of receiver.requests.filter((x) => x.path === '/bearer')) t.equal(r.headers.authorization, 'Bearer static-token');
  for (const r of receiver.requests.filter((x) => x.path === '/oauth')) t.equal(r.headers.authorization, 'Bearer tok-1');
  t.equal(tokenFetches, 1, 'then the OAuth2 token is fetched once and cached');
  t.notOk(run.logs.some((l) => JSON.stringify(l).includes('s3cret') || JSON.stringify(l).includes('p@ss:w0rd') || JSON.stringify(l).includes('static-token')), 'then no secret reaches the logs');
});

t.test('given an OAuth2 token close to expiry or revoked, then a fresh one is fetched', async (t) => {
  let fetches = 0;
  let revokedOnce = false;
  const receiver = await startReceiver((req) => {
    if (req.path === '/token') {
      fetches++;
      return { status: 200, body: JSON.stringify({ access_token: `tok-${fetches}`, expires_in: 30 }) };
    }
    if (!revokedOnce && req.headers.authorization === 'Bearer tok-1') {
      revokedOnce = true;
      return { status: 401, body: '{"error":"token revoked"}' };
    }
    return { status: 200, body: '{}' };
  });
  t.teardown(() => receiver.close());
  // refreshBeforeSeconds >= expires_in: every token counts as about to expire.
  const run = await runBridgeOnTrace(QUEUE, {
    sinks: [{ type: 'webhook', url: `${receiver.url}/x`, events: ['call.ringing', 'call.answered', 'call.hangup'], concurrency: 1, ...FAST_RETRY, auth: { type: 'oauth2', tokenUrl: `${receiver.url}/token`, clientId: 'c', clientSecret: 's', refreshBeforeSeconds: 60 } }],
  });
  t.teardown(() => run.stop());
  await receiver.waitFor((r) => r.filter((x) => x.path === '/x').length >= 4, 'all 4 events');
  t.ok(revokedOnce, 'then the CRM revoked the first token');
  t.ok(fetches >= 4, `then tokens about to expire are refreshed before use (${fetches} fetches)`);
});

t.test('given a CRM that is down for a while, then every event arrives afterwards, in order per call', async (t) => {
  let failures = 0;
  const receiver = await startReceiver(() => (failures++ < 40 ? { status: 503, body: 'maintenance' } : { status: 200 }));
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(fixture('ten-calls'), { sinks: [{ type: 'webhook', url: `${receiver.url}/e`, concurrency: 4, ...FAST_RETRY }] });
  t.teardown(() => run.stop());
  const sent = run.events;
  await receiver.waitFor((r) => new Set(r.map((x) => x.headers['webhook-id'])).size >= sent.length, `all ${sent.length} events`, 60_000);
  const got = receiver.requests.map((r) => JSON.parse(r.body) as BridgeEvent);
  t.same(new Set(got.map((e) => e.id)), new Set(sent.map((e) => e.id)), 'then every event arrived');
  t.equal(got.length, new Set(got.map((e) => e.id)).size, 'then none was accepted twice');
  const seqs = new Map<string, number[]>();
  for (const e of got) if ('callId' in e) seqs.set(e.callId, [...(seqs.get(e.callId) ?? []), e.seq]);
  for (const [callId, list] of seqs) t.same(list, [...list].sort((a, b) => a - b), `then call ${callId} arrived in order`);
  t.ok(failures >= 40);
});

t.test('given a 429 with Retry-After and a 400, then the delay is honoured and the 400 is dead-lettered', async (t) => {
  const seen = new Map<string, number[]>();
  let throttled = false;
  const receiver = await startReceiver((req) => {
    const e = JSON.parse(req.body) as BridgeEvent;
    seen.set(e.id, [...(seen.get(e.id) ?? []), Date.now()]);
    if (e.type === 'call.queued' && !throttled) {
      throttled = true;
      return { status: 429, headers: { 'retry-after': '1' } };
    }
    if (e.type === 'call.ring_stopped') return { status: 400, body: '{"error":"unsupported"}' };
    return { status: 200 };
  });
  t.teardown(() => receiver.close());
  // Retry-After is honoured up to retry.maxDelayMs: 2 s here, so the 1 s is kept whole.
  const run = await runBridgeOnTrace(QUEUE, { sinks: [{ type: 'webhook', name: 'crm', url: `${receiver.url}/e`, retry: { ...FAST_RETRY.retry, maxDelayMs: 2000 } }] });
  t.teardown(() => run.stop());
  const all = callEvents(run.events);
  await receiver.waitFor(() => all.every((e) => seen.has(e.id)) && receiver.requests.filter((r) => r.body.includes('"callId"')).length >= all.length - 1, 'every call event tried');
  const queued = all.find((e) => e.type === 'call.queued')!;
  const times = seen.get(queued.id)!;
  t.ok(times[1]! - times[0]! >= 950, `then the retry waited for Retry-After (${times[1]! - times[0]!} ms)`);
  const stopped = all.find((e) => e.type === 'call.ring_stopped')!;
  t.equal(seen.get(stopped.id)!.length, 1, 'then a 400 is not retried');
  const outbox = Outbox.open(run.outboxPath);
  const dead = outbox.list({ sink: 'crm', dead: true });
  outbox.close();
  t.same(dead.map((d) => d.eventId), [stopped.id], 'then it is in the dead letters');
  t.equal(receiver.requests.filter((r) => r.body.includes('"callId"')).length, all.length - 1, 'then every other call event was delivered');
});

const scenarios = readdirSync(new URL('../lab/recordings/', import.meta.url)).filter((f) => f.endsWith('.ami')).map((f) => f.replace('.ami', ''));

t.test('given the zammad preset, when every recorded scenario is delivered, then the Zammad receiver rules all hold', async (t) => {
  for (const name of scenarios) {
    const zammad = await startZammadReceiver('tok123');
    const run = await runBridgeOnTrace(fixture(name), { sinks: [{ type: 'webhook', preset: 'zammad', url: `${zammad.url}/api/v1/cti/tok123`, ...FAST_RETRY }] });
    const calls = new Set(callEvents(run.events).map((e) => e.callId));
    const hangups = calls.size;
    await zammad.waitFor((r) => r.filter((x) => JSON.parse(x.body).event === 'hangup').length >= hangups, `${hangups} hangups for ${name}`);
    t.same(zammad.violations, [], `${name}: no receiver rule broken`);
    for (const id of calls) {
      const seq = zammad.calls.get(id) ?? [];
      t.equal(seq[0], 'newCall', `${name}: newCall first for ${id}`);
      t.equal(seq.filter((x) => x === 'hangup').length, 1, `${name}: exactly one hangup for ${id}`);
      t.ok(seq.filter((x) => x === 'answer').length <= 1, `${name}: at most one answer for ${id} (a transfer target's answer is not sent)`);
    }
    const missed = callEvents(run.events, ['call.missed']);
    for (const m of missed) {
      const h = zammad.requests.map((r) => JSON.parse(r.body)).find((b) => b.callId === m.callId && b.event === 'hangup');
      t.not(h?.cause, 'normalClearing', `${name}: a missed call's hangup says why (${h?.cause})`);
    }
    await run.stop();
    await zammad.close();
  }
});

t.test('given the sipgate preset, then the sipgate push rules hold for every recorded scenario', async (t) => {
  for (const name of scenarios) {
    const sipgate = await startSipgateReceiver();
    const run = await runBridgeOnTrace(fixture(name), { sinks: [{ type: 'webhook', preset: 'sipgate', url: `${sipgate.url}/io`, ...FAST_RETRY }] });
    const calls = new Set(callEvents(run.events).map((e) => e.callId));
    await sipgate.waitFor((r) => r.filter((x) => new URLSearchParams(x.body).get('event') === 'hangup').length >= calls.size, `hangups for ${name}`);
    t.same(sipgate.violations, [], `${name}: no receiver rule broken`);
    for (const id of calls) t.equal(sipgate.calls.get(id)?.[0], 'newCall', `${name}: newCall first`);
    await run.stop();
    await sipgate.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Parties that are not agents (agent null): the remote party of an outbound call, a mobile
// reached through a trunk, a phone that is no known agent. The calls are written out event by
// event (schema-valid, contract-ordered) and go through the real webhook sink and outbox to the
// receivers that enforce Zammad's and sipgate's rules.

const agent201: Agent = { id: '201', extension: '201', name: 'Zoë Łukasik', interface: 'PJSIP/201' };
const agent202: Agent = { id: '202', extension: '202', name: 'José Núñez', interface: 'PJSIP/202' };
const trunk = (n: string) => ({ uniqueid: `1795370530.${n}`, name: `PJSIP/trunk-000000${n}` });

type Draft = { type: CallEvent['type']; agent?: Agent | null; channel?: { uniqueid: string; name: string } | null } & Record<string, unknown>;

/** One call's events with the envelope and call fields filled in, seq 1, 2, 3…, a second apart. */
function call(callId: string, direction: CallEvent['direction'], drafts: Draft[]): CallEvent[] {
  const [caller, called] = direction === 'inbound' ? ['+4915112345678', '41004100'] : ['201', '+4930901820'];
  return drafts.map((d, i) => {
    const e = {
      specVersion: '1', id: randomUUID(), time: new Date(Date.UTC(2026, 10, 22, 18, 0, i)).toISOString(), server: 'pbx1', seq: i + 1,
      callId, direction, caller: { number: caller }, called: { number: called }, agent: null, queue: null, vars: {}, channel: null,
      ...d,
    };
    assertValidEvent(e);
    return e as CallEvent;
  });
}
const hangup = (over: Record<string, unknown>): Draft => ({
  type: 'call.hangup', disposition: 'answered', hangupBy: 'caller', cause: { code: 16, text: 'Normal Clearing' },
  durations: { ringSeconds: 4, talkSeconds: 61.25, totalSeconds: 66 }, ...over,
});

const NON_AGENT_CALLS: Record<string, CallEvent[]> = {
  // 201 calls out; the remote party rings and answers through the trunk.
  outbound: call('1795370530.71', 'outbound', [
    { type: 'call.started', agent: agent201 },
    { type: 'call.ringing', channel: trunk('72') },
    { type: 'call.answered', channel: trunk('72'), ringSeconds: 4 },
    hangup({ agent: agent201 }),
  ]),
  // An inbound call forwarded from 201 to a mobile through the trunk; the mobile answers.
  forwarded: call('1795370600.80', 'inbound', [
    { type: 'call.started' },
    { type: 'call.ringing', agent: agent201, channel: { uniqueid: '1795370600.81', name: 'PJSIP/201-00000031' } },
    { type: 'call.ring_stopped', agent: agent201, channel: { uniqueid: '1795370600.81', name: 'PJSIP/201-00000031' }, reason: 'no_answer' },
    { type: 'call.ringing', channel: trunk('82') },
    { type: 'call.answered', channel: trunk('82'), ringSeconds: 3 },
    hangup({}),
  ]),
  // A ring group of 202 and a phone that is no known agent; 202 answers.
  group: call('1795370700.90', 'inbound', [
    { type: 'call.started' },
    { type: 'call.ringing', channel: { uniqueid: '1795370700.91', name: 'SIP/150010002-0000001e' } },
    { type: 'call.ringing', agent: agent202, channel: { uniqueid: '1795370700.92', name: 'PJSIP/202-00000032' } },
    { type: 'call.answered', agent: agent202, channel: { uniqueid: '1795370700.92', name: 'PJSIP/202-00000032' }, ringSeconds: 2 },
    { type: 'call.ring_stopped', channel: { uniqueid: '1795370700.91', name: 'SIP/150010002-0000001e' }, reason: 'answered_elsewhere' },
    hangup({ agent: agent202, hangupBy: 'agent' }),
  ]),
  // The picker's own call in a pickup: its channel went on in the picked call.
  picker: call('1795370800.95', 'inbound', [
    { type: 'call.started', channel: { uniqueid: '1795370800.95', name: 'SIP/150010003-00000021' } },
    hangup({ hangupBy: 'agent', durations: { ringSeconds: 0, talkSeconds: 0, totalSeconds: 0.002 } }),
  ]),
  // 201 answers, then transfers blind to 202, who answers too: one answer for Zammad, 201's.
  transferred: call('1795371000.99', 'inbound', [
    { type: 'call.started' },
    { type: 'call.ringing', agent: agent201, channel: { uniqueid: '1795371000.100', name: 'PJSIP/201-00000041' } },
    { type: 'call.answered', agent: agent201, channel: { uniqueid: '1795371000.100', name: 'PJSIP/201-00000041' }, ringSeconds: 2 },
    { type: 'call.transferred', agent: agent201, transfer: { kind: 'blind', from: agent201, to: { number: '202', agent: agent202 } } },
    { type: 'call.ringing', agent: agent202, channel: { uniqueid: '1795371000.101', name: 'PJSIP/202-00000042' } },
    { type: 'call.answered', agent: agent202, channel: { uniqueid: '1795371000.101', name: 'PJSIP/202-00000042' }, ringSeconds: 5 },
    hangup({ agent: agent202 }),
  ]),
  // A mobile that declined (SIP 603): missed, busy.
  declined: call('1795370900.97', 'inbound', [
    { type: 'call.started' },
    { type: 'call.ringing', channel: trunk('98') },
    { type: 'call.ring_stopped', channel: trunk('98'), reason: 'rejected' },
    { type: 'call.missed', reason: 'busy', waitSeconds: 3 },
    hangup({ disposition: 'missed', hangupBy: 'system', cause: { code: 21, text: 'Call Rejected' }, durations: { ringSeconds: 2, talkSeconds: 0, totalSeconds: 3 } }),
  ]),
};

/** Delivers `events` through a real webhook sink (its own outbox) and stops it once `done` holds. */
async function deliverThrough(sink: Partial<WebhookSinkConfig> & { url: string }, events: readonly BridgeEvent[], done: () => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-outbox-'));
  const config = defaultConfig({ outbox: { path: join(dir, 'outbox.db') }, sinks: [{ type: 'webhook', ...FAST_RETRY, ...sink }] });
  const outbox = Outbox.open(config.outbox.path);
  const webhook = webhookSink.create(config.sinks[0] as WebhookSinkConfig, { log: pino({ level: 'silent' }), server: 'pbx1', outbox: () => outbox, userAgent: 'test' });
  await webhook.start();
  try {
    for (const e of events) webhook.deliver(e);
    await done();
  } finally {
    await webhook.stop();
    outbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const allEvents = Object.values(NON_AGENT_CALLS).flat();

t.test('given calls whose parties are not agents, then they keep the contract', async (t) => {
  t.same(contractViolations(allEvents), []);
});

t.test('given the zammad preset and parties that are not agents, when their calls are delivered, then Zammad sees one newCall, one answer by the party that answered first (no user when it is no agent), and the right hangup', async (t) => {
  const zammad = await startZammadReceiver('tok123');
  t.teardown(() => zammad.close());
  const calls = Object.keys(NON_AGENT_CALLS).length;
  await deliverThrough({ preset: 'zammad', url: `${zammad.url}/api/v1/cti/tok123` }, allEvents, () =>
    zammad.waitFor((r) => r.filter((x) => JSON.parse(x.body).event === 'hangup').length >= calls, `${calls} hangups`));
  t.same(zammad.violations, [], 'then no receiver rule is broken');
  const sent = (callId: string) => zammad.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>).filter((b) => b.callId === callId);
  const of = (name: string, event: string) => sent(NON_AGENT_CALLS[name]![0]!.callId).filter((b) => b.event === event);
  t.same(zammad.calls.get('1795370530.71'), ['newCall', 'answer', 'hangup'], 'then the outbound call is newCall, answer, hangup');
  t.same(zammad.calls.get('1795370600.80'), ['newCall', 'answer', 'hangup'], 'then the forwarded call is newCall, answer, hangup: the ringing mobile is no second newCall');
  t.same(zammad.calls.get('1795370700.90'), ['newCall', 'answer', 'hangup']);
  t.same(zammad.calls.get('1795370800.95'), ['newCall', 'hangup']);
  t.same(zammad.calls.get('1795370900.97'), ['newCall', 'hangup']);
  t.same(zammad.calls.get('1795371000.99'), ['newCall', 'answer', 'hangup'], "then a transferred call is answered once: the target's answer would restart Zammad's talk time");
  t.equal(of('transferred', 'answer')[0]?.user, 'Zoë Łukasik', 'then the answer is the first answering agent');
  t.same(of('outbound', 'newCall'), [{ event: 'newCall', from: '201', to: '+4930901820', direction: 'out', callId: '1795370530.71', user: 'Zoë Łukasik' }], 'then an outbound newCall names the calling agent as user');
  t.same(of('outbound', 'answer'), [{ event: 'answer', from: '201', to: '+4930901820', direction: 'out', callId: '1795370530.71' }], "then the remote party's answer has no user (Zammad would write it over the called party's name) and no answeringNumber");
  t.same(of('forwarded', 'answer'), [{ event: 'answer', from: '+4915112345678', to: '41004100', direction: 'in', callId: '1795370600.80' }], 'then a mobile answering through the trunk opens no agent screen');
  t.same(of('group', 'answer'), [{ event: 'answer', from: '+4915112345678', to: '41004100', direction: 'in', callId: '1795370700.90', user: 'José Núñez', answeringNumber: '202' }], 'then an agent answering after a non-agent rang is that agent');
  t.equal(of('outbound', 'hangup')[0]?.cause, 'normalClearing');
  t.equal(of('picker', 'hangup')[0]?.cause, 'forwarded', 'then a call handed to another call hangs up forwarded: Zammad does not count it as missed');
  t.equal(of('declined', 'hangup')[0]?.cause, 'busy', 'then a declined call hangs up busy');
});

t.test('given the sipgate preset and parties that are not agents, then newCall comes once, an answer names no user and a handed-over call hangs up forwarded', async (t) => {
  const sipgate = await startSipgateReceiver();
  t.teardown(() => sipgate.close());
  const calls = Object.keys(NON_AGENT_CALLS).length;
  await deliverThrough({ preset: 'sipgate', url: `${sipgate.url}/io` }, allEvents, () =>
    sipgate.waitFor((r) => r.filter((x) => new URLSearchParams(x.body).get('event') === 'hangup').length >= calls, `${calls} hangups`));
  t.same(sipgate.violations, [], 'then no receiver rule is broken');
  for (const [name, events] of Object.entries(NON_AGENT_CALLS)) {
    const seq = sipgate.calls.get(events[0]!.callId) ?? [];
    t.equal(seq.filter((x) => x === 'newCall').length, 1, `then ${name} has one newCall`);
  }
  const form = (callId: string, event: string) => sipgate.requests.map((r) => new URLSearchParams(r.body)).find((f) => f.get('callId') === callId && f.get('event') === event);
  const outAnswer = form('1795370530.71', 'answer');
  t.same([...(outAnswer?.keys() ?? [])].sort(), ['callId', 'direction', 'event', 'from', 'to'], 'then the remote party answers with no user, userId or answeringNumber');
  t.same(form('1795370530.71', 'newCall')?.getAll('user[]'), ['Zoë Łukasik'], 'then the outbound newCall names the calling agent in user[]');
  t.equal(form('1795370700.90', 'answer')?.get('answeringNumber'), '202');
  t.equal(form('1795370800.95', 'hangup')?.get('cause'), 'forwarded');
  t.equal(form('1795370900.97', 'hangup')?.get('cause'), 'busy');
  t.same(sipgate.calls.get('1795371000.99'), ['newCall', 'answer', 'hangup'], 'then a transferred call is answered once');
});

t.test('given the generic-json preset, then every event arrives as the contract JSON', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const run = await runBridgeOnTrace(QUEUE, { sinks: [{ type: 'webhook', preset: 'generic-json', url: `${receiver.url}/events` }] });
  t.teardown(() => run.stop());
  await receiver.waitFor((r) => r.length >= run.events.length, 'every event');
  const got = receiver.requests.map((r) => JSON.parse(r.body) as BridgeEvent);
  const byId = (a: BridgeEvent, b: BridgeEvent) => a.id.localeCompare(b.id);
  t.same([...got].sort(byId), [...run.events].sort(byId), 'then every event arrives exactly as emitted');
  const calls = (es: BridgeEvent[]) => es.filter((e) => 'callId' in e);
  t.same(calls(got), calls(run.events), 'then call events keep their order (one call here: one partition)');
});
