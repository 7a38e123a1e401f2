// Webhook benchmark (issue: "events delivered per second to a local receiver with the durable
// outbox, and p50/p99 latency from the AMI event arriving to the HTTP request arriving, at 1,000
// events/s offered"). A benchmark, not a test: it measures and reports, and never runs in `npm test`.
//
//   npm run bench:webhook                       # builds, then runs the default set of runs
//   node --import @tapjs/typescript/import bench/webhook.ts [options]   # after `npm run build`
//
// (Node 20 cannot strip types itself; tap's TypeScript loader is already installed and
// type-checks this file with the project's tsconfig.) It runs the BUILT daemon (dist/, through
// bin/crm-bridge.js), so build first.
//
// What it does, per run:
//   - builds an AMI byte stream from the real recorded trace test/fixtures/ten-calls.ami (Asterisk
//     22, 10 concurrent queue calls): its frames repeated N times, every Uniqueid/Linkedid/
//     DestUniqueid/LocalOne…/LocalTwo… value, channel-name sequence number and BridgeUniqueid
//     rewritten per repetition, so the normalizer sees N×10 distinct calls;
//   - serves it from a loopback AMI server (below) that, after the client's Login, writes frames
//     paced to a target rate (or as fast as the socket drains), stamping each frame's `Timestamp:`
//     with the wall-clock time at which it is written (ms, plus a per-ms counter in the µs digits
//     so that event ids stay unique) — so an event's `time` is the moment its AMI frame left;
//   - spawns `node bin/crm-bridge.js run --config <tmp yaml>` with one `webhook` sink (json) to a
//     local HTTP receiver, the outbox on disk in a temp dir (synchronous: normal), logs (warn) to a
//     file;
//   - the receiver (a separate process by default, or in this process) records, per unique
//     `webhook-id`, arrival time − Date.parse(event.time);
//   - samples once a second: daemon CPU and RSS (/proc), receiver and bench CPU, whole-machine CPU
//     busy, outbox backlog (COUNT(*) through a read-only SQLite connection) and rows enqueued.
//
// Runs (--runs, comma-separated MODE[@RATE][:RECEIVER][+agents]; default
// paced:child,paced:inproc,max:child). RECEIVER: child = a separate process, inproc = this
// process. +agents: every repetition gets agents of its own instead of the recorded two (201, 202),
// so agent events spread over many outbox partitions.
//   paced[@RATE]  RATE (default --rate) normalized events/s offered for --duration seconds; the
//                 AMI frame rate is calibrated from the trace's ratio of normalized events to AMI
//                 frames, measured by replaying 1, 2 and 3 repetitions through `crm-bridge replay`
//                 (which also gives the exact number of events to expect);
//   max           no pacing, for --max-seconds seconds of sending (whole repetitions, at most
//                 --max-reps), then the outbox drains.
//
// Options: --rate 1000  --duration 30  --max-seconds 20  --max-reps 2000  --concurrency 8  --runs …
//   --quiet-wait 120   before each run, wait up to that many seconds for the machine to be < 25 %
//                      of a core busy (a shared machine); 0: don't
//   --outbox-dir DIR   where each run's temp dir (outbox, config, daemon log) goes; default the OS
//                      temp dir
//   --profile          daemon under --cpu-prof; adds where its CPU went (self time by module and
//                      function); the figures are then not representative
//   --out FILE         default bench/results/webhook.json      --note TEXT   recorded with the results
//
// Prints Markdown tables and writes --out (machine, command, parameters, figures). Exits 1 if the
// daemon died or exited badly, reconnected, or an event was lost. Everything listens on 127.0.0.1;
// every loop is bounded in count and time; it kills the processes it started (by their pid) and
// removes its temp dirs, also on SIGINT/SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { splitGreeting } from '../dist/sources/ami/replay-server.js';
import { children, CRLF, drained, exited, gitHead, idParts, filesystemOf, latencyStats, machine, mergeLiterals, median, pct, procSample as procSampleKB, CHANNEL, removeDir, render, round, scanIds, sleep, Stamper, startAmiServer, systemCpu, tempDir, waitForQuiet, within, type Part, runBench, summarizeCpuProfile } from './lib.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const BIN = path.join(ROOT, 'bin/crm-bridge.js');
const TRACE_PATH = path.join(ROOT, 'test/fixtures/ten-calls.ami');
const LOADER = ['--import', '@tapjs/typescript/import'];

interface ProcSample {
  cpuSec: number;
  rssMB: number;
  hwmMB: number;
}

/** CPU seconds of a live process and its memory in MB (rounded to 0.1), or null if it is gone. */
function procSample(pid: number): ProcSample | null {
  const s = procSampleKB(pid);
  return s && { cpuSec: s.cpuSec, rssMB: round(s.rssKB / 1024), hwmMB: round(s.hwmKB / 1024) };
}

// ------------------------------------------------------------------------------------------------
// The AMI stream: the recorded trace's frames as templates, rendered per repetition.

interface Trace {
  greeting: string;
  /** The recorded login response (kept for `crm-bridge replay`, which plays the body verbatim). */
  loginFrame: string;
  /** Sent once after login: FullyBooted, SuccessfulAuth. */
  once: Part[][];
  /** Repeated: every other event frame (the end-of-recording UserEvent is dropped). */
  frames: Part[][];
  /** Bytes of one repetition (with a 26-character Timestamp value). */
  bytesPerRep: number;
  freshAgents: boolean;
  rewritten: { uniqueidEpochs: [number, number]; channelSeqs: [number, number]; headers: string[]; agents: string };
}

function loadTrace(file: string, freshAgents = false): Trace {
  const raw = fs.readFileSync(file);
  const { greeting, body } = splitGreeting(raw);
  const texts = body
    .toString('latin1')
    .split(`${CRLF}${CRLF}`)
    .filter((f) => f.trim() !== '');
  // First pass: the ranges to offset by, so repetitions never collide.
  const { eMin, eMax, cMin, cMax, headers } = scanIds(texts);
  if (!Number.isFinite(eMin)) throw new Error(`${file}: no Uniqueid values found`);
  // The agents' extensions, from the queue members' interfaces (Local/201@agents, PJSIP/201).
  const agentExts: string[] = [];
  for (const m of body.toString('latin1').matchAll(/^(?:Interface|StateInterface): (?:Local|PJSIP|SIP)\/(\d{2,6})(?:@[^\r]*)?\r$/gm)) {
    if (!agentExts.includes(m[1] as string)) agentExts.push(m[1] as string);
  }
  agentExts.sort();
  // --fresh-agents: repetition r gets its own agents 10000 + r × (number of agents) + i, so agent
  // partitions are as many as in a contact centre with that many agents instead of the recorded two.
  const AGENT = freshAgents && agentExts.length ? new RegExp(`(?<![0-9A-Za-z])(${agentExts.join('|')})(?![0-9])`, 'g') : null;
  const agentOf = (ext: string, rep: number) => String(10000 + rep * agentExts.length + agentExts.indexOf(ext));
  const epochSpan = eMax - eMin + 1;
  const chanSpan = Number.isFinite(cMin) ? cMax - cMin + 1 : 0;

  const compile = (text: string): Part[] => {
    const parts: Part[] = [];
    for (const line of text.split(CRLF)) {
      const ids = idParts(line, epochSpan);
      if (ids) {
        parts.push(...ids);
        continue;
      }
      CHANNEL.lastIndex = 0;
      if (AGENT && (AGENT.test(line) || CHANNEL.test(line))) {
        AGENT.lastIndex = 0;
        CHANNEL.lastIndex = 0;
        // Agents and channel numbers in one line: rewritten per repetition with two replaces.
        parts.push(
          (rep) =>
            line
              .replace(CHANNEL, (_m, prefix: string, hex: string) => prefix + (parseInt(hex, 16) + rep * chanSpan).toString(16).padStart(8, '0'))
              .replace(AGENT, (ext: string) => agentOf(ext, rep)) + CRLF,
        );
        continue;
      }
      if (chanSpan > 0 && CHANNEL.test(line)) {
        CHANNEL.lastIndex = 0;
        let last = 0;
        for (const c of line.matchAll(CHANNEL)) {
          const at = c.index ?? 0;
          const prefix = c[1] as string;
          const n = parseInt(c[2] as string, 16);
          parts.push(line.slice(last, at));
          parts.push((rep) => prefix + (n + rep * chanSpan).toString(16).padStart(8, '0'));
          last = at + c[0].length;
        }
        parts.push(line.slice(last) + CRLF);
        continue;
      }
      CHANNEL.lastIndex = 0;
      parts.push(line + CRLF);
    }
    parts.push(CRLF);
    return mergeLiterals(parts);
  };

  let loginFrame = '';
  const once: Part[][] = [];
  const frames: Part[][] = [];
  for (const text of texts) {
    if (text.startsWith('Response:')) {
      if (!loginFrame) loginFrame = `${text}${CRLF}${CRLF}`;
      continue;
    }
    const event = /^Event: (.*)$/m.exec(text)?.[1]?.trim();
    if (event === 'FullyBooted' || event === 'SuccessfulAuth') once.push(compile(text));
    else if (event === 'UserEvent' && /^UserEvent: RecordingEnd$/m.test(text)) continue;
    else frames.push(compile(text));
  }
  const stamp = '1795423831.279196';
  const bytesPerRep = frames.reduce((n, f) => n + render(f, 0, stamp).length, 0);
  return { greeting, loginFrame, once, frames, bytesPerRep, freshAgents, rewritten: { uniqueidEpochs: [eMin, eMax], channelSeqs: [cMin, cMax], headers: [...headers].sort(), agents: freshAgents ? `${agentExts.join(', ')} -> 10000 + rep × ${agentExts.length} + i` : `${agentExts.join(', ')} (as recorded, in every repetition)` } };
}

/** Renders repetition after repetition, frame by frame. */
class Stream {
  rep = 0;
  index = 0;
  framesSent = 0;
  bytesSent = 0;
  constructor(
    private readonly trace: Trace,
    private readonly stamper: Stamper,
  ) {}
  /** The next frame, stamped now. */
  next(): string {
    const f = this.trace.frames[this.index] as Part[];
    const s = render(f, this.rep, this.stamper.stamp());
    if (++this.index >= this.trace.frames.length) {
      this.index = 0;
      this.rep++;
    }
    this.framesSent++;
    this.bytesSent += s.length;
    return s;
  }
}

// ------------------------------------------------------------------------------------------------
// Calibration: normalized events per repetition, via the real `crm-bridge replay`.

interface Calibration {
  framesPerRep: number;
  bytesPerRep: number;
  /** Events of a stream of 1, 2, 3 repetitions. */
  eventsForReps: number[];
  eventsPerRep: number;
  /** Events of a 1-repetition stream minus eventsPerRep (once-only events). */
  eventsOnce: number;
  eventsPerFrame: number;
  distinctCallsFor3Reps: number;
  distinctAgentsFor3Reps: number;
  eventTypesPerRep: Record<string, number>;
  replayStderr: string;
}

function buildTraceFile(trace: Trace, reps: number, file: string): void {
  const stamper = new Stamper();
  const out: string[] = [trace.greeting, trace.loginFrame];
  for (const f of trace.once) out.push(render(f, 0, stamper.stamp()));
  const s = new Stream(trace, stamper);
  const total = reps * trace.frames.length;
  for (let i = 0; i < total; i++) out.push(s.next());
  fs.writeFileSync(file, out.join(''), 'latin1');
}

function replayCount(file: string): { events: Array<Record<string, unknown>>; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'replay', file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' },
    maxBuffer: 256 * 1024 * 1024,
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`crm-bridge replay ${file} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const events = r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { events, stderr: r.stderr };
}

function calibrate(trace: Trace): Calibration {
  const dir = tempDir('crm-bridge-bench-cal-');
  try {
    const counts: number[] = [];
    let calls3 = 0;
    let agents3 = 0;
    let types: Record<string, number> = {};
    let stderr = '';
    for (const reps of [1, 2, 3]) {
      const file = path.join(dir, `reps-${reps}.ami`);
      buildTraceFile(trace, reps, file);
      const { events, stderr: err } = replayCount(file);
      stderr += err;
      counts.push(events.length);
      if (reps === 1) {
        types = {};
        for (const e of events) types[String(e.type)] = (types[String(e.type)] ?? 0) + 1;
      }
      if (reps === 3) {
        calls3 = new Set(events.filter((e) => typeof e.callId === 'string').map((e) => e.callId)).size;
        agents3 = new Set(events.map((e) => (e.agent as { id?: string } | undefined)?.id).filter(Boolean)).size;
      }
    }
    const [e1, e2, e3] = counts as [number, number, number];
    const perRep = e2 - e1;
    if (e3 - e2 !== perRep) throw new Error(`calibration: events per repetition are not constant (${counts.join(', ')} for 1, 2, 3 repetitions)`);
    if (calls3 !== 30) throw new Error(`calibration: 3 repetitions gave ${calls3} distinct calls, not 30: the per-repetition rewriting is incomplete`);
    return {
      framesPerRep: trace.frames.length,
      bytesPerRep: trace.bytesPerRep,
      eventsForReps: counts,
      eventsPerRep: perRep,
      eventsOnce: e1 - perRep,
      eventsPerFrame: perRep / trace.frames.length,
      distinctCallsFor3Reps: calls3,
      distinctAgentsFor3Reps: agents3,
      eventTypesPerRep: types,
      replayStderr: stderr,
    };
  } finally {
    removeDir(dir);
  }
}

interface FeedResult {
  mode: 'paced' | 'max';
  reps: number;
  frames: number;
  bytes: number;
  startedAt: number;
  endedAt: number;
  seconds: number;
  framesPerSecAchieved: number;
  /** paced: timer ticks and their gaps; how far the pacer fell behind. */
  ticks?: number;
  tickGapMs?: { p50: number; p99: number; max: number };
  maxFramesPerWrite: number;
  /** Bytes queued in this process because the daemon did not read fast enough. */
  maxWritableLengthBytes: number;
  drainWaits: number;
  stampsBorrowed: number;
}

/** Paced: `reps` repetitions at `framesPerSec`, in batches every ~1 ms timer tick. */
async function feedPaced(socket: net.Socket, stream: Stream, stamper: Stamper, reps: number, framesPerRep: number, framesPerSec: number, deadline: number): Promise<FeedResult> {
  const total = reps * framesPerRep;
  const startedAt = Date.now();
  const t0 = performance.now();
  let sent = 0;
  let ticks = 0;
  let maxBatch = 0;
  let maxWritable = 0;
  const gaps: number[] = [];
  let lastTick = t0;
  while (sent < total) {
    if (socket.destroyed) throw new Error(`the daemon's AMI connection closed after ${sent} of ${total} frames`);
    if (Date.now() > deadline) throw new Error(`paced feed overran its deadline (${sent} of ${total} frames)`);
    const now = performance.now();
    if (ticks++ > 0) gaps.push(now - lastTick);
    lastTick = now;
    const due = Math.min(total, Math.floor(((now - t0) * framesPerSec) / 1000));
    if (due > sent) {
      let chunk = '';
      const batch = due - sent;
      while (sent < due) {
        chunk += stream.next();
        sent++;
      }
      socket.write(chunk, 'latin1');
      maxBatch = Math.max(maxBatch, batch);
      maxWritable = Math.max(maxWritable, socket.writableLength);
      if (socket.writableLength > 512 * 1024 * 1024) throw new Error('the daemon is not reading AMI: 512 MiB queued');
    }
    await sleep(1);
  }
  const endedAt = Date.now();
  const g = Float64Array.from(gaps).sort();
  return {
    mode: 'paced',
    reps,
    frames: sent,
    bytes: stream.bytesSent,
    startedAt,
    endedAt,
    seconds: (endedAt - startedAt) / 1000,
    framesPerSecAchieved: round(sent / ((endedAt - startedAt) / 1000), 0),
    ticks,
    tickGapMs: { p50: round(pct(g, 50), 2), p99: round(pct(g, 99), 2), max: round(pct(g, 100), 2) },
    maxFramesPerWrite: maxBatch,
    maxWritableLengthBytes: maxWritable,
    drainWaits: 0,
    stampsBorrowed: stamper.borrowed,
  };
}

/** Unpaced: as fast as the socket drains, ~64 KiB per write, whole repetitions, for `seconds`. */
async function feedMax(socket: net.Socket, stream: Stream, stamper: Stamper, seconds: number, maxReps: number, deadline: number): Promise<FeedResult> {
  const startedAt = Date.now();
  const stopAt = startedAt + seconds * 1000;
  let drainWaits = 0;
  let maxBatch = 0;
  let maxWritable = 0;
  for (;;) {
    if (socket.destroyed) throw new Error(`the daemon's AMI connection closed after ${stream.framesSent} frames`);
    if (Date.now() > deadline) throw new Error('unpaced feed overran its deadline');
    const timeUp = Date.now() >= stopAt;
    if (stream.index === 0 && (timeUp || stream.rep >= maxReps)) break;
    let chunk = '';
    let batch = 0;
    while (chunk.length < 65536) {
      chunk += stream.next();
      batch++;
      if (stream.index === 0) break; // a repetition ends: look at the clock
    }
    maxBatch = Math.max(maxBatch, batch);
    const ok = socket.write(chunk, 'latin1');
    maxWritable = Math.max(maxWritable, socket.writableLength);
    if (!ok) {
      drainWaits++;
      await drained(socket, deadline);
    } else await new Promise<void>((r) => setImmediate(r));
  }
  const endedAt = Date.now();
  return {
    mode: 'max',
    reps: stream.rep,
    frames: stream.framesSent,
    bytes: stream.bytesSent,
    startedAt,
    endedAt,
    seconds: (endedAt - startedAt) / 1000,
    framesPerSecAchieved: round(stream.framesSent / ((endedAt - startedAt) / 1000), 0),
    maxFramesPerWrite: maxBatch,
    maxWritableLengthBytes: maxWritable,
    drainWaits,
    stampsBorrowed: stamper.borrowed,
  };
}

// ------------------------------------------------------------------------------------------------
// Receiver: records one row per unique webhook-id. Runs in this process or in a child process.

interface Dump {
  at: number[];
  time: number[];
  seq: number[];
  part: string[];
  type: string[];
  requests: number;
  dupes: number;
  bad: number;
}

class Collector {
  private readonly ids = new Set<string>();
  readonly d: Dump = { at: [], time: [], seq: [], part: [], type: [], requests: 0, dupes: 0, bad: 0 };
  get unique(): number {
    return this.d.at.length;
  }
  add(at: number, id: string | undefined, body: string): void {
    const d = this.d;
    d.requests++;
    if (!id) {
      d.bad++;
      return;
    }
    if (this.ids.has(id)) {
      d.dupes++;
      return;
    }
    let ev: { time?: unknown; callId?: unknown; seq?: unknown; type?: unknown; agent?: { id?: unknown } };
    try {
      ev = JSON.parse(body) as typeof ev;
    } catch {
      d.bad++;
      return;
    }
    const time = typeof ev.time === 'string' ? Date.parse(ev.time) : Number.NaN;
    if (!Number.isFinite(time)) {
      d.bad++;
      return;
    }
    this.ids.add(id);
    d.at.push(at);
    d.time.push(time);
    d.seq.push(typeof ev.seq === 'number' ? ev.seq : 0);
    d.part.push(typeof ev.callId === 'string' ? ev.callId : `agent:${String(ev.agent?.id ?? '?')}`);
    d.type.push(String(ev.type));
  }
}

async function listenReceiver(collector: Collector): Promise<http.Server> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const at = Date.now(); // the request's headers have arrived
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = req.headers['webhook-id'];
      collector.add(at, Array.isArray(id) ? id[0] : id, Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

interface Receiver {
  kind: 'child' | 'inproc';
  port: number;
  pid: number;
  unique(): Promise<number>;
  dump(): Promise<Dump>;
  close(): Promise<void>;
}

async function startInprocReceiver(): Promise<Receiver> {
  const c = new Collector();
  const server = await listenReceiver(c);
  return {
    kind: 'inproc',
    port: (server.address() as net.AddressInfo).port,
    pid: process.pid,
    unique: async () => c.unique,
    dump: async () => c.d,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Child -> parent; `id` answers the parent's request of that id (0: the unsolicited 'ready'). */
type ChildMsg = { id: number; type: 'ready'; port: number } | { id: number; type: 'count'; unique: number } | { id: number; type: 'dump'; dump: Dump };

async function startChildReceiver(): Promise<Receiver> {
  const child = spawn(process.execPath, [...LOADER, SELF, '--receiver-child'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  children.add(child);
  // Requests are matched to answers by id: the sampler and the wait loop ask concurrently.
  const waiting = new Map<number, { resolve: (m: ChildMsg) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (m: ChildMsg) => {
    const w = waiting.get(m.id);
    if (w) {
      waiting.delete(m.id);
      w.resolve(m);
    }
  });
  child.once('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`receiver process exited (${code ?? signal})`));
    waiting.clear();
  });
  const ask = <T extends ChildMsg>(type: T['type'], ms: number): Promise<T> => {
    const id = type === 'ready' ? 0 : nextId++;
    return within(
      new Promise<T>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error('receiver process is gone'));
        waiting.set(id, { resolve: (m) => resolve(m as T), reject });
        if (id !== 0) child.send({ id, type }, (err) => err && reject(err));
      }),
      ms,
      `receiver process: ${type}`,
    ).finally(() => waiting.delete(id));
  };
  const ready = await ask<{ id: number; type: 'ready'; port: number }>('ready', 30_000);
  return {
    kind: 'child',
    port: ready.port,
    pid: child.pid ?? -1,
    unique: async () => (await ask<{ id: number; type: 'count'; unique: number }>('count', 10_000)).unique,
    dump: async () => (await ask<{ id: number; type: 'dump'; dump: Dump }>('dump', 60_000)).dump,
    close: async () => {
      if (child.connected) child.send({ id: -1, type: 'exit' });
      try {
        await within(exited(child), 5_000, 'receiver process to exit');
      } catch {
        child.kill('SIGKILL');
        await exited(child);
      }
      children.delete(child);
    },
  };
}

async function receiverChild(): Promise<void> {
  const c = new Collector();
  const server = await listenReceiver(c);
  const send = (m: ChildMsg) => process.send?.(m);
  process.on('message', (m: { id: number; type: string }) => {
    if (m.type === 'count') send({ id: m.id, type: 'count', unique: c.unique });
    else if (m.type === 'dump') send({ id: m.id, type: 'dump', dump: c.d });
    else if (m.type === 'exit') {
      server.closeAllConnections();
      server.close();
      process.disconnect();
    }
  });
  // The parent is gone: do not linger.
  process.on('disconnect', () => process.exit(0));
  send({ id: 0, type: 'ready', port: (server.address() as net.AddressInfo).port });
}

// ------------------------------------------------------------------------------------------------
// The daemon

interface Daemon {
  child: ChildProcess;
  pid: number;
  logFile: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDaemon(dir: string, config: string, nodeArgs: string[]): Daemon {
  const logFile = path.join(dir, 'daemon.log');
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'run', '--config', config], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'ignore', fd],
  });
  fs.closeSync(fd);
  children.add(child);
  return { child, pid: child.pid ?? -1, logFile, exit: exited(child) };
}

function daemonConfig(amiPort: number, receiverPort: number, dir: string, concurrency: number): string {
  return `# written by bench/webhook.ts
pbx:
  name: bench
  ami:
    host: 127.0.0.1
    port: ${amiPort}
    username: bench
    secret: bench
    resync: false
    reconnect: { initialDelayMs: 200, maxDelayMs: 1000, factor: 2, jitter: 0 }
sinks:
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

// ------------------------------------------------------------------------------------------------
// Sampling once a second

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

class Monitor {
  readonly samples: Sample[] = [];
  private db: Database.Database | null = null;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly dbPath: string,
    private readonly daemonPid: number,
    private readonly receiver: Receiver,
    private readonly stream: Stream,
    private readonly t0: () => number,
  ) {}

  private outbox(): { enqueued: number; backlog: number } | null {
    try {
      if (!this.db) {
        if (!fs.existsSync(this.dbPath)) return null;
        this.db = new Database(this.dbPath, { readonly: true, fileMustExist: true });
        this.db.pragma('busy_timeout = 200');
      }
      const backlog = (this.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
      const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined;
      return { enqueued: row?.seq ?? 0, backlog };
    } catch {
      return null;
    }
  }

  start(maxSamples: number): void {
    let prevSys = systemCpu();
    let prevD = procSample(this.daemonPid)?.cpuSec ?? 0;
    let prevR = this.receiver.kind === 'child' ? (procSample(this.receiver.pid)?.cpuSec ?? 0) : 0;
    let prevB = procSample(process.pid)?.cpuSec ?? 0;
    let prevAt = performance.now();
    this.loop = (async () => {
      for (let i = 0; i < maxSamples && !this.stopped; i++) {
        await sleep(1000);
        if (this.stopped) break;
        const now = performance.now();
        const dt = (now - prevAt) / 1000;
        prevAt = now;
        const sys = systemCpu();
        const d = procSample(this.daemonPid);
        const r = this.receiver.kind === 'child' ? procSample(this.receiver.pid) : null;
        const b = procSample(process.pid);
        const ob = this.outbox();
        let delivered = -1;
        try {
          delivered = await this.receiver.unique();
        } catch {
          /* the receiver is gone; the run reports it */
        }
        this.samples.push({
          t: round((Date.now() - this.t0()) / 1000, 1),
          framesSent: this.stream.framesSent,
          enqueued: ob?.enqueued ?? null,
          backlog: ob?.backlog ?? null,
          delivered,
          daemonCpuPct: d ? round(((d.cpuSec - prevD) / dt) * 100) : null,
          daemonRssMB: d?.rssMB ?? null,
          receiverCpuPct: r ? round(((r.cpuSec - prevR) / dt) * 100) : null,
          benchCpuPct: b ? round(((b.cpuSec - prevB) / dt) * 100) : null,
          machineBusyPct: round(((sys.busy - prevSys.busy) / Math.max(1, sys.total - prevSys.total)) * 100 * os.availableParallelism()),
          otherPct: 0,
        });
        const last = this.samples[this.samples.length - 1] as Sample;
        last.otherPct = round(Math.max(0, last.machineBusyPct - (last.daemonCpuPct ?? 0) - (last.receiverCpuPct ?? 0) - (last.benchCpuPct ?? 0)));
        prevSys = sys;
        if (d) prevD = d.cpuSec;
        if (r) prevR = r.cpuSec;
        if (b) prevB = b.cpuSec;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.db?.close();
    this.db = null;
  }
}

// ------------------------------------------------------------------------------------------------
// One run

interface RunSpec {
  mode: 'paced' | 'max';
  receiver: 'child' | 'inproc';
  /** paced: normalized events/s offered (default --rate). */
  rate: number;
  /** New agents in every repetition (suffix +agents). */
  freshAgents: boolean;
}

interface Options {
  rate: number;
  duration: number;
  maxSeconds: number;
  maxReps: number;
  concurrency: number;
  profile: boolean;
  /** Before each run, wait up to this long for the machine to be < 25 % busy (0: do not wait). */
  quietWaitS: number;
  /** Where the run's temp dir (outbox, config, daemon log) is made. */
  outboxDir: string;
}

function specLabel(s: RunSpec): string {
  return `${s.mode === 'paced' ? `paced@${s.rate}` : 'max'}:${s.receiver}${s.freshAgents ? '+agents' : ''}`;
}

async function runOnce(spec: RunSpec, trace: Trace, cal: Calibration, opts: Options): Promise<Record<string, unknown>> {
  const label = specLabel(spec);
  process.stderr.write(`\n== run ${label}\n`);
  const dir = tempDir('crm-bridge-bench-', opts.outboxDir);
  const problems: string[] = [];
  const receiver = spec.receiver === 'child' ? await startChildReceiver() : await startInprocReceiver();
  const stamper = new Stamper();
  const ami = await startAmiServer(trace, stamper);
  const configFile = path.join(dir, 'config.yaml');
  fs.writeFileSync(configFile, daemonConfig(ami.port, receiver.port, dir, opts.concurrency));
  const profDir = path.join(dir, 'prof');
  const daemon = startDaemon(dir, configFile, opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  let died: string | null = null;
  let stopping = false;
  void daemon.exit.then(({ code, signal }) => {
    if (!stopping) died = `daemon exited during the run (code ${code}, signal ${signal})`;
  });
  const stream = new Stream(trace, stamper);
  let feedStart = Date.now();
  const monitor = new Monitor(path.join(dir, 'outbox.db'), daemon.pid, receiver, stream, () => feedStart);
  let feed: FeedResult | null = null;
  let expected = 0;
  let daemonStats: ProcSample | null = null;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let waitedForDeliveryS = 0;
  let dump: Dump | null = null;
  const framesPerSec = spec.rate / cal.eventsPerFrame;
  try {
    const socket = await within(
      Promise.race([ami.loggedIn, daemon.exit.then(({ code }) => Promise.reject(new Error(`daemon exited (${code}) before logging in to AMI; see its log`)))]),
      30_000,
      'the daemon to log in to AMI',
    );
    // Let the sink start (it is started before the source, but be generous) and the login settle.
    await sleep(300);
    feedStart = Date.now();
    monitor.start(3600);
    if (spec.mode === 'paced') {
      const reps = Math.ceil((opts.duration * spec.rate) / cal.eventsPerRep);
      process.stderr.write(`   paced: ${reps} repetitions × ${trace.frames.length} frames at ${round(framesPerSec, 0)} frames/s (${spec.rate} events/s offered)\n`);
      feed = await feedPaced(socket, stream, stamper, reps, trace.frames.length, framesPerSec, Date.now() + (opts.duration * 3 + 60) * 1000);
    } else {
      process.stderr.write(`   max: unpaced for ${opts.maxSeconds} s (at most ${opts.maxReps} repetitions)\n`);
      feed = await feedMax(socket, stream, stamper, opts.maxSeconds, opts.maxReps, Date.now() + (opts.maxSeconds * 3 + 60) * 1000);
    }
    expected = cal.eventsOnce + feed.reps * cal.eventsPerRep;
    process.stderr.write(`   sent ${feed.reps} repetitions (${feed.frames} frames) in ${feed.seconds} s; expecting ${expected} events\n`);
    // Wait for delivery: done when everything arrived; give up after 30 s without progress or an overall cap.
    const waitStart = Date.now();
    const cap = spec.mode === 'paced' ? 120_000 : 900_000;
    let last = -1;
    let lastProgress = Date.now();
    for (let i = 0; i < 100_000; i++) {
      const n = await receiver.unique();
      if (n >= expected) break;
      if (died) break;
      if (n !== last) {
        last = n;
        lastProgress = Date.now();
      }
      if (Date.now() - lastProgress > 30_000) {
        problems.push(`no delivery progress for 30 s at ${n} of ${expected} events`);
        break;
      }
      if (Date.now() - waitStart > cap) {
        problems.push(`gave up waiting for delivery after ${cap / 1000} s at ${n} of ${expected} events`);
        break;
      }
      await sleep(100);
    }
    waitedForDeliveryS = (Date.now() - waitStart) / 1000;
    // One more sample after the end, then leave a moment for stray duplicates.
    await sleep(1100);
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    await monitor.stop();
    daemonStats = procSample(daemon.pid);
    stopping = true;
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGTERM');
    try {
      exit = await within(daemon.exit, 20_000, 'the daemon to stop after SIGTERM');
    } catch (err) {
      problems.push((err as Error).message);
      daemon.child.kill('SIGKILL');
      exit = await daemon.exit;
    }
    children.delete(daemon.child);
    try {
      dump = await receiver.dump();
    } catch (err) {
      problems.push(`receiver: ${(err as Error).message}`);
    }
    await receiver.close();
    await ami.close();
  }
  if (died) problems.push(died);
  if (exit && (exit.code !== 0 || exit.signal)) problems.push(`daemon exit after SIGTERM: code ${exit.code}, signal ${exit.signal}`);
  if (ami.logins !== 1) problems.push(`the daemon logged in to AMI ${ami.logins} times (reconnected)`);
  const logText = fs.existsSync(daemon.logFile) ? fs.readFileSync(daemon.logFile, 'utf8') : '';
  const logLines = logText.split('\n').filter((l) => l.trim() !== '');
  const profile = opts.profile ? summarizeProfile(profDir) : undefined;
  removeDir(dir);

  const d = dump ?? { at: [], time: [], seq: [], part: [], type: [], requests: 0, dupes: 0, bad: 0 };
  const delivered = d.at.length;
  const lost = Math.max(0, expected - delivered);
  if (lost > 0) problems.push(`${lost} of ${expected} events were not delivered`);
  if (delivered > expected) problems.push(`${delivered - expected} more distinct events than expected`);
  if (d.bad > 0) problems.push(`${d.bad} requests without webhook-id, JSON or time`);
  const calls = new Set(d.part.filter((p) => !p.startsWith('agent:'))).size;
  if (feed && calls !== feed.reps * 10) problems.push(`${calls} distinct calls delivered, expected ${feed.reps * 10}`);

  // Order per call (at most one request in flight per partition, so arrival order = delivery order).
  let outOfOrder = 0;
  const lastSeq = new Map<string, number>();
  const order = d.at.map((_, i) => i).sort((a, b) => (d.at[a] as number) - (d.at[b] as number) || a - b);
  for (const i of order) {
    const p = d.part[i] as string;
    if (p.startsWith('agent:')) continue;
    const s = d.seq[i] as number;
    if ((lastSeq.get(p) ?? 0) > s) outOfOrder++;
    lastSeq.set(p, Math.max(lastSeq.get(p) ?? 0, s));
  }

  const lat = d.at.map((a, i) => a - (d.time[i] as number));
  const first = Math.min(...d.at);
  const lastAt = Math.max(...d.at);
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
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  }
  const pos0: number[] = [];
  const posN: number[] = [];
  for (const g of groups.values()) g.forEach((i, k) => (k === 0 ? pos0 : posN).push(lat[i] as number));
  const byType: Record<string, ReturnType<typeof latencyStats>> = {};
  const typeNames = [...new Set(d.type)].sort();
  for (const t of typeNames) byType[t] = latencyStats(lat.filter((_, i) => d.type[i] === t));
  // Latency after the first 2 s (warm-up: JIT, first connections), and in the second half of sending.
  const steady = lat.filter((_, i) => (d.time[i] as number) >= feedStart + 2000);
  const halfAt = feed ? feed.startedAt + (feed.endedAt - feed.startedAt) / 2 : Number.POSITIVE_INFINITY;
  const secondHalf = lat.filter((_, i) => (d.time[i] as number) >= halfAt && (d.time[i] as number) <= (feed?.endedAt ?? 0));
  const callLat = lat.filter((_, i) => !(d.part[i] as string).startsWith('agent:'));
  const agentLat = lat.filter((_, i) => (d.part[i] as string).startsWith('agent:'));
  // p50/p99 per 5 s of sending, by the event's time.
  const windows: Array<{ fromS: number; n: number; p50: number; p99: number; max: number }> = [];
  for (let w = 0; feed && w * 5000 < feed.endedAt - feedStart + 1 && w < 1000; w++) {
    const xs = lat.filter((_, i) => {
      const t = (d.time[i] as number) - feedStart;
      return t >= w * 5000 && t < (w + 1) * 5000;
    });
    if (!xs.length) continue;
    const st = latencyStats(xs);
    windows.push({ fromS: w * 5, n: st.n, p50: st.p50, p99: st.p99, max: st.max });
  }

  // Backlog (outbox rows) over time, from the samples.
  const samples = monitor.samples;
  const withBacklog = samples.filter((s) => s.backlog !== null);
  const peak = withBacklog.reduce<Sample | null>((m, s) => (m === null || (s.backlog ?? 0) > (m.backlog ?? 0) ? s : m), null);
  const feedEndT = feed ? (feed.endedAt - feedStart) / 1000 : Number.NaN;
  const lastDeliveryAfterFeedS = feed ? round(Math.max(0, lastAt - feed.endedAt) / 1000, 1) : null;
  const feedEndedAt = feed?.endedAt ?? Number.POSITIVE_INFINITY;
  const deliveredByFeedEnd = d.at.filter((a) => a <= feedEndedAt).length;
  const atFeedEnd = withBacklog.filter((s) => s.t <= feedEndT + 0.5).pop();
  const firstEnq = withBacklog.find((s) => (s.enqueued ?? 0) > 0);
  const busy = (key: 'daemonCpuPct' | 'receiverCpuPct' | 'benchCpuPct' | 'machineBusyPct' | 'otherPct', during: (s: Sample) => boolean) => {
    const xs = samples.filter(during).map((s) => s[key]).filter((x): x is number => typeof x === 'number');
    return xs.length ? { mean: round(xs.reduce((a, b) => a + b, 0) / xs.length), max: Math.max(...xs) } : null;
  };
  const duringFeed = (s: Sample) => s.t <= feedEndT;
  const afterFeed = (s: Sample) => s.t > feedEndT + 1;
  const daemonCpuSec = daemonStats?.cpuSec ?? Number.NaN;
  // The machine may be shared: say so when other processes took a noticeable share while sending.
  const warnings: string[] = [];
  const other = busy('otherPct', duringFeed);
  if (other && (other.mean > 15 || other.max > 50)) {
    warnings.push(`other processes used ${other.mean}% of a core on average while sending (up to ${other.max}% in one second): figures disturbed`);
  }

  const result: Record<string, unknown> = {
    run: label,
    mode: spec.mode,
    receiver: spec.receiver === 'child' ? 'separate process' : 'in the bench process',
    offered:
      spec.mode === 'paced'
        ? { eventsPerSec: spec.rate, amiFramesPerSec: round(framesPerSec, 0), achievedEventsPerSec: feed ? round(expected / feed.seconds, 0) : null }
        : { eventsPerSec: 'unpaced', achievedEventsPerSec: feed ? round(expected / feed.seconds, 0) : null },
    feed,
    expectedEvents: expected,
    deliveredUnique: delivered,
    lost,
    requests: d.requests,
    duplicates: d.dupes,
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
    latencyMsByPartition: { callEvents: latencyStats(callLat), agentEvents: latencyStats(agentLat) },
    agentPartitions: new Set(d.part.filter((p) => p.startsWith('agent:'))).size,
    latencyMsPer5s: windows,
    latencyMsByBurstPosition: { firstOfItsFrame: latencyStats(pos0), behindAnEarlierEventOfTheSameCallAndFrame: latencyStats(posN) },
    latencyMsByType: byType,
    backlog: {
      peakRows: peak?.backlog ?? null,
      peakAtS: peak?.t ?? null,
      rowsAtFeedEnd: atFeedEnd?.backlog ?? null,
      lastDeliveryAfterFeedEndS: lastDeliveryAfterFeedS,
      enqueuedPerSecDuringFeed:
        atFeedEnd && firstEnq && atFeedEnd.t > firstEnq.t ? round(((atFeedEnd.enqueued ?? 0) - (firstEnq.enqueued ?? 0)) / (atFeedEnd.t - firstEnq.t), 0) : null,
    },
    daemon: {
      cpuSeconds: round(daemonCpuSec, 2),
      cpuPctOfOneCoreOverRun: feed ? round((daemonCpuSec / ((Date.now() - feedStart) / 1000)) * 100) : null,
      peakRssMB: daemonStats?.hwmMB ?? null,
      exit,
      logLines: logLines.length,
      firstLogLines: logLines.slice(0, 5),
    },
    cpuPctDuringFeed: { daemon: busy('daemonCpuPct', duringFeed), receiver: busy('receiverCpuPct', duringFeed), bench: busy('benchCpuPct', duringFeed), other: busy('otherPct', duringFeed), machine: busy('machineBusyPct', duringFeed) },
    cpuPctAfterFeed: { daemon: busy('daemonCpuPct', afterFeed), receiver: busy('receiverCpuPct', afterFeed), bench: busy('benchCpuPct', afterFeed), other: busy('otherPct', afterFeed), machine: busy('machineBusyPct', afterFeed) },
    samples,
    profile,
    problems,
    warnings,
    ok: problems.length === 0,
  };
  const l = result.latencyMs as ReturnType<typeof latencyStats>;
  process.stderr.write(`   delivered ${delivered}/${expected} at ${String(result.deliveredPerSec)} ev/s; latency p50 ${l.p50} p99 ${l.p99} max ${l.max} ms; daemon ${round(daemonCpuSec, 1)} CPU s, peak RSS ${String(daemonStats?.hwmMB)} MB${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}\n`);
  return result;
}

// ------------------------------------------------------------------------------------------------
// --profile: where the daemon's CPU went (self time by module), from its .cpuprofile.

function categoryOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'program (native, outside JS)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm:${nm[1] as string}`;
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return `bridge:${(dist[1] as string).replace(/\/[^/]*$/, '/').replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([^/]+)/.exec(url);
    return `node:${m?.[1] ?? url}`;
  }
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  return url;
}

function summarizeProfile(dir: string): Record<string, unknown> | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return undefined;
  // Bridge samples grouped by directory (ami/, normalizer/, …), as the recorded results have them.
  return summarizeCpuProfile(path.join(dir, file), 25, categoryOf);
}

// ------------------------------------------------------------------------------------------------
// Report

function markdown(results: Array<Record<string, unknown>>, meta: Record<string, unknown>): string {
  type L = ReturnType<typeof latencyStats>;
  const rows: string[] = [];
  const m = meta.machine as Record<string, unknown>;
  const cal = meta.calibration as Calibration;
  rows.push(
    `Machine: ${String(m.nproc)} CPUs (${String(m.cpuModel)}), ${String(m.ramGB)} GB RAM, Node ${String(m.node)}; load average ${(m.loadavgAtStart as number[]).join(' ')} at start, ${((m.loadavgAtEnd as number[] | undefined) ?? []).join(' ')} at end${meta.note ? `; ${String(meta.note)}` : ''}.`,
  );
  rows.push(`Trace: ${cal.framesPerRep} AMI frames and ${cal.eventsPerRep} normalized events per repetition (10 calls): ${round(cal.eventsPerFrame, 4)} events per frame, so 1,000 events/s = ${round(1000 / cal.eventsPerFrame, 0)} AMI frames/s.`);
  rows.push('');
  rows.push('| run | receiver | offered ev/s (achieved) | sent s | events | delivered | lost | dup | delivered ev/s | p50 ms | p95 ms | p99 ms | max ms | p50 / p99 2nd half of sending | daemon CPU s | daemon CPU % of a core | daemon peak RSS MB |');
  rows.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const l = r.latencyMs as L;
    const s2 = r.latencyMsSecondHalfOfSending as L;
    const off = r.offered as { eventsPerSec: number | string; achievedEventsPerSec: number | null };
    const dmn = r.daemon as { cpuSeconds: number; cpuPctOfOneCoreOverRun: number | null; peakRssMB: number | null };
    const feed = r.feed as FeedResult | null;
    rows.push(
      `| ${String(r.run)} | ${r.receiver === 'separate process' ? 'child process' : 'in bench process'} | ${off.eventsPerSec === 'unpaced' ? `unpaced (${String(off.achievedEventsPerSec)})` : `${off.eventsPerSec} (${String(off.achievedEventsPerSec)})`} | ${String(feed?.seconds ?? '-')} | ${String(r.expectedEvents)} | ${String(r.deliveredUnique)} | ${String(r.lost)} | ${String(r.duplicates)} | ${String(r.deliveredPerSec)} | ${l.p50} | ${l.p95} | ${l.p99} | ${l.max} | ${s2.p50} / ${s2.p99} | ${dmn.cpuSeconds} | ${String(dmn.cpuPctOfOneCoreOverRun)} | ${String(dmn.peakRssMB)} |`,
    );
  }
  rows.push('');
  rows.push('| run | delivered ev/s while sending | after sending (drain) | enqueued ev/s while sending | outbox rows: peak (at s) | at end of sending | last delivery s after sending | p50 / p99 call events | p50 / p99 agent events (partitions) | CPU % while sending: daemon / receiver / bench / other work / whole machine (of 200) |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const b = r.latencyMsByPartition as { callEvents: L; agentEvents: L };
    const c = r.cpuPctDuringFeed as Record<string, { mean: number } | null>;
    const bl = r.backlog as { peakRows: number | null; peakAtS: number | null; rowsAtFeedEnd: number | null; enqueuedPerSecDuringFeed: number | null; lastDeliveryAfterFeedEndS: number | null };
    const q = b.agentEvents;
    rows.push(
      `| ${String(r.run)} | ${String(r.deliveredPerSecDuringFeed)} | ${String(r.deliveredPerSecAfterFeed ?? '-')} | ${String(bl.enqueuedPerSecDuringFeed)} | ${String(bl.peakRows)} (${String(bl.peakAtS)}) | ${String(bl.rowsAtFeedEnd)} | ${String(bl.lastDeliveryAfterFeedEndS)} | ${b.callEvents.p50} / ${b.callEvents.p99} | ${q.p50} / ${q.p99} (${String(r.agentPartitions)}) | ${['daemon', 'receiver', 'bench', 'other', 'machine'].map((k) => String(c[k]?.mean ?? '-')).join(' / ')} |`,
    );
  }
  for (const r of results) {
    const p = r.problems as string[];
    if (p.length) rows.push('', `**${String(r.run)}: ${p.join('; ')}**`);
    const w = r.warnings as string[];
    if (w.length) rows.push('', `${String(r.run)}: ${w.join('; ')}`);
  }
  return rows.join('\n');
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '30' },
      'max-seconds': { type: 'string', default: '20' },
      'max-reps': { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '8' },
      runs: { type: 'string', default: 'paced:child,paced:inproc,max:child' },
      profile: { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '120' },
      'outbox-dir': { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'bench/results/webhook.json') },
      note: { type: 'string' },
    },
    strict: true,
  });
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}] (is '${String(v)}')`);
    return n;
  };
  const opts: Options = {
    rate: num('rate', values.rate, 1, 100_000),
    duration: num('duration', values.duration, 1, 600),
    maxSeconds: num('max-seconds', values['max-seconds'], 1, 600),
    maxReps: num('max-reps', values['max-reps'], 1, 100_000),
    concurrency: num('concurrency', values.concurrency, 1, 256),
    profile: values.profile ?? false,
    quietWaitS: num('quiet-wait', values['quiet-wait'], 0, 3600),
    outboxDir: path.resolve(values['outbox-dir'] ?? os.tmpdir()),
  };
  if (!fs.statSync(opts.outboxDir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--outbox-dir ${opts.outboxDir} is not a directory`);
  const specs: RunSpec[] = (values.runs ?? '').split(',').map((s) => {
    const m = /^(paced|max)(?:@(\d+(?:\.\d+)?))?(?::(child|inproc))?(\+agents)?$/.exec(s.trim());
    if (!m) throw new Error(`--runs: '${s}' is not paced[@RATE][:child|inproc][+agents] or max[:child|inproc][+agents]`);
    return { mode: m[1] as 'paced' | 'max', rate: m[2] ? num('runs rate', m[2], 1, 100_000) : opts.rate, receiver: (m[3] ?? 'child') as 'child' | 'inproc', freshAgents: Boolean(m[4]) };
  });
  if (!fs.existsSync(path.join(ROOT, 'dist/cli.js'))) throw new Error('dist/ is missing: run `npm run build` first (or `npm run bench:webhook`)');

  const meta: Record<string, unknown> = {
    benchmark: 'webhook sink: AMI frame written -> HTTP request arriving at a local receiver, durable outbox',
    date: new Date().toISOString(),
    machine: machine({ nproc: os.availableParallelism(), tmpdirFilesystem: true }),
    note: values.note ?? null,
    command: `node ${[...process.execArgv, path.relative(ROOT, SELF), ...process.argv.slice(2)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ')}`,
    gitHead: gitHead(ROOT),
  };
  const prepared = new Map<boolean, { trace: Trace; cal: Calibration }>();
  const prepare = (freshAgents: boolean) => {
    const have = prepared.get(freshAgents);
    if (have) return have;
    const trace = loadTrace(TRACE_PATH, freshAgents);
    process.stderr.write(`trace: ${path.relative(ROOT, TRACE_PATH)}: ${trace.frames.length} frames per repetition (${trace.bytesPerRep} bytes), ${trace.once.length} sent once; rewriting ${trace.rewritten.headers.join(', ')}, channel sequence numbers, BridgeUniqueid; agents ${trace.rewritten.agents}\n`);
    const cal = calibrate(trace);
    process.stderr.write(`calibration (crm-bridge replay of 1/2/3 repetitions): ${cal.eventsForReps.join('/')} events -> ${cal.eventsPerRep} events per repetition, ${round(cal.eventsPerFrame, 4)} events per AMI frame -> ${round(opts.rate / cal.eventsPerFrame, 0)} frames/s for ${opts.rate} events/s\n`);
    prepared.set(freshAgents, { trace, cal });
    return { trace, cal };
  };
  for (const f of new Set(specs.map((s) => s.freshAgents))) prepare(f);
  const cal = prepare(false).cal;
  meta.parameters = {
    trace: path.relative(ROOT, TRACE_PATH),
    rate: opts.rate,
    durationS: opts.duration,
    maxSeconds: opts.maxSeconds,
    maxReps: opts.maxReps,
    runs: specs.map(specLabel),
    profile: opts.profile,
    quietWaitS: opts.quietWaitS,
    sink: { type: 'webhook', format: 'json', concurrency: opts.concurrency, otherSettings: 'defaults (no secret, no auth; timeouts 5 s connect / 10 s read; retry defaults)' },
    outbox: { synchronous: 'normal', location: `a temp dir under ${opts.outboxDir}`, filesystem: filesystemOf(opts.outboxDir) },
    daemonLog: 'level warn, to a file',
    amiTimestamp: 'wall-clock ms at write time; µs digits = a per-ms counter (keeps event ids unique)',
    latency: 'receiver arrival (Date.now() when the request headers are parsed) - Date.parse(event.time); ms resolution, ±1 ms',
  };
  meta.calibration = cal;
  if (prepared.has(true)) meta.calibrationFreshAgents = prepare(true).cal;
  meta.traceRewriting = Object.fromEntries([...prepared].map(([f, p]) => [f ? 'freshAgents' : 'recordedAgents', p.trace.rewritten]));
  const results: Array<Record<string, unknown>> = [];
  for (const spec of specs) {
    const p = prepare(spec.freshAgents);
    const quiet = opts.quietWaitS > 0 ? await waitForQuiet(25, opts.quietWaitS, os.availableParallelism()) : null;
    if (quiet) process.stderr.write(`\nmachine ${quiet.busyPctAtStart}% busy (of one core) before the run, after waiting ${quiet.waitedS} s\n`);
    results.push({ ...(await runOnce(spec, p.trace, p.cal, opts)), machineBeforeRun: quiet });
  }
  (meta.machine as Record<string, unknown>).loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  const table = markdown(results, meta);
  process.stdout.write(`\n${table}\n`);
  fs.mkdirSync(path.dirname(values.out as string), { recursive: true });
  fs.writeFileSync(values.out as string, `${JSON.stringify({ ...meta, results, markdown: table }, null, 2)}\n`);
  process.stderr.write(`\nwrote ${path.relative(process.cwd(), values.out as string)}\n`);
  return results.every((r) => r.ok) ? 0 : 1;
}

if (process.argv.includes('--receiver-child')) {
  await receiverChild();
} else {
  await runBench('webhook.ts', main);
}
