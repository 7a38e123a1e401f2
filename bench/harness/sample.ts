// What the machine and the processes of a run are doing: CPU and memory of a process (/proc),
// the whole machine's CPU, the machine for the results, waiting for a shared machine to be quiet,
// and CPU % per process between two snapshots or once a second.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { sleep } from './run.js';
import { round } from './stats.js';

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}

/** CPUs of the machine (os.availableParallelism() shrinks to 1 once a process is pinned). */
export const NPROC = os.cpus().length;

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

/** % of one core the whole machine (`nproc` CPUs) was busy between two systemCpu() readings. */
export const machineBusyPct = (a: { busy: number; total: number }, b: { busy: number; total: number }, nproc: number) => round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100 * nproc);

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
    busy = machineBusyPct(a, b, nproc);
    if (busy < busyPct || Date.now() - start >= maxS * 1000) break;
  }
  return { waitedS: round((Date.now() - start) / 1000, 0), busyPctAtStart: busy };
}

// ------------------------------------------------------------------------------------------------
// CPU % per process

export interface CpuSnap {
  at: number;
  sys: { busy: number; total: number };
  /** CPU seconds per name (NaN: the process is gone). */
  cpu: Record<string, number>;
}

/** CPU seconds of this process ('bench') and of each named group of pids (summed). */
export function cpuSnap(procs: Record<string, number[]>): CpuSnap {
  const cpu: Record<string, number> = { bench: procSample(process.pid)?.cpuSec ?? Number.NaN };
  for (const [name, pids] of Object.entries(procs)) cpu[name] = pids.reduce((a, p) => a + (procSample(p)?.cpuSec ?? Number.NaN), 0);
  return { at: performance.now(), sys: systemCpu(), cpu };
}

/** % of one core per name between two snapshots (left out: gone), the whole machine (of nproc × 100) and everything else on it. */
export function cpuPct(a: CpuSnap, b: CpuSnap, nproc = NPROC): Record<string, number | undefined> & { machine: number; other: number } {
  const dt = (b.at - a.at) / 1000;
  const out: Record<string, number> = {};
  let ours = 0;
  for (const k of Object.keys(a.cpu)) {
    const v = (((b.cpu[k] ?? Number.NaN) - (a.cpu[k] ?? Number.NaN)) / dt) * 100;
    if (!Number.isFinite(v)) continue;
    out[k] = round(v);
    ours += v;
  }
  const machine = machineBusyPct(a.sys, b.sys, nproc);
  return { ...out, machine, other: round(Math.max(0, machine - ours)) };
}

/**
 * Once a second until stop() (at most `max` samples): CPU % per process since the last sample
 * (cpuPct), handed to `make`, which adds what else a sample holds.
 */
export function everySecond<T>(procs: () => Record<string, number[]>, make: (cpu: ReturnType<typeof cpuPct>) => T | Promise<T>, max = 3600, nproc = NPROC): { samples: T[]; stop(): Promise<void> } {
  const samples: T[] = [];
  let stopped = false;
  const loop = (async () => {
    let prev = cpuSnap(procs());
    for (let i = 0; i < max && !stopped; i++) {
      await sleep(1000);
      if (stopped) break;
      const now = cpuSnap(procs());
      samples.push(await make(cpuPct(prev, now, nproc)));
      prev = now;
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Mean and max of `key` over `samples` that pass `during` (null if none has a number). */
export function meanMax<T>(samples: T[], key: keyof T, during: (s: T) => boolean = () => true): { mean: number; max: number } | null {
  const xs = samples.filter(during).map((s) => s[key]).filter((x): x is T[keyof T] & number => typeof x === 'number');
  return xs.length ? { mean: round(xs.reduce((a, b) => a + b, 0) / xs.length), max: Math.max(...xs) } : null;
}
