// Pipeline throughput benchmark: AMI frames/s through the whole pipeline (bench/pipeline-child.ts
// --mode bridge) as a ratio to asterisk-manager alone (--mode manager) on the same bytes.
//   npm run bench:pipeline [-- options]      method and options: BENCHMARKS.md#method-pipeline
import type net from 'node:net';
import os from 'node:os';
import type { RunResult } from './pipeline-child.js';
import { Stamper, startAmiServer } from './harness/ami.js';
import { cloneFrames, loadCloneSet, renderClone, type CloneSet } from './harness/clones.js';
import { BENCH_TRACES, benchFile, LOADER, requireBuild, ROOT } from './harness/env.js';
import { endHead, readOptions, profileIn, resultsHead, writeResults } from './harness/report.js';
import { canPin, children, exited, pinSelf, runBench, spawnTracked, tempDir, within } from './harness/run.js';
import { machineBusyPct, systemCpu, waitForQuiet } from './harness/sample.js';
import { median, round } from './harness/stats.js';

interface Stream {
  chunks: Buffer[];
  frames: number;
  bytes: number;
  calls: number;
}

/** `reps` repetitions of every trace, clone numbers from `firstClone` on, as ~1 MB buffers. */
function renderStream(set: CloneSet, reps: number, firstClone: number): Stream {
  const chunks: Buffer[] = [];
  let pending: string[] = [];
  let pendingLen = 0;
  let frames = 0;
  let bytes = 0;
  let calls = 0;
  let k = firstClone;
  for (let r = 0; r < reps; r++) {
    for (const t of set.traces) {
      const s = renderClone(t, k++);
      pending.push(s);
      pendingLen += s.length;
      frames += cloneFrames(t, 'full');
      calls += t.calls;
      if (pendingLen >= 1 << 20) {
        chunks.push(Buffer.from(pending.join(''), 'latin1'));
        bytes += pendingLen;
        pending = [];
        pendingLen = 0;
      }
    }
  }
  if (pendingLen) chunks.push(Buffer.from(pending.join(''), 'latin1'));
  bytes += pendingLen;
  return { chunks, frames, bytes, calls };
}

function writeAll(socket: net.Socket, s: Stream): void {
  for (const c of s.chunks) socket.write(c);
  socket.end();
}

interface Run extends RunResult {
  pair: number;
  framesPerSec: number;
  framesPerCpuSec: number;
  /** The whole machine during the run, % of one core (the run itself is ~100 of it). */
  machineBusyPct: number;
  /** Others' load just before the run (% of one core), after waiting for it to fall below 25. */
  machineBusyPctBefore: number | null;
  exit: number | null;
  problems: string[];
}

async function runChild(mode: 'manager' | 'bridge', port: number, cpu: string | null, extraNodeArgs: string[] = []): Promise<{ result: RunResult | null; exit: number | null; stderr: string }> {
  const child = spawnTracked(process.execPath, [...extraNodeArgs, ...LOADER, benchFile('pipeline-child.ts'), '--mode', mode, '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], cpu });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const { code } = await within(exited(child), 600_000, `pipeline child (${mode})`);
  children.delete(child);
  const line = out.trim().split('\n').pop() ?? '';
  let result: RunResult | null = null;
  try {
    result = JSON.parse(line) as RunResult;
  } catch {
    /* reported below */
  }
  return { result, exit: code, stderr: err.slice(0, 2000) };
}

function spread(xs: number[]): { median: number; min: number; max: number; spreadPct: number; values: number[] } {
  const m = median(xs);
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  return { median: m, min, max, spreadPct: round(((max - min) / m) * 100), values: xs };
}

async function main(): Promise<number> {
  const { opts, out, note } = readOptions('pipeline', { reps: [150, 1, 5000], 'warmup-reps': [10, 1, 1000], pairs: [5, 1, 100], pin: 'auto', 'quiet-wait': [60, 0, 3600], profile: false }, true);
  const { reps, warmupReps, pairs, quietWait } = opts;
  requireBuild('pipeline', 'dist/bridge.js');
  const nproc = os.availableParallelism();
  if (opts.pin !== 'off' && opts.pin !== 'auto') throw new Error("--pin must be 'auto' or 'off'");
  const pin = opts.pin === 'auto' && canPin(nproc);
  // The measured child on CPU 0, this process (the AMI server) on CPU 1.
  if (pin) pinSelf('1');

  const set = loadCloneSet(BENCH_TRACES);
  const warm = renderStream(set, warmupReps, 0);
  const stream = renderStream(set, reps, warmupReps * set.traces.length);
  const framesPerRep = set.traces.reduce((n, t) => n + t.frames.length, 0);
  const expectedFrames = stream.frames + set.once.length;
  process.stderr.write(`stream: ${set.traces.length} traces, ${framesPerRep} frames and ${set.traces.reduce((n, t) => n + t.calls, 0)} calls per repetition; ${reps} repetitions = ${stream.frames} frames, ${stream.calls} calls, ${round(stream.bytes / 2 ** 20)} MiB (warm-up: ${warm.frames} frames)\n`);

  const ami = await startAmiServer(set, new Stamper(), { onLogin: (socket, user) => writeAll(socket, user === 'warmup' ? warm : stream) });
  const meta = resultsHead('pipeline throughput: AMI event frames/s through AmiSource + normalizer + no-op sink (the Bridge class), relative to asterisk-manager alone on the same stream', note, nproc);
  meta.parameters = {
    traces: set.traces.map((t) => ({ name: t.name, framesPerClone: t.frames.length, callsPerClone: t.calls, bytesPerClone: t.bytes })),
    reps,
    warmupReps,
    pairs,
    pinned: pin ? 'measured child: taskset -c 0; AMI server (this process): CPU 1' : 'no',
    streamFrames: stream.frames,
    streamCalls: stream.calls,
    streamMiB: round(stream.bytes / 2 ** 20),
    onceFrames: set.once.length,
    rewriting: set.rewriting,
    window: 'from the Login being accepted (child side) to the server closing the connection having been seen, i.e. after the last frame was handled',
    bridge: 'src/bridge.ts Bridge with sinks: [a no-op sink]; pbx.ami reconnect off, resync off; calls settings of the test Asterisk the traces were recorded on; log level warn',
    manager: "asterisk-manager 0.2.0 alone: connect, login, a 'managerevent' listener that counts",
  };

  const runs: Run[] = [];
  let bridgeEvents: number | null = null;
  for (let pair = 0; pair < pairs; pair++) {
    const order: Array<'manager' | 'bridge'> = pair % 2 === 0 ? ['manager', 'bridge'] : ['bridge', 'manager'];
    for (const mode of order) {
      // A shared machine: wait (up to --quiet-wait s) until others use < 25 % of a core.
      const quiet = quietWait > 0 ? await waitForQuiet(25, quietWait, nproc) : null;
      const a = systemCpu();
      const { result, exit, stderr } = await runChild(mode, ami.port, pin ? '0' : null);
      const b = systemCpu();
      const problems: string[] = [];
      if (!result) problems.push(`no result (exit ${String(exit)}): ${stderr}`);
      else {
        if (result.mode === 'manager' && result.frames !== expectedFrames) problems.push(`counted ${String(result.frames)} frames, expected ${expectedFrames}`);
        if (result.mode === 'bridge') {
          bridgeEvents ??= result.events;
          if (result.events !== bridgeEvents) problems.push(`${String(result.events)} events, another bridge run had ${String(bridgeEvents)}`);
          if (result.activeCallsAtEnd !== 0) problems.push(`${String(result.activeCallsAtEnd)} calls still in progress at the end`);
        }
        if (result.logLines) problems.push(`${result.logLines} warning/error log lines: ${stderr}`);
      }
      const r: Run = {
        ...(result ?? { mode, frames: null, events: null, activeCallsAtEnd: null, seconds: Number.NaN, cpuSeconds: Number.NaN, maxRssMB: Number.NaN, logLines: 0 }),
        pair,
        framesPerSec: result ? round(expectedFrames / result.seconds, 0) : Number.NaN,
        framesPerCpuSec: result ? round(expectedFrames / result.cpuSeconds, 0) : Number.NaN,
        machineBusyPct: machineBusyPct(a, b, nproc),
        machineBusyPctBefore: quiet?.busyPctAtStart ?? null,
        exit,
        problems,
      };
      runs.push(r);
      process.stderr.write(`pair ${pair} ${mode.padEnd(7)} ${r.framesPerSec} frames/s (${round(r.seconds, 2)} s, ${round(r.cpuSeconds, 2)} CPU s, ${r.maxRssMB} MB max RSS; machine ${r.machineBusyPct}% of a core busy, ${String(r.machineBusyPctBefore)}% before)${problems.length ? ` PROBLEMS: ${problems.join('; ')}` : ''}\n`);
    }
  }

  let profile: Record<string, unknown> | undefined;
  if (opts.profile) {
    profile = { note: 'one more run of each mode under --cpu-prof (warm-up and measured connection, process start-up included; not timed): self time by module and function' };
    for (const mode of ['manager', 'bridge'] as const) {
      const dir = tempDir('crm-bridge-bench-prof-');
      const { result } = await runChild(mode, ami.port, pin ? '0' : null, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
      profile[mode] = { framesPerSecUnderProfiler: result ? round(expectedFrames / result.seconds, 0) : null, ...profileIn(dir) };
    }
  }
  await ami.close();

  const of = (mode: string, key: 'framesPerSec' | 'framesPerCpuSec') => runs.filter((r) => r.mode === mode && r.problems.length === 0).map((r) => r[key]);
  const pairRatios = (key: 'framesPerSec' | 'framesPerCpuSec') =>
    [...Array(pairs).keys()]
      .map((p) => {
        const m = runs.find((r) => r.pair === p && r.mode === 'manager');
        const b = runs.find((r) => r.pair === p && r.mode === 'bridge');
        return m && b && !m.problems.length && !b.problems.length ? round(b[key] / m[key], 3) : Number.NaN;
      })
      .filter((x) => Number.isFinite(x));
  const manager = spread(of('manager', 'framesPerSec'));
  const bridge = spread(of('bridge', 'framesPerSec'));
  const ratios = spread(pairRatios('framesPerSec'));
  const cpuRatios = spread(pairRatios('framesPerCpuSec'));
  const summary = {
    managerFramesPerSec: manager,
    bridgeFramesPerSec: bridge,
    ratioOfMedians: round(bridge.median / manager.median, 3),
    ratioPerPair: ratios,
    ratioPerPairByCpuTime: cpuRatios,
    bridgeEventsPerRun: bridgeEvents,
    target: '≥ 0.8',
    targetMet: ratios.values.length > 0 && ratios.median >= 0.8,
  };
  const problems = runs.flatMap((r) => r.problems.map((p) => `pair ${r.pair} ${r.mode}: ${p}`));
  const m = meta.machine as Record<string, unknown>;
  const table = [
    `Machine: ${String(m.nproc)} CPUs (${String(m.cpuModel)}), Node ${String(m.node)}. Stream: ${stream.frames} AMI frames (${stream.calls} calls, ${round(stream.bytes / 2 ** 20)} MiB), ${pairs} pairs of runs, ABBA order.`,
    '',
    '| | median frames/s | min | max | spread | frames per CPU-second (median) |',
    '|---|---:|---:|---:|---:|---:|',
    `| asterisk-manager alone | ${manager.median} | ${manager.min} | ${manager.max} | ${manager.spreadPct} % | ${median(of('manager', 'framesPerCpuSec'))} |`,
    `| whole pipeline (Bridge, no-op sink) | ${bridge.median} | ${bridge.min} | ${bridge.max} | ${bridge.spreadPct} % | ${median(of('bridge', 'framesPerCpuSec'))} |`,
    '',
    `Ratio pipeline / asterisk-manager, per pair: median ${ratios.median} (min ${ratios.min}, max ${ratios.max}; pairs: ${ratios.values.join(', ')}); by CPU time: median ${cpuRatios.median} (min ${cpuRatios.min}, max ${cpuRatios.max}). Target ≥ 0.8: ${summary.targetMet ? 'met' : 'NOT met'}.`,
    ...(problems.length ? ['', `**Problems: ${problems.join('; ')}**`] : []),
  ].join('\n');
  endHead(meta);
  writeResults(out, table, { ...meta, summary, runs, ...(profile ? { profile } : {}), problems, markdown: table });
  return problems.length === 0 ? 0 : 1;
}

await runBench('pipeline.ts', main);
