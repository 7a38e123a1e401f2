// The warm-up at start (src/warm-up.ts, src/sinks/warm-up.ts): a recorded call runs through the
// reader, a scratch normalizer, the contract check, and on the delivery thread a scratch outbox and
// the webhook sinks' requests to a loopback server — and nothing of it reaches anything real: not
// the CRM, not the outbox, not the call ledger, not the event stream. The bridge here is the real
// one, connected over TCP to an AMI server playing a recording of our lab's real Asterisk (as a
// PBX, not in replay mode: replay skips the warm-up), delivering to a real HTTP receiver.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import t from 'tap';
import { Bridge } from '../dist/bridge.js';
import { defaultConfig, type ConfigOverrides } from '../dist/config/load.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { startReplayServer } from '../dist/sources/ami/replay-server.js';
import { WARM_UP_REPEATS, WARM_UP_TRACE, warmMainThread } from '../dist/warm-up.js';
import { startReceiver } from './helpers/receivers.js';

const TRACE = readFileSync(new URL('../lab/recordings/direct-answered.ami', import.meta.url));

async function run(t: Tap.Test, warmUp: boolean, stopWhenWarming = false) {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-warm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const server = await startReplayServer(TRACE);
  t.teardown(() => server.close());
  const config = defaultConfig({
    pbx: { name: 'lab', ami: { host: server.host, port: server.port, username: 'bridge', secret: 'x', resync: false } },
    calls: { agentContexts: ['agents', 'phones'] },
    sinks: [{ type: 'webhook', url: `${receiver.url}/crm` }],
    outbox: { path: join(dir, 'outbox.db') },
    startup: { warmUp },
  } as ConfigOverrides);
  const logs: Array<Record<string, unknown>> = [];
  let bridge!: Bridge;
  let stopping: Promise<void> | null = null;
  const log = pino({ level: 'debug' }, {
    write: (line: string) => {
      const rec = JSON.parse(line) as Record<string, unknown>;
      logs.push(rec);
      if (stopWhenWarming && rec.msg === 'warming up') stopping ??= bridge.stop();
    },
  });
  bridge = new Bridge({ config, log });
  const events: BridgeEvent[] = [];
  bridge.events$.subscribe((e) => events.push(e));
  await bridge.start();
  return { dir, receiver, bridge, events, logs, stopping: () => stopping };
}

t.test('given the recording the warm-up plays, when the main thread plays it, then every event is valid and each repeat makes the same events', async (t) => {
  const { json, frames } = warmMainThread(defaultConfig({}), readFileSync(WARM_UP_TRACE), 2);
  t.ok(frames > 2000, `${frames} frames`);
  t.ok(json.length > 0 && json.length % 2 === 0, `${json.length} events`);
  const events = json.map((j) => JSON.parse(j) as BridgeEvent);
  t.same(events.flatMap((e) => validateEvent(e)), []);
  const half = json.length / 2;
  t.same(events.slice(half).map((e) => e.type), events.slice(0, half).map((e) => e.type));
});

t.test('given a bridge with a webhook sink on the delivery thread, when it starts, then it warms up first and the CRM, the outbox and the ledger see only the real call', async (t) => {
  const { dir, receiver, bridge, events, logs } = await run(t, true);
  const warmed = logs.find((l) => l.module === 'warm-up' && typeof l.msg === 'string' && l.msg.startsWith('warmed up'));
  t.ok(warmed, 'the warm-up says what it did');
  t.equal(warmed?.frames, WARM_UP_REPEATS * warmMainThread(defaultConfig({}), readFileSync(WARM_UP_TRACE), 1).frames);
  t.ok((warmed?.events as number) > 0);
  t.equal(warmed?.requests, warmed?.events, 'every warm-up event went to the loopback copy of the webhook');
  t.ok(typeof warmed?.deliveryMs === 'number');
  t.equal(warmed?.collected, true, 'and its garbage was collected before connecting');
  // The warm-up is over before the bridge connects: its line comes before the AMI login.
  const warmedAt = logs.indexOf(warmed!);
  await t.resolves(bridge.source!.loggedIn);
  const connectedAt = logs.findIndex((l) => l.msg === 'AMI connected and logged in');
  t.ok(connectedAt > warmedAt, 'warmed before connecting');

  await t.resolves(receiver.waitFor((r) => r.length >= events.length && events.some((e) => e.type === 'call.hangup'), 'the real call delivered', 20_000));
  await bridge.durable();
  const real = new Set(events.map((e) => e.id));
  const delivered = receiver.requests.map((r) => (JSON.parse(r.body) as BridgeEvent).id);
  t.same(delivered.filter((id) => !real.has(id)), [], 'the CRM got no warm-up event');
  t.equal(delivered.length, real.size, 'and every real event once');
  t.same([...new Set(events.flatMap((e) => ('callId' in e ? [e.callId] : [])))].length, 1, 'the event stream has the one real call only');
  await bridge.stop();
  const db = new Database(join(dir, 'outbox.db'), { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 0, 'nothing left in the outbox');
  t.equal((db.prepare('SELECT count(*) AS n FROM dead_letters').get() as { n: number }).n, 0, 'no dead letter');
  t.equal((db.prepare('SELECT count(*) AS n FROM call_ledger').get() as { n: number }).n, 0, 'no call in the ledger (the real one ended)');
  t.same(readdirSync(dir).filter((f) => f.includes('warm-up')), [], 'the scratch outbox is gone');
});

t.test('given startup.warmUp false, when the bridge starts, then it does not warm up and delivers the same', async (t) => {
  const { receiver, bridge, events, logs } = await run(t, false);
  t.notOk(logs.some((l) => l.module === 'warm-up'));
  await t.resolves(receiver.waitFor((r) => r.length >= events.length && events.some((e) => e.type === 'call.hangup'), 'the real call delivered', 20_000));
  await bridge.stop();
});

t.test('given a stop while warming up, when start returns, then the bridge never connects and leaves no scratch outbox', async (t) => {
  const { dir, bridge, logs, stopping } = await run(t, true, true);
  t.ok(stopping(), 'the stop came during the warm-up');
  await stopping();
  t.equal(bridge.source, null, 'no source was started');
  t.notOk(logs.some((l) => l.module === 'ami'), 'nothing from AMI');
  t.same(readdirSync(dir).filter((f) => f.includes('warm-up')), [], 'no scratch outbox left');
  t.ok(existsSync(join(dir, 'outbox.db')));
});
