// Memory benchmark: memory per call in progress at --calls concurrent calls (part 'open'), and
// memory across --completed completed calls (part 'completed'), in bench/memory-child.ts.
//   npm run bench:memory [-- options]        method and options: BENCHMARKS.md#method-memory
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MemoryReading, ToParent } from './memory-child.js';
import { CRLF, Stamper, startAmiServer } from './harness/ami.js';
import { feedSocket } from './harness/feed.js';
import { cloneFrames, loadCloneSet, renderClone, type CallTrace, type CloneSet } from './harness/clones.js';
import { BENCH_TRACES, benchFile, requireBuild, ROOT, TRACE_CALLS } from './harness/env.js';
import { endHead, readOptions, resultsHead, writeResults } from './harness/report.js';
import { children, exited, runBench, spawnTracked, tempDir } from './harness/run.js';
import { round, slope } from './harness/stats.js';

const CHILD = benchFile('memory-child.ts');

let childFile: string | null = null;

/**
 * bench/memory-child.ts as plain JavaScript in a temp dir, its imports made absolute: run through
 * the TypeScript loader, the child would carry the type-checking compiler (~250 MB of RSS, in the
 * loader's thread) through every reading.
 */
function childJs(): string {
  if (childFile) return childFile;
  const req = createRequire(path.join(ROOT, 'package.json'));
  const ts = req('typescript') as typeof import('typescript');
  const out = ts.transpileModule(fs.readFileSync(CHILD, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  const js = out.replace(/from '([^']+)'/g, (_m, spec: string) => {
    if (spec.startsWith('node:')) return `from '${spec}'`;
    const resolved = spec.startsWith('.') ? path.resolve(path.dirname(CHILD), spec) : req.resolve(spec);
    if (!fs.existsSync(resolved)) throw new Error(`memory-child: cannot resolve '${spec}'`);
    return `from '${pathToFileURL(resolved).href}'`;
  });
  childFile = path.join(tempDir('crm-bridge-bench-mem-'), 'memory-child.mjs');
  fs.writeFileSync(childFile, js);
  return childFile;
}

const marker = (phase: string) => `Event: UserEvent${CRLF}Privilege: user,all${CRLF}UserEvent: BenchPhase${CRLF}Phase: ${phase}${CRLF}${CRLF}`;

type PhaseMsg = Extract<ToParent, { type: 'phase' }>;
type SampleMsg = Extract<ToParent, { type: 'sample' }>;

interface Session {
  child: ChildProcess;
  socket: net.Socket;
  phases: PhaseMsg[];
  samples: SampleMsg[];
  nextPhase(): Promise<PhaseMsg>;
  stderr: () => string;
}

/** Starts a child against a fresh AMI server; resolves once it has logged in. */
async function startSession(set: CloneSet, part: 'open' | 'completed', sampleEvery: number, onSample?: (s: SampleMsg) => void): Promise<Session & { close(): Promise<void> }> {
  const ami = await startAmiServer(set, new Stamper());
  const args = ['--expose-gc', childJs(), '--port', String(ami.port), '--part', part, '--sample-every', String(sampleEvery), '--calls', JSON.stringify(TRACE_CALLS)];
  const child = spawnTracked(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    process.stderr.write(d);
  });
  const phases: PhaseMsg[] = [];
  const samples: SampleMsg[] = [];
  const waiting: Array<(m: PhaseMsg) => void> = [];
  child.on('message', (m: ToParent) => {
    if (m.type === 'sample') {
      samples.push(m);
      onSample?.(m);
    } else {
      phases.push(m);
      waiting.shift()?.(m);
    }
  });
  const gone = exited(child).then(({ code, signal }) => {
    throw new Error(`the measured child exited (${String(code ?? signal)}): ${err.slice(-2000)}`);
  });
  gone.catch(() => undefined);
  const socket = await Promise.race([ami.loggedIn, gone]);
  return {
    child,
    socket,
    phases,
    samples,
    stderr: () => err,
    nextPhase: () => Promise.race([new Promise<PhaseMsg>((r) => waiting.push(r)), gone]),
    close: async () => {
      socket.end();
      const { code } = await exited(child);
      children.delete(child);
      await ami.close();
      if (code !== 0) throw new Error(`the measured child exited with ${String(code)}: ${err.slice(-2000)}`);
    },
  };
}

/** Feeds `clones` (trace, clone number, part) and then a phase marker; resolves with the child's reading. */
async function feedPhase(s: Session, clones: Array<[CallTrace, number]>, part: 'full' | 'open' | 'rest', phase: string): Promise<{ msg: PhaseMsg; frames: number; seconds: number }> {
  const t0 = Date.now();
  let i = 0;
  let frames = 0;
  let markerSent = false;
  const answer = s.nextPhase();
  await feedSocket(s.socket, () => {
    const c = clones[i++];
    if (c) {
      frames += cloneFrames(c[0], part);
      return renderClone(c[0], c[1], part);
    }
    if (markerSent) return null;
    markerSent = true;
    return marker(phase);
  });
  const msg = await answer;
  return { msg, frames, seconds: (Date.now() - t0) / 1000 };
}

const kb = (bytes: number) => round(bytes / 1024, 2);
const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

function delta(a: MemoryReading, b: MemoryReading): MemoryReading {
  return { heapUsed: b.heapUsed - a.heapUsed, heapTotal: b.heapTotal - a.heapTotal, external: b.external - a.external, arrayBuffers: b.arrayBuffers - a.arrayBuffers, rss: b.rss - a.rss };
}

async function partOpen(set: CloneSet, calls: number, warmupReps: number): Promise<Record<string, unknown>> {
  let k = 0;
  const warm: Array<[CallTrace, number]> = [];
  for (let r = 0; r < warmupReps; r++) for (const t of set.traces) warm.push([t, k++]);
  // Call traces one after the other until exactly `calls` calls (ten-calls adds 10, others 1).
  const open: Array<[CallTrace, number]> = [];
  const byTrace: Record<string, number> = {};
  let total = 0;
  const callTraces = set.traces.filter((t) => t.calls > 0);
  while (total < calls) {
    let added = false;
    for (const t of callTraces) {
      if (total + t.calls > calls) continue;
      open.push([t, k++]);
      total += t.calls;
      byTrace[t.name] = (byTrace[t.name] ?? 0) + t.calls;
      added = true;
    }
    if (!added) throw new Error(`cannot make exactly ${calls} calls from traces of ${callTraces.map((t) => t.calls).join(', ')} calls`);
  }
  const s = await startSession(set, 'open', 1);
  const w = await feedPhase(s, warm, 'full', 'warmup');
  process.stderr.write(`warmup: ${w.frames} frames in ${w.seconds} s; heap ${mb(w.msg.afterGc.heapUsed)} MB, RSS ${mb(w.msg.afterGc.rss)} MB after GC; ${w.msg.activeCalls} calls in progress\n`);
  const o = await feedPhase(s, open, 'open', 'open');
  process.stderr.write(`open: ${o.frames} frames in ${o.seconds} s; heap ${mb(o.msg.afterGc.heapUsed)} MB, RSS ${mb(o.msg.afterGc.rss)} MB after GC; ${o.msg.activeCalls} calls in progress, ${o.msg.trackedChannels} channels\n`);
  const r = await feedPhase(s, open, 'rest', 'rest');
  process.stderr.write(`rest: ${r.frames} frames in ${r.seconds} s; heap ${mb(r.msg.afterGc.heapUsed)} MB, RSS ${mb(r.msg.afterGc.rss)} MB after GC; ${r.msg.activeCalls} calls in progress\n`);
  await s.close();
  const inProgress = o.msg.activeCalls;
  const d = delta(w.msg.afterGc, o.msg.afterGc);
  const back = delta(w.msg.afterGc, r.msg.afterGc);
  const problems: string[] = [];
  if (w.msg.activeCalls !== 0) problems.push(`${w.msg.activeCalls} calls left in progress after the warm-up`);
  if (inProgress !== calls) problems.push(`${inProgress} calls in progress, expected ${calls}`);
  if (r.msg.activeCalls !== 0 || r.msg.trackedChannels !== 0) problems.push(`after the rest: ${r.msg.activeCalls} calls, ${r.msg.trackedChannels} channels still tracked`);
  return {
    callsRequested: calls,
    callsInProgress: inProgress,
    callsByTrace: byTrace,
    channelsTracked: o.msg.trackedChannels,
    frames: { warmup: w.frames, open: o.frames, rest: r.frames },
    events: { warmup: w.msg.events, afterOpen: o.msg.events, afterRest: r.msg.events },
    perCallInProgress: {
      heapUsedBytes: round(d.heapUsed / inProgress, 0),
      heapUsedKB: kb(d.heapUsed / inProgress),
      rssKB: kb(d.rss / inProgress),
      externalBytes: round(d.external / inProgress, 1),
    },
    target: 'heap used after GC per call in progress ≤ 4 KB',
    targetMet: d.heapUsed / inProgress <= 4096,
    afterGc: { warmup: w.msg.afterGc, open: o.msg.afterGc, rest: r.msg.afterGc },
    beforeGc: { warmup: w.msg.beforeGc, open: o.msg.beforeGc, rest: r.msg.beforeGc },
    heapSpacesAfterGc: { warmup: w.msg.heapSpacesAfterGc, open: o.msg.heapSpacesAfterGc, rest: r.msg.heapSpacesAfterGc },
    afterAllEndedVsWarmup: { heapUsedKB: kb(back.heapUsed), rssKB: kb(back.rss) },
    problems,
  };
}

function fit(samples: SampleMsg[], pick: (s: SampleMsg) => number): { bytesPer1000Calls: number; kbOverHalf: number; first: number; last: number; min: number; max: number } {
  const half = samples.slice(Math.floor(samples.length / 2));
  const xs = half.map((s) => s.completedCalls);
  const ys = half.map(pick);
  const b = slope(xs, ys);
  const span = (xs[xs.length - 1] ?? 0) - (xs[0] ?? 0);
  const all = samples.map(pick);
  return {
    bytesPer1000Calls: round(b * 1000, 1),
    kbOverHalf: kb(b * span),
    first: mb(all[0] ?? Number.NaN),
    last: mb(all[all.length - 1] ?? Number.NaN),
    min: mb(Math.min(...all)),
    max: mb(Math.max(...all)),
  };
}

async function partCompleted(set: CloneSet, completed: number, sampleEvery: number): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  let lastReport = 0;
  const s = await startSession(set, 'completed', sampleEvery, (m) => {
    if (Date.now() - lastReport < 30_000) return;
    lastReport = Date.now();
    process.stderr.write(`completed: ${m.completedCalls} calls after ${round((Date.now() - t0) / 1000, 0)} s; RSS ${mb(m.beforeGc.rss)} MB, heap ${mb(m.afterGc.heapUsed)} MB after GC\n`);
  });
  // Whole repetitions of every trace until `completed` calls have been fed.
  let k = 0;
  let fed = 0;
  let frames = 0;
  let ti = 0;
  let markerSent = false;
  const answer = s.nextPhase();
  await feedSocket(s.socket, () => {
    if (fed < completed || ti !== 0) {
      const t = set.traces[ti] as CallTrace;
      ti = (ti + 1) % set.traces.length;
      fed += t.calls;
      frames += t.frames.length;
      return renderClone(t, k++);
    }
    if (markerSent) return null;
    markerSent = true;
    return marker('completed');
  });
  const end = await answer;
  await s.close();
  const seconds = (Date.now() - t0) / 1000;
  const samples = s.samples;
  const problems: string[] = [];
  if (end.completedCalls !== fed) problems.push(`${end.completedCalls} calls completed, ${fed} fed`);
  if (end.activeCalls !== 0) problems.push(`${end.activeCalls} calls still in progress at the end`);
  if (samples.length < 4) problems.push(`only ${samples.length} samples`);
  return {
    callsFed: fed,
    callsCompleted: end.completedCalls,
    events: end.events,
    frames,
    seconds: round(seconds, 0),
    callsPerSec: round(end.completedCalls / seconds, 0),
    framesPerSec: round(frames / seconds, 0),
    sampleEvery,
    samples: samples.length,
    secondHalf: {
      note: 'least-squares slope over the samples from half-way on; kbOverHalf = slope × calls in that half; first/last/min/max in MB over all samples',
      rssAsIs: fit(samples, (x) => x.beforeGc.rss),
      rssAfterGc: fit(samples, (x) => x.afterGc.rss),
      heapUsedAsIs: fit(samples, (x) => x.beforeGc.heapUsed),
      heapUsedAfterGc: fit(samples, (x) => x.afterGc.heapUsed),
    },
    atEnd: { activeCalls: end.activeCalls, trackedChannels: end.trackedChannels, afterGc: end.afterGc },
    series: samples.map((x) => ({ calls: x.completedCalls, s: round(x.atMs / 1000, 1), rssMB: mb(x.beforeGc.rss), heapMB: mb(x.beforeGc.heapUsed), rssAfterGcMB: mb(x.afterGc.rss), heapAfterGcMB: mb(x.afterGc.heapUsed) })),
    problems,
  };
}

async function main(): Promise<number> {
  const { opts, num, out, note } = readOptions('memory', { parts: 'open,completed', calls: [10_000, 1, 1_000_000], completed: [1_000_000, 1, 100_000_000], 'sample-every': [10_000, 1, 10_000_000], 'warmup-reps': 'auto' }, true);
  const { calls, completed, sampleEvery } = opts;
  const set = loadCloneSet(BENCH_TRACES);
  const callsPerRep = set.traces.reduce((n, t) => n + t.calls, 0);
  // As much traffic before the baseline as in the measured phase: the heap and its young
  // generation have grown to what parsing at full speed needs, so the delta is the calls' state.
  const warmupReps = opts.warmupReps === 'auto' ? Math.ceil(calls / callsPerRep) : num('warmup-reps', 1, 100_000);
  const parts = opts.parts.split(',').map((p) => p.trim());
  for (const p of parts) if (p !== 'open' && p !== 'completed') throw new Error(`--parts: '${p}' is not open or completed`);
  requireBuild('memory', 'dist/bridge.js');

  const meta = resultsHead('memory: per call in progress (heap and RSS after GC), and across completed calls (slope of RSS and heap), the real Bridge with a no-op sink', note, os.availableParallelism());
  meta.parameters = {
    parts,
    calls,
    completed,
    sampleEvery,
    warmupReps,
    traces: set.traces.map((t) => ({ name: t.name, framesPerClone: t.frames.length, openFramesPerClone: t.openFrames, callsPerClone: t.calls })),
    rewriting: set.rewriting,
    cut: "part 'open': each call (a Linkedid of a Newchannel) cut before the first Hangup/HangupRequest/SoftHangupRequest of its first channel (Uniqueid = Linkedid); from there on its frames (any *Linkedid header naming it) are held back for part 'rest'",
    child: 'node --expose-gc bench/memory-child.ts as plain JavaScript (transpiled; no TypeScript loader in the process), the Bridge (src/bridge.ts) with sinks: [a no-op sink], reconnect and resync off, log level warn; GC = global.gc() twice',
  };
  const results: Record<string, unknown> = {};
  const problems: string[] = [];
  if (parts.includes('open')) {
    const r = await partOpen(set, calls, warmupReps);
    results.open = r;
    problems.push(...(r.problems as string[]).map((p) => `open: ${p}`));
  }
  if (parts.includes('completed')) {
    const r = await partCompleted(set, completed, sampleEvery);
    results.completed = r;
    problems.push(...(r.problems as string[]).map((p) => `completed: ${p}`));
  }
  const lines: string[] = [];
  const o = results.open as Record<string, any> | undefined; // the shapes built above
  if (o) {
    lines.push(
      `Calls in progress: ${o.callsInProgress} (${o.channelsTracked} channels). Per call in progress: heap ${o.perCallInProgress.heapUsedKB} KB, RSS ${o.perCallInProgress.rssKB} KB (after GC; target ≤ 4 KB: ${o.targetMet ? 'met' : 'NOT met'}). After every call ended: heap ${o.afterAllEndedVsWarmup.heapUsedKB} KB, RSS ${o.afterAllEndedVsWarmup.rssKB} KB vs before.`,
    );
  }
  const c = results.completed as Record<string, any> | undefined;
  if (c) {
    const h = c.secondHalf;
    lines.push(
      `Completed calls: ${c.callsCompleted} in ${c.seconds} s (${c.callsPerSec} calls/s, ${c.framesPerSec} frames/s), ${c.samples} samples. Slope over the second half, bytes per 1,000 calls: RSS ${h.rssAsIs.bytesPer1000Calls} (${h.rssAsIs.kbOverHalf} KB over the half; ${h.rssAsIs.first} → ${h.rssAsIs.last} MB, min ${h.rssAsIs.min}, max ${h.rssAsIs.max}); RSS after GC ${h.rssAfterGc.bytesPer1000Calls}; heap as is ${h.heapUsedAsIs.bytesPer1000Calls}; heap after GC ${h.heapUsedAfterGc.bytesPer1000Calls} (${h.heapUsedAfterGc.kbOverHalf} KB over the half; ${h.heapUsedAfterGc.first} → ${h.heapUsedAfterGc.last} MB).`,
    );
  }
  if (problems.length) lines.push(`**Problems: ${problems.join('; ')}**`);
  const table = lines.join('\n\n');
  endHead(meta);
  writeResults(out, table, { ...meta, ...results, problems, markdown: table });
  return problems.length === 0 ? 0 : 1;
}

await runBench('memory.ts', main);
