// The ARI translation (src/sources/ari/translate.ts) over ARI event streams recorded from a real
// Asterisk 22 (lab/recordings/ari/*.jsonl, lab/record-ari.ts), fed to the unchanged
// normalizer: the exact AMI-path sequences minus ARI's documented gaps
// (test/helpers/ari-expected.ts), contract and schema valid, deterministic, no state left behind.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import type { AriMessage, TranslateState } from '../dist/sources/ari/translate.js';
import { createTranslateState, LINKEDID_VAR, parseAriTime, translate } from '../dist/sources/ari/translate.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { createTracker, step } from '../dist/normalizer/index.js';
import { ariExpectation, ARI_DIFFERENCES } from './helpers/ari-expected.js';
import { byCall, contractViolations, summarize } from './helpers/contract.js';
import { canonical } from './helpers/expected.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

const dir = new URL('../lab/recordings/ari/', import.meta.url);
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();

function load(file: string): AriMessage[] {
  return readFileSync(new URL(file, dir), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AriMessage);
}

function translateAll(messages: AriMessage[], state: TranslateState = createTranslateState()): AmiEvent[] {
  return messages.flatMap((m) => translate(m, state));
}

function normalizeAll(records: AmiEvent[]) {
  const tracker = createTracker(TEST_NORMALIZER);
  const events: BridgeEvent[] = [];
  for (const event of records) events.push(...step(tracker, { kind: 'event', event, receivedAt: 0 }));
  return { events, tracker };
}

const channelOf = (m: AriMessage) => m.channel as { id: string; channelvars?: Record<string, string> } | undefined;

t.test('given the ARI recordings, then there is one per real-Asterisk scenario', async (t) => {
  for (const name of Object.keys(ARI_DIFFERENCES)) t.ok(fixtures.includes(`${name}.jsonl`), `${name}.jsonl recorded`);
});

for (const file of fixtures) {
  const name = file.replace(/\.jsonl$/, '');
  t.test(`given the ${name} ARI recording, when translated and normalized`, async (t) => {
    const messages = load(file);
    const state = createTranslateState();
    const records = translateAll(messages, state);
    const { events, tracker } = normalizeAll(records);

    for (const e of events) {
      const problems = validateEvent(e);
      if (problems.length) t.fail(`then ${e.type} seq ${e.seq} is schema-valid: ${problems.join('; ')}`);
    }
    t.same(contractViolations(events), [], 'then every contract guarantee holds');
    t.equal(tracker.activeCalls, 0, 'then no call is left in progress');
    t.equal(tracker.trackedChannels, 0, 'then the normalizer keeps no channel');
    t.equal(state.linkedids.size + state.byName.size, 0, 'then the translation keeps no channel either');
    t.equal(state.missingLinkedidVar, 0, `then every channel carried ${LINKEDID_VAR}`);
    for (const r of records) {
      if (!/^\d+\.\d{6}$/.test(r.timestamp ?? '')) {
        t.fail(`then ${r.event} has an AMI epoch.micro timestamp (got ${r.timestamp})`);
        break;
      }
    }
    for (const e of events) if ('vars' in e) t.notOk('Omlcrmnotexported' in e.vars, `then an unlisted Omlcrm variable never leaks (${e.type})`);

    const expected = ariExpectation(name);
    const calls = [...byCall(events).values()];
    if (expected.calls) {
      t.equal(calls.length, expected.calls.length, 'then it sees the expected number of calls');
      calls.forEach((list, i) => t.same(canonical(list.map(summarize), expected.unordered), expected.calls?.[i], `then call ${i + 1} is the AMI sequence minus ARI's gaps`));
    }
    if (expected.agents) {
      t.same(events.filter((e) => e.type.startsWith('agent.') && e.type !== 'agent.status').map(summarize), expected.agents, 'then the agent events are the AMI ones minus ARI\'s gaps');
    }
    if (name === 'ten-calls') {
      t.equal(calls.length, 10, 'then ten calls');
      for (const l of calls) t.same(l.map(summarize).filter((s) => s.startsWith('call.answered')).length, 1, `call ${l[0]?.callId} was answered once`);
    }
    if (expected.varsFromRinging) {
      for (const list of calls) {
        const from = list.findIndex((e) => e.type === 'call.ringing');
        t.ok(from > 0, 'then the call rang');
        for (const e of list.slice(from)) t.same(e.vars, expected.varsFromRinging, `then ${e.type} carries the CRM variables`);
      }
    }
    if (ARI_DIFFERENCES[name]?.queueUnknown) {
      t.ok(calls.flat().every((e) => e.queue === null), 'then no event names a queue (ARI has no queue events)');
    }

    const again = normalizeAll(translateAll(messages));
    t.same(again.events, events, 'then translating the same recording again gives the same events, ids included');
  });
}

t.test('given channels without the Linkedid variable (ari.conf without channelvars)', async (t) => {
  const messages = load('attended-transfer.jsonl');
  const withVar = normalizeAll(translateAll(messages)).events;
  const stripped = messages.map((m) => {
    const out = structuredClone(m);
    for (const v of Object.values(out)) {
      if (v && typeof v === 'object' && 'channelvars' in v) delete (v as { channelvars?: unknown }).channelvars;
    }
    return out;
  });

  t.test('when the caller looks each new channel\'s Linkedid up (as AriSource does), then the events are the same', async (t) => {
    const state = createTranslateState();
    const records: AmiEvent[] = [];
    stripped.forEach((m, i) => {
      const original = channelOf(messages[i]!);
      if (m.type === 'ChannelCreated' && original?.channelvars) state.linkedids.set(original.id, original.channelvars[LINKEDID_VAR]!);
      records.push(...translate(m, state));
    });
    t.same(normalizeAll(records).events, withVar);
    t.equal(state.missingLinkedidVar, 0, 'then no channel needed the last-resort guess');
    t.equal(state.linkedids.size + state.byName.size, 0, 'then what was looked up is freed with the channels');
  });

  t.test('when nothing is known, then a Local ;2 follows its ;1 but dialled channels split off into calls of their own', async (t) => {
    const state = createTranslateState();
    const records = translateAll(stripped, state);
    const newchannels = records.filter((r) => r.event === 'Newchannel');
    const pair = newchannels.filter((r) => /^Local\/41004201@from-pstn-[0-9a-f]+;[12]$/.test(r.channel ?? ''));
    t.equal(pair.length, 2);
    t.equal(pair[1]?.linkedid, pair[0]?.uniqueid, 'then ;2 takes ;1\'s Linkedid');
    t.ok(state.missingLinkedidVar > 0, 'then the translation counts the channels it had to guess');
    t.ok(byCall(normalizeAll(records).events).size > byCall(withVar).size, 'then the call is split: why ari.conf needs channelvars');
  });
});

t.test('given ARI timestamps', async (t) => {
  t.equal(parseAriTime('2026-11-23T11:19:07.134+0000'), Date.UTC(2026, 10, 23, 11, 19, 7, 134) * 1000);
  t.equal(parseAriTime('2026-11-23T12:19:07.134567+01:00'), Date.UTC(2026, 10, 23, 11, 19, 7, 134) * 1000 + 567);
  t.equal(parseAriTime('yesterday'), null);

  const ch = (id: string) => ({ id, name: `Local/201@agents-0000000${id};1`, state: 'Ring', channelvars: { [LINKEDID_VAR]: 'L1' } });
  const dial = (ts: string, peer: string) => ({ type: 'Dial', timestamp: ts, caller: ch('1'), peer: ch(peer), dialstatus: 'NOANSWER' });

  t.test('when two events of one kind for one channel share a millisecond, then their timestamps differ', async (t) => {
    const state = createTranslateState();
    const a = translate(dial('2026-11-23T11:19:07.134+0000', '2'), state)[0];
    const b = translate(dial('2026-11-23T11:19:07.134+0000', '3'), state)[0];
    t.equal(a?.event, 'DialEnd');
    t.equal(a?.timestamp, '1795432747.134000');
    t.equal(b?.timestamp, '1795432747.134001');
  });

  t.test('when an event is stamped a little earlier than the one before, then its time does not go back', async (t) => {
    const state = createTranslateState();
    translate({ type: 'ChannelStateChange', timestamp: '2026-11-23T11:19:07.140+0000', channel: ch('1') }, state);
    const late = translate({ type: 'ChannelStateChange', timestamp: '2026-11-23T11:19:07.139+0000', channel: ch('2') }, state)[0];
    t.equal(late?.timestamp, '1795432747.140000');
    const jump = translate({ type: 'ChannelStateChange', timestamp: '2026-11-23T11:00:00.000+0000', channel: ch('3') }, state)[0];
    t.equal(jump?.timestamp, '1795431600.000000', 'then a large step back (a clock change) is kept, not clamped');
  });
});

t.test('given ARI messages the normalizer has no use for, then they translate to nothing', async (t) => {
  const state = createTranslateState();
  for (const type of ['StasisStart', 'StasisEnd', 'PlaybackStarted', 'ChannelDtmfReceived', 'EndpointStateChange', 'ChannelTalkingStarted']) {
    t.same(translate({ type, timestamp: '2026-11-23T11:19:07.134+0000', channel: { id: '1.1', name: 'PJSIP/201-00000001' } }, state), [], type);
  }
  t.same(translate({ type: 'ChannelVarset', timestamp: '2026-11-23T11:19:07.134+0000', variable: 'AGENT_201_MODE', value: 'answer' }, state), [], 'a global variable concerns no call');
  t.same(translate({ type: 'Dial', timestamp: '2026-11-23T11:19:07.134+0000' }, state), [], 'a Dial without a peer');
});
