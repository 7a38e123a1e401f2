// The two tables a newcomer extends: sources (src/sources/registry.ts) and sinks
// (src/sinks/registry.ts). Which source runs and which sinks exist follow from them alone.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t from 'tap';
import { defaultConfig, loadConfig } from '../dist/config/load.js';
import { ConfigError } from '../dist/config/errors.js';
import { SINKS } from '../dist/sinks/registry.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';
import { SinkSet } from '../dist/sinks/set.js';
import { pickSource, SOURCES } from '../dist/sources/registry.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { answered, ringing, started } from './helpers/sample-events.js';

const log = pino({ level: 'silent' });
const ami = { host: '10.0.0.5', port: 5038, username: 'u', secret: 's' };
const ari = { url: 'http://10.0.0.5:8088', username: 'u', password: 'p' };

t.test('given the source table, when a config asks for sources, then the first row it asks for is the event source', (t) => {
  t.same(SOURCES.map((d) => d.kind), ['nats', 'ami', 'ari']);
  t.equal(pickSource(defaultConfig({ pbx: { name: 'p', ami } })).kind, 'ami');
  t.equal(pickSource(defaultConfig({ pbx: { name: 'p', ami, ari } })).kind, 'ami', 'ARI beside AMI only reads variables');
  const ariOnly = defaultConfig({ pbx: { name: 'p', ami } });
  delete ariOnly.pbx.ami;
  ariOnly.pbx.ari = { ...ari, app: 'crm-bridge', reconnect: { initialDelayMs: 1, maxDelayMs: 1, factor: 1, jitter: 0 }, actionTimeoutMs: 1000, resync: true };
  t.equal(pickSource(ariOnly).kind, 'ari');
  t.equal(pickSource(ariOnly, true).kind, 'ami', 'replay always plays AMI');
  const node = { ...ariOnly, source: { type: 'nats' as const, name: 'n', servers: ['nats://127.0.0.1:4222'], stream: 'S', subjectPrefix: 'crm', partitions: 4, replaySeconds: 0, ackWaitSeconds: 30, leaseSeconds: 5 } };
  t.equal(pickSource(node).kind, 'nats');
  t.end();
});

t.test('given each source row, when it creates its source, then the source names its kind and where it reads from, without secrets', (t) => {
  const config = defaultConfig({ pbx: { name: 'p', ami: { ...ami, secret: 'hunter2-secret' } } });
  config.pbx.ari = { url: 'http://user:pw@10.0.0.5:8088', username: 'u', password: 'p', app: 'crm-bridge', reconnect: { initialDelayMs: 1, maxDelayMs: 1, factor: 1, jitter: 0 }, actionTimeoutMs: 1000, resync: true };
  const seen = SOURCES.filter((d) => d.kind !== 'nats').map((d) => {
    const source = d.create(config, { log });
    t.equal(source.kind, d.kind);
    t.equal(source.stage, 'pbx');
    t.equal(source.status.state, 'idle');
    return source.describe();
  });
  t.same(seen, ['AMI at 10.0.0.5:5038', 'ARI at http://[redacted]@10.0.0.5:8088']);
  t.end();
});

t.test('given `http`, when the sink set starts, then the screen-pop sink comes from its row of the sink table, and reloads keep it', async (t) => {
  const config = defaultConfig({ pbx: { name: 'p', ami }, http: { listen: '127.0.0.1:0' }, agents: [{ id: '201', extension: '201', queues: ['sales'] }] });
  const set = new SinkSet({ log, outbox: () => t.fail('no durable sink here') as never, userAgent: 'test', onOutcome: () => undefined });
  await set.start(config);
  const pop = set.find(ScreenPopSink);
  t.ok(pop, 'the implied screen-pop sink runs');
  const events = [started, ringing, answered] as unknown as BridgeEvent[];
  for (const e of events) set.deliver(e);
  await set.swap({ ...config, sinks: [{ type: 'log', name: 'after' }] } as typeof config);
  t.equal(set.find(ScreenPopSink), pop, 'the same screen-pop sink after a sinks reload');
  await set.stop();
  const none = new SinkSet({ log, outbox: () => t.fail('no durable sink here') as never, userAgent: 'test', onOutcome: () => undefined });
  await none.start(defaultConfig({ pbx: { name: 'p', ami } }));
  t.equal(none.find(ScreenPopSink), null, 'no http, no screen-pop sink');
  await none.stop();
});

t.test('given the screen-pop row, when a config lists it under sinks:, then the config is refused (it is implied by http)', (t) => {
  t.ok(SINKS['screenpop']?.implied, 'the row is implied');
  const dir = mkdtempSync(path.join(tmpdir(), 'registries-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, 'pbx:\n  name: p\n  ami: { username: u, secret: s }\nsinks:\n  - type: screenpop\n');
  t.throws(() => loadConfig(file, {}), ConfigError);
  t.end();
});
