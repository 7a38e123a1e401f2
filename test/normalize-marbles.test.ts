// The normalizer stage, `normalize` in src/normalizer/index.ts, as marble diagrams (RxJS
// TestScheduler): what goes in at a frame comes out at that frame, in order; an input that makes
// the tracker throw goes to ctx.onError and the stream goes on; completion, errors and
// unsubscription pass through.
//
// The inputs are real frames recorded from Asterisk 22 (lab/recordings/direct-answered.ami) and
// the tracker is the real one. The expected events are whatever a twin tracker makes of the same
// inputs, so these tests hold for any call model: they test the operator, not the tracker.
import fs from 'node:fs';
import t, { type Test } from 'tap';
import { TestScheduler } from 'rxjs/testing';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { createTracker, nameBasedId, normalize, step, type NormalizerInput } from '../dist/normalizer/index.js';
import type { CallTracker } from '../dist/normalizer/tracker.js';

// An inbound call to agent 201, answered, then hung up: the caller's Local channel pair (a, b),
// the agent's (c, d), the dial (e), the answer (f) and the four hang-ups (g-j), read from the
// fixture by their Timestamps (each unique there); the other frames of the call are left out.
const FIXTURE = fs.readFileSync(new URL('../lab/recordings/direct-answered.ami', import.meta.url), 'latin1');
const STAMPS: Record<string, string> = {
  a: '1795423805.239091',
  b: '1795423805.239168',
  c: '1795423805.239795',
  d: '1795423805.239804',
  e: '1795423805.239850',
  f: '1795423806.242745',
  g: '1795423809.246991',
  h: '1795423809.247469',
  i: '1795423809.247747',
  j: '1795423809.247873',
};

/** A recorded frame as asterisk-manager and the AMI source hand it on: keys lower-cased without spaces. */
function recordedFrame(timestamp: string): AmiEvent {
  const text = FIXTURE.split('\r\n\r\n').find((f) => f.includes(`\r\nTimestamp: ${timestamp}\r\n`));
  if (!text) throw new Error(`no frame with Timestamp ${timestamp} in direct-answered.ami`);
  const event: Record<string, string> = {};
  for (const line of text.trim().split('\r\n')) {
    const colon = line.indexOf(':');
    event[line.slice(0, colon).replace(/ /g, '').toLowerCase()] = line.slice(colon + 1).trim();
  }
  return event;
}

const T0 = 1795423805000;
const INPUTS: Record<string, NormalizerInput> = Object.fromEntries(
  Object.entries(STAMPS).map(([key, ts], i) => [key, { kind: 'event', event: recordedFrame(ts), receivedAt: T0 + i * 100 }]),
);
const KEYS = Object.keys(STAMPS);

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
