// Hostile frames over a real TCP connection (the loopback AMI server of src/sources/ami/replay-server.ts)
// into the real AmiSource: the reader drops what breaks a limit and says why, the event loop
// stays free while it reads, and the well-formed frames after the bad ones arrive.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import t from 'tap';
import { startReplayServer } from '../dist/sources/ami/replay-server.js';
import { AmiSource } from '../dist/sources/ami/source.js';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import { BridgeMetrics } from '../dist/ops/metrics.js';

const GREETING = 'Asterisk Call Manager/7.0.3\r\n';
/** Well-formed events, numbered, to find behind the bad input. */
const after = (n: number) => Array.from({ length: n }, (_, i) => `Event: UserEvent\r\nUserEvent: after\r\nSeq: ${i}\r\n\r\n`).join('');
const before = 'Event: UserEvent\r\nUserEvent: before\r\nSeq: 0\r\n\r\n';

interface Run {
  events: AmiEvent[];
  dropped: string[];
  warnings: Array<Record<string, unknown>>;
  /** The longest the event loop was blocked while the source read it all (ms). */
  maxDelayMs: number;
  metrics: string;
}

async function play(trace: Buffer): Promise<Run> {
  const srv = await startReplayServer(trace);
  const warnings: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  const source = new AmiSource({ host: srv.host, port: srv.port, username: 'x', secret: 'y', reconnect: false, actionTimeoutMs: 5000, resync: false, log });
  const metrics = new BridgeMetrics({ callsInProgress: () => 0, sseClients: () => 0, outbox: () => null });
  const events: AmiEvent[] = [];
  const dropped: string[] = [];
  // As src/bridge.ts wires it (the source has no dropped$ without the limits).
  (source as Partial<AmiSource>).dropped$?.subscribe((d) => {
    dropped.push(d.reason);
    metrics.amiFrameDropped(d.reason);
  });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const done = new Promise<void>((resolve) => source.input$.subscribe({ next: (i) => i.kind === 'event' && events.push(i.event), complete: resolve }));
  delay.enable();
  await source.start();
  await done;
  delay.disable();
  await srv.close();
  return { events, dropped, warnings, maxDelayMs: delay.max / 1e6, metrics: (await metrics.render()).body };
}

function seqs(events: AmiEvent[]): string[] {
  return events.filter((e) => e.userevent === 'after').map((e) => e.seq ?? '?');
}

const range = (n: number) => Array.from({ length: n }, (_, i) => String(i));
// Loose on purpose (a shared, loaded machine): asterisk-manager's reader blocked it for over a minute.
const RESPONSIVE_MS = 2000;

t.test('given a frame with 200,000 headers, when the source reads it, then the event loop stays free, the frame is dropped with a warning and the next frames arrive', async (t) => {
  const flood = `Event: UserEvent\r\nUserEvent: flood\r\n${'X-Header: value\r\n'.repeat(200_000)}\r\n`;
  const r = await play(Buffer.from(GREETING + before + flood + after(5)));
  t.ok(r.maxDelayMs < RESPONSIVE_MS, `the event loop was never blocked long (longest: ${Math.round(r.maxDelayMs)} ms)`);
  t.same(seqs(r.events), range(5), 'then the frames after it arrive');
  t.notOk(r.events.some((e) => e.userevent === 'flood'), 'then the flood is not delivered');
  t.same(r.dropped, ['too_many_headers']);
  const warn = r.warnings.find((w) => String(w.msg).startsWith('AMI frame dropped'));
  t.match(warn, { reason: 'too_many_headers', limit: 512, frame: 'UserEvent', msg: /more than 512 headers \(pbx\.ami\.maxHeaders\)/ });
  t.match(r.metrics, /crm_bridge_ami_frames_dropped_total\{reason="too_many_headers"\} 1/);
});

t.test('given 5 MB without a newline, when the source reads it, then the line is dropped as too long and the next frames arrive', async (t) => {
  const r = await play(Buffer.from(`${GREETING}${before}Event: UserEvent\r\nData: ${'z'.repeat(5 * 1024 * 1024)}\r\n\r\n${after(5)}`));
  t.ok(r.maxDelayMs < RESPONSIVE_MS, `the event loop was never blocked long (longest: ${Math.round(r.maxDelayMs)} ms)`);
  t.same(seqs(r.events), range(5));
  t.same(r.dropped, ['line_too_long']);
  t.ok(r.warnings.some((w) => w.reason === 'line_too_long' && /longer than 8192 bytes \(pbx\.ami\.maxLineBytes\)/.test(String(w.msg))));
});

t.test('given a Response: Follows that never ends, when events follow it, then it is dropped and every event behind it arrives', async (t) => {
  // More than maxHeaders (512) lines behind it: that is where the Follows gives up.
  const r = await play(Buffer.from(`${GREETING}${before}Response: Follows\r\nPrivilege: Command\r\nsome output\r\n\r\n${after(2000)}`));
  t.same(seqs(r.events), range(2000), 'then all 2000 events behind it arrive, in order');
  t.same(r.dropped, ['too_many_headers']);
  t.ok(r.warnings.some((w) => w.frame === 'Follows' && /--END COMMAND--/.test(String(w.msg))));
});

t.test('given many bad frames in a row, then each is counted but the warning is not repeated for each', async (t) => {
  const bad = `Event: UserEvent\r\n${'H: 1\r\n'.repeat(600)}\r\n`;
  const r = await play(Buffer.from(GREETING + bad.repeat(50) + after(3)));
  t.equal(r.dropped.length, 50);
  t.equal(r.warnings.filter((w) => String(w.msg).startsWith('AMI frame dropped')).length, 1, 'one warning line');
  t.match(r.metrics, /crm_bridge_ami_frames_dropped_total\{reason="too_many_headers"\} 50/);
  t.same(seqs(r.events), range(3));
});
