// Presence sync, fast: the state machine of src/presence/sync.ts with a fake AMI (the real round
// trip against Asterisk is test/e2e/presence.test.ts). An agent in two queues, both modes, the
// echo window, and what happens when the PBX is away or refuses.
import pino from 'pino';
import t from 'tap';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { PresenceError, PresenceSync, type PresenceMode } from '../dist/presence/sync.js';

const log = pino({ level: 'silent' });
const agents = new AgentDirectory({ agents: [{ id: 'u-201', extension: '201' }], agentContexts: ['agents'], extensionPattern: '^[0-9]{3}$' });

function rig(mode: PresenceMode, opts: { connected?: boolean; refuse?: boolean } = {}) {
  const actions: Array<Record<string, string>> = [];
  let clock = 1_000_000;
  const ami = {
    status: { state: opts.connected === false ? 'disconnected' : 'connected' },
    action: async (fields: Record<string, string>) => {
      if (opts.refuse) throw new Error('AMI action QueuePause failed: Interface not found');
      actions.push(fields);
      return {};
    },
  };
  const sync = new PresenceSync({ config: { mode, defaultReason: 'crm', crmReadyReason: 'crm-ready' }, agents, ami, log, now: () => clock });
  sync.seedFrom([
    { event: 'QueueParams', queue: 'sales' },
    { event: 'QueueMember', queue: 'sales', name: 'Ana', location: 'Local/201@agents', stateinterface: 'Local/201@agents', paused: '0', pausedreason: '' },
    { event: 'QueueMember', queue: 'support', name: 'Ana', location: 'Local/201@agents', stateinterface: 'Local/201@agents', paused: '0', pausedreason: '' },
    { event: 'QueueMember', queue: 'sales', name: 'Trunk', location: 'PJSIP/trunk', paused: '0' },
    { event: 'QueueStatusComplete' },
  ]);
  /** Feeds one AMI event and returns what presence adds to the agent event the normalizer would make of it. */
  const feed = (ev: AmiEvent, type: string) => {
    sync.observe({ kind: 'event', event: ev, receivedAt: 0 });
    const made = { type, agent: { id: 'u-201' }, queue: { name: ev.queue } } as unknown as BridgeEvent;
    const out = sync.annotate(made) as unknown as Record<string, unknown>;
    return { origin: out['origin'], crmPresence: out['crmPresence'] };
  };
  const pause = (queue: string, paused: boolean, reason = '') =>
    feed({ event: 'QueueMemberPause', queue, interface: 'Local/201@agents', membername: 'Ana', paused: paused ? '1' : '0', pausedreason: reason }, paused ? 'agent.paused' : 'agent.unpaused');
  const agent = agents.byId('u-201')!;
  return { sync, actions, pause, feed, agent, tick: (ms: number) => (clock += ms) };
}

t.test('given an agent in two queues, seeded from QueueStatus', async (t) => {
  const { sync } = rig('synchronized');
  t.match(sync.pbxState('u-201'), { state: 'ready', queues: [{ queue: 'sales', interface: 'Local/201@agents', paused: false }, { queue: 'support', paused: false }] });
  t.same(sync.pbxState('nobody'), { state: 'logged_out', queues: [] }, 'then an unknown agent is logged out');
});

t.test('synchronized: the CRM is told only when the agent\'s overall state changes', async (t) => {
  const { pause, feed } = rig('synchronized');
  t.same(pause('sales', true, 'coffee'), { origin: undefined, crmPresence: undefined }, 'one queue paused: still ready in support');
  t.same(pause('support', true, 'coffee'), { origin: undefined, crmPresence: 'not_ready' }, 'all queues paused: not ready');
  t.same(pause('sales', false), { origin: undefined, crmPresence: 'ready' }, 'one queue back: ready');
  t.same(pause('sales', false), { origin: undefined, crmPresence: undefined }, 'a repeated unpause: no change, nothing to tell');
  t.same(feed({ event: 'QueueMemberRemoved', queue: 'sales', interface: 'Local/201@agents', membername: 'Ana' }, 'agent.logout'), { origin: undefined, crmPresence: 'not_ready' }, 'logged out of the only unpaused queue');
  t.same(feed({ event: 'QueueMemberRemoved', queue: 'support', interface: 'Local/201@agents', membername: 'Ana' }, 'agent.logout'), { origin: undefined, crmPresence: undefined }, 'paused -> logged out: not ready either way');
  t.same(feed({ event: 'QueueMemberAdded', queue: 'sales', interface: 'Local/201@agents', membername: 'Ana', paused: '0' }, 'agent.login'), { origin: undefined, crmPresence: 'ready' });
});

t.test('synchronized: the CRM sets presence; the bridge pauses only what differs, and marks its own changes', async (t) => {
  const { sync, actions, pause, agent, tick } = rig('synchronized');
  pause('support', true, 'lunch');
  const r = await sync.set(agent, 'not_ready', 'ticket');
  t.same(r.changed, ['sales', 'support'], 'support is paused, but for another reason: re-paused with the CRM\'s');
  t.same(actions, [
    { action: 'QueuePause', queue: 'sales', interface: 'Local/201@agents', paused: 'true', reason: 'ticket' },
    { action: 'QueuePause', queue: 'support', interface: 'Local/201@agents', paused: 'true', reason: 'ticket' },
  ]);
  t.equal(r.pbx, 'not_ready');
  t.same(pause('sales', true, 'ticket'), { origin: 'api', crmPresence: undefined }, 'the echo is marked and not told');
  t.same(pause('support', true, 'ticket'), { origin: 'api', crmPresence: undefined });
  actions.length = 0;
  const again = await sync.set(agent, 'not_ready', 'ticket');
  t.same([again.changed, actions], [[], []], 'asking for the state the PBX is in sends nothing');
  const ready = await sync.set(agent, 'ready', 'ignored');
  t.same(actions.map((a) => [a['queue'], a['paused'], a['reason']]), [['sales', 'false', undefined], ['support', 'false', undefined]], 'ready unpauses without a reason');
  t.equal(ready.pbx, 'ready');
  t.same(pause('sales', true, 'x'), { origin: undefined, crmPresence: undefined }, 'an expectation is for one direction only: this pause is not the bridge\'s');
  tick(60_000);
  t.same(pause('support', false), { origin: undefined, crmPresence: 'ready' }, 'after the echo window, the awaited change is news again (and the CRM is told)');
});

t.test('complementary: never ready on both sides', async (t) => {
  const { sync, actions, pause, agent } = rig('complementary');
  const ready = await sync.set(agent, 'ready', null);
  t.same(actions.map((a) => [a['queue'], a['paused'], a['reason']]), [['sales', 'true', 'crm-ready'], ['support', 'true', 'crm-ready']]);
  t.equal(ready.pbx, 'not_ready');
  t.same(pause('sales', true, 'crm-ready'), { origin: 'api', crmPresence: undefined }, 'the echoes are marked');
  t.same(pause('support', true, 'crm-ready'), { origin: 'api', crmPresence: undefined });
  actions.length = 0;
  const notReady = await sync.set(agent, 'not_ready', 'meeting');
  t.same([notReady.changed, actions, notReady.pbx], [[], [], 'not_ready'], 'CRM not ready leaves the queues alone: both may be not ready');
  t.same(pause('support', false), { origin: undefined, crmPresence: 'not_ready' }, 'the PBX going ready tells the CRM not_ready');
  t.same(pause('support', true, 'wrap'), { origin: undefined, crmPresence: undefined }, 'the PBX going not ready tells the CRM nothing');
});

t.test('when the PBX is away, refuses, or the agent is in no queue, then a clear PresenceError', async (t) => {
  const away = rig('synchronized', { connected: false });
  await t.rejects(away.sync.set(away.agent, 'ready', null), new PresenceError('unavailable', 'the PBX is not reachable right now (AMI disconnected); try again'));
  const refuse = rig('synchronized', { refuse: true });
  await t.rejects(refuse.sync.set(refuse.agent, 'not_ready', null), { kind: 'failed', message: /QueuePause of Local\/201@agents in queue 'sales' failed: .*Interface not found/ });
  t.same(refuse.pause('sales', true), { origin: undefined, crmPresence: undefined }, 'a refused change leaves no expectation behind');
  const none = rig('synchronized');
  await t.rejects(none.sync.set({ id: '299', extension: '299', name: null, interface: null }, 'ready', null), { kind: 'not_member', message: "agent '299' is not a member of any queue, so there is no queue availability to set" });
});
