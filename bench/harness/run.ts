// What a benchmark starts and must stop: child processes (tracked by pid, killed on exit or a
// signal), temp dirs, the daemon under test (its config, log file and exit), IPC to a measuring
// child, CPU pinning, and the one main() wrapper that cleans all of it up.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, LOADER, ROOT } from './env.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Child processes this process started and has not yet seen exit. */
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

function cleanupAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const d of [...tempDirs]) removeDir(d);
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export function exited(child: ChildProcess): Promise<Exit> {
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

/**
 * Runs a benchmark's main(): on SIGINT/SIGTERM, or when main ends or throws, every process and
 * temp dir it started is cleaned up, then the process exits with main's code.
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

/** The bench's CRM_BRIDGE_CONFIG_* variables (config overrides, README → Configuration) reach the daemon: a run with a setting changed. */
function configOverrides(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('CRM_BRIDGE_CONFIG_') && e[1] !== undefined));
}

/** Spawns and tracks `cmd args`, under `taskset -c cpu` if `cpu` is given (taskset execs it: the pid is the command's). */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions & { cpu?: string | null }): ChildProcess {
  const child = opts.cpu ? spawn('taskset', ['-c', opts.cpu, cmd, ...args], opts) : spawn(cmd, args, opts);
  children.add(child);
  return child;
}

/** CPU placement: can this process pin itself and its children (taskset), and are there ≥ 2 CPUs. */
export function canPin(nproc: number): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return nproc >= 2;
  } catch {
    return false;
  }
}

/** Moves this process (all its threads) to `cpu`. */
export const pinSelf = (cpu: string) => execFileSync('taskset', ['-a', '-p', '-c', cpu, String(process.pid)], { stdio: 'ignore' });

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The commit checked out, or null. */
export function gitHead(): string | null {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------------------------
// The daemon under test

export interface Daemon {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  exit: Promise<Exit>;
  /** Set when it exited before stop() was asked of it. */
  died(): string | null;
  /** SIGTERM, then (after 20 s) SIGKILL; a problem is added for a timeout. */
  stop(problems: string[]): Promise<Exit>;
  logLines(): string[];
}

/** `node bin/crm-bridge.js run --config <dir>/<name>.yaml` (`yaml` written there), its log (stderr) to `<dir>/<name>.log`. */
export function startDaemon(dir: string, name: string, yaml: string, opts: { cpu?: string | null; nodeArgs?: string[] } = {}): Daemon {
  const config = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(config, yaml);
  const logFile = path.join(dir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  // BENCH_DAEMON_STDOUT=FILE: the daemon's stdout (V8's --trace-gc, given in BENCH_NODE_ARGS, writes there).
  const out = process.env.BENCH_DAEMON_STDOUT ? fs.openSync(process.env.BENCH_DAEMON_STDOUT, 'a') : 'ignore';
  const child = spawnTracked(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), ...(opts.nodeArgs ?? []), BIN, 'run', '--config', config], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...configOverrides() }, stdio: ['ignore', out, fd], cpu: opts.cpu ?? null });
  fs.closeSync(fd);
  if (typeof out === 'number') fs.closeSync(out);
  const exit = exited(child);
  let stopping = false;
  let died: string | null = null;
  void exit.then(({ code, signal }) => {
    if (!stopping) died = `daemon exited during the run (code ${code}, signal ${signal})`;
  });
  return {
    name,
    child,
    pid: child.pid ?? -1,
    logFile,
    exit,
    died: () => died,
    stop: (problems) => {
      stopping = true;
      return stopChild(child, exit, name === 'daemon' ? 'the daemon' : name, problems);
    },
    logLines: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : []),
  };
}

/** The daemon's `pbx:` section for the bench's AMI server on 127.0.0.1:`port` (no resync; quick reconnects). */
export const pbxYaml = (port: number, username = 'bench') => `pbx:
  name: bench
  ami:
    host: 127.0.0.1
    port: ${port}
    username: ${username}
    secret: bench
    resync: false
    reconnect: { initialDelayMs: 200, maxDelayMs: 1000, factor: 2, jitter: 0 }
`;

/** The screen-pop channel alone: http on 127.0.0.1 with a tokenSecret, one rule (call.ringing, new-tab), no other sink. */
// Every agent's stream comes from 127.0.0.1 here: the per-address cap (http.streams, 50 by
// default since issue 17) is raised past any bench's agent count.
export const popYaml = (httpPort: number, secret: string, sinks = 'sinks: []\n') => `${sinks}http:
  listen: 127.0.0.1:${httpPort}
  tokenSecret: ${secret}
  streams: { perToken: 10, perAddress: 100000 }
screenpop:
  - events: [call.ringing]
    url: "https://crm.example.com/contact?phone={callerNumber}"
    target: new-tab
`;

/** SIGTERM, then (after 20 s, adding a problem) SIGKILL. */
export async function stopChild(child: ChildProcess, exit: Promise<Exit>, what: string, problems: string[]): Promise<Exit> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  let e: Exit;
  try {
    e = await within(exit, 20_000, `${what} to stop after SIGTERM`);
  } catch (err) {
    problems.push((err as Error).message);
    child.kill('SIGKILL');
    e = await exit;
  }
  children.delete(child);
  return e;
}

/** Waits for the daemon to log in to `loggedIn` (the AMI server's first login), or fails if it exits first. */
export function daemonLogin<T>(daemon: Daemon, loggedIn: Promise<T>): Promise<T> {
  return within(
    Promise.race([loggedIn, daemon.exit.then(({ code }) => Promise.reject(new Error(`daemon exited (${code}) before logging in to AMI; see its log`)))]),
    30_000,
    'the daemon to log in to AMI',
  );
}

// ------------------------------------------------------------------------------------------------
// A measuring child process (bench/harness/measure-child.ts or another script) over IPC: requests
// { id, type, … }, answers { id, … } matched by id (the sampler and a wait loop may ask at once);
// id 0 is the child's unsolicited 'ready'. The child exits when the parent disconnects.

export interface IpcChild {
  name: string;
  child: ChildProcess;
  pid: number;
  ready: Record<string, unknown>;
  ask<T>(msg: Record<string, unknown>, ms: number, what?: string): Promise<T>;
  close(): Promise<void>;
}

export async function startIpcChild(name: string, script: string, args: string[], cpu: string | null = null, nodeArgs: string[] = []): Promise<IpcChild> {
  const child = spawnTracked(process.execPath, [...nodeArgs, ...LOADER, script, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', cpu });
  const waiting = new Map<number, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (m: Record<string, unknown>) => {
    const w = waiting.get(m.id as number);
    waiting.delete(m.id as number);
    w?.resolve(m);
  });
  child.once('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`${name} process exited (${code ?? signal})`));
    waiting.clear();
  });
  const ask = <T>(msg: Record<string, unknown> | null, ms: number, what = String(msg?.type)): Promise<T> => {
    const id = msg === null ? 0 : nextId++;
    return within(
      new Promise<T>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`${name} process is gone`));
        waiting.set(id, { resolve: (m) => resolve(m as T), reject });
        if (msg) child.send({ ...msg, id }, (err) => err && reject(err));
      }),
      ms,
      `${name} process: ${what}`,
    ).finally(() => waiting.delete(id));
  };
  const ready = await ask<Record<string, unknown>>(null, 30_000, 'ready');
  return {
    name,
    child,
    pid: child.pid ?? -1,
    ready,
    ask,
    close: async () => {
      if (child.connected) child.disconnect();
      try {
        await within(exited(child), 10_000, `${name} process to exit`);
      } catch {
        child.kill('SIGKILL');
        await exited(child);
      }
      children.delete(child);
    },
  };
}

/** The child's side: answers each request with its handler's result; exits when the parent goes away. */
export function serveParent(ready: Record<string, unknown>, handlers: Record<string, (m: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>>): void {
  const send = (m: Record<string, unknown>) => process.send?.(m);
  process.on('message', (m: Record<string, unknown>) => {
    const h = handlers[m.type as string];
    if (h) void Promise.resolve(h(m)).then((r) => send({ ...r, id: m.id }));
  });
  process.on('disconnect', () => process.exit(0));
  send({ ...ready, id: 0 });
}
