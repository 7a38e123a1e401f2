// The zammad and sipgate presets on real recorded traffic: lab/recordings/*.ami replayed through
// the real bridge, delivered by the real webhook sink and outbox to local receivers that enforce
// the rules of ../shared/receivers.md (test/helpers/receivers.ts), asserting the exact requests.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { defaultConfig } from '../dist/config/load.js';
import type { BridgeEvent, CallEvent } from '../dist/events/types.js';
import { Outbox } from '../dist/outbox/index.js';
import { webhookSink, type WebhookSinkConfig } from '../dist/sinks/webhook.js';
import { runBridgeOnTrace } from './helpers/bridge-replay.js';
import { startSipgateReceiver, startZammadReceiver, type Receiver } from './helpers/receivers.js';

const FAST_RETRY = { retry: { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0.1 } };
const recorded = new Map<string, BridgeEvent[]>();

/** The events the real bridge makes of a recording (no sink). */
async function eventsOf(name: string): Promise<BridgeEvent[]> {
  const known = recorded.get(name);
  if (known) return known;
  const run = await runBridgeOnTrace(readFileSync(new URL(`../lab/recordings/${name}.ami`, import.meta.url)), { sinks: [] });
  await run.stop();
  recorded.set(name, run.events);
  return run.events;
}
const callEvents = (events: BridgeEvent[]) => events.filter((e): e is CallEvent => e.type.startsWith('call.'));

/** A body as a record (JSON, or form with `k[]` repeated as arrays). */
function fieldsOf(body: string): Record<string, string | string[]> {
  if (body.startsWith('{')) return JSON.parse(body) as Record<string, string>;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(body)) out[k] = k.endsWith('[]') ? [...((out[k] as string[] | undefined) ?? []), v] : v;
  return out;
}

/**
 * Delivers `runs` (lists of events) through the real webhook sink, a new sink on the same outbox
 * file for each list — a bridge restarted between them — and waits for `hangupCount` hangups.
 */
async function deliver(sink: Partial<WebhookSinkConfig> & { url: string }, runs: BridgeEvent[][], receiver: Receiver, hangupCount: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-presets-'));
  try {
    for (const [i, events] of runs.entries()) {
      const config = defaultConfig({ outbox: { path: join(dir, 'outbox.db') }, sinks: [{ type: 'webhook', ...FAST_RETRY, ...sink }] });
      const outbox = Outbox.open(config.outbox.path);
      const webhook = webhookSink.create(config.sinks[0] as WebhookSinkConfig, { log: pino({ level: 'silent' }), server: 'pbx1', outbox: () => outbox, userAgent: 'test' });
      await webhook.start();
      for (const e of events) webhook.deliver(e);
      // What a run has not delivered when it stops stays in the outbox for the next one, as in a restart.
      if (i === runs.length - 1) await receiver.waitFor((r) => r.filter((x) => fieldsOf(x.body).event === 'hangup').length >= hangupCount, `${hangupCount} hangups`);
      await webhook.stop();
      outbox.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const zammadSink = (z: Receiver) => ({ preset: 'zammad', url: `${z.url}/api/v1/cti/tok123` });
const sipgateSink = (s: Receiver) => ({ preset: 'sipgate', url: `${s.url}/io` });
const CALLER = { from: '+4915112345678', direction: 'in' };

t.test('given every recorded queue call, when delivered with the zammad preset, then its newCall carries the queue it joined', async (t) => {
  let queueCalls = 0;
  for (const name of ['queue-answered', 'queue-abandoned', 'queue-timeout', 'ten-calls']) {
    const events = callEvents(await eventsOf(name));
    const zammad = await startZammadReceiver('tok123');
    await deliver(zammadSink(zammad), [events], zammad, new Set(events.map((e) => e.callId)).size);
    t.same(zammad.violations, [], `${name}: no receiver rule broken`);
    for (const q of events.filter((e) => e.type === 'call.queued')) {
      queueCalls++;
      const newCalls = zammad.requests.map((r) => fieldsOf(r.body)).filter((b) => b.callId === q.callId && b.event === 'newCall');
      t.same(newCalls.map((b) => b.queue), [q.queue?.name], `${name}: ${q.callId}'s one newCall says queue ${q.queue?.name}`);
    }
    await zammad.close();
  }
  t.equal(queueCalls, 13, 'then all 13 recorded queue calls were checked');
});

t.test('given an answered queue call, then Zammad receives exactly newCall with the queue, answer, hangup', async (t) => {
  const zammad = await startZammadReceiver('tok123');
  t.teardown(() => zammad.close());
  await deliver(zammadSink(zammad), [await eventsOf('queue-answered')], zammad, 1);
  const call = { ...CALLER, to: '41004100', callId: '1795423781.0' };
  t.same(zammad.requests.map((r) => fieldsOf(r.body)), [
    { event: 'newCall', ...call, queue: 'sales' },
    { event: 'answer', ...call, user: 'Agent 201', answeringNumber: '201' },
    { event: 'hangup', ...call, cause: 'normalClearing', user: 'Agent 201', answeringNumber: '201' },
  ]);
});

for (const [name, callId, to] of [['blind-transfer', '1795423815.30', '41004201'], ['attended-transfer', '1795423820.36', '41004201'], ['blonde-transfer', '1796563735.52', '41005201']] as const) {
  t.test(`given a ${name}, then Zammad receives one newCall, the first agent's answer only, and a hangup naming the target`, async (t) => {
    const zammad = await startZammadReceiver('tok123');
    t.teardown(() => zammad.close());
    await deliver(zammadSink(zammad), [await eventsOf(name)], zammad, 1);
    t.same(zammad.violations, []);
    const call = { ...CALLER, to, callId };
    t.same(zammad.requests.map((r) => fieldsOf(r.body)), [
      { event: 'newCall', ...call },
      { event: 'answer', ...call, answeringNumber: '201' },
      { event: 'hangup', ...call, cause: 'normalClearing', answeringNumber: '202' },
    ]);
  });
}

t.test('given a bridge restarted between a transfer and the target answering, then Zammad still gets no second answer', async (t) => {
  const events = await eventsOf('blind-transfer');
  const answers = events.filter((e) => e.type === 'call.answered');
  t.equal(answers.length, 2, 'then the recording has the first answer and the target\'s');
  const cut = events.indexOf(answers[1]!);
  const zammad = await startZammadReceiver('tok123');
  t.teardown(() => zammad.close());
  await deliver(zammadSink(zammad), [events.slice(0, cut), events.slice(cut)], zammad, 1);
  t.same(zammad.violations, []);
  t.same(zammad.calls.get('1795423815.30'), ['newCall', 'answer', 'hangup'], 'then one answer: the restarted sink remembers the first');
});

t.test('given a bridge restarted right after call.started, then the held newCall still goes out, with the queue', async (t) => {
  const events = await eventsOf('queue-answered');
  const cut = events.findIndex((e) => e.type === 'call.started') + 1;
  const zammad = await startZammadReceiver('tok123');
  t.teardown(() => zammad.close());
  await deliver(zammadSink(zammad), [events.slice(0, cut), events.slice(cut)], zammad, 1);
  t.same(zammad.violations, []);
  t.same(zammad.requests.map((r) => fieldsOf(r.body)).filter((b) => b.event === 'newCall').map((b) => b.queue), ['sales']);
});

t.test('given a blind transfer 201 -> 202, then sipgate receives the FAQ sequence: the transfer starts a new call with origCallId', async (t) => {
  const sipgate = await startSipgateReceiver();
  t.teardown(() => sipgate.close());
  await deliver(sipgateSink(sipgate), [await eventsOf('blind-transfer')], sipgate, 2);
  t.same(sipgate.violations, []);
  const first = { ...CALLER, to: '41004201', callId: '1795423815.30' };
  const second = { ...CALLER, to: '202', callId: '1795423815.30-4' };
  t.same(sipgate.requests.map((r) => fieldsOf(r.body)), [
    { event: 'newCall', ...first, 'userId[]': ['201'], 'fullUserId[]': ['pbx1:201'], origCallId: '1795423815.30', xcid: 'pbx1:1795423815.30' },
    { event: 'answer', ...first, userId: '201', answeringNumber: '201', fullUserId: 'pbx1:201' },
    { event: 'newCall', ...second, 'userId[]': ['202'], 'fullUserId[]': ['pbx1:202'], origCallId: '1795423815.30', xcid: 'pbx1:1795423815.30-4', diversion: '201' },
    { event: 'answer', ...second, userId: '202', answeringNumber: '202', fullUserId: 'pbx1:202', diversion: '201' },
    { event: 'hangup', ...first, cause: 'normalClearing', answeringNumber: '201' },
    { event: 'hangup', ...second, cause: 'normalClearing', answeringNumber: '202', diversion: '201' },
  ]);
});

t.test('given an attended transfer whose target answered the consultation, then sipgate gets the target\'s answer in the new call', async (t) => {
  const sipgate = await startSipgateReceiver();
  t.teardown(() => sipgate.close());
  await deliver(sipgateSink(sipgate), [await eventsOf('attended-transfer')], sipgate, 2);
  t.same(sipgate.violations, []);
  t.same([...sipgate.calls.entries()], [['1795423820.36', ['newCall', 'answer', 'hangup']], ['1795423820.36-6', ['newCall', 'answer', 'hangup']]]);
});

t.test('given inbound calls, then sipgate\'s newCall names the called agent in userId[] and fullUserId[] (user[] when it has a name)', async (t) => {
  const sipgate = await startSipgateReceiver();
  t.teardown(() => sipgate.close());
  const events = await eventsOf('direct-answered');
  await deliver(sipgateSink(sipgate), [events], sipgate, new Set(callEvents(events).map((e) => e.callId)).size);
  t.same(sipgate.violations, []);
  const newCall = sipgate.requests.map((r) => fieldsOf(r.body)).find((b) => b.event === 'newCall');
  t.equal(newCall?.direction, 'in');
  t.same([newCall?.['userId[]'], newCall?.['fullUserId[]']], [['201'], ['pbx1:201']]);
});
