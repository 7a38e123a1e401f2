// Helpers shared by the benchmark programs (bench/webhook.ts, bench/screenpop.ts): statistics,
// /proc sampling, machine info, temp dirs and cleanup of what a bench started, process helpers,
// and the loopback AMI server's frame rendering and serving. Not a benchmark itself.
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseAction } from '../dist/ami/replay-server.js';

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

/** Serves `trace.greeting`; after a Login, writes `trace.once` (stamped now). */
export async function startAmiServer(trace: { greeting: string; once: Part[][] }, stamper: Stamper): Promise<AmiServer> {
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
