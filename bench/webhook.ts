// Webhook benchmark: normalized events/s delivered by the webhook sink (durable outbox) to a local
// receiver, and latency from the AMI frame written to the HTTP request arriving.
//   npm run bench:webhook [-- options]       method and options: BENCHMARKS.md#method-webhook
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Stamper, startAmiServer } from './harness/ami.js';
import { waitUntil } from './harness/feed.js';
import { requireBuild, ROOT } from './harness/env.js';
import { startReceiver, type ReceiverDump } from './harness/receiver.js';
import { endHead, readOptions, profileIn, resultsHead, writeResults } from './harness/report.js';
import { daemonLogin, pbxYaml, runBench, sleep, startDaemon, tempDir, removeDir, type Exit } from './harness/run.js';
import { everySecond, filesystemOf, meanMax, procSample, waitForQuiet } from './harness/sample.js';
import { latencyStats, median, per5s, round } from './harness/stats.js';
import { markdown } from './webhook/report.js';
import { calibrate, feedMax, feedPaced, loadTrace, NPROC, Stream, TRACE_PATH, type Calibration, type FeedResult, type Trace } from './webhook/traffic.js';

// ------------------------------------------------------------------------------------------------
// One run

function daemonConfig(amiPort: number, receiverPort: number, dir: string, concurrency: number): string {
  return `# written by bench/webhook.ts
${pbxYaml(amiPort)}sinks:
  - type: webhook
    name: bench
    url: http://127.0.0.1:${receiverPort}/events
    format: json
    concurrency: ${concurrency}
outbox:
  path: ${path.join(dir, 'outbox.db')}
  synchronous: normal
log:
  level: warn
`;
}

/** Rows enqueued so far and rows waiting in the outbox, through a read-only connection (null: not yet readable). */
function outboxReader(dbPath: string): { read(): { enqueued: number; backlog: number } | null; close(): void } {
  let db: Database.Database | null = null;
  return {
    read: () => {
      try {
        if (!db) {
          if (!fs.existsSync(dbPath)) return null;
          db = new Database(dbPath, { readonly: true, fileMustExist: true });
          db.pragma('busy_timeout = 200');
        }
        const backlog = (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
        const row = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined;
        return { enqueued: row?.seq ?? 0, backlog };
      } catch {
        return null;
      }
    },
    close: () => db?.close(),
  };
}

interface Sample {
  /** Seconds since the feed started. */
  t: number;
  framesSent: number;
  enqueued: number | null;
  backlog: number | null;
  delivered: number;
  daemonCpuPct: number | null;
  daemonRssMB: number | null;
  receiverCpuPct: number | null;
  benchCpuPct: number | null;
  machineBusyPct: number;
  /** Machine busy minus daemon, receiver (child) and bench: everything else on the machine. */
  otherPct: number;
}

interface RunSpec {
  mode: 'paced' | 'max';
  receiver: 'child' | 'inproc';
  /** paced: normalized events/s offered (default --rate). */
  rate: number;
  /** New agents in every repetition (suffix +agents). */
  freshAgents: boolean;
}

/** The options and their defaults (number: [default, min, max]); BENCHMARKS.md#method-webhook. */
const OPTIONS = {
  rate: [1000, 1, 100_000],
  duration: [30, 1, 600],
  'max-seconds': [20, 1, 600],
  'max-reps': [2000, 1, 100_000],
  concurrency: [8, 1, 256],
  runs: 'paced:child,paced:inproc,max:child',
  profile: false,
  'quiet-wait': [120, 0, 3600],
  'outbox-dir': os.tmpdir(),
} as const;
type Options = ReturnType<typeof readOptions<typeof OPTIONS>>['opts'];

const specLabel = (s: RunSpec) => `${s.mode === 'paced' ? `paced@${s.rate}` : 'max'}:${s.receiver}${s.freshAgents ? '+agents' : ''}`;

async function runOnce(spec: RunSpec, trace: Trace, cal: Calibration, opts: Options): Promise<Record<string, unknown>> {
  const label = specLabel(spec);
  process.stderr.write(`\n== run ${label}\n`);
  const dir = tempDir('crm-bridge-bench-', opts.outboxDir);
  const problems: string[] = [];
  const receiver = await startReceiver(spec.receiver);
  const stamper = new Stamper();
  const ami = await startAmiServer(trace, stamper);
  const profDir = path.join(dir, 'prof');
  const daemon = startDaemon(dir, 'daemon', daemonConfig(ami.port, receiver.port, dir, opts.concurrency), { nodeArgs: opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] });
  const stream = new Stream(trace, stamper);
  let feedStart = Date.now();
  const outbox = outboxReader(path.join(dir, 'outbox.db'));
  let monitor: ReturnType<typeof everySecond<Sample>> | null = null;
  let feed: FeedResult | null = null;
  let expected = 0;
  let daemonEnd: ReturnType<typeof procSample> = null;
  let exit: Exit | null = null;
  let waitedForDeliveryS = 0;
  let dump: ReceiverDump | null = null;
  const framesPerSec = spec.rate / cal.eventsPerFrame;
  try {
    const socket = await daemonLogin(daemon, ami.loggedIn);
    // Let the sink start (it is started before the source, but be generous) and the login settle.
    await sleep(300);
    feedStart = Date.now();
    monitor = everySecond<Sample>(
      () => ({ daemon: [daemon.pid], ...(receiver.kind === 'child' ? { receiver: [receiver.pid] } : {}) }),
      async (cpu) => {
        const ob = outbox.read();
        const d = procSample(daemon.pid);
        let delivered = -1;
        try {
          delivered = await receiver.unique();
        } catch {
          /* the receiver is gone; the run reports it */
        }
        return { t: round((Date.now() - feedStart) / 1000, 1), framesSent: stream.framesSent, enqueued: ob?.enqueued ?? null, backlog: ob?.backlog ?? null, delivered, daemonCpuPct: cpu.daemon ?? null, daemonRssMB: d ? round(d.rssKB / 1024) : null, receiverCpuPct: cpu.receiver ?? null, benchCpuPct: cpu.bench ?? null, machineBusyPct: cpu.machine, otherPct: cpu.other };
      },
      3600,
      NPROC,
    );
    if (spec.mode === 'paced') {
      const reps = Math.ceil((opts.duration * spec.rate) / cal.eventsPerRep);
      process.stderr.write(`   paced: ${reps} repetitions × ${trace.frames.length} frames at ${round(framesPerSec, 0)} frames/s (${spec.rate} events/s offered)\n`);
      feed = await feedPaced(socket, stream, stamper, reps, framesPerSec, Date.now() + (opts.duration * 3 + 60) * 1000);
    } else {
      process.stderr.write(`   max: unpaced for ${opts.maxSeconds} s (at most ${opts.maxReps} repetitions)\n`);
      feed = await feedMax(socket, stream, stamper, opts.maxSeconds, opts.maxReps, Date.now() + (opts.maxSeconds * 3 + 60) * 1000);
    }
    expected = cal.eventsOnce + feed.reps * cal.eventsPerRep;
    process.stderr.write(`   sent ${feed.reps} repetitions (${feed.frames} frames) in ${feed.seconds} s; expecting ${expected} events\n`);
    // Wait for delivery: done when everything arrived; give up after 30 s without progress or an overall cap.
    const cap = spec.mode === 'paced' ? 120_000 : 900_000;
    const w = await waitUntil(() => receiver.unique(), (n) => n >= expected || daemon.died() !== null, { capMs: cap, everyMs: 100, stallMs: 30_000, progress: (n) => n });
    if (w.stalled) problems.push(`no delivery progress for 30 s at ${w.last} of ${expected} events`);
    if (w.capped) problems.push(`gave up waiting for delivery after ${cap / 1000} s at ${w.last} of ${expected} events`);
    waitedForDeliveryS = w.waitedMs / 1000;
    // One more sample after the end, then leave a moment for stray duplicates.
    await sleep(1100);
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    await monitor?.stop();
    outbox.close();
    daemonEnd = procSample(daemon.pid);
    exit = await daemon.stop(problems);
    try {
      dump = await receiver.dump();
    } catch (err) {
      problems.push(`receiver: ${(err as Error).message}`);
    }
    await receiver.close();
    await ami.close();
  }
  const died = daemon.died();
  if (died) problems.push(died);
  if (exit && (exit.code !== 0 || exit.signal)) problems.push(`daemon exit after SIGTERM: code ${exit.code}, signal ${exit.signal}`);
  if (ami.logins !== 1) problems.push(`the daemon logged in to AMI ${ami.logins} times (reconnected)`);
  const logLines = daemon.logLines();
  const profile = opts.profile ? profileIn(profDir, true) : undefined;
  removeDir(dir);

  const d = dump ?? { id: [], at: [], time: [], seq: [], part: [], type: [], node: [], requests: 0, duplicates: 0, bad: 0, outOfOrder: 0 };
  const delivered = d.at.length;
  const lost = Math.max(0, expected - delivered);
  if (lost > 0) problems.push(`${lost} of ${expected} events were not delivered`);
  if (delivered > expected) problems.push(`${delivered - expected} more distinct events than expected`);
  if (d.bad > 0) problems.push(`${d.bad} requests without webhook-id, JSON or time`);
  const isAgent = (i: number) => (d.part[i] as string).startsWith('agent:');
  const calls = new Set(d.part.filter((p) => !p.startsWith('agent:'))).size;
  if (feed && calls !== feed.reps * 10) problems.push(`${calls} distinct calls delivered, expected ${feed.reps * 10}`);

  // Order per call (at most one request in flight per partition, so arrival order = delivery order).
  let outOfOrder = 0;
  const lastSeq = new Map<string, number>();
  const order = d.at.map((_, i) => i).sort((a, b) => (d.at[a] as number) - (d.at[b] as number) || a - b);
  for (const i of order) {
    const p = d.part[i] as string;
    if (isAgent(i)) continue;
    const s = d.seq[i] as number;
    if ((lastSeq.get(p) ?? 0) > s) outOfOrder++;
    lastSeq.set(p, Math.max(lastSeq.get(p) ?? 0, s));
  }

  const lat = d.at.map((a, i) => a - (d.time[i] as number));
  // A loop, not Math.min(...d.at): an unpaced run delivers more events than a call can take arguments.
  let first = Infinity;
  let lastAt = -Infinity;
  for (const a of d.at) {
    if (a < first) first = a;
    if (a > lastAt) lastAt = a;
  }
  const windowS = (lastAt - first) / 1000;
  // Deliveries per wall-clock second since the first delivery.
  const perSecond: number[] = [];
  for (const a of d.at) {
    const b = Math.floor((a - first) / 1000);
    perSecond[b] = (perSecond[b] ?? 0) + 1;
  }
  const fullSeconds = perSecond.slice(1, -1).map((x) => x ?? 0);
  // Burst position: events of one partition made from one AMI frame (same partition and time)
  // reach the receiver one after the other; position 0 is the first of its group.
  const groups = new Map<string, number[]>();
  for (const i of order) {
    const k = `${d.part[i] as string}|${d.time[i] as number}`;
    groups.set(k, [...(groups.get(k) ?? []), i]);
  }
  const pos0: number[] = [];
  const posN: number[] = [];
  for (const g of groups.values()) g.forEach((i, k) => (k === 0 ? pos0 : posN).push(lat[i] as number));
  const byType: Record<string, ReturnType<typeof latencyStats>> = {};
  for (const t of [...new Set(d.type)].sort()) byType[t] = latencyStats(lat.filter((_, i) => d.type[i] === t));
  // Latency after the first 2 s (warm-up: JIT, first connections), and in the second half of sending.
  const steady = lat.filter((_, i) => (d.time[i] as number) >= feedStart + 2000);
  const halfAt = feed ? feed.startedAt + (feed.endedAt - feed.startedAt) / 2 : Number.POSITIVE_INFINITY;
  const secondHalf = lat.filter((_, i) => (d.time[i] as number) >= halfAt && (d.time[i] as number) <= (feed?.endedAt ?? 0));
  // p50/p99 per 5 s of sending, by the event's time.
  const windows = per5s(lat, (i) => {
    const w = Math.floor(((d.time[i] as number) - feedStart) / 5000);
    return feed && w >= 0 && w < 1000 && w * 5000 < feed.endedAt - feedStart + 1 ? w : null;
  });

  // Backlog (outbox rows) over time, from the samples.
  const samples = monitor?.samples ?? [];
  const withBacklog = samples.filter((s) => s.backlog !== null);
  const peak = withBacklog.reduce<Sample | null>((m, s) => (m === null || (s.backlog ?? 0) > (m.backlog ?? 0) ? s : m), null);
  const feedEndT = feed ? (feed.endedAt - feedStart) / 1000 : Number.NaN;
  const deliveredByFeedEnd = d.at.filter((a) => a <= (feed?.endedAt ?? Number.POSITIVE_INFINITY)).length;
  const atFeedEnd = withBacklog.filter((s) => s.t <= feedEndT + 0.5).pop();
  const firstEnq = withBacklog.find((s) => (s.enqueued ?? 0) > 0);
  const cpuOf = (during: (s: Sample) => boolean) => ({ daemon: meanMax(samples, 'daemonCpuPct', during), receiver: meanMax(samples, 'receiverCpuPct', during), bench: meanMax(samples, 'benchCpuPct', during), other: meanMax(samples, 'otherPct', during), machine: meanMax(samples, 'machineBusyPct', during) });
  const duringFeed = cpuOf((s) => s.t <= feedEndT);
  const daemonCpuSec = daemonEnd?.cpuSec ?? Number.NaN;
  // The machine may be shared: say so when other processes took a noticeable share while sending.
  const warnings: string[] = [];
  const other = duringFeed.other;
  if (other && (other.mean > 15 || other.max > 50)) warnings.push(`other processes used ${other.mean}% of a core on average while sending (up to ${other.max}% in one second): figures disturbed`);

  const result: Record<string, unknown> = {
    run: label,
    mode: spec.mode,
    receiver: spec.receiver === 'child' ? 'separate process' : 'in the bench process',
    offered: spec.mode === 'paced' ? { eventsPerSec: spec.rate, amiFramesPerSec: round(framesPerSec, 0), achievedEventsPerSec: feed ? round(expected / feed.seconds, 0) : null } : { eventsPerSec: 'unpaced', achievedEventsPerSec: feed ? round(expected / feed.seconds, 0) : null },
    feed,
    expectedEvents: expected,
    deliveredUnique: delivered,
    lost,
    requests: d.requests,
    duplicates: d.duplicates,
    allDelivered: lost === 0 && delivered === expected,
    callsDelivered: calls,
    outOfOrderWithinCall: outOfOrder,
    deliveryWindowS: round(windowS, 2),
    deliveredPerSec: round(delivered / Math.max(0.001, windowS), 0),
    deliveredPerSecMedianOfFullSeconds: fullSeconds.length ? median(fullSeconds) : null,
    deliveredPerSecDuringFeed: feed ? round(deliveredByFeedEnd / feed.seconds, 0) : null,
    deliveredPerSecAfterFeed: feed && delivered > deliveredByFeedEnd ? round((delivered - deliveredByFeedEnd) / Math.max(0.001, (lastAt - feed.endedAt) / 1000), 0) : null,
    deliveredPerSecond: perSecond.map((x) => x ?? 0),
    waitedForDeliveryAfterFeedS: round(waitedForDeliveryS, 1),
    latencyMs: latencyStats(lat),
    latencyMsAfterFirst2s: latencyStats(steady),
    latencyMsSecondHalfOfSending: latencyStats(secondHalf),
    latencyMsByPartition: { callEvents: latencyStats(lat.filter((_, i) => !isAgent(i))), agentEvents: latencyStats(lat.filter((_, i) => isAgent(i))) },
    agentPartitions: new Set(d.part.filter((p) => p.startsWith('agent:'))).size,
    latencyMsPer5s: windows,
    latencyMsByBurstPosition: { firstOfItsFrame: latencyStats(pos0), behindAnEarlierEventOfTheSameCallAndFrame: latencyStats(posN) },
    latencyMsByType: byType,
    backlog: {
      peakRows: peak?.backlog ?? null,
      peakAtS: peak?.t ?? null,
      rowsAtFeedEnd: atFeedEnd?.backlog ?? null,
      lastDeliveryAfterFeedEndS: feed ? round(Math.max(0, lastAt - feed.endedAt) / 1000, 1) : null,
      enqueuedPerSecDuringFeed: atFeedEnd && firstEnq && atFeedEnd.t > firstEnq.t ? round(((atFeedEnd.enqueued ?? 0) - (firstEnq.enqueued ?? 0)) / (atFeedEnd.t - firstEnq.t), 0) : null,
    },
    daemon: {
      cpuSeconds: round(daemonCpuSec, 2),
      cpuPctOfOneCoreOverRun: feed ? round((daemonCpuSec / ((Date.now() - feedStart) / 1000)) * 100) : null,
      peakRssMB: daemonEnd ? round(daemonEnd.hwmKB / 1024) : null,
      exit,
      logLines: logLines.length,
      firstLogLines: logLines.slice(0, 5),
    },
    cpuPctDuringFeed: duringFeed,
    cpuPctAfterFeed: cpuOf((s) => s.t > feedEndT + 1),
    samples,
    profile,
    problems,
    warnings,
    ok: problems.length === 0,
  };
  const l = result.latencyMs as ReturnType<typeof latencyStats>;
  process.stderr.write(`   delivered ${delivered}/${expected} at ${String(result.deliveredPerSec)} ev/s; latency p50 ${l.p50} p99 ${l.p99} max ${l.max} ms; daemon ${round(daemonCpuSec, 1)} CPU s, peak RSS ${String((result.daemon as { peakRssMB: number | null }).peakRssMB)} MB${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}\n`);
  return result;
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { opts: o, num, out, note } = readOptions('webhook', OPTIONS);
  const opts: Options = { ...o, outboxDir: path.resolve(o.outboxDir) };
  if (!fs.statSync(opts.outboxDir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--outbox-dir ${opts.outboxDir} is not a directory`);
  const specs: RunSpec[] = opts.runs.split(',').map((s) => {
    const m = /^(paced|max)(?:@(\d+(?:\.\d+)?))?(?::(child|inproc))?(\+agents)?$/.exec(s.trim());
    if (!m) throw new Error(`--runs: '${s}' is not paced[@RATE][:child|inproc][+agents] or max[:child|inproc][+agents]`);
    return { mode: m[1] as 'paced' | 'max', rate: m[2] ? num('runs rate', 1, 100_000, m[2]) : opts.rate, receiver: (m[3] ?? 'child') as 'child' | 'inproc', freshAgents: Boolean(m[4]) };
  });
  requireBuild('webhook');

  const head = resultsHead('webhook sink: AMI frame written -> HTTP request arriving at a local receiver, durable outbox', note, NPROC, {}, true);
  const prepared = new Map<boolean, { trace: Trace; cal: Calibration }>();
  const prepare = (freshAgents: boolean) => {
    const have = prepared.get(freshAgents);
    if (have) return have;
    const trace = loadTrace(freshAgents);
    process.stderr.write(`trace: ${path.relative(ROOT, TRACE_PATH)}: ${trace.frames.length} frames per repetition (${trace.bytesPerRep} bytes), ${trace.once.length} sent once; rewriting ${trace.rewritten.headers.join(', ')}, channel sequence numbers, BridgeUniqueid; agents ${trace.rewritten.agents}\n`);
    const cal = calibrate(trace);
    process.stderr.write(`calibration (crm-bridge replay of 1/2/3 repetitions): ${cal.eventsForReps.join('/')} events -> ${cal.eventsPerRep} events per repetition, ${round(cal.eventsPerFrame, 4)} events per AMI frame -> ${round(opts.rate / cal.eventsPerFrame, 0)} frames/s for ${opts.rate} events/s\n`);
    prepared.set(freshAgents, { trace, cal });
    return { trace, cal };
  };
  for (const f of new Set(specs.map((s) => s.freshAgents))) prepare(f);
  head.parameters = {
    trace: path.relative(ROOT, TRACE_PATH),
    rate: opts.rate,
    durationS: opts.duration,
    maxSeconds: opts.maxSeconds,
    maxReps: opts.maxReps,
    runs: specs.map(specLabel),
    profile: opts.profile,
    quietWaitS: opts.quietWait,
    sink: { type: 'webhook', format: 'json', concurrency: opts.concurrency, otherSettings: 'defaults (no secret, no auth; timeouts 5 s connect / 10 s read; retry defaults)' },
    outbox: { synchronous: 'normal', location: `a temp dir under ${opts.outboxDir}`, filesystem: filesystemOf(opts.outboxDir) },
    daemonLog: 'level warn, to a file',
    amiTimestamp: 'wall-clock ms at write time; µs digits = a per-ms counter (keeps event ids unique)',
    latency: 'receiver arrival (Date.now() when the request headers are parsed) - Date.parse(event.time); ms resolution, ±1 ms',
  };
  head.calibration = prepare(false).cal;
  if (prepared.has(true)) head.calibrationFreshAgents = prepare(true).cal;
  head.traceRewriting = Object.fromEntries([...prepared].map(([f, p]) => [f ? 'freshAgents' : 'recordedAgents', p.trace.rewritten]));
  const results: Array<Record<string, unknown>> = [];
  for (const spec of specs) {
    const p = prepare(spec.freshAgents);
    const quiet = opts.quietWait > 0 ? await waitForQuiet(25, opts.quietWait, NPROC) : null;
    if (quiet) process.stderr.write(`\nmachine ${quiet.busyPctAtStart}% busy (of one core) before the run, after waiting ${quiet.waitedS} s\n`);
    results.push({ ...(await runOnce(spec, p.trace, p.cal, opts)), machineBeforeRun: quiet });
  }
  endHead(head);
  const table = markdown(results, head);
  writeResults(out, table, { ...head, results, markdown: table });
  return results.every((r) => r.ok) ? 0 : 1;
}

await runBench('webhook.ts', main);
