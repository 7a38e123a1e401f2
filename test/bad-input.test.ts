// Hostile and broken AMI input: the bridge keeps going, says what is wrong, and loses no event
// that arrived intact. Inputs are built from a real recorded trace with faults injected.
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { BridgeEvent, CallEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { contractViolations } from './helpers/contract.js';
import { replayTrace } from './helpers/replay.js';

const trace = readFileSync(new URL('../lab/recordings/queue-answered.ami', import.meta.url));
const SEP = Buffer.from('\r\n\r\n');

/** Splits a trace into its greeting line and its frames (each with its terminating blank line). */
function frames(buf: Buffer): { greeting: Buffer; frames: Buffer[] } {
  const eol = buf.indexOf('\r\n') + 2;
  const out: Buffer[] = [];
  let pos = eol;
  while (pos < buf.length) {
    const end = buf.indexOf(SEP, pos);
    if (end < 0) break;
    out.push(buf.subarray(pos, end + 4));
    pos = end + 4;
  }
  return { greeting: buf.subarray(0, eol), frames: out };
}

function rebuild(greeting: Buffer, parts: Buffer[]): Buffer {
  return Buffer.concat([greeting, ...parts]);
}

function schemaProblems(events: BridgeEvent[]): string[] {
  return events.flatMap((e) => validateEvent(e).map((p) => `${e.type}: ${p}`));
}

t.test('given a clean trace as baseline', async (t) => {
  const clean = await replayTrace(trace);
  t.ok(clean.events.length >= 7);
  const { greeting, frames: fr } = frames(trace);

  t.test('when garbage and unknown frames are mixed in, then the same events come out and the garbage is reported', async (t) => {
    const junk = [
      'this line has no colon\r\n\r\n',
      ':::\r\n\r\n',
      'Event: NoSuchEventEver\r\nFoo: bar\r\n\r\n',
      'Event: Hangup\r\nUniqueid: 999.999\r\nLinkedid: 999.999\r\nChannel: PJSIP/ghost-00000001\r\nCause: 16\r\n\r\n',
      'Event: DialBegin\r\nChannel: PJSIP/ghost-00000002\r\nUniqueid: 998.1\r\nDestChannel: PJSIP/201-0001\r\nDestUniqueid: 998.2\r\n\r\n',
      'Event: VarSet\r\nUniqueid: 997.1\r\nVariable: Omlcrmcustomerid\r\nValue: 666\r\n\r\n',
      'Response: Success\r\nActionID: not-ours\r\nMessage: stray\r\n\r\n',
    ].map((s) => Buffer.from(s, 'latin1'));
    const parts: Buffer[] = [];
    fr.forEach((f, i) => {
      parts.push(f);
      if (i % 5 === 0) parts.push(junk[i % junk.length]!);
    });
    const r = await replayTrace(rebuild(greeting, parts));
    t.same(r.events, clean.events, 'then every event is the same as without the garbage');
    t.equal(r.tracker.trackedChannels, 0, 'then events for unknown calls leave no state behind');
    t.ok(r.logs.some((l) => String(l.msg).includes('neither an event nor a response')), 'then the garbage is named in a warning');
  });

  t.test('when the stream is cut in the middle of a frame, then everything before the cut is delivered', async (t) => {
    const cutAt = Math.floor(fr.length * 0.6);
    const cut = rebuild(greeting, [...fr.slice(0, cutAt), fr[cutAt]!.subarray(0, Math.floor(fr[cutAt]!.length / 2))]);
    const whole = rebuild(greeting, fr.slice(0, cutAt));
    const r = await replayTrace(cut);
    const ref = await replayTrace(whole);
    t.same(r.events, ref.events, 'then the events are exactly those of the frames that arrived whole');
    t.same(schemaProblems(r.events), []);
  });

  t.test('when a frame carries a 1 MB header line, then it is handled and nothing else changes', async (t) => {
    const big = Buffer.from(`Event: UserEvent\r\nUserEvent: big\r\nData: ${'x'.repeat(1024 * 1024)}\r\n\r\n`, 'latin1');
    const parts = [...fr.slice(0, 10), big, ...fr.slice(10)];
    const r = await replayTrace(rebuild(greeting, parts), { chunkSize: 64 * 1024 });
    t.same(r.events, clean.events);
  });

  t.test('when a caller name is hostile (separators, non-ASCII, invalid UTF-8), then it arrives verbatim or replaced, never breaking anything', async (t) => {
    const hostile = 'a&b=c#d ?x=1 Ünïcødé 名前 <script>';
    const text = trace.toString('utf8').split('Acme & Sons').join(hostile);
    const r = await replayTrace(Buffer.from(text, 'utf8'));
    const calls = r.events.filter((e): e is CallEvent => e.type.startsWith('call.'));
    t.ok(calls.length > 0);
    for (const e of calls) t.equal(e.caller.name, hostile, `${e.type} carries the name verbatim`);
    t.same(JSON.parse(JSON.stringify(calls[0])).caller.name, hostile, 'then it survives JSON round trips');
    t.same(schemaProblems(r.events), []);

    const bad = Buffer.from(trace.toString('latin1').split('Acme & Sons').join('Acme \xff\xfe Sons'), 'latin1');
    const r2 = await replayTrace(bad, { chunkSize: 7 });
    const names = new Set(r2.events.filter((e): e is CallEvent => e.type.startsWith('call.')).map((e) => e.caller.name));
    t.same([...names], ['Acme \ufffd\ufffd Sons'], 'then invalid bytes become U+FFFD and the events still flow');
    t.equal(r2.events.length, clean.events.length);
    t.same(contractViolations(r2.events), []);
  });
});
