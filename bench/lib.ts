// Helpers shared by the benchmark programs (bench/webhook.ts, bench/screenpop.ts, bench/pipeline.ts,
// bench/memory.ts): statistics, /proc sampling, machine info, temp dirs and cleanup of what a bench
// started, process helpers, the loopback AMI server's frame rendering and serving, and recorded
// calls cloned with fresh ids. Not a benchmark itself.
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseAction } from '../dist/sources/ami/replay-server.js';

export const CRLF = '\r\n';

// ------------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Nearest-rank percentile of an ascending array. */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(xs: number[]): number {
  return pct([...xs].sort((a, b) => a - b), 50);
}

export type Stats = { n: number; mean: number; min: number; p50: number; p90: number; p95: number; p99: number; p999: number; max: number };

export function latencyStats(values: ArrayLike<number>): Stats {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    mean: s.length ? round(sum / s.length, 2) : Number.NaN,
    min: s.length ? (s[0] as number) : Number.NaN,
    p50: pct(s, 50),
    p90: pct(s, 90),
    p95: pct(s, 95),
    p99: pct(s, 99),
    p999: pct(s, 99.9),
    max: s.length ? (s[s.length - 1] as number) : Number.NaN,
  };
}

// ------------------------------------------------------------------------------------------------
// /proc sampling and machine info

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}

export interface ProcSample {
  cpuSec: number;
  rssKB: number;
  anonKB: number;
  hwmKB: number;
}

/** CPU seconds (user+system) and memory (kB) of a live process from /proc, or null if it is gone. */
export function procSample(pid: number): ProcSample | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) -> index 11, 12 here.
    const cpuSec = (Number(fields[11]) + Number(fields[12])) / clockTicks;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { cpuSec, rssKB: kb('VmRSS'), anonKB: kb('RssAnon'), hwmKB: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Whole-machine CPU jiffies from /proc/stat: busy and total. */
export function systemCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

export function filesystemOf(dir: string): string {
  try {
    return execFileSync('df', ['-hT', dir], { encoding: 'utf8' }).trim().split('\n').pop() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The machine, for the results: `nproc` as the caller counts CPUs (a bench that pins itself
 * counts them before pinning); `tmpdirFilesystem` adds the OS temp dir's filesystem (df -hT).
 */
export function machine(opts: { nproc: number; tmpdirFilesystem?: boolean }): Record<string, unknown> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  return {
    nproc: opts.nproc,
    cpuModel: model,
    ramGB: round(memKb / 1024 / 1024, 1),
    node: process.version,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    ...(opts.tmpdirFilesystem ? { tmpdirFilesystem: filesystemOf(os.tmpdir()) } : {}),
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

/**
 * On a shared machine: waits (at most `maxS` seconds) until the whole machine was less than
 * `busyPct` (of one core, the machine having `nproc` CPUs) busy over 3 s.
 */
export async function waitForQuiet(busyPct: number, maxS: number, nproc: number): Promise<{ waitedS: number; busyPctAtStart: number }> {
  const start = Date.now();
  let busy = Number.NaN;
  for (let i = 0; i < Math.ceil(maxS / 3) + 1; i++) {
    const a = systemCpu();
    await sleep(3000);
    const b = systemCpu();
    busy = round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100 * nproc);
    if (busy < busyPct || Date.now() - start >= maxS * 1000) break;
  }
  return { waitedS: round((Date.now() - start) / 1000, 0), busyPctAtStart: busy };
}

// ------------------------------------------------------------------------------------------------
// Cleanup: only what this process started, by pid; temp dirs it created.

/** Child processes this process started and has not yet seen exit; add and delete them. */
export const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function tempDir(prefix: string, base = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(base, prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export function cleanupAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
  for (const d of [...tempDirs]) removeDir(d);
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Resolves with `p`, or rejects after `ms` naming `what`. */
/**
 * Runs a benchmark's main(): on SIGINT/SIGTERM, or when main ends or throws, every process and
 * temp dir it started is cleaned up (cleanupAll), then the process exits with main's code.
 */
export async function runBench(name: string, main: () => Promise<number>): Promise<never> {
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: cleaning up\n`);
    cleanupAll();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    process.stderr.write(`bench/${name}: ${(err as Error).stack ?? String(err)}\n`);
  } finally {
    cleanupAll();
  }
  process.exit(code);
}

export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The commit checked out in `root`, or null. */
export function gitHead(root: string): string | null {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

/** Resolves once `socket` drained (or closed); rejects at `deadline` (epoch ms). */
export function drained(socket: net.Socket, deadline: number): Promise<void> {
  return within(
    new Promise<void>((r) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        r();
      };
      socket.on('drain', done);
      socket.on('close', done);
    }),
    Math.max(1, deadline - Date.now()),
    'the AMI socket to drain',
  );
}

// ------------------------------------------------------------------------------------------------
// AMI frames as templates, and their Timestamp values.

/** A frame as parts: literal text, a per-repetition value, or null for the Timestamp value. */
export type Part = string | ((rep: number) => string) | null;

/** Merges adjacent literals: fewer concatenations per frame. */
export function mergeLiterals(parts: Part[]): Part[] {
  const merged: Part[] = [];
  for (const p of parts) {
    const prev = merged[merged.length - 1];
    if (typeof p === 'string' && typeof prev === 'string') merged[merged.length - 1] = prev + p;
    else merged.push(p);
  }
  return merged;
}

// Uniqueid, Linkedid, DestUniqueid, LocalOneLinkedid, …: every header naming a channel's or call's id.
export const UID_HEADER = /(?:Uniqueid|Linkedid)$/i;
export const UID_VALUE = /^(\d{9,11})\.(\d+)$/;
// A channel name with its 8-hex-digit sequence number: Local/201@agents-00000022;1, PJSIP/201-0000001a.
export const CHANNEL = /([A-Za-z0-9]+\/[^\s;,|]*?-)([0-9a-f]{8})(?![0-9a-f])/g;
export const UUID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)([0-9a-f]{12})$/;

/**
 * A trace's frames' id ranges, so that repetitions can be offset and never collide: Uniqueid/
 * Linkedid epochs, channel sequence numbers, the id headers seen, and the first Linkedid value.
 */
export function scanIds(texts: string[]): { eMin: number; eMax: number; cMin: number; cMax: number; headers: Set<string>; firstLinked: string | null } {
  let eMin = Infinity;
  let eMax = -Infinity;
  let cMin = Infinity;
  let cMax = -Infinity;
  let firstLinked: string | null = null;
  const headers = new Set<string>();
  for (const t of texts) {
    for (const line of t.split(CRLF)) {
      const i = line.indexOf(': ');
      if (i < 0) continue;
      const name = line.slice(0, i);
      const value = line.slice(i + 2);
      const m = UID_VALUE.exec(value);
      if (m && name !== 'Timestamp' && UID_HEADER.test(name)) {
        headers.add(name);
        eMin = Math.min(eMin, Number(m[1]));
        eMax = Math.max(eMax, Number(m[1]));
        if (name === 'Linkedid' && firstLinked === null) firstLinked = value;
      }
      for (const c of value.matchAll(CHANNEL)) {
        cMin = Math.min(cMin, parseInt(c[2] as string, 16));
        cMax = Math.max(cMax, parseInt(c[2] as string, 16));
      }
    }
  }
  return { eMin, eMax, cMin, cMax, headers, firstLinked };
}

/**
 * The parts of a frame line that is a Timestamp (stamped when written), a Uniqueid/Linkedid
 * (epoch offset by `rep × epochSpan`) or a BridgeUniqueid (UUID tail + rep); null for any other line.
 */
export function idParts(line: string, epochSpan: number): Part[] | null {
  const i = line.indexOf(': ');
  const name = i >= 0 ? line.slice(0, i) : '';
  const value = i >= 0 ? line.slice(i + 2) : '';
  if (name === 'Timestamp') return ['Timestamp: ', null, CRLF];
  const uid = UID_VALUE.exec(value);
  if (uid && UID_HEADER.test(name)) {
    const epoch = Number(uid[1]);
    const rest = uid[2] as string;
    return [`${name}: `, (rep) => `${epoch + rep * epochSpan}.${rest}`, CRLF];
  }
  const uuid = name === 'BridgeUniqueid' ? UUID.exec(value) : null;
  if (uuid) {
    const head = uuid[1] as string;
    const tail = parseInt(uuid[2] as string, 16);
    return [`${name}: `, (rep) => head + ((tail + rep) % 2 ** 48).toString(16).padStart(12, '0'), CRLF];
  }
  return null;
}

export function render(parts: Part[], rep: number, stamp: string): string {
  let s = '';
  for (const p of parts) {
    if (typeof p === 'string') s += p;
    else if (p === null) s += stamp;
    else s += p(rep);
  }
  return s;
}

/**
 * AMI Timestamp values: the wall-clock ms at which a frame is written, with a counter in the µs
 * digits (0–499) so that two frames of one ms never share a Timestamp (the normalizer derives
 * event ids from it) and the event's ms-rounded `time` is still that ms. More than 500 frames in
 * one ms borrow the next ms (only in unpaced bursts; a frame is then stamped ≤ 1 ms late).
 */
export class Stamper {
  private lastMs = 0;
  private n = 0;
  borrowed = 0;
  stamp(): string {
    let ms = Date.now();
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      if (++this.n >= 500) {
        ms = this.lastMs + 1;
        this.n = 0;
        this.borrowed++;
      }
    } else this.n = 0;
    this.lastMs = ms;
    return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}${String(this.n).padStart(3, '0')}`;
  }
}

// ------------------------------------------------------------------------------------------------
// Loopback AMI server: greeting, Login, then whatever the feeder writes (whole frames only, so an
// action's response may be written at any time without cutting a frame).

export interface AmiServer {
  port: number;
  logins: number;
  /** The first logged-in socket. */
  loggedIn: Promise<net.Socket>;
  /** When a logged-in client first went away (null while it has not). */
  disconnectedAt: number | null;
  close(): Promise<void>;
}

/**
 * Serves `trace.greeting`; after a Login, writes `trace.once` (stamped now), then calls
 * `opts.onLogin` (if given) with the socket and the Login's Username, for benches that feed every
 * connection (bench/pipeline.ts logs in twice per run: 'warmup', then 'measure').
 */
export async function startAmiServer(
  trace: { greeting: string; once: Part[][] },
  stamper: Stamper,
  opts: { onLogin?: (socket: net.Socket, username: string) => void } = {},
): Promise<AmiServer> {
  const sockets = new Set<net.Socket>();
  let resolveLogin!: (s: net.Socket) => void;
  const loggedIn = new Promise<net.Socket>((r) => (resolveLogin = r));
  const state: AmiServer = {
    port: 0,
    logins: 0,
    loggedIn,
    disconnectedAt: null,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      if (state.logins > 0 && state.disconnectedAt === null) state.disconnectedAt = Date.now();
    });
    socket.write(trace.greeting);
    let pending = '';
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1');
      if (pending.length > 1 << 20) return socket.destroy(); // not an AMI client
      let end: number;
      while ((end = pending.indexOf(`${CRLF}${CRLF}`)) >= 0) {
        const action = parseAction(pending.slice(0, end));
        pending = pending.slice(end + 4);
        const id = action.actionid ? `ActionID: ${action.actionid}${CRLF}` : '';
        const name = action.action?.toLowerCase();
        if (name === 'login') {
          state.logins++;
          let out = `Response: Success${CRLF}${id}Message: Authentication accepted${CRLF}${CRLF}`;
          for (const f of trace.once) out += render(f, 0, stamper.stamp());
          socket.write(out);
          if (state.logins === 1) resolveLogin(socket);
          opts.onLogin?.(socket, action.username ?? '');
        } else if (name === 'ping') {
          socket.write(`Response: Success${CRLF}${id}Ping: Pong${CRLF}Timestamp: ${stamper.stamp()}${CRLF}${CRLF}`);
        } else if (name === 'logoff') {
          socket.end(`Response: Goodbye${CRLF}${id}Message: Thanks for all the fish.${CRLF}${CRLF}`);
        } else {
          socket.write(`Response: Error${CRLF}${id}Message: Not available in the benchmark${CRLF}${CRLF}`);
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

// ------------------------------------------------------------------------------------------------
// Recorded calls as clones (bench/pipeline.ts, bench/memory.ts): a recorded trace's event frames
// rendered again and again, each clone with Uniqueid/Linkedid epochs, channel sequence numbers,
// BridgeUniqueids and Timestamps of its own, so the normalizer sees call after call, each with
// the real event sequence Asterisk sent. Clone numbers are meant to be unique across all traces
// of a set: every trace's epochs, channel sequence numbers and times are moved to the window of
// clone k, so two clones with different numbers share no Uniqueid, Linkedid or channel name
// (BridgeUniqueids: the recorded UUID's tail + k, random 48-bit tails apart).

/** The `calls` settings of the test Asterisk the traces were recorded on (test/asterisk/etc). */
/**
 * The recorded traces the pipeline and memory benchmarks clone: the Asterisk 22 Local-channel
 * scenarios their figures were first measured on, named so that a new fixture does not silently
 * change the traffic (the SIP-lab traces hold pickups and transfers between calls, whose calls end
 * by merging, which the memory benchmark's "calls in progress" cut does not model).
 */
export const BENCH_TRACES = [
  'agent-session', 'attended-transfer', 'blind-transfer', 'direct-answered', 'direct-busy', 'direct-noanswer',
  'outbound', 'queue-abandoned', 'queue-answered', 'queue-timeout', 'ten-calls',
].map((name) => `${name}.ami`);

export const TRACE_CALLS = {
  inboundContexts: ['from-pstn', 'from-trunk', 'from-external', 'from-did-direct', 'ext-did'],
  agentContexts: ['agents', 'phones'],
  extensionPattern: '^[0-9]{2,6}$',
};

/** Which frames of a clone: all, each call cut before its first channel hangs up, or the rest. */
export type ClonePart = 'full' | 'open' | 'rest';

type Slot =
  | { kind: 'epoch'; rel: number; tail: string }
  | { kind: 'chan'; rel: number }
  | { kind: 'ts'; relUs: number }
  | { kind: 'uuid'; tail: number };

interface CloneFrame {
  parts: Array<string | Slot>;
  /** False when the frame belongs to a call that, in part 'open', has already begun to hang up. */
  open: boolean;
}

export interface CallTrace {
  /** File name without `.ami`. */
  name: string;
  /** The id windows one clone occupies (the same for every trace of a set). */
  windows: CloneWindows;
  frames: CloneFrame[];
  /** Calls per clone: distinct Linkedids of its Newchannel frames. */
  calls: number;
  openFrames: number;
  bytes: number;
}

export interface CloneSet {
  greeting: string;
  /** FullyBooted and SuccessfulAuth, sent once after login (startAmiServer). */
  once: Part[][];
  traces: CallTrace[];
  /** How the ids are rewritten, for the results. */
  rewriting: string;
}

interface CloneWindows {
  eSpan: number;
  cSpan: number;
  tSpanUs: number;
}

const HANGUPS = new Set(['Hangup', 'HangupRequest', 'SoftHangupRequest']);
const CLONE_EPOCH_BASE = 1_800_000_000;
const CLONE_TIME_BASE_US = 1_800_000_000_000_000;

function headerValue(text: string, name: string): string | undefined {
  const key = `${name}: `;
  let from: number;
  if (text.startsWith(key)) from = key.length;
  else {
    const at = text.indexOf(`${CRLF}${key}`);
    if (at < 0) return undefined;
    from = at + 2 + key.length;
  }
  const end = text.indexOf(CRLF, from);
  return text.slice(from, end < 0 ? undefined : end);
}

/**
 * Reads recorded traces (greeting, responses and event frames as captured from the AMI socket)
 * for cloning. Action responses and the recorder's `UserEvent: RecordingEnd` are dropped; the
 * first trace's FullyBooted/SuccessfulAuth become `once`. In part 'open', a call (a Linkedid of a
 * Newchannel) is cut before the first Hangup/HangupRequest/SoftHangupRequest of its first channel
 * (the channel whose Uniqueid is the Linkedid): from there on, every frame naming that Linkedid
 * (in any *Linkedid header) is left for part 'rest'; frames naming no call (device and queue
 * member state, global VarSets) stay in 'open'.
 */
export function loadCloneSet(files: string[]): CloneSet {
  let greeting = '';
  const once: Part[][] = [];
  const loaded: Array<{ name: string; texts: string[] }> = [];
  let eSpan = 0;
  let cSpan = 0;
  let tSpanUs = 0;
  const ranges: Array<{ eMin: number; cMin: number; tMinUs: number }> = [];
  for (const file of files) {
    const { greeting: g, body } = splitGreetingText(fs.readFileSync(file, 'latin1'));
    greeting ||= g;
    const texts: string[] = [];
    for (const t of body.split(`${CRLF}${CRLF}`)) {
      const text = t.replace(/^(\r\n)+/, '');
      if (!text.startsWith('Event: ')) continue; // responses to the recorder's actions
      const event = headerValue(text, 'Event');
      if (event === 'FullyBooted' || event === 'SuccessfulAuth') {
        if (loaded.length === 0) once.push(mergeLiterals(text.split(CRLF).flatMap((l) => idParts(l, 0) ?? [l + CRLF]).concat(CRLF)));
        continue;
      }
      if (event === 'UserEvent' && headerValue(text, 'UserEvent') === 'RecordingEnd') continue;
      texts.push(text);
    }
    const { eMin, eMax, cMin, cMax } = scanIds(texts);
    let tMin = Infinity;
    let tMax = -Infinity;
    for (const text of texts) {
      const ts = headerValue(text, 'Timestamp');
      if (ts === undefined) continue;
      const us = timestampUs(ts);
      tMin = Math.min(tMin, us);
      tMax = Math.max(tMax, us);
    }
    ranges.push({ eMin: Number.isFinite(eMin) ? eMin : 0, cMin: Number.isFinite(cMin) ? cMin : 0, tMinUs: Number.isFinite(tMin) ? tMin : 0 });
    if (Number.isFinite(eMin)) eSpan = Math.max(eSpan, eMax - eMin + 1);
    if (Number.isFinite(cMin)) cSpan = Math.max(cSpan, cMax - cMin + 1);
    if (Number.isFinite(tMin)) tSpanUs = Math.max(tSpanUs, tMax - tMin + 1_000_000);
    loaded.push({ name: path.basename(file).replace(/\.ami$/, ''), texts });
  }
  const windows: CloneWindows = { eSpan, cSpan, tSpanUs };
  const traces = loaded.map(({ name, texts }, i) => compileCloneTrace(name, texts, ranges[i] as { eMin: number; cMin: number; tMinUs: number }, windows));
  return {
    greeting,
    once,
    traces,
    rewriting:
      `clone k (numbered across all traces): every *Uniqueid/*Linkedid epoch e -> ${CLONE_EPOCH_BASE} + k×${eSpan} + (e − the trace's first epoch); ` +
      `channel sequence numbers (PJSIP/201-0000001a) n -> k×${cSpan} + (n − the trace's first); BridgeUniqueid UUID tail + k; ` +
      `Timestamp t -> ${CLONE_TIME_BASE_US / 1e6} s + k×${tSpanUs / 1e6} s + (t − the trace's first Timestamp), so clones follow each other in time with the recorded spacing inside each`,
  };
}

function splitGreetingText(raw: string): { greeting: string; body: string } {
  if (raw.startsWith('Asterisk Call Manager/')) {
    const eol = raw.indexOf('\n');
    return { greeting: raw.slice(0, eol + 1), body: raw.slice(eol + 1) };
  }
  return { greeting: 'Asterisk Call Manager/11.0.0\r\n', body: raw };
}

function timestampUs(ts: string): number {
  const [sec, frac = ''] = ts.split('.');
  return Number(sec) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

function compileCloneTrace(name: string, texts: string[], range: { eMin: number; cMin: number; tMinUs: number }, windows: CloneWindows): CallTrace {
  // Calls and where each is cut for part 'open'.
  const calls = new Set<string>();
  const cutAt = new Map<string, number>();
  texts.forEach((text, i) => {
    const event = headerValue(text, 'Event') ?? '';
    if (event === 'Newchannel') {
      const l = headerValue(text, 'Linkedid');
      if (l) calls.add(l);
    }
    const uid = headerValue(text, 'Uniqueid');
    if (HANGUPS.has(event) && uid && uid === headerValue(text, 'Linkedid') && !cutAt.has(uid)) cutAt.set(uid, i);
  });
  const frames: CloneFrame[] = texts.map((text, i) => {
    const parts: Array<string | Slot> = [];
    let open = true;
    for (const line of text.split(CRLF)) {
      const colon = line.indexOf(': ');
      const header = colon >= 0 ? line.slice(0, colon) : '';
      const value = colon >= 0 ? line.slice(colon + 2) : '';
      if (header === 'Timestamp') {
        parts.push('Timestamp: ', { kind: 'ts', relUs: timestampUs(value) - range.tMinUs }, CRLF);
        continue;
      }
      const uid = UID_VALUE.exec(value);
      if (uid && UID_HEADER.test(header)) {
        if (/Linkedid$/i.test(header) && (cutAt.get(value) ?? Infinity) <= i) open = false;
        parts.push(`${header}: `, { kind: 'epoch', rel: Number(uid[1]) - range.eMin, tail: `.${uid[2] as string}` }, CRLF);
        continue;
      }
      const uuid = header === 'BridgeUniqueid' ? UUID.exec(value) : null;
      if (uuid) {
        parts.push(`${header}: ${uuid[1] as string}`, { kind: 'uuid', tail: parseInt(uuid[2] as string, 16) }, CRLF);
        continue;
      }
      let last = 0;
      for (const c of line.matchAll(CHANNEL)) {
        const at = (c.index ?? 0) + (c[1] as string).length;
        parts.push(line.slice(last, at), { kind: 'chan', rel: parseInt(c[2] as string, 16) - range.cMin });
        last = at + 8;
      }
      parts.push(line.slice(last) + CRLF);
    }
    parts.push(CRLF);
    const merged: Array<string | Slot> = [];
    for (const p of parts) {
      const prev = merged[merged.length - 1];
      if (typeof p === 'string' && typeof prev === 'string') merged[merged.length - 1] = prev + p;
      else if (p !== '') merged.push(p);
    }
    return { parts: merged, open };
  });
  const t: CallTrace = { name, windows, frames, calls: calls.size, openFrames: frames.filter((f) => f.open).length, bytes: 0 };
  t.bytes = renderClone(t, 0, 'full').length;
  return t;
}

/** Clone k of `trace`: its frames of `part`, as AMI text. */
export function renderClone(trace: CallTrace, k: number, part: ClonePart = 'full'): string {
  const { eSpan, cSpan, tSpanUs } = trace.windows;
  const epochBase = CLONE_EPOCH_BASE + k * eSpan;
  const chanBase = k * cSpan;
  const timeBase = CLONE_TIME_BASE_US + k * tSpanUs;
  let s = '';
  for (const f of trace.frames) {
    if (part === 'open' ? !f.open : part === 'rest' ? f.open : false) continue;
    for (const p of f.parts) {
      if (typeof p === 'string') s += p;
      else if (p.kind === 'epoch') s += `${epochBase + p.rel}${p.tail}`;
      else if (p.kind === 'chan') s += ((chanBase + p.rel) % 0x100000000).toString(16).padStart(8, '0');
      else if (p.kind === 'ts') {
        const us = timeBase + p.relUs;
        s += `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
      } else s += ((p.tail + k) % 2 ** 48).toString(16).padStart(12, '0');
    }
  }
  return s;
}

/** Frames of `part` in one clone of `trace`. */
export function cloneFrames(trace: CallTrace, part: ClonePart): number {
  return part === 'full' ? trace.frames.length : part === 'open' ? trace.openFrames : trace.frames.length - trace.openFrames;
}

/**
 * Writes what `next` returns (null: the end) to `socket`, gathering it into writes of about
 * `chunkBytes` and waiting for 'drain' whenever the socket's buffer is full, so that a fast
 * generator never queues more than a chunk or two in this process.
 */
export async function feedSocket(socket: net.Socket, next: () => string | null, chunkBytes = 256 * 1024): Promise<{ bytes: number; writes: number; drainWaits: number }> {
  let bytes = 0;
  let writes = 0;
  let drainWaits = 0;
  let done = false;
  while (!done) {
    if (socket.destroyed) throw new Error('the AMI client went away while being fed');
    let chunk = '';
    while (chunk.length < chunkBytes) {
      const s = next();
      if (s === null) {
        done = true;
        break;
      }
      chunk += s;
    }
    if (chunk === '') break;
    bytes += chunk.length;
    writes++;
    if (!socket.write(chunk, 'latin1')) {
      drainWaits++;
      await new Promise<void>((resolve, reject) => {
        const ok = () => {
          socket.off('close', gone);
          resolve();
        };
        const gone = () => {
          socket.off('drain', ok);
          reject(new Error('the AMI client went away while being fed'));
        };
        socket.once('drain', ok);
        socket.once('close', gone);
      });
    }
  }
  return { bytes, writes, drainWaits };
}

/** Least-squares slope of y over x (NaN for fewer than two points). */
export function slope(xs: number[], ys: number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return Number.NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i] as number;
    my += ys[i] as number;
  }
  mx /= n;
  my /= n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    num += dx * ((ys[i] as number) - my);
    den += dx * dx;
  }
  return den === 0 ? Number.NaN : num / den;
}

// ------------------------------------------------------------------------------------------------
// A .cpuprofile (node --cpu-prof) summed up: self time by module and by function.

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples?: number[];
  timeDeltas?: number[];
}

function profileCategory(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'program (native, outside JS)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm:${nm[1] as string}`;
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return `bridge:${(dist[1] as string).replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return `node:${/^node:(?:internal\/)?([^/]+)/.exec(url)?.[1] ?? url}`;
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  return url.replace(/^.*\/bench\//, 'bench/');
}

/**
 * Self time (ms, % of busy) of the top modules and functions in `file`; idle excluded. `category`
 * names the module a sample belongs to (default: one per bridge file).
 */
export function summarizeCpuProfile(file: string, top = 25, category: (url: string, fn: string) => string = profileCategory): { busyMs: number; byModule: Array<{ name: string; ms: number; pct: number }>; topFunctions: Array<{ name: string; ms: number; pct: number }> } {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfMs.set(samples[i] as number, (selfMs.get(samples[i] as number) ?? 0) + (deltas[i] ?? 0) / 1000);
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of selfMs) {
    const n = byId.get(id);
    if (!n) continue;
    const cat = category(n.callFrame.url, n.callFrame.functionName);
    if (cat === 'idle') continue;
    total += ms;
    cats.set(cat, (cats.get(cat) ?? 0) + ms);
    const name = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + ms);
  }
  const list = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms: round(ms, 0), pct: round((ms / total) * 100) }));
  return { busyMs: round(total, 0), byModule: list(cats), topFunctions: list(fns) };
}
