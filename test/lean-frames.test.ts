// The AMI reader keeps only the headers the normalizer reads of the busiest events (HEADERS_READ in
// src/normalizer/ami-events.ts, AmiParser's `lean`). These tests prove that changes nothing the
// bridge produces: every recording normalizes to the same events, in the same order, with the same
// ids, read either way; and the reader reports the same repeated headers and drops.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { AmiParser, type AmiParserItem } from '../dist/sources/ami/parser.js';
import { HEADERS_READ } from '../dist/normalizer/ami-events.js';
import { createTracker, step } from '../dist/normalizer/index.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

const dir = new URL('../lab/recordings/', import.meta.url);
const RECORDINGS = readdirSync(dir).filter((f) => f.endsWith('.ami'));

/** A recording read in 64 KB pieces, and in pieces of 7 bytes (lines cut across reads). */
function read(trace: Buffer, lean: boolean, piece: number): AmiParserItem[] {
  const parser = lean ? new AmiParser({}, HEADERS_READ) : new AmiParser();
  const out: AmiParserItem[] = [];
  for (let off = 0; off < trace.length; off += piece) out.push(...parser.feed(trace.subarray(off, off + piece)));
  return out;
}

function normalized(items: AmiParserItem[]): BridgeEvent[] {
  let n = 0;
  // Ids from a counter, so that unique ids (events without a Timestamp) compare too.
  const tracker = createTracker({ ...TEST_NORMALIZER, ids: (seed) => `${seed ?? 'unique'}#${n++}` });
  const out: BridgeEvent[] = [];
  let at = 0;
  for (const item of items) {
    at += 1000;
    if (item.kind === 'frame' && item.event.event) out.push(...step(tracker, { kind: 'event', event: item.event, receivedAt: at }));
  }
  return out;
}

t.test('given every recording, when read keeping only the headers the normalizer reads of the busiest events, then it normalizes to exactly the same events', async (t) => {
  let lean = 0;
  let frames = 0;
  for (const name of RECORDINGS) {
    const trace = readFileSync(new URL(name, dir));
    for (const piece of [64 * 1024, 7]) {
      const full = read(trace, false, piece);
      const some = read(trace, true, piece);
      t.equal(some.length, full.length, `${name} (${piece}-byte reads): as many frames`);
      for (let i = 0; i < full.length; i++) {
        const f = full[i]!;
        const s = some[i]!;
        if (f.kind !== 'frame' || s.kind !== 'frame') {
          t.same(s, f, `${name}: item ${i} the same`);
          continue;
        }
        frames++;
        const keep = HEADERS_READ.get((f.event.event ?? '').toLowerCase());
        // A lean frame: the headers kept, with the same values; the rest, untouched.
        const expected = keep ? Object.fromEntries(Object.entries(f.event).filter(([k]) => keep.has(k))) : f.event;
        if (keep && Object.keys(expected).length < Object.keys(f.event).length) lean++;
        if (JSON.stringify(s.event) !== JSON.stringify(expected) || JSON.stringify(s.repeated) !== JSON.stringify(f.repeated)) {
          t.fail(`${name}: frame ${i} (${String(f.event.event)}) differs`, { found: s, wanted: { ...f, event: expected } });
        }
      }
      t.same(normalized(some), normalized(full), `${name} (${piece}-byte reads): the same events`);
    }
  }
  t.ok(lean > frames / 4, `then the lean reading was used (${lean} of ${frames} frames)`);
});

t.test('given a lean event repeating a header it does not keep, then the repeat is reported as when every header is kept', async (t) => {
  const frame = Buffer.from(
    'Event: TestEvent\r\nState: a\r\nUniqueid: 1.1\r\nState: b\r\nVariable: x\r\nVariable: y\r\nChanVariable: c=1\r\nChanVariable: c=2\r\n' +
      `${Array.from({ length: 40 }, (_, i) => `H${i}: v\r\nH${i}: w\r\n`).join('')}constructor: 1\r\nconstructor: 2\r\n__proto__: 1\r\n__proto__: 2\r\n\r\n`,
  );
  const full = new AmiParser().feed(frame);
  const some = new AmiParser({}, HEADERS_READ).feed(frame);
  t.match(full, [{ kind: 'frame', repeated: ['state', ...Array.from({ length: 40 }, (_, i) => `h${i}`), 'constructor'] }]);
  t.same(some, [{ kind: 'frame', event: { event: 'TestEvent', uniqueid: '1.1' }, repeated: full[0]?.kind === 'frame' ? full[0].repeated : null }]);
});

t.test('given a lean event over a limit, then it is dropped as when every header is kept', async (t) => {
  const frame = Buffer.from(`Event: Newexten\r\n${'Junk: 0123456789\r\n'.repeat(600)}\r\nEvent: Newexten\r\nUniqueid: 2.2\r\nAppData: x\r\n\r\n`);
  const some = new AmiParser({}, HEADERS_READ).feed(frame);
  t.same(new AmiParser().feed(frame).map((i) => i.kind), ['dropped', 'frame']);
  t.match(some, [{ kind: 'dropped', reason: 'too_many_headers', first: 'Newexten' }, { kind: 'frame', event: { event: 'Newexten', uniqueid: '2.2' } }]);
  t.equal(some[1]?.kind === 'frame' ? some[1].event.appdata : 'missing', undefined, 'then only the headers read are kept');
});
