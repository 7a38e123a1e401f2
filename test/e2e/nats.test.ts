// The nats sink against a real nats-server with JetStream and a real Asterisk 22, through the
// built daemon:
// - every event reaches the stream once, as `<prefix>.<server>.<type>.<partition>` with
//   Nats-Msg-Id = the event id, in order per call; the sink creates the stream;
// - NATS going away and coming back: events wait in the outbox and all arrive, once, in order;
// - an HA pair (two bridges on one PBX, same pbx.name), one of them killed with SIGKILL mid-call:
//   every event is in the stream exactly once (same ids, the stream's de-duplication);
// - several PBXs into one stream: a second bridge (pbx2) fed by recorded real traffic replayed
//   over AMI; `server` and the subject tell them apart.
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { startReplayServer } from '../../dist/sources/ami/replay-server.js';
import { validateEvent } from '../../dist/events/validator.js';
import type { BridgeEvent } from '../../dist/events/types.js';
import { subjectOf } from '../../dist/sinks/nats.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, startAsterisk } from '../../lab/asterisk.js';
import { byCall } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig, type Daemon } from '../helpers/daemon.js';
import { readStream, startNats, type StoredEvent } from '../helpers/nats.js';
import { scenarios } from '../../lab/scenarios.js';

const STREAM = 'CRM_EVENTS';
const FIXTURES = new URL('../../lab/recordings/', import.meta.url);

function natsSink(url: string): string {
  return `  - type: nats\n    servers: [${url}]\n    stream: ${STREAM}\n    retry: { initialDelayMs: 100, maxDelayMs: 500, factor: 2, jitter: 0.1 }\n`;
}

/** The daemon's events of every call of a scenario, once all have hung up. */
function callsDone(daemon: Daemon, from: number, want: number, what: string): Promise<BridgeEvent[]> {
  return daemon.waitForEvents((all) => {
    const calls = [...byCall(all.slice(from)).values()];
    return calls.length >= want && calls.every((l) => l.some((e) => e.type === 'call.hangup')) ? calls.flat() : undefined;
  }, what);
}

/** Each of `events` in the stream exactly once, as published; returns the stored copies. */
function checkStored(t: Test, stored: StoredEvent[], events: BridgeEvent[], label: string): void {
  const byId = new Map<string, StoredEvent[]>();
  for (const m of stored) byId.set(m.msgId ?? '', [...(byId.get(m.msgId ?? '') ?? []), m]);
  let once = 0;
  for (const e of events) {
    const copies = byId.get(e.id) ?? [];
    if (copies.length !== 1) {
      t.fail(`${label}: ${e.type} ${e.id} is in the stream ${copies.length} times`);
      continue;
    }
    const m = copies[0]!;
    if (m.subject !== subjectOf(e, 'crm', 16)) t.fail(`${label}: ${e.type} on subject ${m.subject}`);
    else if (JSON.stringify(m.data) !== JSON.stringify(e)) t.fail(`${label}: ${e.type} stored as published`);
    else once++;
  }
  t.equal(once, events.length, `${label}: all ${events.length} events in the stream once, on their subject, as published`);
  // In order per call: stream sequence grows with the event's seq.
  for (const [callId, list] of byCall(events)) {
    const seqs = list.map((e) => byId.get(e.id)?.[0]?.seq ?? -1);
    t.same(seqs, [...seqs].sort((a, b) => a - b), `${label}: call ${callId} in order in the stream`);
  }
}

t.test('given a real nats-server (JetStream) and a real Asterisk', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const asterisk = await startAsterisk({ name: 'nats' });
  t.teardown(() => asterisk.stop());
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const withNats = (extra = '') => writeConfig(e2eConfig(asterisk.amiPort).replace('sinks:\n  - type: log\n', `sinks:\n  - type: log\n${natsSink(nats.url)}`) + extra);
  const env = { E2E_AMI_SECRET: BRIDGE_AMI_SECRET };

  const a = startDaemon(withNats(), env);
  t.teardown(() => a.stop());
  await a.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'bridge a to log in');
  await a.waitForLog((l) => l['msg'] === 'NATS connected', 'bridge a to reach NATS');

  t.test('when calls run, then every event is in the stream once, in order per call; the sink created the stream', async (t) => {
    const from = a.events.length;
    await scenarios['queue-answered'](driver);
    const events = await callsDone(a, from, 1, 'the queue call');
    t.ok(a.logs.some((l) => l['msg'] === 'NATS stream created' && l['stream'] === STREAM), 'then the sink created the stream');
    const reader = await readStream(nats.url, STREAM);
    t.teardown(() => reader.close());
    await reader.waitFor((m) => (events.every((e) => m.some((x) => x.msgId === e.id)) ? true : undefined), 'every event in the stream');
    t.same(events.flatMap((e) => validateEvent(e)), []);
    checkStored(t, reader.messages, events, 'one bridge');
    // The first message of the call (the bridge announced its queue members at login before it).
    t.match(reader.messages.find((m) => m.subject.includes('.call.'))?.subject, /^crm\.pbx1\.call\.started\.\d+$/);
    t.ok(reader.messages.some((m) => /^crm\.pbx1\.agent\.login\./.test(m.subject)), "and the queue members' agent.login at login, on their agent subjects");
  });

  t.test('when NATS goes away and comes back, then the events waited in the outbox and all arrive once, in order', async (t) => {
    await nats.stop();
    await a.waitForLog((l) => l['msg'] === 'NATS disconnected; reconnecting (events wait in the outbox)', 'the sink to notice');
    const from = a.events.length;
    await scenarios['direct-answered'](driver);
    const events = await callsDone(a, from, 1, 'the call made while NATS was down');
    await a.waitForLog((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('delivery failed') && String(l['sink']).startsWith('nats:'), 'a publish to fail and be retried');
    await nats.restart();
    const reader = await readStream(nats.url, STREAM);
    t.teardown(() => reader.close());
    await reader.waitFor((m) => (events.every((e) => m.some((x) => x.msgId === e.id)) ? true : undefined), 'the held events in the stream');
    checkStored(t, reader.messages, events, 'after the outage');
  });

  t.test('when a second bridge on the same PBX runs beside the first (an HA pair) and one is killed with SIGKILL mid-call', async (t) => {
    const b = startDaemon(withNats(), env);
    t.teardown(() => b.stop());
    await b.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'bridge b to log in');
    await b.waitForLog((l) => l['msg'] === 'NATS connected', 'bridge b to reach NATS');
    const fromA = a.events.length;
    const fromB = b.events.length;
    const calls = scenarios['ten-calls'](driver);
    // Kill a once it has published part of the calls.
    await a.waitForEvents((all) => (all.slice(fromA).filter((e) => e.type === 'call.answered').length >= 3 ? true : undefined), 'bridge a to see three answers');
    a.child.kill('SIGKILL');
    t.equal(await a.exit, null, 'then bridge a is gone (killed)');
    await calls;
    const events = await callsDone(b, fromB, 10, 'bridge b to see all ten calls end');
    const seenByA = a.events.slice(fromA);
    t.ok(seenByA.length > 0, 'given bridge a had emitted events before it died');
    const ids = new Set(events.map((e) => e.id));
    // agent.status is derived from device state each bridge deduplicates against what it saw
    // before, so two bridges started at different times may differ in which ones they emit (the
    // stream then has both, once each); every other event is the same event with the same id.
    const comparable = seenByA.filter((e) => e.type !== 'agent.status');
    t.ok(comparable.length > 0);
    t.same(comparable.filter((e) => !ids.has(e.id)).map((e) => `${e.type} ${'callId' in e ? e.callId : e.agent.id} seq ${e.seq}`), [], 'then both bridges gave every call event the same id');
    const reader = await readStream(nats.url, STREAM);
    t.teardown(() => reader.close());
    await reader.waitFor((m) => (events.every((e) => m.some((x) => x.msgId === e.id)) ? true : undefined), 'every event of the ten calls in the stream');
    checkStored(t, reader.messages, events, 'HA pair');
  });

  t.test('when a second PBX feeds the same stream, then server and subject tell them apart', async (t) => {
    const replay = await startReplayServer(readFileSync(new URL('queue-abandoned.ami', FIXTURES)));
    t.teardown(() => replay.close());
    const pbx2 = writeConfig(
      e2eConfig(replay.port)
        .replace('name: pbx1', 'name: pbx2')
        .replace('    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 }\n', '    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 }\n    resync: false\n')
        .replace('sinks:\n  - type: log\n', `sinks:\n  - type: log\n${natsSink(nats.url)}`),
    );
    const c = startDaemon(pbx2, env);
    t.teardown(() => c.stop());
    const events = await callsDone(c, 0, 1, 'pbx2 to replay its call');
    t.ok(events.every((e) => e.server === 'pbx2'));
    const reader = await readStream(nats.url, STREAM);
    t.teardown(() => reader.close());
    await reader.waitFor((m) => (events.every((e) => m.some((x) => x.msgId === e.id)) ? true : undefined), "pbx2's events in the stream");
    checkStored(t, reader.messages, events, 'pbx2');
    t.ok(reader.messages.some((m) => m.subject.startsWith('crm.pbx1.')) && reader.messages.some((m) => m.subject.startsWith('crm.pbx2.')), 'then one stream holds both PBXs');
  });
});
