// Delivery nodes on a real nats-server with JetStream, all real processes (`crm-bridge run`):
// - PBX-side bridges for pbx1, pbx2 and pbx3, each fed recorded real-Asterisk traffic replayed
//   over AMI, publish to one stream (the real-Asterisk side of the nats sink is in nats.test.ts);
// - two webhook nodes share the consumer `crm-webhooks` (partition leases): every event reaches
//   the CRM receiver, in order per call, both nodes do part of the work; after one is killed with
//   SIGKILL, the other takes over its partitions and nothing is lost;
// - two pop nodes read everything: agent 201's stream on one node carries only 201's events, and
//   resuming it on the other node with Last-Event-ID gives exactly the rest; the first is then
//   killed with SIGKILL and new rings still reach the agent on the second;
// - a message on the stream that is not a valid event is parked and logged; nothing stops;
// - NATS restarting (same store): the nodes reconnect and carry on.
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import t from 'tap';
import { startReplayServer } from '../../dist/sources/ami/replay-server.js';
import type { BridgeEvent } from '../../dist/events/types.js';
import { freePort } from '../../lab/asterisk.js';
import { byCall } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig, type Daemon } from '../helpers/daemon.js';
import { startNats } from '../helpers/nats.js';
import { startReceiver } from '../helpers/receivers.js';
import { connectSse } from '../helpers/sse.js';

const STREAM = 'CRM_EVENTS';
const FIXTURES = new URL('../../lab/recordings/', import.meta.url);
const TOKEN_201 = 'e2e-pop-201-token-0123456789abcdef0123';

t.test('given a NATS stream, webhook nodes sharing a consumer, and pop nodes', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());

  /** A PBX-side bridge named `pbx` replaying a recorded trace into the stream; resolves with its events once every call ended. */
  async function feed(pbx: string, trace: string): Promise<BridgeEvent[]> {
    const replay = await startReplayServer(readFileSync(new URL(trace, FIXTURES)));
    t.teardown(() => replay.close());
    const config = e2eConfig(replay.port)
      .replace('name: pbx1', `name: ${pbx}`)
      .replace('    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 }\n', '    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 }\n    resync: false\n')
      .replace('sinks:\n  - type: log\n', `sinks:\n  - type: log\n  - { type: nats, servers: [${nats.url}], stream: ${STREAM} }\n`);
    const d = startDaemon(writeConfig(config), { E2E_AMI_SECRET: 'x' });
    t.teardown(() => d.stop());
    const events = await d.waitForEvents((all) => {
      const calls = [...byCall(all).values()];
      return calls.length > 0 && calls.every((l) => l.some((e) => e.type === 'call.hangup')) ? all.slice() : undefined;
    }, `${pbx}'s replayed calls`);
    await d.waitForLog((l) => l['msg'] === 'delivered' && l['eventId'] === events.at(-1)!.id, `${pbx}'s last event published`);
    return events;
  }

  const node = (extra: string) => {
    const config = `source:\n  type: nats\n  servers: [${nats.url}]\n  stream: ${STREAM}\n${extra}outbox:\n  path: ${writeConfig('').replace('config.yaml', 'outbox.db')}\nlog:\n  level: debug\n`;
    const d = startDaemon(writeConfig(config), {});
    t.teardown(() => d.stop());
    return d;
  };
  const webhookNode = (name: string) =>
    node(`  name: ${name}\n  consumer: crm-webhooks\n  leaseSeconds: 1\n  ackWaitSeconds: 5\nsinks:\n  - { type: webhook, name: crm, url: "${receiver.url}/hook", retry: { initialDelayMs: 100, maxDelayMs: 500, factor: 2, jitter: 0.1 } }\n`);
  const popNode = async (name: string) => {
    const port = await freePort();
    const d = node(`  name: ${name}\nsinks: []\nhttp:\n  listen: 127.0.0.1:${port}\nagents:\n  - { id: "201", extension: "201", token: ${TOKEN_201} }\n`);
    await d.waitForLog((l) => l['msg'] === 'HTTP server listening', `${name}'s HTTP server`);
    return { d, url: `http://127.0.0.1:${port}` };
  };
  const partitionsOf = (d: Daemon) => new Set(d.logs.filter((l) => l['msg'] === 'NATS source: reading a partition').map((l) => l['partition']));
  const deliveredBy = (d: Daemon) => new Set(d.logs.filter((l) => l['msg'] === 'delivered').map((l) => l['eventId'] as string));
  /** Event ids the receiver got, and whether each call arrived in order (first arrival of each id). */
  const received = () => receiver.requests.map((r) => JSON.parse(r.body) as BridgeEvent);
  const waitReceived = (events: BridgeEvent[], what: string) =>
    receiver.waitFor(() => {
      const got = new Set(received().map((e) => e.id));
      return events.every((e) => got.has(e.id));
    }, what, 60_000);

  // The stream exists once a feed published; webhook nodes need it to make their consumers.
  const pbx1 = await feed('pbx1', 'ten-calls.ami');
  const w1 = webhookNode('webhooks-1');
  await w1.waitForLog((l) => l['msg'] === 'NATS source connected', 'webhook node 1');
  const pop1 = await popNode('pop-1');
  const pop2 = await popNode('pop-2');
  await w1.waitForLog(() => partitionsOf(w1).size === 16, 'node 1 to take all 16 partitions');
  const w2 = webhookNode('webhooks-2');
  await w2.waitForLog(() => partitionsOf(w2).size === 8, 'node 2 to take its share: 8 partitions');

  t.test('then every event of the first PBX reaches the CRM, in order per call', async (t) => {
    await waitReceived(pbx1, "pbx1's events at the receiver");
    const got = received();
    for (const [callId, list] of byCall(pbx1)) {
      const first = new Map<string, number>();
      got.forEach((e, i) => first.has(e.id) || first.set(e.id, i));
      const order = list.map((e) => first.get(e.id) ?? -1);
      t.same(order, [...order].sort((a, b) => a - b), `call ${callId} in order at the receiver`);
    }
    t.same(receiver.violations, []);
  });

  t.test('when a second and third PBX publish, then both webhook nodes share the work and everything arrives', async (t) => {
    const [pbx2, pbx3] = await Promise.all([feed('pbx2', 'queue-answered.ami'), feed('pbx3', 'blind-transfer.ami')]);
    await waitReceived([...pbx2, ...pbx3], "pbx2's and pbx3's events at the receiver");
    const all = [...pbx2, ...pbx3];
    // (the nodes log asynchronously: wait for their lines too)
    const logged = () => all.every((e) => deliveredBy(w1).has(e.id) || deliveredBy(w2).has(e.id));
    await Promise.any([w1.waitForLog(logged, "the nodes' delivery logs"), w2.waitForLog(logged, "the nodes' delivery logs")]);
    const by1 = [...deliveredBy(w1)].filter((id) => all.some((e) => e.id === id));
    const by2 = [...deliveredBy(w2)].filter((id) => all.some((e) => e.id === id));
    t.ok(by2.length > 0, `then node 2 delivered some (${by2.length})`);
    t.ok(by1.length + by2.length >= all.length, 'then together they delivered all');
    t.ok(by1.every((id) => !by2.includes(id)), 'then no event was delivered by both');
    t.ok(received().some((e) => e.server === 'pbx2') && received().some((e) => e.server === 'pbx3'), 'then server tells the PBXs apart');
  });

  t.test('when a message that is not an event lands on the stream, then it is parked and the rest flows', async (t) => {
    const nc = await connect({ servers: [nats.url] });
    const js = jetstream(nc);
    await js.publish('crm.pbx9.call.started.3', 'this is not JSON');
    await js.publish('crm.pbx9.call.started.3', JSON.stringify({ type: 'call.started', hello: 'world' }));
    await nc.close();
    const parkedBy = (d: Daemon) => d.logs.filter((l) => l['msg'] === 'NATS source: a message on the stream is not a valid event; parked it (not redelivered) and went on').length;
    await w1.waitForLog(() => parkedBy(w1) + parkedBy(w2) >= 2, 'the webhook nodes to park both');
    await pop1.d.waitForLog(() => parkedBy(pop1.d) >= 2, 'pop node 1 to park both');
    const after = await feed('pbx4', 'direct-answered.ami');
    await waitReceived(after, 'the events published after the bad ones');
    t.pass('then the nodes went on');
  });

  t.test('when a webhook node is killed with SIGKILL, then the other takes its partitions and nothing is lost', async (t) => {
    w2.child.kill('SIGKILL');
    t.equal(await w2.exit, null);
    const events = await feed('pbx5', 'queue-abandoned.ami');
    await w1.waitForLog(() => w1.logs.filter((l) => l['msg'] === 'NATS source: reading a partition').length >= 16 + 8, 'node 1 to take back the dead node\'s partitions', 30_000);
    await waitReceived(events, "pbx5's events at the receiver after the kill");
    t.pass('then every event arrived');
  });

  t.test("when calls ring agent 201, then 201's stream on a pop node has only 201's events, and resumes on the other node", async (t) => {
    const a = await connectSse(`${pop1.url}/agent/events`, { authorization: `Bearer ${TOKEN_201}` });
    t.teardown(() => a.cut());
    // Same trace as pbx1, other PBX name: the same Linkedids on another server must not mix.
    const pbx6 = await feed('pbx6', 'ten-calls.ami');
    const ringings = pbx6.filter((e) => e.type === 'call.ringing' && e.agent?.id === '201');
    t.ok(ringings.length > 0, "given pbx6's calls rang 201");
    await a.waitFor((c) => ringings.every((r) => c.messages.some((m) => m.id === r.id)), "201's ringing events on pop node 1", 30_000);
    const withId = a.messages.filter((m) => m.id);
    const evs = withId.map((m) => JSON.parse(m.data) as BridgeEvent);
    t.ok(evs.every((e) => e.server === 'pbx6'), 'then only the new calls (pbx1 ended before the agent connected)');
    const foreign = evs.filter((e) => (e.type === 'call.ringing' || e.type === 'call.answered' || e.type === 'call.ring_stopped') && e.agent?.id !== '201');
    t.same(foreign.map((e) => e.id), [], "then no other agent's ring, answer or ring-stop");
    const mine = new Set(pbx6.filter((e) => e.type === 'call.ringing' && e.agent?.id === '201').map((e) => 'callId' in e ? e.callId : ''));
    t.ok(evs.every((e) => !('callId' in e) || mine.has(e.callId)), "then only calls that rang 201");
    const mid = withId[Math.floor(withId.length / 2)]!;
    const rest = withId.slice(withId.indexOf(mid) + 1).map((m) => m.id);
    const b = await connectSse(`${pop2.url}/agent/events`, { authorization: `Bearer ${TOKEN_201}`, 'last-event-id': mid.id! });
    t.teardown(() => b.cut());
    await b.waitFor((c) => rest.every((id) => c.messages.some((m) => m.id === id)), 'the resumed stream on pop node 2', 30_000);
    t.same(b.messages.filter((m) => m.id).map((m) => m.id).slice(0, rest.length), rest, 'then pop node 2 replays exactly what came after Last-Event-ID');

    // Pop node 1 dies mid-stream: the agent is on node 2 now, and new rings keep coming there.
    pop1.d.child.kill('SIGKILL');
    t.equal(await pop1.d.exit, null, 'given pop node 1 killed with SIGKILL');
    await a.closed;
    const pbx8 = await feed('pbx8', 'direct-answered.ami');
    const ring = pbx8.find((e) => e.type === 'call.ringing' && e.agent?.id === '201');
    t.ok(ring, "given pbx8's call rings 201");
    await b.waitFor((c) => c.messages.some((m) => m.id === ring!.id), "the new ring on pop node 2", 30_000);
    t.pass('then the agent on the surviving pop node gets it');
  });

  t.test('when NATS restarts, then the nodes carry on and nothing is lost', async (t) => {
    await nats.stop();
    await nats.restart();
    const events = await feed('pbx7', 'direct-noanswer.ami');
    await waitReceived(events, "pbx7's events at the receiver after the NATS restart");
    t.pass('then every event published after the restart arrived');
  });
});
