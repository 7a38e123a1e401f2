// The bounds on what the normalizer keeps (calls.maxInProgress, calls.maxAgents): a PBX, or
// whoever speaks on its AMI link, that reports endless calls or queue members cannot grow the
// bridge's memory without end. What happens at a bound is chosen to lose the least: the oldest
// call (almost always one whose Hangup never came) ends with its hang-up; the agent seen least
// recently is forgotten.
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { AgentDirectory, FORGET_MEMBERS_AFTER_SECONDS } from '../dist/normalizer/agents.js';
import { createTracker, step } from '../dist/normalizer/index.js';
import { contractViolations, summarize } from './helpers/contract.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

const ts = (s: number) => (1795400000 + s).toFixed(6);
const newCall = (id: string, s: number) => ({ event: 'Newchannel', timestamp: ts(s), channel: `PJSIP/trunk-${id}`, uniqueid: id, linkedid: id, context: 'from-pstn', exten: '41004100', calleridnum: '+49301234' });

t.test('given calls.maxInProgress 3, when a fourth call begins, then the oldest ends with its hang-up and the new one is tracked', async (t) => {
  const hits: string[] = [];
  const tracker = createTracker({ ...TEST_NORMALIZER, maxCalls: 3, onCap: (cap, evicted) => hits.push(`${cap} ${evicted}`) });
  const events: BridgeEvent[] = [];
  for (const [i, id] of ['C.1', 'C.2', 'C.3'].entries()) events.push(...tracker.handle(newCall(id, i), 0));
  t.same(hits, [], 'then nothing is evicted up to the cap');
  events.push(...tracker.handle(newCall('C.4', 10), 0));
  t.same(hits, ['calls C.1'], 'then the cap is reported once, naming the oldest call');
  t.equal(tracker.activeCalls, 3, 'then the calls in progress stay at the cap');
  const c1 = events.filter((e) => 'callId' in e && e.callId === 'C.1').map(summarize);
  t.same(c1, ['call.started', 'call.missed unavailable', 'call.hangup missed by:system'], 'then the oldest call gets its call.missed and call.hangup, by the system');
  t.ok(events.some((e) => 'callId' in e && e.callId === 'C.4' && e.type === 'call.started'), 'then the new call is announced');
  // The other calls end normally; the whole stream keeps the contract.
  for (const [i, id] of ['C.2', 'C.3', 'C.4'].entries()) events.push(...tracker.handle({ event: 'Hangup', timestamp: ts(20 + i), channel: `PJSIP/trunk-${id}`, uniqueid: id, linkedid: id, cause: '16' }, 0));
  t.same(contractViolations(events), []);
  for (const e of events) t.same(validateEvent(e), [], `${e.type} is schema-valid`);
  t.equal(tracker.activeCalls, 0);
});

t.test('given the default bound, then 50,000 calls in progress are tracked', async (t) => {
  const hits: string[] = [];
  const tracker = createTracker({ ...TEST_NORMALIZER, onCap: (cap) => hits.push(cap) });
  for (let i = 0; i < 50_000; i++) tracker.handle(newCall(`D.${i}`, i / 1000), 0);
  t.equal(tracker.activeCalls, 50_000);
  t.same(hits, [], 'then none is evicted at 50,000');
  tracker.handle(newCall('D.x', 100), 0);
  t.same(hits, ['calls'], 'then the 50,001st evicts one');
  t.equal(tracker.activeCalls, 50_000);
});

t.test('given calls.maxAgents 2, when a third queue member is learnt from AMI, then the one seen least recently is forgotten', async (t) => {
  const forgotten: string[] = [];
  const dir = new AgentDirectory({ agents: [], agentContexts: [], extensionPattern: '^$', maxLearnt: 2, onCap: (k) => forgotten.push(k) });
  const by = (iface: string) => dir.describe(`${iface}-00000001`).by;
  dir.observeMember('PJSIP/alice', undefined, 'Alice', 1);
  dir.observeMember('PJSIP/bob', undefined, 'Bob', 2);
  dir.observeMember('PJSIP/alice', undefined, 'Alice', 3); // seen again: bob is now the stalest
  dir.observeMember('PJSIP/carol', undefined, 'Carol', 4);
  t.same(forgotten, ['pjsip/bob'], 'then bob, seen least recently, is forgotten and reported');
  t.same(['PJSIP/alice', 'PJSIP/bob', 'PJSIP/carol'].map(by), ['queue-member', 'none', 'queue-member'], 'then alice and carol are still agents, bob no longer');
  t.equal(dir.learnt.members, 2);
  t.equal(dir.fromChannel('PJSIP/alice-00000001')?.name, 'Alice', "then a kept member's name is kept");
});

t.test('given queue members learnt from AMI, when the periodic reconciliation runs, then those not seen for a long time are forgotten', async (t) => {
  const tracker = createTracker({ ...TEST_NORMALIZER, extensionPattern: '^$' });
  const day = FORGET_MEMBERS_AFTER_SECONDS * 1000;
  const member = (iface: string, at: number) => step(tracker, { kind: 'event', event: { event: 'QueueMemberStatus', queue: 'sales', interface: iface, status: '1' }, receivedAt: at });
  member('PJSIP/old', 0);
  member('PJSIP/fresh', day);
  step(tracker, { kind: 'snapshot', channels: [], receivedAt: day + 1000, trigger: 'reconnect' });
  t.equal(tracker.agents.learnt.members, 2, 'then a resync after a reconnect forgets nothing');
  step(tracker, { kind: 'snapshot', channels: [], receivedAt: day + 1000, trigger: 'periodic' });
  t.equal(tracker.agents.learnt.members, 1, 'then the periodic reconciliation forgets the member not seen for a day');
  t.equal(tracker.agents.describe('PJSIP/fresh-00000001').by, 'queue-member', 'then the member seen lately is kept');
  t.equal(tracker.agents.describe('PJSIP/old-00000001').by, 'none');
});

t.test("given calls.maxAgents 2, when a third agent has an event, then the stalest agent's seq is forgotten and reported", async (t) => {
  const hits: string[] = [];
  const tracker = createTracker({ ...TEST_NORMALIZER, maxAgents: 2, onCap: (cap, evicted) => hits.push(`${cap} ${evicted}`) });
  const login = (ext: string) => tracker.handle({ event: 'QueueMemberAdded', queue: 'sales', interface: `PJSIP/${ext}` }, 0).map((e) => `${e.type} ${'agent' in e && e.agent ? e.agent.id : ''} ${e.seq}`);
  t.same([...login('201'), ...login('202'), ...login('201'), ...login('203')], ['agent.login 201 1', 'agent.login 202 1', 'agent.login 201 2', 'agent.login 203 1']);
  t.ok(hits.includes('agents 202'), 'then 202, seen least recently, is forgotten');
  t.same(login('201'), ['agent.login 201 3'], "then 201's seq goes on");
});
