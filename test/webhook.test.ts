// The webhook sink end to end on real sockets: the real bridge fed by recorded real-Asterisk
// traces, delivering through the durable outbox to real HTTP receivers on 127.0.0.1.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import type { BridgeEvent, CallEvent } from '../dist/events/types.js';
import { Outbox } from '../dist/outbox/index.js';
import { runBridgeOnTrace } from './helpers/bridge-replay.js';
import { startReceiver, startSipgateReceiver, startZammadReceiver, type Received } from './helpers/receivers.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}.ami`, import.meta.url));
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
  const run = await runBridgeOnTrace(QUEUE, { sinks: [{ type: 'webhook', name: 'crm', url: `${receiver.url}/e`, ...FAST_RETRY }] });
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

const scenarios = readdirSync(new URL('./fixtures/', import.meta.url)).filter((f) => f.endsWith('.ami')).map((f) => f.replace('.ami', ''));

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
