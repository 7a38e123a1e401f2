// Presence sync against a real Asterisk 22, through the built daemon: agents 201 and 202 are
// static members of queue `sales` (Local/201@agents, Local/202@agents). The "CRM" is this test:
// it PUTs presence to the API and reads `crmPresence` off the daemon's agent events (the same
// events every sink gets). Another AMI client (the driver) plays the supervisor who pauses agents
// on the PBX side. Both modes, each with the round trip in both directions and no echo loop.
import t, { type Test } from 'tap';
import { validateEvent } from '../../dist/events/validator.js';
import type { AgentEvent, BridgeEvent } from '../../dist/events/types.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk, type AsteriskInstance } from '../../lab/asterisk.js';
import { e2eConfig, startDaemon, writeConfig, type Daemon } from '../helpers/daemon.js';

const API_TOKEN = 'e2e-presence-api-token-0123456789abcdef';
const AGENT_TOKEN = 'e2e-presence-agent-201-token-0123456789';
const IFACE = (ext: string) => `Local/${ext}@agents`;

type AgentEv = Extract<AgentEvent, { type: 'agent.paused' | 'agent.unpaused' }>;
const isPause = (e: BridgeEvent): e is AgentEv => e.type === 'agent.paused' || e.type === 'agent.unpaused';

async function startBridge(t: Test, asterisk: AsteriskInstance, mode: string) {
  const port = await freePort();
  const config = e2eConfig(
    asterisk.amiPort,
    `agents:
  - { id: "201", name: Ana, extension: "201", token: ${AGENT_TOKEN} }
  - { id: "202", name: Ben, extension: "202" }
http:
  listen: 127.0.0.1:${port}
api:
  tokens:
    - { name: crm, token: { env: E2E_API_TOKEN } }
  presence:
    mode: ${mode}
`,
  );
  const daemon = startDaemon(writeConfig(config), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET, E2E_API_TOKEN: API_TOKEN });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l['msg'] === 'HTTP server listening', 'the HTTP server to listen');
  await daemon.waitForLog((l) => l['msg'] === 'presence: queue memberships loaded from QueueStatus', 'the queue memberships to load');
  const base = `http://127.0.0.1:${port}/api/v1/agents`;
  const call = async (method: string, agent: string, body?: unknown, token: string | null = API_TOKEN) => {
    const res = await fetch(`${base}/${encodeURIComponent(agent)}/presence`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  return { daemon, put: (agent: string, body: unknown, token?: string | null) => call('PUT', agent, body, token), get: (agent: string) => call('GET', agent) };
}

/** The next pause event of `agent` after index `from`. */
function nextPause(daemon: Daemon, agent: string, from: number, what: string): Promise<AgentEv> {
  return daemon.waitForEvents((all) => all.slice(from).find((e): e is AgentEv => isPause(e) && e.agent.id === agent), what);
}

/**
 * A barrier: the driver toggles agent 202 and we wait for that event. Everything the bridge
 * caused before (in particular a QueuePause of 201) is in by then, because Asterisk publishes
 * queue member events in order. Returns the 201 pause events seen since `from`.
 */
async function pauseEventsOf201Until202(daemon: Daemon, driver: AmiDriver, from: number, paused: boolean): Promise<AgentEv[]> {
  await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: IFACE('202'), Paused: String(paused), Reason: 'barrier' });
  const barrier = await daemon.waitForEvents(
    (all) => {
      const i = all.findIndex((e, n) => n >= from && isPause(e) && e.agent.id === '202' && e.type === (paused ? 'agent.paused' : 'agent.unpaused'));
      return i >= 0 ? i : undefined;
    },
    "agent 202's barrier event",
  );
  return daemon.events.slice(from, barrier).filter((e): e is AgentEv => isPause(e) && e.agent.id === '201');
}

t.test('given a real Asterisk with agents 201 and 202 in queue sales', async (t) => {
  const asterisk = await startAsterisk({ name: 'presence' });
  t.teardown(() => asterisk.stop());
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());

  t.test('when the bridge runs in synchronized mode', async (t) => {
    const { daemon, put, get } = await startBridge(t, asterisk, 'synchronized');

    t.test('then bad requests get a clear 4xx and change nothing', async (t) => {
      const noToken = await put('201', { state: 'ready' }, null);
      t.equal(noToken.status, 401);
      const otherAgent = await put('202', { state: 'not_ready' }, AGENT_TOKEN);
      t.equal(otherAgent.status, 403);
      t.match(otherAgent.body.error, "an agent's token sets that agent's presence only ('201')");
      const unknown = await put('nobody', { state: 'ready' });
      t.equal(unknown.status, 404);
      t.match(unknown.body.error, "no agent 'nobody'");
      const notMember = await put('203', { state: 'ready' });
      t.equal(notMember.status, 409, 'an extension that is in no queue');
      t.match(notMember.body.error, "agent '203' is not a member of any queue");
      const bad = await put('201', { state: 'away', extra: 1 });
      t.equal(bad.status, 400);
      t.ok(bad.body.problems.length >= 2, JSON.stringify(bad.body.problems));
      const state = await get('201');
      t.match(state.body, { agent: '201', mode: 'synchronized', pbx: 'ready', queues: [{ queue: 'sales', interface: IFACE('201'), paused: false, reason: null }] }, 'then 201 is still ready');
    });

    t.test('when the CRM says not_ready, then the queues pause, and the event is marked as the bridge\'s (no echo)', async (t) => {
      const from = daemon.events.length;
      const r = await put('201', { state: 'not_ready', reason: 'ticket' }, AGENT_TOKEN);
      t.equal(r.status, 200, JSON.stringify(r.body));
      t.match(r.body, { agent: '201', mode: 'synchronized', state: 'not_ready', pbx: 'not_ready', changed: ['sales'] });
      const paused = await nextPause(daemon, '201', from, "201's agent.paused");
      t.match(paused, { type: 'agent.paused', queue: { name: 'sales' }, reason: 'ticket', origin: 'api' });
      t.notOk('crmPresence' in paused, 'then it tells the CRM nothing: the CRM asked for it');
      t.same(validateEvent(paused), []);
      const status = await asterisk.cli('queue show sales');
      t.match(status, /Local\/201@agents.*paused:ticket/i, 'then Asterisk has 201 paused with the reason');

      const again = await put('201', { state: 'not_ready', reason: 'ticket' });
      t.match(again.body, { changed: [], pbx: 'not_ready' }, 'then asking again changes nothing');
      t.same(await pauseEventsOf201Until202(daemon, driver, from + 1, true), [], 'then no further event for 201');
    });

    t.test('when a supervisor unpauses 201 on the PBX, then the CRM is told ready; the CRM following it causes no echo', async (t) => {
      const from = daemon.events.length;
      await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: IFACE('201'), Paused: 'false' });
      const unpaused = await nextPause(daemon, '201', from, "201's agent.unpaused");
      t.match(unpaused, { type: 'agent.unpaused', queue: { name: 'sales' }, crmPresence: 'ready' });
      t.notOk('origin' in unpaused, 'then it is not marked as the bridge\'s');
      t.same(validateEvent(unpaused), []);
      // The CRM does what it was told, and its presence listener reports the change back.
      const follow = await put('201', { state: 'ready' });
      t.match(follow.body, { changed: [], pbx: 'ready' }, 'then the PBX is already there');
      t.same(await pauseEventsOf201Until202(daemon, driver, daemon.events.indexOf(unpaused) + 1, false), [], 'then nothing bounces back');
    });

    t.test('when a supervisor pauses 201 on the PBX, then the CRM is told not_ready', async (t) => {
      const from = daemon.events.length;
      await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: IFACE('201'), Paused: 'true', Reason: 'coffee' });
      const paused = await nextPause(daemon, '201', from, "201's agent.paused");
      t.match(paused, { type: 'agent.paused', reason: 'coffee', crmPresence: 'not_ready' });
      const state = await get('201');
      t.match(state.body, { pbx: 'not_ready', queues: [{ queue: 'sales', paused: true, reason: 'coffee' }] });
      const ready = await put('201', { state: 'ready' });
      t.match(ready.body, { changed: ['sales'], pbx: 'ready' });
      const unpaused = await nextPause(daemon, '201', daemon.events.indexOf(paused) + 1, "201's agent.unpaused");
      t.match(unpaused, { type: 'agent.unpaused', origin: 'api' });
      t.notOk('crmPresence' in unpaused);
    });
  });

  t.test('when the bridge runs in complementary mode', async (t) => {
    const { daemon, put, get } = await startBridge(t, asterisk, 'complementary');
    t.match((await get('201')).body, { mode: 'complementary', pbx: 'ready' }, 'given 201 ready in the queues');

    t.test('when the CRM says ready, then the queues pause (never ready on both sides)', async (t) => {
      const from = daemon.events.length;
      const r = await put('201', { state: 'ready' });
      t.match(r.body, { state: 'ready', pbx: 'not_ready', changed: ['sales'] });
      const paused = await nextPause(daemon, '201', from, "201's agent.paused");
      t.match(paused, { type: 'agent.paused', reason: 'crm-ready', origin: 'api' });
      t.notOk('crmPresence' in paused);
    });

    t.test('when the CRM says not_ready, then the queues stay as they are (both may be not ready)', async (t) => {
      const from = daemon.events.length;
      const r = await put('201', { state: 'not_ready' });
      t.match(r.body, { state: 'not_ready', pbx: 'not_ready', changed: [] });
      t.same(await pauseEventsOf201Until202(daemon, driver, from, true), []);
    });

    t.test('when the queues go ready on the PBX, then the CRM is told not_ready, and its answer causes no echo', async (t) => {
      const from = daemon.events.length;
      await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: IFACE('201'), Paused: 'false' });
      const unpaused = await nextPause(daemon, '201', from, "201's agent.unpaused");
      t.match(unpaused, { type: 'agent.unpaused', crmPresence: 'not_ready' });
      t.same(validateEvent(unpaused), []);
      const follow = await put('201', { state: 'not_ready' });
      t.match(follow.body, { changed: [], pbx: 'ready' });
      t.same(await pauseEventsOf201Until202(daemon, driver, daemon.events.indexOf(unpaused) + 1, false), [], 'then nothing bounces back');
    });

    t.test('when the PBX pauses the agent, then the CRM need not change (no crmPresence)', async (t) => {
      const from = daemon.events.length;
      await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: IFACE('201'), Paused: 'true', Reason: 'wrap-up' });
      const paused = await nextPause(daemon, '201', from, "201's agent.paused");
      t.match(paused, { type: 'agent.paused', reason: 'wrap-up' });
      t.notOk('crmPresence' in paused);
      t.notOk('origin' in paused);
    });

    t.test('then every event the daemon emitted is schema-valid', async (t) => {
      t.same(daemon.events.flatMap((e) => validateEvent(e)), []);
    });
  });
});
