// The normalizer stage, `normalize` in src/normalizer/index.ts, as marble diagrams (RxJS
// TestScheduler): what goes in at a frame comes out at that frame, in order; an input that makes
// the tracker throw goes to ctx.onError and the stream goes on; completion, errors and
// unsubscription pass through.
//
// The inputs are real frames recorded from Asterisk 22 (test/fixtures/direct-answered.ami) and
// the tracker is the real one. The expected events are whatever a twin tracker makes of the same
// inputs, so these tests hold for any call model: they test the operator, not the tracker.
import t, { type Test } from 'tap';
import { TestScheduler } from 'rxjs/testing';
import type { AmiEvent } from '../dist/ami/frame.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { createTracker, nameBasedId, normalize, step, type NormalizerInput } from '../dist/normalizer/index.js';
import type { CallTracker } from '../dist/normalizer/tracker.js';

// An inbound call to agent 201, answered, then hung up: the caller's Local channel pair (a, b),
// the agent's (c, d), the dial (e), the answer (f) and the four hang-ups (g-j). Copied from the
// fixture (CRLF line ends dropped); the other frames of the call are left out.
const FRAMES: Record<string, string> = {
  a: `
Event: Newchannel
Privilege: call,all
Timestamp: 1795423805.239091
Channel: Local/41004201@from-pstn-00000009;1
ChannelState: 0
ChannelStateDesc: Down
CallerIDNum: <unknown>
CallerIDName: <unknown>
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: en
AccountCode:
Context: from-pstn
Exten: 41004201
Priority: 1
Uniqueid: 1795423805.18
Linkedid: 1795423805.18
`,
  b: `
Event: Newchannel
Privilege: call,all
Timestamp: 1795423805.239168
Channel: Local/41004201@from-pstn-00000009;2
ChannelState: 4
ChannelStateDesc: Ring
CallerIDNum: <unknown>
CallerIDName: <unknown>
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: en
AccountCode:
Context: from-pstn
Exten: 41004201
Priority: 1
Uniqueid: 1795423805.19
Linkedid: 1795423805.18
`,
  c: `
Event: Newchannel
Privilege: call,all
Timestamp: 1795423805.239795
Channel: Local/201@agents-0000000a;1
ChannelState: 0
ChannelStateDesc: Down
CallerIDNum: <unknown>
CallerIDName: <unknown>
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: en
AccountCode:
Context: agents
Exten: 201
Priority: 1
Uniqueid: 1795423805.20
Linkedid: 1795423805.18
`,
  d: `
Event: Newchannel
Privilege: call,all
Timestamp: 1795423805.239804
Channel: Local/201@agents-0000000a;2
ChannelState: 4
ChannelStateDesc: Ring
CallerIDNum: <unknown>
CallerIDName: <unknown>
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: en
AccountCode:
Context: agents
Exten: 201
Priority: 1
Uniqueid: 1795423805.21
Linkedid: 1795423805.18
`,
  e: `
Event: DialBegin
Privilege: call,all
Timestamp: 1795423805.239850
Channel: Local/41004201@from-pstn-00000009;2
ChannelState: 4
ChannelStateDesc: Ring
CallerIDNum: +4915112345678
CallerIDName: Acme & Sons
ConnectedLineNum: +4915112345678
ConnectedLineName: Acme & Sons
Language: en
AccountCode:
Context: from-pstn
Exten: 41004201
Priority: 1
Uniqueid: 1795423805.19
Linkedid: 1795423805.18
DestChannel: Local/201@agents-0000000a;1
DestChannelState: 0
DestChannelStateDesc: Down
DestCallerIDNum: 41004201
DestCallerIDName: Acme & Sons
DestConnectedLineNum: +4915112345678
DestConnectedLineName: Acme & Sons
DestLanguage: en
DestAccountCode:
DestContext: agents
DestExten: 41004201
DestPriority: 1
DestUniqueid: 1795423805.20
DestLinkedid: 1795423805.18
DialString: 201@agents
`,
  f: `
Event: DialEnd
Privilege: call,all
Timestamp: 1795423806.242745
Channel: Local/41004201@from-pstn-00000009;2
ChannelState: 4
ChannelStateDesc: Ring
CallerIDNum: +4915112345678
CallerIDName: Acme & Sons
ConnectedLineNum: +4915112345678
ConnectedLineName: Acme & Sons
Language: en
AccountCode:
Context: from-pstn
Exten: 41004201
Priority: 1
Uniqueid: 1795423805.19
Linkedid: 1795423805.18
DestChannel: Local/201@agents-0000000a;1
DestChannelState: 6
DestChannelStateDesc: Up
DestCallerIDNum: 41004201
DestCallerIDName: Acme & Sons
DestConnectedLineNum: +4915112345678
DestConnectedLineName: Acme & Sons
DestLanguage: en
DestAccountCode:
DestContext: agents
DestExten:
DestPriority: 1
DestUniqueid: 1795423805.20
DestLinkedid: 1795423805.18
DialStatus: ANSWER
`,
  g: `
Event: Hangup
Privilege: call,all
Timestamp: 1795423809.246991
Channel: Local/41004201@from-pstn-00000009;1
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: +4915112345678
CallerIDName: Acme & Sons
ConnectedLineNum: +4915112345678
ConnectedLineName: Acme & Sons
Language: en
AccountCode:
Context: caller
Exten: wait
Priority: 2
Uniqueid: 1795423805.18
Linkedid: 1795423805.18
Cause: 16
Cause-txt: Normal Clearing
`,
  h: `
Event: Hangup
Privilege: call,all
Timestamp: 1795423809.247469
Channel: Local/41004201@from-pstn-00000009;2
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: +4915112345678
CallerIDName: Acme & Sons
ConnectedLineNum: +4915112345678
ConnectedLineName: Acme & Sons
Language: en
AccountCode:
Context: from-pstn
Exten: 41004201
Priority: 1
Uniqueid: 1795423805.19
Linkedid: 1795423805.18
Cause: 16
Cause-txt: Normal Clearing
`,
  i: `
Event: Hangup
Privilege: call,all
Timestamp: 1795423809.247747
Channel: Local/201@agents-0000000a;1
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: 41004201
CallerIDName: Acme & Sons
ConnectedLineNum: +4915112345678
ConnectedLineName: Acme & Sons
Language: en
AccountCode:
Context: agents
Exten:
Priority: 1
Uniqueid: 1795423805.20
Linkedid: 1795423805.18
Cause: 16
Cause-txt: Normal Clearing
`,
  j: `
Event: Hangup
Privilege: call,all
Timestamp: 1795423809.247873
Channel: Local/201@agents-0000000a;2
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: +4915112345678
CallerIDName: Acme & Sons
ConnectedLineNum: 41004201
ConnectedLineName: Acme & Sons
Language: en
AccountCode:
Context: agents
Exten: 201
Priority: 7
Uniqueid: 1795423805.21
Linkedid: 1795423805.18
Cause: 16
Cause-txt: Normal Clearing
`,
};

/** A frame as asterisk-manager and the AMI source hand it on: keys lower-cased without spaces. */
function parseFrame(text: string): AmiEvent {
  const event: Record<string, string> = {};
  for (const line of text.trim().split('\n')) {
    const colon = line.indexOf(':');
    event[line.slice(0, colon).replace(/ /g, '').toLowerCase()] = line.slice(colon + 1).trim();
  }
  return event;
}

const T0 = 1795423805000;
const INPUTS: Record<string, NormalizerInput> = Object.fromEntries(
  Object.entries(FRAMES).map(([key, text], i) => [key, { kind: 'event', event: parseFrame(text), receivedAt: T0 + i * 100 }]),
);
const KEYS = Object.keys(FRAMES);

/** A real tracker whose event ids are repeatable, so that two of them fed alike make equal events. */
function tracker(): CallTracker {
  let unseeded = 0;
  return createTracker({
    server: 'pbx1',
    inboundContexts: ['from-pstn'],
    agentContexts: ['agents'],
    extensionPattern: '^[0-9]{2,6}$',
    agents: [],
    ids: (seed) => (seed === null ? `unseeded-${++unseeded}` : nameBasedId(seed)),
  });
}

/** `tracker`, except that handling `bad` throws `err` before the tracker sees it. */
function poisoned(tracker: CallTracker, bad: NormalizerInput, err: Error): CallTracker {
  const handle = tracker.handle.bind(tracker);
  tracker.handle = (event, receivedAt) => {
    if (bad.kind === 'event' && event === bad.event) throw err;
    return handle(event, receivedAt);
  };
  return tracker;
}

// Frames between two inputs: room for a group of up to GAP - 2 events at one frame.
const GAP = 10;

/** `a 9ms b 9ms c 9ms |`: one token every GAP frames (an empty token: nothing then), then `end`. */
function spaced(tokens: string[], end: string): string {
  return `${tokens.map((tok) => (tok === '' ? `${GAP}ms` : `${tok} ${GAP - tok.length}ms`)).join(' ')} ${end}`;
}

/**
 * The output marble for `keys` sent one every GAP frames: at each input's frame, the events a
 * twin tracker returns for it, as one group in the order returned (nothing when it throws).
 */
function expected(keys: string[], end: string, twin: CallTracker = tracker()): { marble: string; values: Record<string, BridgeEvent>; groups: BridgeEvent[][] } {
  const values: Record<string, BridgeEvent> = {};
  let next = 0;
  const groups = keys.map((key) => {
    try {
      return step(twin, INPUTS[key]!);
    } catch {
      return [];
    }
  });
  const tokens = groups.map((events) => {
    if (events.length > GAP - 2) throw new Error(`GAP too small for ${events.length} events`);
    const names = events.map((event) => {
      const name = String.fromCharCode(65 + next++); // A, B, C…: no marble syntax among them
      values[name] = event;
      return name;
    });
    return names.length > 1 ? `(${names.join('')})` : names.join('');
  });
  return { marble: spaced(tokens, end), values, groups };
}

function scheduler(t: Test): TestScheduler {
  return new TestScheduler((actual, wanted) => t.same(actual, wanted));
}

type Failure = { err: unknown; input: NormalizerInput };

t.test('given the frames of an answered call, when normalized, then each input\'s events come out at its frame, in the order the tracker made them, and completion follows the input', (t) => {
  const failures: Failure[] = [];
  const want = expected(KEYS, '|');
  t.ok(want.groups.flat().length > 0, 'the call makes events (else this test would prove nothing)');
  scheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const input$ = cold(spaced(KEYS, '|'), INPUTS);
    const output$ = input$.pipe(normalize({ tracker: tracker(), onError: (err, input) => failures.push({ err, input }) }));
    expectObservable(output$).toBe(want.marble, want.values);
    expectSubscriptions(input$.subscriptions).toBe(`^ ${GAP * KEYS.length - 1}ms !`);
  });
  t.same(failures, []);
  t.end();
});

t.test('given an input that makes the tracker throw, when normalized, then ctx.onError gets the error with that input, and the inputs after it still come out', (t) => {
  const boom = new Error('tracker bug');
  const bad = INPUTS.c!;
  const failures: Failure[] = [];
  const want = expected(KEYS, '|', poisoned(tracker(), bad, boom));
  t.ok(want.groups.slice(KEYS.indexOf('c') + 1).flat().length > 0, 'inputs after the failing one make events');
  scheduler(t).run(({ cold, expectObservable }) => {
    const output$ = cold(spaced(KEYS, '|'), INPUTS).pipe(normalize({ tracker: poisoned(tracker(), bad, boom), onError: (err, input) => failures.push({ err, input }) }));
    expectObservable(output$).toBe(want.marble, want.values);
  });
  t.equal(failures.length, 1, 'then onError is called once');
  t.equal(failures[0]?.err, boom, 'with the error thrown');
  t.equal(failures[0]?.input, bad, 'and the input that caused it');
  t.end();
});

t.test('given the input fails, when normalized, then the output fails with the same error after the events before it, and onError is not called', (t) => {
  const lost = new Error('AMI source failed');
  const keys = KEYS.slice(0, 6);
  const failures: Failure[] = [];
  const want = expected(keys, '#');
  scheduler(t).run(({ cold, expectObservable }) => {
    const output$ = cold(spaced(keys, '#'), INPUTS, lost).pipe(normalize({ tracker: tracker(), onError: (err, input) => failures.push({ err, input }) }));
    expectObservable(output$).toBe(want.marble, want.values, lost);
  });
  t.same(failures, [], 'a failing stream is not a failing input');
  t.end();
});

t.test('given the output is unsubscribed mid-call, then the input is unsubscribed at the same frame and nothing more comes out', (t) => {
  const stopAt = GAP * 5 + 5;
  const want = expected(KEYS.slice(0, 6), '');
  scheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const input$ = cold(spaced(KEYS, '|'), INPUTS);
    expectObservable(input$.pipe(normalize({ tracker: tracker(), onError: () => undefined })), `^ ${stopAt - 1}ms !`).toBe(want.marble, want.values);
    expectSubscriptions(input$.subscriptions).toBe(`^ ${stopAt - 1}ms !`);
  });
  t.end();
});
