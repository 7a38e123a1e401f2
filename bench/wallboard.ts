// Wallboard benchmark (issue 19): 1,000 agents in 100 queues, 50 queue calls/s cloned from real
// recordings; the supervisor's page open in a real chromium: page update latency (AMI frame
// written -> the page's DOM showing it) and the CPU of the daemon, the browser and the machine;
// the same traffic with no page open (what streaming the board costs), and with a shorter push
// interval.
//   npm run bench:wallboard [-- options]     method and options: BENCHMARKS.md#wallboard
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Stamper, startAmiServer } from './harness/ami.js';
import { waitUntil } from './harness/feed.js';
import { requireBuild, ROOT } from './harness/env.js';
import { endHead, machineLine, readOptions, resultsHead, summarizeCpuProfile, writeResults } from './harness/report.js';
import { canPin, daemonLogin, freePort, pbxYaml, pinSelf, removeDir, runBench, startDaemon, tempDir, type Exit } from './harness/run.js';
import { everySecond, meanMax, NPROC, procSample, waitForQuiet } from './harness/sample.js';
import { latencyStats, per5s, round, type Stats } from './harness/stats.js';
import { openBoards, readSnapshot, type Board } from './wallboard/page.js';
import { loadTraffic, feedCalls, writeLogins, type Feed, type Floor, type Traffic } from './wallboard/traffic.js';

const OPTIONS = {
  duration: [60, 1, 3600],
  rate: [50, 1, 1000],
  queues: [100, 1, 1000],
  'per-queue': [10, 2, 100],
  'agent-base': [1000, 10, 900000],
  'abandon-every': [5, 0, 1000],
  pages: [1, 1, 8],
  runs: 'pages,none,push50',
  'push-interval': [250, 50, 10000],
  'steady-after': [10, 0, 600],
  width: [1920, 800, 4000],
  height: [1080, 600, 4000],
  pin: 'auto',
  'page-profile': false,
  'inject-css': '',
  'quiet-wait': [120, 0, 3600],
} as const;

// ------------------------------------------------------------------------------------------------

function daemonConfig(amiPort: number, httpPort: number, dir: string, supervisorToken: string, pushIntervalMs: number): string {
  return `# written by bench/wallboard.ts
${pbxYaml(amiPort)}calls:
  inboundContexts: [from-pstn]
  agentContexts: [agents]
  extensionPattern: '^[0-9]{2,6}$'
sinks: []
http:
  listen: 127.0.0.1:${httpPort}
  supervisors:
    - { name: bench, token: ${supervisorToken} }
supervisor:
  timeZone: UTC
  pushIntervalMs: ${pushIntervalMs}
  path: ${path.join(dir, 'wallboard.db')}
outbox:
  path: ${path.join(dir, 'outbox.db')}
log:
  level: warn
`;
}

interface Sample {
  t: number;
  phase: string;
  daemonCpuPct: number | null;
  daemonRssMB: number | null;
  rendererCpuPct: number | null;
  chromiumOtherCpuPct: number | null;
  benchCpuPct: number | null;
  machineBusyPct: number;
  otherPct: number;
}

interface RunSpec {
  name: string;
  pages: number;
  pushIntervalMs: number;
}

type Lat = { all: Stats; steady: Stats; missing: number };

/** Latency of each call's marked frame -> the DOM note, over every page; steady: calls starting ≥ steadyAfter s. */
function latencies(traffic: Traffic, feed: Feed, notes: Array<Map<string, number>>, rate: number, steadyAfterS: number) {
  const kinds = { queued: feed.joinAt, talking: feed.answerAt, missed: feed.abandonAt } as const;
  const out: Record<string, Lat> = {};
  const perPage: Array<Record<string, Stats>> = notes.map(() => ({}));
  for (const [kind, at] of Object.entries(kinds)) {
    const all: number[] = [];
    const steady: number[] = [];
    let missing = 0;
    notes.forEach((m, p) => {
      const mine: number[] = [];
      for (let n = 0; n < feed.calls; n++) {
        const written = at[n] as number;
        if (!Number.isFinite(written)) continue;
        const shown = m.get(`${traffic.trace(n).callIdOf(n)}|${kind}`);
        if (shown === undefined) {
          missing++;
          continue;
        }
        const l = shown - written;
        all.push(l);
        mine.push(l);
        if (n / rate >= steadyAfterS) steady.push(l);
      }
      (perPage[p] as Record<string, Stats>)[kind] = latencyStats(mine);
    });
    out[kind] = { all: latencyStats(all), steady: latencyStats(steady), missing };
  }
  // Over the run (does it grow with the missed-call list, the calls table?): 'queued', all pages.
  const q: number[] = [];
  const qn: number[] = [];
  for (const m of notes) for (let n = 0; n < feed.calls; n++) {
    const shown = m.get(`${traffic.trace(n).callIdOf(n)}|queued`);
    if (shown !== undefined && Number.isFinite(feed.joinAt[n] as number)) {
      q.push(shown - (feed.joinAt[n] as number));
      qn.push(n);
    }
  }
  return { byKind: out, perPage, queuedPer5s: per5s(q, (i) => Math.floor((qn[i] as number) / rate / 5)) };
}

async function main(): Promise<number> {
  const { opts: o, out, note } = readOptions('wallboard', OPTIONS, true);
  if (o.pin !== 'auto' && o.pin !== 'none') throw new Error('--pin must be auto or none');
  const runs: RunSpec[] = o.runs.split(',').map((r) => {
    if (r === 'pages') return { name: 'pages', pages: o.pages, pushIntervalMs: o.pushInterval };
    if (r === 'none') return { name: 'none', pages: 0, pushIntervalMs: o.pushInterval };
    const m = /^push(\d+)$/.exec(r);
    if (m) return { name: r, pages: o.pages, pushIntervalMs: Number(m[1]) };
    throw new Error(`--runs: '${r}' is none of pages, none, push<ms>`);
  });
  requireBuild('wallboard');
  const floor: Floor = { queues: o.queues, perQueue: o.perQueue, agentBase: o.agentBase };
  const agents = o.queues * o.perQueue;
  if (!/^[0-9]{2,6}$/.test(String(o.agentBase + agents - 1))) throw new Error('agent extensions must be 2 to 6 digits (calls.extensionPattern)');
  const calls = Math.round(o.rate * o.duration);
  const traffic = loadTraffic(floor, calls, o.abandonEvery);
  const pin = o.pin === 'auto' && canPin(NPROC);
  const daemonCpu = pin ? '0' : null;
  // The browser is launched by this process: pinned here, it inherits CPU 1.
  if (pin) pinSelf(String(NPROC - 1));
  const meta = resultsHead('wallboard: 1,000 agents / 100 queues, queue calls from real recordings; AMI frame written -> the wallboard page\'s DOM; CPU of daemon, browser, machine', note, NPROC);
  const pairGapS = (o.queues * Math.floor(o.perQueue / 2)) / o.rate;
  meta.parameters = {
    floor: `${o.queues} queues (q001…) × ${o.perQueue} agents = ${agents} agents, extensions ${o.agentBase}…${o.agentBase + agents - 1} (from calls.extensionPattern '^[0-9]{2,6}$' and agentContexts [agents]: Local/<ext>@agents is agent <ext>; no agents: list in the config)`,
    logins: `every agent logs in to its queue before the calls: agent-session.ami's frames up to QueueMemberAdded (+ the DeviceStateChange after it), rewritten per agent; the floor is checked (a snapshot from /supervisor/events) to hold ${agents} agents in ${o.queues} queues before the calls start`,
    calls: `${calls} queue calls at ${o.rate}/s for ${o.duration} s; call n goes to queue n mod ${o.queues}; every ${o.abandonEvery || '∞'}th call is queue-abandoned.ami (the caller hangs up after 4.3 s waiting), the others queue-answered.ami (1 s waiting, 3.5 s talking); each rings one pair of its queue's agents (the recordings' 201 and 202; 201 answers), pairs in turn, so a pair gets a call every ${round(pairGapS, 1)} s and a call lasts ~8.1 s`,
    timing: 'call n starts at n/rate s, its frames at their recorded offsets (IVR 3.6 s, then the queue); each frame\'s Timestamp is the wall-clock time it is written',
    traceRewriting: traffic.rewriting,
    framesPerCall: { answered: traffic.answered.frames.length, abandoned: traffic.abandoned.frames.length },
    latency: 'per call and page: Date.now() in the page when a MutationObserver sees the call\'s row (tbody#call-rows tr[data-call]) first show data-state queued / talking, or its missed-call row (tbody#missed-rows) appear − Date.now() in the bench when the call\'s QueueCallerJoin / AgentConnect / QueueCallerAbandon frame was written (same machine clock); it includes up to one push interval (supervisor.pushIntervalMs) by design, and the page\'s wait for the next animation frame',
    responsiveness: "each page's 50-ms timer: how late it fires (ms), sampled during the calls",
    daemonConfig: 'http on 127.0.0.1 with one supervisor token, supervisor: timeZone UTC, pushIntervalMs per run, sinks: [] (the wallboard is implied by http), log warn',
    cpuPlacement: pin ? `taskset: the daemon on CPU ${String(daemonCpu)}; this process (AMI feeder, sampler) and chromium on CPU ${NPROC - 1}` : 'not pinned',
    injectCss: o.injectCss || null,
    browser: `Debian chromium ${'(playwright-core)'}, headless, viewport ${o.width}×${o.height}, the e2e tests' arguments (--no-sandbox --disable-gpu …)`,
    steadyAfterS: o.steadyAfter,
  };
  const results: Array<Record<string, unknown>> = [];
  const problems: string[] = [];
  const warnings: string[] = [];

  for (const run of runs) {
    process.stderr.write(`\n== run '${run.name}': ${run.pages} page(s), pushIntervalMs ${run.pushIntervalMs}\n`);
    const quiet = o.quietWait > 0 ? await waitForQuiet(25, o.quietWait, NPROC) : null;
    if (quiet) process.stderr.write(`machine ${quiet.busyPctAtStart}% busy (of one core) before the run, after waiting ${quiet.waitedS} s\n`);
    const dir = tempDir('crm-bridge-bench-wb-');
    const token = randomBytes(32).toString('hex');
    const stamper = new Stamper();
    const ami = await startAmiServer(traffic, stamper);
    const httpPort = await freePort();
    const daemon = startDaemon(dir, 'daemon', daemonConfig(ami.port, httpPort, dir, token, run.pushIntervalMs), { cpu: daemonCpu });
    const mine: string[] = [];
    let board: Board | null = null;
    let monitor: ReturnType<typeof everySecond<Sample>> | null = null;
    let phase = 'start';
    let exit: Exit | null = null;
    const r: Record<string, unknown> = { run: run.name, pages: run.pages, pushIntervalMs: run.pushIntervalMs, machineBeforeRun: quiet };
    try {
      const socket = await daemonLogin(daemon, ami.loggedIn);
      const loginFrames = writeLogins(socket, traffic, floor, stamper);
      const t0 = Date.now();
      const w = await waitUntil(() => readSnapshot(httpPort, token), (s) => s.agents >= agents && s.queues >= o.queues, { capMs: 60_000, everyMs: 250 });
      r.floorBeforeCalls = { ...w.last, loginFrames, msAfterLogins: Date.now() - t0 };
      process.stderr.write(`   floor: ${w.last.queues} queues, ${w.last.agents} agents (${Object.entries(w.last.agentStates).map(([k, v]) => `${k} ${v}`).join(', ')}), snapshot ${round(w.last.bytes / 1024, 0)} KB\n`);
      if (w.last.agents < agents || w.last.queues < o.queues) throw new Error(`the floor holds ${w.last.agents} agents in ${w.last.queues} queues after the logins, expected ${agents} in ${o.queues}`);
      if (run.pages > 0) {
        const t1 = Date.now();
        board = await openBoards(`http://127.0.0.1:${httpPort}/supervisor?token=${token}`, run.pages, { width: o.width, height: o.height }, o.injectCss);
        const b = board;
        await waitUntil(() => b.counts(), (cs) => cs.every((c) => c.agents >= agents && c.queues >= o.queues), { capMs: 60_000, everyMs: 250 });
        r.pagesOpen = { ms: Date.now() - t1, counts: await board.counts() };
        process.stderr.write(`   ${run.pages} page(s) live with ${agents} tiles in ${Date.now() - t1} ms\n`);
      }
      const lag0 = board ? (await board.lag(board.pages.map(() => 0))).map((l) => l.length) : [];
      const procs = board?.processes() ?? { renderers: [], others: [] };
      monitor = everySecond<Sample>(
        () => ({ daemon: [daemon.pid], renderer: procs.renderers, chromium: procs.others }),
        (cpu) => {
          const d = procSample(daemon.pid);
          return { t: round((Date.now() - t0) / 1000, 1), phase, daemonCpuPct: cpu.daemon ?? null, daemonRssMB: d ? round(d.rssKB / 1024) : null, rendererCpuPct: board ? (cpu.renderer ?? null) : null, chromiumOtherCpuPct: board ? (cpu.chromium ?? null) : null, benchCpuPct: cpu.bench ?? null, machineBusyPct: cpu.machine, otherPct: cpu.other };
        },
      );
      const prof = board && o.pageProfile ? await board.profile() : null;
      const metrics0 = board ? await board.metrics() : null;
      // A few idle seconds: the floor at rest with the page(s) open.
      phase = 'idle';
      await new Promise((res) => setTimeout(res, 5000));
      phase = 'calls';
      const startedAt = Date.now();
      const steadyFrom = startedAt + o.steadyAfter * 1000;
      const stampPhase = () => {
        if (phase === 'calls' && Date.now() >= steadyFrom) phase = 'calls-steady';
      };
      const ticker = setInterval(stampPhase, 100);
      const feed = await feedCalls(socket, traffic, stamper, calls, o.rate, Date.now() + (o.duration * 3 + 120) * 1000);
      clearInterval(ticker);
      phase = 'drain';
      if (board && metrics0) {
        // The renderer's work while the calls ran, per second of feed (page 0).
        const m1 = await board.metrics();
        const per = (k: string) => round(((m1[k] ?? 0) - (metrics0[k] ?? 0)) / feed.seconds, 3);
        r.page0RendererPerSecond = { what: 'DevTools Performance.getMetrics deltas over the feed / its seconds: *Duration in s per s (= share of a core), *Count per s', taskDuration: per('TaskDuration'), scriptDuration: per('ScriptDuration'), recalcStyleDuration: per('RecalcStyleDuration'), layoutDuration: per('LayoutDuration'), recalcStyleCount: per('RecalcStyleCount'), layoutCount: per('LayoutCount'), nodesAtEnd: m1.Nodes, jsHeapUsedMBAtEnd: round((m1.JSHeapUsedSize ?? 0) / 1048576, 1) };
        process.stderr.write(`   page 0 renderer per s of calls: task ${per('TaskDuration')} s, script ${per('ScriptDuration')}, style ${per('RecalcStyleDuration')} (${per('RecalcStyleCount')}×), layout ${per('LayoutDuration')} (${per('LayoutCount')}×)\n`);
      }
      process.stderr.write(`   sent ${feed.calls} calls (${feed.abandoned} abandoned, ${feed.frames} frames) in ${feed.seconds} s (${feed.framesPerSecAchieved} frames/s; write lateness p99 ${feed.lateMs.p99} ms, max ${feed.lateMs.max} ms)\n`);
      // Every call over: the floor empty again (and on the pages).
      const end = await waitUntil(() => readSnapshot(httpPort, token), (x) => x.calls === 0, { capMs: 60_000, everyMs: 250 });
      if (end.last.calls !== 0) problems.push(`${run.name}: ${end.last.calls} calls still in progress on the floor 60 s after the last call`);
      if (board) {
        const b = board;
        const pe = await waitUntil(() => b.counts(), (cs) => cs.every((c) => c.calls === 0), { capMs: 30_000, everyMs: 250 });
        r.pagesAtEnd = pe.last;
      }
      await monitor.stop();
      const samples = monitor.samples;
      const cpu = (during: (s: Sample) => boolean) => ({
        daemon: meanMax(samples, 'daemonCpuPct', during),
        renderer: meanMax(samples, 'rendererCpuPct', during),
        chromiumOther: meanMax(samples, 'chromiumOtherCpuPct', during),
        bench: meanMax(samples, 'benchCpuPct', during),
        machine: meanMax(samples, 'machineBusyPct', during),
        other: meanMax(samples, 'otherPct', during),
      });
      r.cpu = { idle: cpu((s) => s.phase === 'idle'), calls: cpu((s) => s.phase === 'calls' || s.phase === 'calls-steady'), steady: cpu((s) => s.phase === 'calls-steady') };
      r.feed = { calls: feed.calls, abandoned: feed.abandoned, frames: feed.frames, bytes: feed.bytes, seconds: feed.seconds, framesPerSecAchieved: feed.framesPerSecAchieved, writeLatenessMs: feed.lateMs };
      if (prof) {
        const file = path.join(dir, 'page.cpuprofile');
        fs.writeFileSync(file, await prof.stop());
        r.pageProfile = summarizeCpuProfile(file, false, 30);
      }
      const snap = await readSnapshot(httpPort, token);
      r.floorAfter = snap;
      // Today's counters on the floor: every call counted once, as what it was.
      const want = { answered: feed.calls - feed.abandoned, abandoned: feed.abandoned };
      if (snap.answered !== want.answered || snap.abandoned !== want.abandoned || snap.missed !== want.abandoned) problems.push(`${run.name}: the floor counts ${snap.answered} answered, ${snap.abandoned} abandoned, ${snap.missed} missed calls; sent ${want.answered} answered, ${want.abandoned} abandoned`);
      if (board) {
        const notes = (await board.collect()).map((e) => new Map(e));
        const lat = latencies(traffic, feed, notes, o.rate, o.steadyAfter);
        r.latencyMs = lat.byKind;
        r.latencyMsPerPage = lat.perPage;
        r.queuedLatencyMsPer5s = lat.queuedPer5s;
        const lags = (await board.lag(lag0)).flat();
        r.pageTimerLatenessMs = latencyStats(lags);
        r.pageErrors = board.errors.slice(0, 20);
        if (board.errors.length) problems.push(`${run.name}: ${board.errors.length} errors in the page(s): ${board.errors[0]}`);
        // A call's 'queued' (1 s for an answered call) may never be drawn when the page renders
        // late and the answer's patch came meanwhile: it then shows the later state. Only a call
        // whose last state never showed is lost.
        for (const [k, v] of Object.entries(lat.byKind)) {
          if (!v.missing) continue;
          if (k === 'queued' && !lat.byKind.talking?.missing && !lat.byKind.missed?.missing) warnings.push(`${run.name}: ${v.missing} calls' 'queued' state never drawn (their later state was: the page rendered late and skipped it)`);
          else problems.push(`${run.name}: ${v.missing} '${k}' changes never shown on a page`);
        }
        const q = lat.byKind.queued;
        const tk = lat.byKind.talking;
        process.stderr.write(`   latency queued p50 ${q?.all.p50} p95 ${q?.all.p95} p99 ${q?.all.p99} max ${q?.all.max} ms; talking p50 ${tk?.all.p50} p99 ${tk?.all.p99}; missed p50 ${lat.byKind.missed?.all.p50} p99 ${lat.byKind.missed?.all.p99}; page timer lateness p99 ${(r.pageTimerLatenessMs as Stats).p99} ms\n`);
      }
      const c = (r.cpu as { steady: ReturnType<typeof cpu> }).steady;
      process.stderr.write(`   CPU (steady, % of a core): daemon ${c.daemon?.mean} (max ${c.daemon?.max}), renderer ${c.renderer?.mean ?? '-'}, chromium other ${c.chromiumOther?.mean ?? '-'}, bench ${c.bench?.mean}, machine ${c.machine?.mean}, other ${c.other?.mean}\n`);
      const other = c.other;
      if (other && (other.mean > 15 || other.max > 50)) warnings.push(`${run.name}: other processes used ${other.mean}% of a core on average during the calls (up to ${other.max}% in one second): figures disturbed`);
      r.samples = samples;
    } catch (err) {
      problems.push(`${run.name}: ${(err as Error).message}`);
      await monitor?.stop();
    } finally {
      const end = procSample(daemon.pid);
      r.daemon = { peakRssMB: end ? round(end.hwmKB / 1024) : null, cpuSeconds: end ? round(end.cpuSec, 2) : null };
      await board?.close();
      exit = await daemon.stop(mine);
      await ami.close();
      const died = daemon.died();
      if (died) mine.push(died);
      if (exit.code !== 0 || exit.signal) mine.push(`daemon exit after SIGTERM: code ${exit.code}, signal ${exit.signal}`);
      if (ami.logins !== 1) mine.push(`the daemon logged in to AMI ${ami.logins} times (reconnected)`);
      const logs = daemon.logLines();
      (r.daemon as Record<string, unknown>).exit = exit;
      (r.daemon as Record<string, unknown>).logLines = logs.length;
      (r.daemon as Record<string, unknown>).firstLogLines = logs.slice(0, 5);
      problems.push(...mine.map((m) => `${run.name}: ${m}`));
      removeDir(dir);
    }
    results.push(r);
  }
  endHead(meta);
  const table = markdown(meta, results, o.steadyAfter);
  writeResults(out, table, { ...meta, results: { runs: results, problems, warnings, ok: problems.length === 0 }, markdown: table });
  for (const p of problems) process.stderr.write(`PROBLEM: ${p}\n`);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return problems.length === 0 ? 0 : 1;
}

function markdown(meta: Record<string, unknown>, runs: Array<Record<string, unknown>>, steadyAfter: number): string {
  const f = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '–' : String(x));
  const mm = (x: { mean: number; max: number } | null | undefined) => (x ? `${x.mean} (max ${x.max})` : '–');
  const lines = [
    '### Wallboard',
    '',
    `| run | pages | push ms | queued: p50 / p95 / p99 / max ms | talking: p50 / p95 / p99 / max | missed row: p50 / p99 / max | page timer late p99 / max | daemon CPU % (after ${steadyAfter} s) | renderer % | machine % | other % |`,
    '|---|---:|---:|---|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    const lat = r.latencyMs as Record<string, { all: Stats }> | undefined;
    const s = (k: string) => (lat?.[k] ? `${f(lat[k].all.p50)} / ${f(lat[k].all.p95)} / ${f(lat[k].all.p99)} / ${f(lat[k].all.max)}` : '–');
    const cpu = (r.cpu as { steady: Record<string, { mean: number; max: number } | null> } | undefined)?.steady;
    const lag = r.pageTimerLatenessMs as Stats | undefined;
    lines.push(`| ${String(r.run)} | ${String(r.pages)} | ${String(r.pushIntervalMs)} | ${s('queued')} | ${s('talking')} | ${lat?.missed ? `${f(lat.missed.all.p50)} / ${f(lat.missed.all.p99)} / ${f(lat.missed.all.max)}` : '–'} | ${lag ? `${lag.p99} / ${lag.max}` : '–'} | ${mm(cpu?.daemon)} | ${mm(cpu?.renderer)} | ${mm(cpu?.machine)} | ${mm(cpu?.other)} |`);
  }
  lines.push('', machineLine(meta));
  return lines.join('\n');
}

await runBench('wallboard.ts', main);
