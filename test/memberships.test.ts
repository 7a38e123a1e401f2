// Queue memberships reconciled at every AMI login (src/normalizer/agent-events.ts,
// reconcileMemberships): the PBX's QueueStatus list against what was announced.
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { createTracker } from '../dist/normalizer/index.js';
import type { QueueMembership } from '../dist/normalizer/agents.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

const member = (ext: string, queue: string, paused = false, reason: string | null = null): QueueMembership => ({
  interface: `Local/${ext}@agents`,
  stateInterface: `Local/${ext}@agents`,
  name: `Agent ${ext}`,
  queue,
  paused,
  reason,
});
const brief = (events: BridgeEvent[]) =>
  events.map((e) => [e.type, 'agent' in e && e.agent ? e.agent.id : null, 'queue' in e && e.queue ? e.queue.name : null, 'reason' in e ? e.reason : undefined].filter((x) => x !== undefined).join(' '));

t.test('given the static members of a queue at the first login, then each gets agent.login, a paused one agent.paused too', async (t) => {
  const tracker = createTracker(TEST_NORMALIZER);
  const first = tracker.memberships([member('201', 'sales'), member('202', 'sales', true, 'lunch')], Date.parse('2026-12-07T08:00:00Z'));
  t.same(brief(first), ['agent.login 201 sales', 'agent.login 202 sales', 'agent.paused 202 sales lunch']);
  t.equal(first[0]!.time, '2026-12-07T08:00:00.000Z');
  t.same(tracker.memberships([member('201', 'sales'), member('202', 'sales', true, 'lunch')], Date.now()), [], 'the same list again: nothing to say');
});

t.test('given a reconnect after changes while away, then only the differences are announced', async (t) => {
  const tracker = createTracker(TEST_NORMALIZER);
  tracker.memberships([member('201', 'sales'), member('202', 'sales', true, 'lunch'), member('203', 'support')], Date.now());
  const after = tracker.memberships([member('201', 'sales', true, 'meeting'), member('202', 'sales'), member('204', 'support')], Date.now());
  t.same(brief(after), ['agent.paused 201 sales meeting', 'agent.unpaused 202 sales ', 'agent.login 204 support', 'agent.logout 203 support']);
});

t.test('given a member that logged in by an AMI event, then the next list does not announce it again', async (t) => {
  const tracker = createTracker(TEST_NORMALIZER);
  const added = tracker.handle({ event: 'QueueMemberAdded', queue: 'support', interface: 'Local/203@agents', stateinterface: 'Local/203@agents', membername: 'Agent 203', paused: '0' }, Date.now());
  t.same(brief(added), ['agent.login 203 support']);
  t.same(tracker.memberships([member('203', 'support')], Date.now()), []);
  tracker.handle({ event: 'QueueMemberRemoved', queue: 'support', interface: 'Local/203@agents', stateinterface: 'Local/203@agents', membername: 'Agent 203' }, Date.now());
  t.same(tracker.memberships([], Date.now()), [], 'logged out by its event: no second logout');
});
