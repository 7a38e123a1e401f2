// The contract gate (issue 15): every event is checked against schema/events.v1.json before any
// sink; one that fails reaches no sink, is logged with its problems, counted
// (crm_bridge_events_invalid_total) and kept as a dead letter: in the outbox under the pseudo-sink
// `(invalid)` when a durable sink opened it, else in invalid-events.jsonl beside the outbox path.
// The normalizer no longer makes invalid events (test/hostile-values.test.ts, test/fuzz.test.ts),
// so these tests make some with an id source the contract refuses for call.ringing.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { startReplayServer } from '../dist/sources/ami/replay-server.js';
import { Bridge } from '../dist/bridge.js';
import { defaultConfig, type ConfigOverrides } from '../dist/config/load.js';
import { validateEvent } from '../dist/events/validator.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { defaultIds } from '../dist/normalizer/index.js';
import { INVALID_SINK, Outbox } from '../dist/outbox/index.js';
import { startReceiver } from './helpers/receivers.js';

const TRACE = readFileSync(new URL('../lab/recordings/queue-answered.ami', import.meta.url));
/** `:` is outside the contract's id pattern: every call.ringing is invalid, the rest is not. */
const BAD_RINGING_IDS = (seed: string | null): string => (seed?.includes('|call.ringing|') ? 'not:an-id' : defaultIds(seed));

async function run(t: Test, overrides: ConfigOverrides) {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-invalid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = defaultConfig({ calls: { agentContexts: ['agents', 'phones'] }, outbox: { path: join(dir, 'state', 'outbox.db') }, ...overrides });
  const server = await startReplayServer(TRACE);
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const bridge = new Bridge({ config, log, replay: { host: server.host, port: server.port }, ids: BAD_RINGING_IDS });
  const events: BridgeEvent[] = [];
  bridge.events$.subscribe((e) => events.push(e));
  await bridge.start();
  await bridge.done;
  t.teardown(async () => {
    await bridge.stop();
    await server.close();
  });
  const invalidLogs = logs.filter((l) => l.module === 'contract' && l.level === 50);
  const metric = Number(/^crm_bridge_events_invalid_total (\d+)$/m.exec((await bridge.metrics.render()).body)?.[1]);
  return { dir, bridge, events, invalidLogs, metric };
}

t.test('given a bridge without a durable sink, when the normalizer makes invalid events, then no sink gets them and they are kept in invalid-events.jsonl', async (t) => {
  const r = await run(t, {});
  const ringings = r.invalidLogs.length;
  t.ok(ringings >= 1, `then each invalid event is logged as an error (${ringings})`);
  t.same(r.events.filter((e) => e.type === 'call.ringing'), [], 'then no call.ringing reached the sinks');
  t.same(r.events.flatMap((e) => validateEvent(e)), [], 'then every event handed out is schema-valid');
  t.ok(['call.started', 'call.answered', 'call.hangup'].every((type) => r.events.some((e) => e.type === type)), 'then the rest of the call still goes out');
  t.match(r.invalidLogs[0], { type: 'call.ringing', eventId: 'not:an-id', problems: ['/id: must match pattern "^[0-9A-Za-z-]+$"'] }, 'then the log line names the event and its problems');
  t.equal(r.metric, ringings, 'then crm_bridge_events_invalid_total counts them');
  const file = join(r.dir, 'state', 'invalid-events.jsonl');
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { problems: string[]; event: BridgeEvent });
  t.equal(lines.length, ringings, 'then the file keeps one line per invalid event');
  t.match(lines[0], { problems: ['/id: must match pattern "^[0-9A-Za-z-]+$"'], event: { type: 'call.ringing', id: 'not:an-id' } });
  t.equal(statSync(file).mode & 0o777, 0o600, 'then only the bridge user can read it');
});

t.test('given a bridge with a webhook sink, when the normalizer makes invalid events, then the webhook never gets them and the outbox keeps them as (invalid) dead letters', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const r = await run(t, { sinks: [{ type: 'webhook', name: 'crm', url: `${receiver.url}/events`, format: 'json' }] });
  const delivered = r.events.length;
  await receiver.waitFor((q) => q.length >= delivered, `${delivered} requests`);
  const sent = receiver.requests.map((q) => JSON.parse(q.body) as BridgeEvent);
  t.same(sent.filter((e) => e.type === 'call.ringing'), [], 'then the webhook got no call.ringing');
  t.equal(sent.length, delivered, 'then it got every valid event');
  const outbox = Outbox.open(join(r.dir, 'state', 'outbox.db'));
  t.teardown(() => outbox.close());
  const dead = outbox.list({ dead: true, sink: INVALID_SINK });
  t.equal(dead.length, r.invalidLogs.length, 'then each invalid event is a dead letter of (invalid)');
  t.equal(r.metric, dead.length);
  t.match(dead[0], { sink: '(invalid)', reason: 'invalid', eventId: 'not:an-id', attempts: 0, lastError: '/id: must match pattern "^[0-9A-Za-z-]+$"' });
  t.equal((JSON.parse(dead[0]?.payload ?? '{}') as BridgeEvent).type, 'call.ringing', 'then the dead letter holds the event');
  t.equal(outbox.deadCount('crm'), 0, 'then the webhook sink has no dead letters of its own');
  t.equal(outbox.retry(), 0, 'then retry leaves them dead: no sink may have them');
  t.equal(outbox.depth(INVALID_SINK), 0);
  t.equal(outbox.purge({ dead: true, sink: INVALID_SINK }), dead.length, 'then purge --dead removes them');
});
