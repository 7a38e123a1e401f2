// Every recorded real-Asterisk scenario (lab/recordings/*.ami, captured from the AMI socket by
// lab/record-ami.ts) replayed through the live code path: exact event sequences,
// JSON Schema validity, contract ordering, CRM variables, and state freed afterwards.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import type { BridgeEvent, CallEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { byCall, contractViolations, summarize } from './helpers/contract.js';
import { canonical, EXPECTED } from './helpers/expected.js';
import { replayTrace } from './helpers/replay.js';

const dir = new URL('../lab/recordings/', import.meta.url);
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.ami')).sort();

t.test('given the recorded scenarios, then there is one per real-Asterisk scenario', async (t) => {
  for (const name of Object.keys(EXPECTED)) t.ok(fixtures.includes(`${name}.ami`), `${name}.ami recorded`);
});

for (const file of fixtures) {
  const name = file.replace(/\.ami$/, '');
  t.test(`given the ${name} trace, when replayed`, async (t) => {
    const trace = readFileSync(new URL(file, dir));
    const { events, tracker, errors } = await replayTrace(trace);

    t.same(errors, [], 'then the normalizer reports no error');
    t.ok(events.length > 0, 'then it emits events');
    for (const e of events) {
      const problems = validateEvent(e);
      if (problems.length) t.fail(`then ${e.type} seq ${e.seq} is schema-valid: ${problems.join('; ')}`);
    }
    t.same(contractViolations(events), [], 'then every contract ordering guarantee holds');
    t.equal(tracker.activeCalls, 0, 'then no call is left in progress');
    t.equal(tracker.trackedChannels, 0, 'then no channel state is left behind');

    for (const e of events) {
      if ('vars' in e) t.notOk('Omlcrmnotexported' in e.vars, `then an unlisted Omlcrm variable never leaks (${e.type})`);
    }

    const expected = EXPECTED[name];
    if (expected?.calls) {
      const calls = [...byCall(events).values()];
      t.equal(calls.length, expected.calls.length, 'then it sees the expected number of calls');
      calls.forEach((list, i) => {
        const lines = canonical(list.map(summarize), expected.unordered);
        t.same(lines, expected.calls?.[i], `then call ${i + 1} is exactly the expected sequence`);
      });
    }
    if (expected?.agents) {
      const agentLines = events.filter((e) => e.type.startsWith('agent.') && e.type !== 'agent.status').map(summarize);
      t.same(agentLines, expected.agents, 'then the agent events are exactly the expected ones');
    }
    if (expected?.varsFromQueued) {
      for (const list of byCall(events).values()) {
        const from = list.findIndex((e) => e.type === 'call.queued');
        t.ok(from >= 0, 'then the call was queued');
        for (const e of list.slice(from)) t.same(e.vars, expected.varsFromQueued, `then ${e.type} carries the CRM variables`);
      }
    }

    const split = await replayTrace(trace, { chunkSize: 1 });
    t.same(split.events, events, 'then the same trace split at every byte gives the very same events (ids included)');
  });
}

t.test('given two replays of one trace, then event ids are equal (name-based: HA peers agree)', async (t) => {
  const file = fixtures.find((f) => f.startsWith('queue-answered'));
  if (!file) return t.fail('queue-answered.ami missing');
  const trace = readFileSync(new URL(file, dir));
  const a = await replayTrace(trace);
  const b = await replayTrace(trace);
  t.same(a.events.map((e: BridgeEvent) => e.id), b.events.map((e: BridgeEvent) => e.id));
  t.ok(a.events.every((e: BridgeEvent) => /^[0-9a-f-]{36}$/.test(e.id)));
  const answered = a.events.find((e: BridgeEvent) => e.type === 'call.answered') as CallEvent | undefined;
  t.ok(answered && answered.type === 'call.answered' && answered.ringSeconds !== null && answered.ringSeconds > 0, 'ringSeconds comes from AMI timestamps');
});
