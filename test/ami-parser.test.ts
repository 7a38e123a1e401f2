// The streaming AMI parser (src/sources/ami/parser.ts): the same frames as asterisk-manager's reader plus
// flattenFrame on every recorded trace, however the bytes are cut, and bounded work and memory
// on hostile input.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { flattenFrame, type ManagerFrame } from '../dist/normalizer/ami-event.js';
import { AmiParser, DEFAULT_AMI_LIMITS, type AmiParserItem } from '../dist/sources/ami/parser.js';
import { packageReader } from '../bench/harness/package-reader.js';

const fixtures = new URL('../lab/recordings/', import.meta.url);
const foreign = new URL('./fixtures/foreign/cacofonisk/traces/', import.meta.url);
const traces: Array<[string, Buffer]> = [
  ...readdirSync(fixtures).filter((f) => f.endsWith('.ami')).map((f): [string, Buffer] => [f, readFileSync(new URL(f, fixtures))]),
  ...readdirSync(foreign).filter((f) => f.endsWith('.ami')).map((f): [string, Buffer] => [`foreign/${f}`, readFileSync(new URL(f, foreign))]),
];

/** What asterisk-manager's own reader makes of `bytes`, flattened as the source used to. */
function packageFrames(bytes: Buffer): Array<Record<string, string>> {
  const { manager: m, socket } = packageReader();
  const out: Array<Record<string, string>> = [];
  m.on('rawevent', (item: ManagerFrame) => {
    if (Object.keys(item).length === 0) return; // an empty line between frames: nothing to us
    out.push({ ...flattenFrame(item).event });
  });
  socket.emit('data', bytes.toString('utf8'));
  return out;
}

function frames(items: AmiParserItem[]): Array<Record<string, string>> {
  return items.flatMap((i) => (i.kind === 'frame' ? [{ ...i.event }] : []));
}

function parseAll(bytes: Buffer, chunkSize = bytes.length, limits = {}): AmiParserItem[] {
  const p = new AmiParser(limits);
  const out: AmiParserItem[] = [];
  for (let off = 0; off < bytes.length; off += chunkSize) out.push(...p.feed(bytes.subarray(off, off + chunkSize)));
  return out;
}

t.test('given every recorded trace, when parsed whole, then the frames are those asterisk-manager and flattenFrame made', async (t) => {
  t.ok(traces.length > 40);
  for (const [name, bytes] of traces) {
    const ours = parseAll(bytes);
    t.equal(ours.filter((i) => i.kind === 'dropped').length, 0, `${name}: nothing dropped with the default limits`);
    t.same(frames(ours), packageFrames(bytes), name);
  }
});

t.test('given a recorded trace, when fed one byte at a time or in odd chunks, then the frames are the same', async (t) => {
  const [, bytes] = traces.find(([n]) => n === 'queue-answered.ami')!;
  const whole = frames(parseAll(bytes));
  for (const size of [1, 7, 1000, 65536]) t.same(frames(parseAll(bytes, size)), whole, `chunks of ${size}`);
});

const SAMPLE = Buffer.from(
  [
    'Asterisk Call Manager/7.0.3\r\n',
    'Response: Success\r\nActionID: a1\r\nMessage: Authentication accepted\r\n\r\n',
    'Event: Newchannel\r\nChannel: PJSIP/201-00000001\r\nCallerIDName: 王小明 Ünïcødé\r\nUniqueid: 1.1\r\n\r\n',
    'Event: VarSet\nVariable: Omlcrmcustomerid\nValue: a&b=c#d\nChanVariable: X=1\n\n',
    'Event: VarSet\r\nVariable: a=\r\nValue: \r\n\r\n',
    'Event: TestEvent\r\nState: 1\r\nState: 2\r\nconstructor: c\r\ntoString: s\r\n__proto__: p\r\n\r\n',
    '\r\n\r\n',
    'Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\nline one\r\n\r\nline three\r\n--END COMMAND--\r\n\r\n',
    'no colon here\r\n\r\n',
    'Event: Hangup\r\nUniqueid: 1.1\r\nCause: 16\r\n\r\n',
  ].join(''),
  'utf8',
);

t.test('given frames with CRLF and LF, UTF-8, variables, repeats and a Follows, when cut at every byte boundary, then the frames are the same', async (t) => {
  const whole = parseAll(SAMPLE);
  // Except for the hostile keys: the package made `constructor: c` into [Object, 'c'].
  const hostile = (f: Record<string, string>) => f.event === 'TestEvent';
  t.same(frames(whole).filter((f) => !hostile(f)), packageFrames(SAMPLE).filter((f) => !hostile(f)), 'the same as asterisk-manager');
  const names = frames(whole).map((f) => f.event ?? f.response ?? Object.keys(f)[0]);
  t.same(names, ['Success', 'Newchannel', 'VarSet', 'VarSet', 'TestEvent', 'follows', 'no colon here', 'Hangup']);
  const f = frames(whole);
  t.equal(f[1]!.calleridname, '王小明 Ünïcødé');
  t.same(f[2], { event: 'VarSet', variable: 'Omlcrmcustomerid', value: 'a&b=c#d' });
  t.equal(f[3]!.variable, 'a');
  t.equal(f[4]!.state, '1');
  t.equal(f[4]!.constructor, 'c', 'a header named constructor is a header');
  t.equal(f[4]!.tostring, 's');
  t.equal(Object.getPrototypeOf(f[4]), Object.prototype, '__proto__ never sets the prototype');
  t.same((whole[4] as { repeated: string[] }).repeated, ['state']);
  t.same(f[5], { response: 'follows', content: 'Response: Follows\nPrivilege: Command\nActionID: c1\nline one\n\nline three', actionid: 'c1' });
  for (let cut = 1; cut < SAMPLE.length; cut++) {
    const p = new AmiParser();
    const got = [...p.feed(SAMPLE.subarray(0, cut)), ...p.feed(SAMPLE.subarray(cut))];
    if (JSON.stringify(got) !== JSON.stringify(whole)) {
      t.same(got, whole, `cut at byte ${cut}`);
      return;
    }
  }
  t.pass(`the same frames at all ${SAMPLE.length - 1} cuts`);
});

const FRAME = 'Event: Hangup\r\nUniqueid: 1.1\r\nCause: 16\r\n\r\n';

t.test('given limits, when a frame breaks one, then it is reported once, skipped to its end, and the next frame is delivered', async (t) => {
  const limits = { maxFrameBytes: 200, maxHeaders: 5, maxLineBytes: 50 };
  const cases: Array<[string, string, string]> = [
    ['line_too_long', `Event: UserEvent\r\nData: ${'x'.repeat(60)}\r\nMore: 1\r\n\r\n`, 'a long line'],
    ['too_many_headers', `Event: UserEvent\r\n${'H: 1\r\n'.repeat(20)}\r\n`, 'many headers'],
    ['frame_too_large', `Event: UserEvent\r\n${`H: ${'y'.repeat(45)}\r\n`.repeat(4)}\r\n`, 'a large frame'],
  ];
  for (const [reason, bad, what] of cases) {
    for (const size of [1, 3, 10_000]) {
      const items = parseAll(Buffer.from(FRAME + bad + FRAME), size, limits);
      t.same(
        items.map((i) => (i.kind === 'dropped' ? `dropped ${i.reason} ${i.first}` : i.event.event)),
        ['Hangup', `dropped ${reason} UserEvent`, 'Hangup'],
        `${what}, chunks of ${size}`,
      );
    }
  }
});

t.test('given 5 MB without a newline, then memory stays within maxLineBytes and the frame after the next blank line is delivered', async (t) => {
  const p = new AmiParser();
  const out: AmiParserItem[] = [...p.feed(Buffer.from('Event: UserEvent\r\nData: '))];
  const chunk = Buffer.alloc(64 * 1024, 'z');
  let most = 0;
  for (let i = 0; i < 80; i++) {
    out.push(...p.feed(chunk));
    most = Math.max(most, p.buffered);
  }
  out.push(...p.feed(Buffer.from(`\r\n\r\n${FRAME}`)));
  t.ok(most <= DEFAULT_AMI_LIMITS.maxLineBytes + 1, `at most ${most} bytes held`);
  t.same(out.map((i) => (i.kind === 'dropped' ? i.reason : i.event.event)), ['line_too_long', 'Hangup']);
  t.equal(p.buffered, 0);
});

t.test('given 200,000 headers in one frame, then it is dropped without decoding them and the next frame is delivered', async (t) => {
  const bad = Buffer.from(`Event: UserEvent\r\n${'Header: value\r\n'.repeat(200_000)}\r\n${FRAME}`);
  const items = parseAll(bad, 64 * 1024);
  t.same(items.map((i) => (i.kind === 'dropped' ? i.reason : i.event.event)), ['too_many_headers', 'Hangup']);
});

t.test('given a Response: Follows without --END COMMAND--, when it breaks a limit, then it is dropped and the frames after its first blank line are delivered', async (t) => {
  const limits = { maxFrameBytes: 2000, maxHeaders: 512, maxLineBytes: 1000 };
  const events = Array.from({ length: 60 }, (_, i) => `Event: Hangup\r\nUniqueid: ${i}.1\r\nCause: 16\r\n\r\n`).join('');
  const input = Buffer.from(`Response: Follows\r\nActionID: c1\r\noutput\r\n\r\n${events}`);
  for (const size of [1, 100, input.length]) {
    const items = parseAll(input, size, limits);
    t.same(items[0], { kind: 'dropped', reason: 'frame_too_large', limit: 2000, first: 'Follows', follows: true }, `chunks of ${size}`);
    t.same(
      frames(items).map((f) => f.uniqueid),
      Array.from({ length: 60 }, (_, i) => `${i}.1`),
      'then every event behind it arrives, in order',
    );
  }
  // Without a blank line in it, everything up to the next blank line is its own.
  const noBlank = parseAll(Buffer.from(`Response: Follows\r\n${'out\r\n'.repeat(600)}\r\n${FRAME}`));
  t.same(noBlank.map((i) => (i.kind === 'dropped' ? i.reason : i.event.event)), ['too_many_headers', 'Hangup']);
  // A Follows inside what is read again is an ordinary frame there: each byte is read again at most once.
  const nested = parseAll(Buffer.from(`Response: Follows\r\n\r\n${'Response: Follows\r\nx: 1\r\n\r\n'.repeat(10)}${events}`), 64, limits);
  t.equal(nested.filter((i) => i.kind === 'dropped').length, 1);
  t.same(frames(nested).slice(0, 10), Array.from({ length: 10 }, () => ({ response: 'Follows', x: '1' })));
  t.equal(frames(nested).filter((f) => f.event === 'Hangup').length, 60);
});
