// NATS bus benchmark (issue "multi-node: NATS", its "Benchmarks"): what the JetStream bus between
// PBX-side bridges and delivery nodes costs and gives, measured through real processes — the built
// daemon (`node bin/crm-bridge.js run --config …`) in every role and Debian's nats-server 2.9 with
// JetStream (-js, file storage). A benchmark, not a test: it measures and reports, and never runs
// in `npm test`.
//
//   npm run bench:bus                           # builds, then runs (a), (b) and (c)
//   node --import @tapjs/typescript/import bench/bus.ts [options]   # after `npm run build`
//
// Traffic: recorded real-Asterisk traffic (test/fixtures/*.ami) as clones (bench/lib.ts
// loadCloneSet/renderClone: every Uniqueid/Linkedid epoch, channel sequence number and
// BridgeUniqueid of its own per clone), written over loopback TCP by this process acting as the
// PBX's AMI; each frame's `Timestamp:` is replaced by the wall-clock time at which it is written
// (lib.ts Stamper: ms, with a per-ms counter in the µs digits), so an event's `time` is the moment
// the AMI frame that made it left this process. Every latency below is an arrival time − that.
//
// (a) webhooks through the bus: a PBX-side bridge (nats sink) fed clones of ten-calls.ami (10 queue
//     calls; each clone's two agents renamed, 10000 + 2k and 10001 + 2k, so agent events spread
//     over partitions as on a floor with many agents — `N:recorded-agents` keeps 201 and 202 in
//     every clone) → stream CRM_EVENTS → N webhook nodes (`source: { consumer: crm-webhooks }`,
//     webhook sink, json, concurrency 8) → a receiver process (bench/bus-child.ts --role receiver;
//     node i posts to /n<i>). Per run, on a fresh nats-server: a warm-up (--warmup-seconds at
//     --rate, delivered, reported apart), a paced phase (--rate normalized events/s for
//     --paced-seconds, whole clones), delivered; then an unpaced phase (--max-events events
//     written as fast as the bridge reads them), delivered. Figures: latency AMI frame → webhook
//     request (paced), split at the stream (JetStream timestamp of each event, read back after the
//     run); events/s arriving at the receiver (paced: while sending; unpaced: from the first AMI
//     byte to the last arrival, and in the steady middle, 10 %–90 % of the arrivals); lost,
//     duplicated, out of order within a call; the share each node delivered; CPU per process.
// (b) ring → pop through the bus: a pop node (`source` without consumer, `http` with tokenSecret,
//     one screen-pop rule) with --agents SSE streams (bench/bus-child.ts --role sse, tokens minted
//     with src/http/tokens.ts mintToken); a PBX-side bridge fed clones of direct-answered.ami, each
//     ringing one agent (1000 + call mod agents), a call starting every 1/--pop-rate s for
//     --warmup-seconds (warm-up, reported apart) + --pop-seconds, each with its recorded timing (as
//     bench/screenpop.ts). Figure: the AMI frame that makes call.ringing written → the SSE message
//     parsed by that agent's client, split at the stream; every ring checked to reach its agent once.
// (c) failover of an HA pair: two bridges with the same pbx.name on one AMI feed (this process
//     writes the same bytes to both), both publishing (the stream drops the second copy by
//     Nats-Msg-Id); --ha-rate events/s for --ha-seconds, bridge A killed with SIGKILL --kill-at s
//     in. Figures: the longest gap between consecutive messages of the stream (their JetStream
//     timestamps; and a subscriber's receive times) around the kill, before and after, each with
//     how far apart the same two events' AMI frames were written (the traffic's own gap); store
//     latency (JetStream timestamp − AMI frame written) before, around and after the kill; what
//     each bridge's NATS connection published (nats-server /connz); and every event id in the
//     stream exactly once, against the ids `crm-bridge replay` makes of the very bytes written
//     (same config, same pbx.name).
//
// Options: --scenarios a,b,c  --webhook-runs 1,2 (webhook nodes per run; N:recorded-agents)
//   --warmup-seconds 3  --rate 500  --paced-seconds 15  --max-events 8000  --agents 1000
//   --pop-rate 50  --pop-seconds 20  --ha-rate 300  --ha-seconds 12  --kill-at 6
//   --quiet-wait 20 (before each run, wait up to that many s for the machine to be < 25 % of a
//   core busy; 0: don't)  --out bench/results/bus.json  --note TEXT
//
// No CPU pinning: nats-server, 2–4 daemons, the measuring child and this process share the
// machine's cores; each one's CPU is reported per phase, and what other processes used. Exits 1
// on a lost, duplicated or misrouted event, a daemon that died or exited badly. Everything listens
// on 127.0.0.1; every loop is bounded; it kills only the processes it started (by pid) and
// removes its temp dirs, also on SIGINT/SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager, StorageType, type JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { nanos } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { mintToken } from '../dist/http/tokens.js';
import type { ReceiverDump, SseDump } from './bus-child.js';
import {
  children,
  cloneFrames,
  CRLF,
  exited,
  feedSocket,
  gitHead,
  latencyStats,
  loadCloneSet,
  machine,
  procSample,
  removeDir,
  renderClone,
  round,
  sleep,
  Stamper,
  startAmiServer,
  systemCpu,
  tempDir,
  TRACE_CALLS,
  UID_HEADER,
  waitForQuiet,
  within,
  type CallTrace,
  type CloneSet,
  type Stats,
  runBench,
} from './lib.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const BIN = path.join(ROOT, 'bin/crm-bridge.js');
const CHILD = path.join(ROOT, 'bench/bus-child.ts');
const FIXTURES = path.join(ROOT, 'test/fixtures');
const LOADER = ['--import', '@tapjs/typescript/import'];
const NATS_SERVER = '/usr/sbin/nats-server';
const STREAM = 'CRM_EVENTS';
const CONSUMER = 'crm-webhooks';
const PARTITIONS = 16;
const PBX = 'bench';
const NPROC = os.cpus().length;

// ------------------------------------------------------------------------------------------------
// Processes: nats-server, daemons, the measuring child; CPU per phase.

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string | null;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

type NatsProc = Proc & { url: string; monitorPort: number };

async function startNatsServer(dir: string): Promise<NatsProc> {
  if (!fs.existsSync(NATS_SERVER)) throw new Error(`${NATS_SERVER} is missing: apt-get install nats-server`);
  const port = await freePort();
  const monitorPort = await freePort();
  const store = path.join(dir, 'nats');
  const child = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-sd', store], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  await within(
    new Promise<void>((resolve, reject) => {
      const onData = (b: Buffer) => {
        if (out.length < 1 << 16) out += b.toString();
        if (out.includes('Server is ready')) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`nats-server exited (${code}) before it was ready:\n${out}`)));
    }),
    20_000,
    'nats-server to be ready',
  );
  return { name: 'nats-server', child, pid: child.pid ?? -1, logFile: null, exit: exited(child), url: `nats://127.0.0.1:${port}`, monitorPort };
}

/** nats-server's monitoring endpoint (-m): open and closed client connections with their message counts. */
async function connections(monitorPort: number): Promise<Array<{ cid: number; name?: string; in_msgs: number; out_msgs: number; reason?: string }>> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/connz?state=all&limit=1000`);
  const body = (await res.json()) as { connections?: Array<{ cid: number; name?: string; in_msgs: number; out_msgs: number; reason?: string }> };
  return body.connections ?? [];
}

/** The stream as the nats sink creates it (src/sinks/nats.ts defaults), made first so that nodes can attach before the first publish. */
async function createStream(url: string): Promise<void> {
  const nc = await connect({ servers: [url] });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['crm.>'], storage: StorageType.File, max_age: nanos(604_800_000), num_replicas: 1, duplicate_window: nanos(120_000) });
  await nc.close();
}

function startDaemon(name: string, dir: string, yaml: string): Proc {
  const config = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(config, `# written by bench/bus.ts\n${yaml}`);
  const logFile = path.join(dir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [BIN, 'run', '--config', config], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', fd] });
  fs.closeSync(fd);
  children.add(child);
  return { name, child, pid: child.pid ?? -1, logFile, exit: exited(child) };
}

function logLines(p: Proc): Array<Record<string, unknown>> {
  if (!p.logFile || !fs.existsSync(p.logFile)) return [];
  return fs
    .readFileSync(p.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { msg: l, raw: true };
      }
    });
}

async function waitLog(p: Proc, pred: (l: Record<string, unknown>) => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (logLines(p).some(pred)) return;
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before ${what}: ${logLines(p).slice(-3).map((l) => JSON.stringify(l)).join(' ')}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Lines at warn or above (pino levels ≥ 40), for the results: problems a daemon reported. */
function warnings(p: Proc): { count: number; first: string[] } {
  const w = logLines(p).filter((l) => Number(l.level ?? 0) >= 40 || l.raw);
  return { count: w.length, first: w.slice(0, 4).map((l) => JSON.stringify(l).slice(0, 400)) };
}

async function stopDaemon(p: Proc, problems: string[]): Promise<{ code: number | null; signal: string | null }> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  let e: { code: number | null; signal: NodeJS.Signals | null };
  try {
    e = await within(p.exit, 20_000, `${p.name} to stop after SIGTERM`);
  } catch (err) {
    problems.push((err as Error).message);
    p.child.kill('SIGKILL');
    e = await p.exit;
  }
  children.delete(p.child);
  return e;
}

/** SIGTERM to each daemon, in reverse start order (a killed one is left out); exits and logged warnings. */
async function stopDaemons(daemons: Proc[], problems: string[]): Promise<{ exits: Record<string, unknown>; warnings: Record<string, unknown> }> {
  const exits: Record<string, unknown> = {};
  const logged: Record<string, unknown> = {};
  for (const d of [...daemons].reverse()) {
    logged[d.name] = warnings(d);
    if (d.child.signalCode === 'SIGKILL') continue; // killed on purpose (the HA run)
    const e = await stopDaemon(d, problems);
    exits[d.name] = e;
    if (e.code !== 0) problems.push(`${d.name} exited with ${e.code ?? e.signal} after SIGTERM`);
  }
  return { exits, warnings: logged };
}

interface CpuSnap {
  at: number;
  sys: { busy: number; total: number };
  cpu: Record<string, number>;
}

function cpuSnap(procs: Proc[]): CpuSnap {
  const cpu: Record<string, number> = { bench: procSample(process.pid)?.cpuSec ?? 0 };
  for (const p of procs) cpu[p.name] = procSample(p.pid)?.cpuSec ?? Number.NaN;
  return { at: performance.now(), sys: systemCpu(), cpu };
}

/** % of one core per process between two snapshots, the whole machine (of NPROC × 100) and everything else on it. */
function cpuPct(a: CpuSnap, b: CpuSnap): Record<string, number> {
  const dt = (b.at - a.at) / 1000;
  const out: Record<string, number> = {};
  let ours = 0;
  for (const k of Object.keys(a.cpu)) {
    const v = ((b.cpu[k] ?? Number.NaN) - (a.cpu[k] ?? Number.NaN)) / dt;
    if (Number.isFinite(v)) {
      out[k] = round(v * 100);
      ours += v * 100;
    }
  }
  out.machine = round(((b.sys.busy - a.sys.busy) / Math.max(1, b.sys.total - a.sys.total)) * 100 * NPROC);
  out.other = round(Math.max(0, (out.machine as number) - ours));
  return out;
}

// ------------------------------------------------------------------------------------------------
// The measuring child (bench/bus-child.ts): receiver or SSE clients.

interface Child extends Proc {
  ask<T>(msg: Record<string, unknown>, ms: number, what: string): Promise<T>;
  ready: Record<string, unknown>;
  close(): Promise<void>;
}

async function startChild(role: 'receiver' | 'sse'): Promise<Child> {
  const child = spawn(process.execPath, [...LOADER, CHILD, '--role', role], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  children.add(child);
  const waiting = new Map<number, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (m: Record<string, unknown>) => {
    const w = waiting.get(m.id as number);
    waiting.delete(m.id as number);
    w?.resolve(m);
  });
  child.once('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`${role} process exited (${code ?? signal})`));
    waiting.clear();
  });
  const ask = <T>(msg: Record<string, unknown> | null, ms: number, what: string): Promise<T> => {
    const id = msg === null ? 0 : nextId++;
    return within(
      new Promise<T>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`${role} process is gone`));
        waiting.set(id, { resolve: (m) => resolve(m as T), reject });
        if (msg) child.send({ ...msg, id }, (err) => err && reject(err));
      }),
      ms,
      `${role} process: ${what}`,
    ).finally(() => waiting.delete(id));
  };
  const ready = await ask<Record<string, unknown>>(null, 30_000, 'ready');
  return {
    name: role,
    child,
    pid: child.pid ?? -1,
    logFile: null,
    exit: exited(child),
    ask,
    ready,
    close: async () => {
      if (child.connected) child.disconnect();
      try {
        await within(exited(child), 10_000, `${role} process to exit`);
      } catch {
        child.kill('SIGKILL');
        await exited(child);
      }
      children.delete(child);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// AMI frames: a rendered clone split into frames, each with its Timestamp value cut out so that it
// is stamped when written.

interface Frame {
  pre: string;
  post: string | null;
  /** The recorded (clone-window) Timestamp value. */
  ts: string | null;
}

function splitFrames(text: string): Frame[] {
  const out: Frame[] = [];
  for (const f of text.split(`${CRLF}${CRLF}`)) {
    if (f === '') continue;
    const s = `${f}${CRLF}${CRLF}`;
    let i = s.startsWith('Timestamp: ') ? 0 : s.indexOf(`${CRLF}Timestamp: `);
    if (i < 0) {
      out.push({ pre: s, post: null, ts: null });
      continue;
    }
    if (i > 0) i += CRLF.length;
    const v = i + 'Timestamp: '.length;
    const e = s.indexOf(CRLF, v);
    out.push({ pre: s.slice(0, v), post: s.slice(e), ts: s.slice(v, e) });
  }
  return out;
}

const stamped = (f: Frame, stamper: Stamper): string => (f.post === null ? f.pre : f.pre + stamper.stamp() + f.post);

/** Clone after clone, frame by frame, each stamped when taken. */
class CloneFeed {
  clone: number;
  framesSent = 0;
  private frames: Frame[] = [];
  private i = 0;
  constructor(
    private readonly render: (k: number) => string,
    private readonly stamper: Stamper,
    firstClone = 0,
  ) {
    this.clone = firstClone;
  }
  next(): string {
    if (this.i >= this.frames.length) {
      this.frames = splitFrames(this.render(this.clone++));
      this.i = 0;
    }
    this.framesSent++;
    return stamped(this.frames[this.i++] as Frame, this.stamper);
  }
}

/**
 * Rewrites the recorded agents' extensions wherever they stand alone (Local/201@agents, Exten: 201,
 * MemberName: Agent 201, …; not inside ids or Timestamps, where .201 may be a sequence number).
 * `to(ext)` gives the new extension; `did` (a DID ending in the agent's extension) follows it.
 */
function agentRewriter(agents: string[], did: string | null = null): (text: string, to: (ext: string) => string) => string {
  const AGENT = new RegExp(`${did ? `(?<![0-9])(${did})(?![0-9])|` : ''}(?<![0-9A-Za-z])(${agents.join('|')})(?![0-9])`, 'g');
  return (text, to) =>
    text
      .split(CRLF)
      .map((line) => {
        const header = line.slice(0, Math.max(0, line.indexOf(': ')));
        if (header === 'Timestamp' || header === 'BridgeUniqueid' || UID_HEADER.test(header)) return line;
        return line.replace(AGENT, (m) => {
          if (did && m === did) {
            const ext = agents.find((a) => did.endsWith(a)) ?? '';
            return did.slice(0, did.length - ext.length) + to(ext);
          }
          return to(m);
        });
      })
      .join(CRLF);
}

interface FeedResult {
  frames: number;
  startedAt: number;
  endedAt: number;
  seconds: number;
  framesPerSecAchieved: number;
  /** Paced: how far behind its schedule the writer got (timer granularity, a busy machine). */
  maxLagMs?: number;
}

/** Writes `total` frames at `framesPerSec`, every ~1 ms tick, through `write`. */
async function feedPaced(write: (chunk: string) => void, next: () => string, total: number, framesPerSec: number, onTick?: (elapsedMs: number) => void): Promise<FeedResult> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const deadline = startedAt + (total / framesPerSec) * 1000 * 3 + 30_000;
  let sent = 0;
  let maxLag = 0;
  while (sent < total) {
    if (Date.now() > deadline) throw new Error(`paced feed overran its deadline (${sent} of ${total} frames)`);
    const now = performance.now() - t0;
    onTick?.(now);
    const due = Math.min(total, Math.floor((now * framesPerSec) / 1000));
    if (due > sent) {
      maxLag = Math.max(maxLag, now - ((sent + 1) * 1000) / framesPerSec);
      let chunk = '';
      while (sent < due) {
        chunk += next();
        sent++;
      }
      write(chunk);
    }
    await sleep(1);
  }
  const endedAt = Date.now();
  const seconds = (endedAt - startedAt) / 1000;
  return { frames: sent, startedAt, endedAt, seconds: round(seconds, 2), framesPerSecAchieved: round(sent / seconds, 0), maxLagMs: round(maxLag, 1) };
}

function writeTo(socket: net.Socket): (chunk: string) => void {
  return (chunk) => {
    if (socket.destroyed) throw new Error("the bridge's AMI connection closed");
    socket.write(chunk, 'latin1');
    if (socket.writableLength > 256 * 1024 * 1024) throw new Error('the bridge is not reading AMI: 256 MiB queued');
  };
}

// ------------------------------------------------------------------------------------------------
// Configs

function pbxConfig(amiPort: number, natsUrl: string, dir: string, name: string): string {
  return `pbx:
  name: ${PBX}
  ami:
    host: 127.0.0.1
    port: ${amiPort}
    username: ${name}
    secret: bench
    resync: false
    reconnect: { initialDelayMs: 200, maxDelayMs: 1000, factor: 2, jitter: 0 }
calls:
  inboundContexts: [${TRACE_CALLS.inboundContexts.join(', ')}]
  agentContexts: [${TRACE_CALLS.agentContexts.join(', ')}]
  extensionPattern: '${TRACE_CALLS.extensionPattern}'
sinks:
  - type: nats
    servers: [${natsUrl}]
    stream: ${STREAM}
outbox:
  path: ${path.join(dir, `${name}-outbox.db`)}
  synchronous: normal
log:
  level: info
`;
}

function webhookNodeConfig(i: number, natsUrl: string, receiverPort: number, dir: string): string {
  return `source:
  type: nats
  name: webhooks-${i}
  servers: [${natsUrl}]
  stream: ${STREAM}
  consumer: ${CONSUMER}
  leaseSeconds: 2
sinks:
  - type: webhook
    name: crm
    url: http://127.0.0.1:${receiverPort}/n${i}
    format: json
    concurrency: 8
outbox:
  path: ${path.join(dir, `webhooks-${i}-outbox.db`)}
  synchronous: normal
log:
  level: info
`;
}

function popNodeConfig(natsUrl: string, httpPort: number, secret: string, dir: string): string {
  return `source:
  type: nats
  name: pop-1
  servers: [${natsUrl}]
  stream: ${STREAM}
sinks: []
http:
  listen: 127.0.0.1:${httpPort}
  tokenSecret: ${secret}
screenpop:
  - events: [call.ringing]
    url: "https://crm.example.com/contact?phone={callerNumber}"
    target: new-tab
outbox:
  path: ${path.join(dir, 'pop-1-outbox.db')}
log:
  level: info
`;
}

// ------------------------------------------------------------------------------------------------
// Calibration through the real `crm-bridge replay` (same pbx.name and calls settings as the bridges).

function replayEvents(dir: string, name: string, greeting: string, body: string): Array<Record<string, unknown>> {
  const trace = path.join(dir, `${name}.ami`);
  fs.writeFileSync(trace, greeting + body, 'latin1');
  const config = path.join(dir, `${name}-replay.yaml`);
  fs.writeFileSync(config, pbxConfig(5038, 'nats://127.0.0.1:4222', dir, 'replay').replace(/sinks:\n(?: {2}.*\n)+/, 'sinks: []\n').replace('level: info', 'level: warn'));
  const r = spawnSync(process.execPath, [BIN, 'replay', trace, '--config', config], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' }, maxBuffer: 512 * 1024 * 1024, timeout: 180_000 });
  fs.rmSync(trace, { force: true });
  if (r.status !== 0) throw new Error(`crm-bridge replay failed (${r.status ?? r.signal}): ${r.stderr.slice(0, 2000)}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface TenCalls {
  set: CloneSet;
  trace: CallTrace;
  /** Clone k as AMI text (its agents rewritten unless recorded agents were asked for). */
  render(k: number): string;
  agents: string;
  framesPerClone: number;
  eventsPerClone: number;
  /** Events of the first clone beyond eventsPerClone. */
  eventsOnce: number;
  eventsPerFrame: number;
  eventsFor123: number[];
  distinctAgentsIn3Clones: number;
}

/**
 * Clones of ten-calls.ami (10 queue calls answered by agents 201 and 202). Fresh agents: clone k's
 * agents are 10000 + 2k and 10001 + 2k, so that agent events spread over partitions as on a floor
 * with many agents, instead of every clone's agent events landing on the same two.
 */
function calibrateTenCalls(dir: string, freshAgents: boolean): TenCalls {
  const set = loadCloneSet([path.join(FIXTURES, 'ten-calls.ami')]);
  const trace = set.traces[0] as CallTrace;
  const text0 = renderClone(trace, 0);
  const recorded = [...new Set([...text0.matchAll(/^Interface: Local\/(\d{2,6})@agents\r$/gm)].map((m) => m[1] as string))].sort();
  const rewrite = agentRewriter(recorded);
  const render = freshAgents ? (k: number) => rewrite(renderClone(trace, k), (ext) => String(10000 + k * recorded.length + recorded.indexOf(ext))) : (k: number) => renderClone(trace, k);
  const framesPerClone = cloneFrames(trace, 'full');
  if (splitFrames(render(0)).length !== framesPerClone) throw new Error('calibration: splitting a clone into frames does not give its frame count');
  const counts: number[] = [];
  let agents3 = 0;
  for (const n of [1, 2, 3]) {
    let body = '';
    for (let k = 0; k < n; k++) body += render(k);
    const events = replayEvents(dir, `ten-calls-${n}`, set.greeting, body);
    counts.push(events.length);
    if (n === 3) {
      if (new Set(events.map((e) => e.callId).filter(Boolean)).size !== 3 * trace.calls) throw new Error('calibration: 3 clones of ten-calls did not make 30 distinct calls');
      agents3 = new Set(events.map((e) => (e.agent as { id?: string } | null | undefined)?.id).filter(Boolean)).size;
      if (freshAgents && agents3 !== 3 * recorded.length) throw new Error(`calibration: 3 clones with fresh agents named ${agents3} agents, not ${3 * recorded.length}`);
    }
  }
  const [e1, e2, e3] = counts as [number, number, number];
  if (e3 - e2 !== e2 - e1) throw new Error(`calibration: events per clone are not constant (${counts.join(', ')})`);
  const perClone = e2 - e1;
  return {
    set,
    trace,
    render,
    agents: freshAgents ? `${recorded.join(', ')} -> 10000 + k × ${recorded.length} + i in clone k` : `${recorded.join(', ')} in every clone (as recorded)`,
    framesPerClone,
    eventsPerClone: perClone,
    eventsOnce: e1 - perClone,
    eventsPerFrame: perClone / framesPerClone,
    eventsFor123: counts,
    distinctAgentsIn3Clones: agents3,
  };
}

interface DirectCalls {
  set: CloneSet;
  trace: CallTrace;
  recordedAgent: string;
  did: string | null;
  /** Each frame's offset from the call's first frame in the recording, ms. */
  offsetsMs: number[];
  eventsPerCall: number;
  agentOf(call: number): string;
  /** Call `call`'s frames (agent rewritten) and its call id (its first Linkedid). */
  render(call: number): { frames: Frame[]; callId: string };
}

function loadDirectCalls(agentBase: number, agents: number): Omit<DirectCalls, 'eventsPerCall'> {
  const set = loadCloneSet([path.join(FIXTURES, 'direct-answered.ami')]);
  const trace = set.traces[0] as CallTrace;
  const text0 = renderClone(trace, 0);
  const exts = new Set([...text0.matchAll(/^(?:DialString|Interface|StateInterface): (?:Local\/)?(\d{2,6})@agents\r$/gm)].map((m) => m[1] as string));
  if (exts.size !== 1) throw new Error(`direct-answered.ami: expected a call to one agent, found ${[...exts].join(', ')}`);
  const recordedAgent = [...exts][0] as string;
  const did = /^DialString: (\d+)@from-pstn\r$/m.exec(text0)?.[1] ?? null;
  const agentOf = (call: number) => String(agentBase + (call % agents));
  const rewrite = agentRewriter([recordedAgent], did);
  const frames0 = splitFrames(text0);
  const t0 = Number(frames0.find((f) => f.ts !== null)?.ts ?? 0);
  const offsetsMs: number[] = [];
  for (const f of frames0) offsetsMs.push(Math.max(offsetsMs[offsetsMs.length - 1] ?? 0, f.ts !== null ? round((Number(f.ts) - t0) * 1000, 3) : 0));
  return {
    set,
    trace,
    recordedAgent,
    did,
    offsetsMs,
    agentOf,
    render: (call) => {
      const text = rewrite(renderClone(trace, call), () => agentOf(call));
      return { frames: splitFrames(text), callId: /^Linkedid: (\S+)\r$/m.exec(text)?.[1] ?? '?' };
    },
  };
}

function calibrateDirectCalls(dir: string, agentBase: number, agents: number): DirectCalls {
  const d = loadDirectCalls(agentBase, agents);
  let body = '';
  const want: Array<{ callId: string; agent: string }> = [];
  for (let k = 0; k < 3; k++) {
    const { frames, callId } = d.render(k);
    body += frames.map((f) => (f.post === null ? f.pre : f.pre + String(f.ts) + f.post)).join('');
    want.push({ callId, agent: d.agentOf(k) });
  }
  const events = replayEvents(dir, 'direct-3', d.set.greeting, body);
  const rings = events.filter((e) => e.type === 'call.ringing').map((e) => ({ callId: String(e.callId), agent: String((e.agent as { id?: string } | null)?.id) }));
  if (JSON.stringify(rings) !== JSON.stringify(want)) throw new Error(`calibration: 3 rewritten calls rang ${JSON.stringify(rings)}, expected ${JSON.stringify(want)}`);
  if (events.length % 3 !== 0) throw new Error(`calibration: ${events.length} events for 3 calls`);
  return { ...d, eventsPerCall: events.length / 3 };
}

// ------------------------------------------------------------------------------------------------
// (a) AMI → bridge → JetStream → webhook node(s) → receiver

interface Options {
  webhookRuns: Array<{ nodes: number; freshAgents: boolean }>;
  warmupSeconds: number;
  rate: number;
  pacedSeconds: number;
  maxEvents: number;
  agents: number;
  popRate: number;
  popSeconds: number;
  haRate: number;
  haSeconds: number;
  killAt: number;
  quietWait: number;
}

async function waitCount(recv: Child, want: number, ms: number): Promise<{ unique: number; waitedMs: number }> {
  const t0 = Date.now();
  let unique = 0;
  while (Date.now() - t0 < ms) {
    unique = (await recv.ask<{ unique: number }>({ type: 'count' }, 10_000, 'count')).unique;
    if (unique >= want) break;
    await sleep(200);
  }
  return { unique, waitedMs: Date.now() - t0 };
}

/** Event id (Nats-Msg-Id) -> when the stream stored it (its JetStream timestamp, ms), read from the start. */
async function storedTimes(url: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: [url] });
  try {
    const want = (await (await jetstreamManager(nc)).streams.info(STREAM)).state.messages;
    const out = new Map<string, number>();
    if (want === 0) return out;
    const iter = await (await jetstream(nc).consumers.get(STREAM)).consume();
    const done = (async () => {
      let n = 0;
      for await (const m of iter as AsyncIterable<JsMsg>) {
        out.set(m.headers?.get('Nats-Msg-Id') ?? '', Number(m.timestampNanos / BigInt(1000)) / 1000);
        if (++n >= want) break;
      }
    })();
    await within(done, 60_000, `reading the ${want} messages of the stream`);
    iter.stop();
    return out;
  } finally {
    await nc.close();
  }
}

/** Owner node id -> partitions it holds, from the lease bucket the webhook nodes share. */
async function leases(url: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: [url] });
  try {
    const kv = await new Kvm(nc).open(`crm-bridge-${CONSUMER}`);
    const owners = new Map<string, number>();
    for await (const k of await kv.keys('p.*')) {
      const v = (await kv.get(k))?.string();
      if (v) owners.set(v, (owners.get(v) ?? 0) + 1);
    }
    return owners;
  } finally {
    await nc.close();
  }
}

async function runWebhook(nodes: number, ten: TenCalls, opts: Options): Promise<Record<string, unknown>> {
  const dir = tempDir('crm-bridge-bench-bus-a-');
  const problems: string[] = [];
  const procs: Proc[] = [];
  const stamper = new Stamper();
  let nats: NatsProc | null = null;
  let recv: Child | null = null;
  const daemons: Proc[] = [];
  let ami: Awaited<ReturnType<typeof startAmiServer>> | null = null;
  const out: Record<string, unknown> = { nodes };
  try {
    nats = await startNatsServer(dir);
    procs.push(nats);
    await createStream(nats.url);
    recv = await startChild('receiver');
    procs.push(recv);
    const recvPort = recv.ready.port as number;
    for (let i = 1; i <= nodes; i++) {
      const n = startDaemon(`webhooks-${i}`, dir, webhookNodeConfig(i, nats.url, recvPort, dir));
      daemons.push(n);
      procs.push(n);
      await waitLog(n, (l) => l.msg === 'NATS source connected', `webhooks-${i} to connect`);
    }
    // Every partition leased, and shared evenly (a newcomer gets its share within a lease round or two).
    const t0 = Date.now();
    let owners = new Map<string, number>();
    for (;;) {
      owners = await leases(nats.url).catch(() => new Map<string, number>());
      const counts = [...owners.values()];
      if (counts.length === nodes && counts.reduce((a, b) => a + b, 0) === PARTITIONS && Math.max(...counts) - Math.min(...counts) <= 1) break;
      if (Date.now() - t0 > 30_000) throw new Error(`partitions not shared among ${nodes} nodes after 30 s: ${JSON.stringify([...owners.values()])}`);
      await sleep(250);
    }
    out.partitionsPerNode = [...owners.values()];
    out.leasesSharedAfterMs = Date.now() - t0;

    ami = await startAmiServer(ten.set, stamper);
    const bridge = startDaemon('bridge', dir, pbxConfig(ami.port, nats.url, dir, 'bridge'));
    daemons.push(bridge);
    procs.push(bridge);
    const socket = await within(ami.loggedIn, 30_000, 'the bridge to log in to AMI');
    await waitLog(bridge, (l) => l.msg === 'NATS connected', 'the bridge to reach NATS');

    const fps = opts.rate / ten.eventsPerFrame;
    const feed = new CloneFeed(ten.render, stamper);
    // Warm-up: the same rate for --warmup-seconds, delivered before the measured phase starts (a
    // cold start — JIT, first SQLite pages, consumers' first pulls — is reported apart).
    const warmClones = opts.warmupSeconds > 0 ? Math.max(1, Math.round((opts.rate * opts.warmupSeconds) / ten.eventsPerClone)) : 0;
    const expected0 = warmClones ? ten.eventsOnce + warmClones * ten.eventsPerClone : 0;
    let warm: FeedResult | null = null;
    if (warmClones) {
      process.stderr.write(`   warm-up: ${warmClones} clones (${expected0} events) at ${opts.rate} events/s\n`);
      warm = await feedPaced(writeTo(socket), () => feed.next(), warmClones * ten.framesPerClone, fps);
      await waitCount(recv, expected0, 60_000);
      await sleep(500);
    }
    // Paced.
    const pacedClones = Math.max(1, Math.round((opts.rate * opts.pacedSeconds) / ten.eventsPerClone));
    const expected1 = (warmClones ? 0 : ten.eventsOnce) + pacedClones * ten.eventsPerClone;
    process.stderr.write(`   paced: ${pacedClones} clones (${expected1} events) at ${opts.rate} events/s = ${round(fps, 0)} AMI frames/s\n`);
    const c0 = cpuSnap(procs);
    const paced = await feedPaced(writeTo(socket), () => feed.next(), pacedClones * ten.framesPerClone, fps);
    const c1 = cpuSnap(procs);
    const w1 = await waitCount(recv, expected0 + expected1, 60_000);
    const c2 = cpuSnap(procs);
    // Unpaced.
    const maxClones = Math.max(1, Math.round(opts.maxEvents / ten.eventsPerClone));
    const expected2 = maxClones * ten.eventsPerClone;
    process.stderr.write(`   unpaced: ${maxClones} clones (${expected2} events) as fast as the bridge reads\n`);
    const maxStart = Date.now();
    let left = maxClones * ten.framesPerClone;
    const fed = await feedSocket(socket, () => (left-- > 0 ? feed.next() : null), 64 * 1024);
    const maxFed = Date.now();
    const c3 = cpuSnap(procs);
    const w2 = await waitCount(recv, expected0 + expected1 + expected2, 120_000);
    const c4 = cpuSnap(procs);
    await sleep(500); // late duplicates
    const d = (await recv.ask<{ dump: ReceiverDump }>({ type: 'dump' }, 60_000, 'dump')).dump;

    const stored = await storedTimes(nats.url);
    const idx0: number[] = [];
    const idx1: number[] = [];
    const idx2: number[] = [];
    d.time.forEach((t, i) => (t >= maxStart ? idx2 : t >= paced.startedAt ? idx1 : idx0).push(i));
    const lat1 = idx1.map((i) => (d.at[i] as number) - (d.time[i] as number));
    const latAfter3s = idx1.filter((i) => (d.time[i] as number) >= paced.startedAt + 3000).map((i) => (d.at[i] as number) - (d.time[i] as number));
    const inFeed = idx1.filter((i) => (d.at[i] as number) >= paced.startedAt + 3000 && (d.at[i] as number) <= paced.endedAt).length;
    const lastAt1 = Math.max(...idx1.map((i) => d.at[i] as number));
    const at2 = idx2.map((i) => d.at[i] as number).sort((a, b) => a - b);
    const steady = (xs: number[]) => {
      const a = xs[Math.floor(xs.length * 0.1)] as number;
      const b = xs[Math.floor(xs.length * 0.9)] as number;
      return b > a ? round((Math.floor(xs.length * 0.9) - Math.floor(xs.length * 0.1)) / ((b - a) / 1000), 0) : null;
    };
    // Where the time went: AMI frame written -> stored in the stream (the PBX-side bridge and
    // JetStream), and stored -> at the receiver (the webhook node and HTTP).
    const hops = (idx: number[]) => {
      const a: number[] = [];
      const b: number[] = [];
      for (const i of idx) {
        const st = stored.get(d.id[i] as string);
        if (st === undefined) continue;
        a.push(round(st - (d.time[i] as number), 1));
        b.push(round((d.at[i] as number) - st, 1));
      }
      return { amiToStream: latencyStats(a), streamToReceiver: latencyStats(b) };
    };
    const perSecond = (idx: number[], from: number) => {
      const by = new Map<number, number[]>();
      for (const i of idx) {
        const s = Math.floor(((d.time[i] as number) - from) / 1000);
        by.set(s, [...(by.get(s) ?? []), (d.at[i] as number) - (d.time[i] as number)]);
      }
      return [...by.entries()].sort((x, y) => x[0] - y[0]).map(([s, v]) => ({ s, n: v.length, p50: latencyStats(v).p50, p99: latencyStats(v).p99 }));
    };
    const perNode = (idx: number[]) => Array.from({ length: nodes }, (_, j) => idx.filter((i) => d.node[i] === j + 1).length);
    out.warmup = warm && {
      clones: warmClones,
      feed: warm,
      expected: expected0,
      delivered: idx0.length,
      latencyMs: latencyStats(idx0.map((i) => (d.at[i] as number) - (d.time[i] as number))),
      latencyMsByHop: hops(idx0),
      latencyMsPerSecondOfSending: perSecond(idx0, warm.startedAt),
    };
    out.paced = {
      offeredEventsPerSec: opts.rate,
      clones: pacedClones,
      feed: paced,
      offeredAchievedEventsPerSec: round(expected1 / paced.seconds, 0),
      expected: expected1,
      delivered: idx1.length,
      lost: expected1 - idx1.length,
      receivedPerSecWhileSending: round(inFeed / ((paced.endedAt - paced.startedAt - 3000) / 1000), 0),
      lastArrivalAfterFeedEndMs: lastAt1 - paced.endedAt,
      latencyMs: latencyStats(lat1),
      latencyMsAfterFirst3s: latencyStats(latAfter3s),
      latencyMsByHop: hops(idx1),
      latencyMsByPartitionKind: {
        callEvents: latencyStats(idx1.filter((i) => !d.agentEvent[i]).map((i) => (d.at[i] as number) - (d.time[i] as number))),
        agentEvents: latencyStats(idx1.filter((i) => d.agentEvent[i]).map((i) => (d.at[i] as number) - (d.time[i] as number))),
      },
      latencyMsPerSecondOfSending: perSecond(idx1, paced.startedAt),
      perNode: perNode(idx1),
      waitedForDeliveryMs: w1.waitedMs,
      cpuPctWhileSending: cpuPct(c0, c1),
      cpuPctDraining: cpuPct(c1, c2),
    };
    out.unpaced = {
      clones: maxClones,
      expected: expected2,
      delivered: idx2.length,
      lost: expected2 - idx2.length,
      amiWrittenSeconds: round((maxFed - maxStart) / 1000, 2),
      amiFramesPerSecIn: round(fed.bytes > 0 ? (maxClones * ten.framesPerClone) / ((maxFed - maxStart) / 1000) : 0, 0),
      firstToLastArrivalSeconds: at2.length ? round(((at2[at2.length - 1] as number) - (at2[0] as number)) / 1000, 2) : null,
      receivedPerSec: at2.length > 1 ? round(at2.length / (((at2[at2.length - 1] as number) - maxStart) / 1000), 0) : null,
      receivedPerSecSteady: at2.length > 10 ? steady(at2) : null,
      lastArrivalAfterAmiWrittenMs: at2.length ? (at2[at2.length - 1] as number) - maxFed : null,
      latencyMsByHop: hops(idx2),
      perNode: perNode(idx2),
      cpuPctWhileWriting: cpuPct(c2, c3),
      cpuPctDraining: cpuPct(c3, c4),
      cpuPctWhole: cpuPct(c2, c4),
    };
    out.receiver = { requests: d.requests, duplicates: d.duplicates, bad: d.bad, outOfOrderWithinACall: d.outOfOrder };
    if (idx0.length !== expected0) problems.push(`warm-up: ${idx0.length} of ${expected0} events reached the receiver`);
    if (idx1.length !== expected1) problems.push(`paced: ${idx1.length} of ${expected1} events reached the receiver`);
    if (idx2.length !== expected2) problems.push(`unpaced: ${idx2.length} of ${expected2} events reached the receiver`);
    if (d.duplicates) problems.push(`${d.duplicates} events reached the receiver more than once`);
    if (d.outOfOrder) problems.push(`${d.outOfOrder} events arrived after a later event of their call`);
    if (d.bad) problems.push(`${d.bad} requests without a webhook-id or a parseable event`);
    if (ami.logins !== 1) problems.push(`the bridge logged in to AMI ${ami.logins} times`);
    const p = out.paced as { latencyMs: Stats; receivedPerSecWhileSending: number };
    const u = out.unpaced as { receivedPerSec: number | null; receivedPerSecSteady: number | null };
    process.stderr.write(`   paced: ${idx1.length}/${expected1} delivered, ${p.receivedPerSecWhileSending} events/s at the receiver while sending; latency p50 ${p.latencyMs.p50} p99 ${p.latencyMs.p99} max ${p.latencyMs.max} ms\n`);
    process.stderr.write(`   unpaced: ${idx2.length}/${expected2} delivered, ${String(u.receivedPerSec)} events/s at the receiver (steady middle ${String(u.receivedPerSecSteady)})\n`);
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    const stopped = await stopDaemons(daemons, problems);
    out.daemonExits = stopped.exits;
    out.daemonWarnings = stopped.warnings;
    await recv?.close();
    if (nats) await stopDaemon(nats, problems);
    await ami?.close();
    removeDir(dir);
  }
  out.problems = problems;
  out.ok = problems.length === 0;
  return out;
}

// ------------------------------------------------------------------------------------------------
// (b) ring → pop through the bus, 1,000 agents

async function runPop(direct: DirectCalls, opts: Options): Promise<Record<string, unknown>> {
  const dir = tempDir('crm-bridge-bench-bus-b-');
  const problems: string[] = [];
  const procs: Proc[] = [];
  const daemons: Proc[] = [];
  let nats: NatsProc | null = null;
  let sse: Child | null = null;
  let ami: Awaited<ReturnType<typeof startAmiServer>> | null = null;
  const out: Record<string, unknown> = {};
  const stamper = new Stamper();
  try {
    nats = await startNatsServer(dir);
    procs.push(nats);
    await createStream(nats.url);
    const secret = randomBytes(32).toString('hex');
    const httpPort = await freePort();
    const pop = startDaemon('pop-1', dir, popNodeConfig(nats.url, httpPort, secret, dir));
    daemons.push(pop);
    procs.push(pop);
    await waitLog(pop, (l) => l.msg === 'HTTP server listening', "the pop node's HTTP server");
    await waitLog(pop, (l) => l.msg === 'NATS source connected', 'the pop node to connect to NATS');
    sse = await startChild('sse');
    procs.push(sse);
    const streams = Array.from({ length: opts.agents }, (_, i) => {
      const agent = direct.agentOf(i);
      return { agent, token: mintToken(secret, { kind: 'agent', agentId: agent }, 6 * 3600) };
    });
    const conn = await sse.ask<{ ok: number; failed: number; ms: number }>({ type: 'connect', port: httpPort, streams }, 180_000, 'connect');
    out.streams = conn;
    process.stderr.write(`   ${conn.ok} SSE streams attached in ${conn.ms} ms (${conn.failed} failed)\n`);
    if (conn.failed) problems.push(`${conn.failed} of ${opts.agents} SSE streams failed to attach`);

    ami = await startAmiServer(direct.set, stamper);
    const bridge = startDaemon('bridge', dir, pbxConfig(ami.port, nats.url, dir, 'bridge'));
    daemons.push(bridge);
    procs.push(bridge);
    const socket = await within(ami.loggedIn, 30_000, 'the bridge to log in to AMI');
    await waitLog(bridge, (l) => l.msg === 'NATS connected', 'the bridge to reach NATS');

    // Call n starts at n / rate s; its frames keep their recorded offsets (bench/screenpop.ts, timing recorded).
    // The first --warmup-seconds of calls are the warm-up: delivered and checked like the others, their latency reported apart.
    const warmCalls = Math.round(opts.popRate * opts.warmupSeconds);
    const calls = warmCalls + Math.max(1, Math.round(opts.popRate * opts.popSeconds));
    const F = direct.offsetsMs.length;
    const n = calls * F;
    const due = new Float64Array(n);
    for (let k = 0; k < calls; k++) for (let j = 0; j < F; j++) due[k * F + j] = (k * 1000) / opts.popRate + (direct.offsetsMs[j] as number);
    const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => (due[a] as number) - (due[b] as number) || a - b);
    const rendered = new Map<number, Frame[]>();
    const callIds: string[] = [];
    const write = writeTo(socket);
    process.stderr.write(`   ${calls} calls (the first ${warmCalls} a warm-up) at ${opts.popRate}/s, each ringing one of ${opts.agents} agents, recorded timing (${F} frames per call, last at +${direct.offsetsMs[F - 1]} ms)\n`);
    const c0 = cpuSnap(procs);
    const startedAt = Date.now();
    const t0 = performance.now();
    let i = 0;
    let maxLag = 0;
    while (i < n) {
      if (Date.now() - startedAt > (opts.warmupSeconds + opts.popSeconds + 60) * 1000) throw new Error('paced feed overran its deadline');
      const now = performance.now() - t0;
      let chunk = '';
      while (i < n && (due[order[i] as number] as number) <= now) {
        const idx = order[i] as number;
        const call = Math.floor(idx / F);
        const j = idx % F;
        maxLag = Math.max(maxLag, now - (due[idx] as number));
        let frames = rendered.get(call);
        if (!frames) {
          const r = direct.render(call);
          frames = r.frames;
          callIds[call] = r.callId;
          rendered.set(call, frames);
        }
        chunk += stamped(frames[j] as Frame, stamper);
        if (j === F - 1) rendered.delete(call);
        i++;
      }
      if (chunk) write(chunk);
      await sleep(1);
    }
    const endedAt = Date.now();
    const c1 = cpuSnap(procs);
    // Every ring at its agent (or a deadline).
    const tw = Date.now();
    let rings = 0;
    while (Date.now() - tw < 60_000) {
      rings = (await sse.ask<{ rings: number }>({ type: 'count' }, 10_000, 'count')).rings;
      if (rings >= calls) break;
      await sleep(200);
    }
    await sleep(500);
    const d = (await sse.ask<{ dump: SseDump }>({ type: 'dump' }, 60_000, 'dump')).dump;
    const callOf = new Map(callIds.map((c, k) => [c, k]));
    const seen = new Map<string, number>();
    let wrongAgent = 0;
    let unknown = 0;
    const lat: number[] = [];
    const latWarm: number[] = [];
    const measured = new Set<number>();
    for (let r = 0; r < d.at.length; r++) {
      const call = callOf.get(d.callId[r] as string);
      if (call === undefined) {
        unknown++;
        continue;
      }
      seen.set(d.callId[r] as string, (seen.get(d.callId[r] as string) ?? 0) + 1);
      if (d.streamAgent[r] !== direct.agentOf(call) || d.eventAgent[r] !== direct.agentOf(call)) wrongAgent++;
      const l = (d.at[r] as number) - (d.time[r] as number);
      if (call < warmCalls) latWarm.push(l);
      else {
        lat.push(l);
        measured.add(r);
      }
    }
    const stored = await storedTimes(nats.url);
    const hopA: number[] = [];
    const hopB: number[] = [];
    for (const r of measured) {
      const st = stored.get(d.id[r] as string);
      if (st === undefined) continue;
      hopA.push(round(st - (d.time[r] as number), 1));
      hopB.push(round((d.at[r] as number) - st, 1));
    }
    out.latencyMsByHop = { amiToStream: latencyStats(hopA), streamToSse: latencyStats(hopB) };
    const lost = callIds.filter((c) => !seen.has(c)).length;
    const dup = [...seen.values()].filter((v) => v > 1).reduce((a, v) => a + v - 1, 0);
    out.feed = { calls, warmupCalls: warmCalls, callsPerSec: opts.popRate, frames: n, seconds: round((endedAt - startedAt) / 1000, 2), maxLagMs: round(maxLag, 1), eventsPerCall: direct.eventsPerCall };
    out.rings = { expected: calls, received: d.at.length, lost, duplicates: dup, wrongAgent, unknownCall: unknown, foreignMessages: d.foreign, badMessages: d.bad, streamsCut: d.cut, messagesOnAllStreams: d.messages };
    out.latencyMs = latencyStats(lat);
    out.latencyMsWarmup = latencyStats(latWarm);
    out.cpuPctWhileCalling = cpuPct(c0, c1);
    if (lost) problems.push(`${lost} of ${calls} rings never reached their agent`);
    if (dup) problems.push(`${dup} rings arrived twice`);
    if (wrongAgent) problems.push(`${wrongAgent} rings reached another agent's stream`);
    if (d.foreign) problems.push(`${d.foreign} messages naming another agent reached an agent's stream`);
    if (d.cut) problems.push(`${d.cut} SSE streams were cut`);
    const l = out.latencyMs as Stats;
    process.stderr.write(`   rings ${d.at.length}/${calls} (lost ${lost}, dup ${dup}, wrong agent ${wrongAgent}); latency after the warm-up p50 ${l.p50} p99 ${l.p99} max ${l.max} ms (warm-up p99 ${(out.latencyMsWarmup as Stats).p99} ms)\n`);
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    if (sse) {
      await sse.ask({ type: 'closing' }, 10_000, 'closing').catch(() => undefined);
      await sse.close();
    }
    const stopped = await stopDaemons(daemons, problems);
    out.daemonExits = stopped.exits;
    out.daemonWarnings = stopped.warnings;
    if (nats) await stopDaemon(nats, problems);
    await ami?.close();
    removeDir(dir);
  }
  out.problems = problems;
  out.ok = problems.length === 0;
  return out;
}

// ------------------------------------------------------------------------------------------------
// (c) HA pair: both publish, one killed with SIGKILL

interface Stored {
  seq: number;
  msgId: string;
  storedAt: number;
  receivedAt: number;
  time: number;
}

/** Longest gap between consecutive entries of ascending `ts` whose later entry lies in (from, to]; with the pair's indexes. */
function longestGap(ts: number[], from: number, to: number): { gapMs: number; i: number } {
  let best = { gapMs: 0, i: -1 };
  for (let i = 1; i < ts.length; i++) {
    const t = ts[i] as number;
    if (t <= from || t > to) continue;
    const g = t - (ts[i - 1] as number);
    if (g > best.gapMs) best = { gapMs: round(g, 3), i };
  }
  return best;
}

async function runFailover(ten: TenCalls, opts: Options): Promise<Record<string, unknown>> {
  const dir = tempDir('crm-bridge-bench-bus-c-');
  const problems: string[] = [];
  const procs: Proc[] = [];
  const daemons: Proc[] = [];
  let nats: NatsProc | null = null;
  let ami: Awaited<ReturnType<typeof startAmiServer>> | null = null;
  let sub: { nc: Awaited<ReturnType<typeof connect>>; stop(): void } | null = null;
  const out: Record<string, unknown> = {};
  const stamper = new Stamper();
  try {
    nats = await startNatsServer(dir);
    procs.push(nats);
    await createStream(nats.url);
    const stored: Stored[] = [];
    {
      // A subscriber from the stream's start: what the stream holds, in order, as it is stored.
      const nc = await connect({ servers: [nats.url] });
      const consumer = await jetstream(nc).consumers.get(STREAM);
      const iter = await consumer.consume();
      void (async () => {
        for await (const m of iter as AsyncIterable<JsMsg>) {
          const receivedAt = performance.timeOrigin + performance.now();
          const ev = m.json<{ time?: string }>();
          stored.push({ seq: m.seq, msgId: m.headers?.get('Nats-Msg-Id') ?? '', storedAt: Number(m.timestampNanos / BigInt(1000)) / 1000, receivedAt, time: Date.parse(ev.time ?? '') });
        }
      })().catch(() => undefined);
      sub = { nc, stop: () => iter.stop() };
    }
    const sockets: net.Socket[] = [];
    ami = await startAmiServer(ten.set, stamper, { onLogin: (s) => sockets.push(s) });
    const a = startDaemon('bridge-a', dir, pbxConfig(ami.port, nats.url, dir, 'bridge-a'));
    daemons.push(a);
    procs.push(a);
    await waitLog(a, (l) => l.msg === 'NATS connected', 'bridge A to reach NATS');
    const b = startDaemon('bridge-b', dir, pbxConfig(ami.port, nats.url, dir, 'bridge-b'));
    daemons.push(b);
    procs.push(b);
    await waitLog(b, (l) => l.msg === 'NATS connected', 'bridge B to reach NATS');
    for (let i = 0; sockets.length < 2 && i < 300; i++) await sleep(100);
    if (sockets.length < 2) throw new Error(`${sockets.length} of 2 bridges logged in to AMI`);
    await sleep(500); // both have read their login's frames
    const [sockA] = sockets as [net.Socket, net.Socket];

    const clones = Math.max(1, Math.round((opts.haRate * opts.haSeconds) / ten.eventsPerClone));
    const fps = opts.haRate / ten.eventsPerFrame;
    const written: string[] = [];
    const feed = new CloneFeed(ten.render, stamper);
    let killedAt = Number.NaN;
    let cKill: CpuSnap | null = null;
    process.stderr.write(`   ${clones} clones (${clones * ten.eventsPerClone} events) at ${opts.haRate} events/s to both bridges; bridge A killed (SIGKILL) at ${opts.killAt} s\n`);
    const c0 = cpuSnap(procs);
    const fed = await feedPaced(
      (chunk) => {
        written.push(chunk);
        let live = 0;
        for (const s of sockets) {
          if (s.destroyed) continue;
          s.write(chunk, 'latin1');
          live++;
        }
        if (live === 0) throw new Error('no bridge is connected to AMI any more');
      },
      () => feed.next(),
      clones * ten.framesPerClone,
      fps,
      (elapsed) => {
        if (Number.isNaN(killedAt) && elapsed >= opts.killAt * 1000) {
          cKill = cpuSnap(procs);
          killedAt = performance.timeOrigin + performance.now();
          a.child.kill('SIGKILL');
        }
      },
    );
    const c1 = cpuSnap(procs);
    const aExit = await within(a.exit, 10_000, 'bridge A to die');
    children.delete(a.child);
    // What the stream must hold: the ids `crm-bridge replay` makes of the very bytes written.
    const expected = replayEvents(dir, 'ha-written', ten.set.greeting, written.join(''));
    written.length = 0;
    const want = new Set(expected.map((e) => String(e.id)));
    const tw = Date.now();
    while (Date.now() - tw < 60_000) {
      const have = new Set(stored.map((s) => s.msgId));
      if ([...want].every((id) => have.has(id))) break;
      await sleep(200);
    }
    await sleep(1000); // anything that would come after
    const jsm = await jetstreamManager(sub.nc);
    const info = await jsm.streams.info(STREAM);
    const copies = new Map<string, number>();
    for (const s of stored) copies.set(s.msgId, (copies.get(s.msgId) ?? 0) + 1);
    const missing = [...want].filter((id) => !copies.has(id));
    const extra = [...copies.keys()].filter((id) => !want.has(id));
    const twice = [...copies.entries()].filter(([, n]) => n > 1);
    const storeTs = stored.map((s) => s.storedAt);
    const recvTs = stored.map((s) => s.receivedAt);
    const timeTs = stored.map((s) => s.time);
    const first = storeTs[0] ?? Number.NaN;
    const last = storeTs[storeTs.length - 1] ?? Number.NaN;
    // The longest gap in a span, with how far apart the same two events' AMI frames were written
    // (the traffic's own gap) and the excess: what the bus added.
    const gapIn = (ts: number[], from: number, to: number) => {
      const g = longestGap(ts, from, to);
      const amiGap = g.i > 0 ? (timeTs[g.i] as number) - (timeTs[g.i - 1] as number) : null;
      let excess = 0;
      for (let i = 1; i < ts.length; i++) {
        const t = ts[i] as number;
        if (t > from && t <= to) excess = Math.max(excess, t - (ts[i - 1] as number) - ((timeTs[i] as number) - (timeTs[i - 1] as number)));
      }
      return { longestGapMs: round(g.gapMs, 1), atMsAfterKill: g.i > 0 ? round((ts[g.i - 1] as number) - killedAt, 0) : null, sameEventsAmiGapMs: amiGap, longestExcessOverAmiGapMs: round(excess, 1) };
    };
    const spans = (ts: number[]) => ({
      aroundKill: gapIn(ts, killedAt - 1000, killedAt + 3000),
      beforeKill: gapIn(ts, first + 1000, killedAt - 1000),
      afterKill: gapIn(ts, killedAt + 3000, last),
    });
    const storeLat = (from: number, to: number) => latencyStats(stored.filter((s) => s.time >= from && s.time < to).map((s) => round(s.storedAt - s.time, 1)));
    out.feed = { clones, events: expected.length, eventsPerSec: opts.haRate, amiFramesPerSec: round(fps, 0), ...fed, killAfterS: opts.killAt };
    out.killedA = { atMsAfterFeedStart: round(killedAt - fed.startedAt, 0), exit: aExit };
    out.stream = {
      messages: info.state.messages,
      subscriberSaw: stored.length,
      expectedIds: want.size,
      missing: missing.length,
      extra: extra.length,
      idsMoreThanOnce: twice.length,
      exactlyOnce: missing.length === 0 && extra.length === 0 && twice.length === 0 && info.state.messages === want.size,
      firstMissing: missing.slice(0, 5),
      firstExtra: extra.slice(0, 5),
    };
    out.gaps = {
      spans: 'consecutive stream messages (stream order) whose later one lies in: around the kill (kill − 1 s, kill + 3 s]; before (first + 1 s, kill − 1 s]; after (kill + 3 s, last]',
      byStreamTimestamp: spans(storeTs),
      bySubscriberReceipt: spans(recvTs),
    };
    out.storeLatencyMs = {
      what: 'JetStream timestamp − AMI frame written, by when the frame was written',
      beforeKill: storeLat(fed.startedAt + 1000, killedAt - 500),
      aroundKill: storeLat(killedAt - 500, killedAt + 1000),
      afterKill: storeLat(killedAt + 1000, Infinity),
    };
    out.cpuPct = cKill ? { beforeKill: cpuPct(c0, cKill), afterKill: cpuPct(cKill, c1) } : null;
    // Both bridges published (the stream kept one copy): what each one's connection sent.
    out.publishersPerNatsServer = (await connections(nats.monitorPort))
      .filter((c) => c.name === `crm-bridge nats:${STREAM}`)
      .map((c) => ({ cid: c.cid, messagesIn: c.in_msgs, closed: c.reason ?? null }));
    if (!(out.stream as { exactlyOnce: boolean }).exactlyOnce) problems.push(`stream: ${missing.length} ids missing, ${extra.length} unexpected, ${twice.length} more than once, ${info.state.messages} messages for ${want.size} ids`);
    if (aExit.signal !== 'SIGKILL') problems.push(`bridge A did not die of SIGKILL (${JSON.stringify(aExit)})`);
    const g = (out.gaps as { byStreamTimestamp: Record<string, { longestGapMs: number }> }).byStreamTimestamp;
    process.stderr.write(`   stream: ${info.state.messages} messages for ${want.size} expected ids (missing ${missing.length}, extra ${extra.length}, twice ${twice.length}); longest gap around the kill ${g.aroundKill?.longestGapMs} ms (before ${g.beforeKill?.longestGapMs}, after ${g.afterKill?.longestGapMs} ms)\n`);
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    sub?.stop();
    await sub?.nc.close().catch(() => undefined);
    const stopped = await stopDaemons(daemons, problems);
    out.daemonExits = stopped.exits;
    out.daemonWarnings = stopped.warnings;
    if (nats) await stopDaemon(nats, problems);
    await ami?.close();
    removeDir(dir);
  }
  out.problems = problems;
  out.ok = problems.length === 0;
  return out;
}

// ------------------------------------------------------------------------------------------------

function summary(meta: Record<string, unknown>, res: Record<string, unknown>): string {
  const m = meta.machine as Record<string, unknown>;
  const rows: string[] = [];
  rows.push(`Machine: ${String(m.nproc)} CPUs (${String(m.cpuModel)}), Node ${String(m.node)}, nats-server ${String(meta.natsServer)}; load average ${(m.loadavgAtStart as number[]).join(' ')} at start.`);
  const a = res.webhook as Array<Record<string, unknown>> | undefined;
  if (a) {
    rows.push('', '(a) AMI → bridge → JetStream → webhook node(s) → receiver', '');
    rows.push('| nodes | paced ev/s offered | delivered (lost/dup) | ev/s at receiver while sending | p50 ms | p99 ms | max ms | AMI→stream p50/p99 | stream→receiver p50/p99 | unpaced: ev/s at receiver, whole (steady middle) | CPU % paced: bridge / node(s) / nats / receiver / bench / others\' |');
    rows.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of a) {
      const p = r.paced as Record<string, unknown> | undefined;
      const u = r.unpaced as Record<string, unknown> | undefined;
      if (!p || !u) {
        rows.push(`| ${String(r.nodes)} | failed: ${(r.problems as string[]).join('; ')} |`);
        continue;
      }
      const l = p.latencyMs as Stats;
      const h = p.latencyMsByHop as Record<string, Stats>;
      const c = p.cpuPctWhileSending as Record<string, number>;
      const nodesCpu = Object.keys(c).filter((k) => k.startsWith('webhooks-')).map((k) => c[k]).join('+');
      const rc = r.receiver as { duplicates: number };
      const tag = String(r.agents).includes('as recorded') ? ' (recorded agents)' : '';
      rows.push(
        `| ${String(r.nodes)}${tag} | ${String(p.offeredEventsPerSec)} | ${String(p.delivered)}/${String(p.expected)} (${String(p.lost)}/${rc.duplicates}) | ${String(p.receivedPerSecWhileSending)} | ${l.p50} | ${l.p99} | ${l.max} | ${h.amiToStream?.p50}/${h.amiToStream?.p99} | ${h.streamToReceiver?.p50}/${h.streamToReceiver?.p99} | ${String(u.receivedPerSec)} (${String(u.receivedPerSecSteady)}) | ${String(c.bridge)} / ${nodesCpu} / ${String(c['nats-server'])} / ${String(c.receiver)} / ${String(c.bench)} / ${String(c.other)} |`,
      );
    }
    for (const r of a) {
      const w = r.warmup as { latencyMs: Stats; expected: number } | null | undefined;
      if (w) rows.push(`Warm-up (${r.nodes} node(s)): ${w.expected} events, latency p50 ${w.latencyMs.p50} ms, p99 ${w.latencyMs.p99}, max ${w.latencyMs.max} (not in the table).`);
    }
  }
  const b = res.pop as Record<string, unknown> | undefined;
  if (b?.latencyMs) {
    const l = b.latencyMs as Stats;
    const r = b.rings as Record<string, number>;
    const f = b.feed as Record<string, number>;
    const h = b.latencyMsByHop as Record<string, Stats>;
    const lw = b.latencyMsWarmup as Stats;
    rows.push('', `(b) ring → pop through the bus, ${String((b.streams as { ok: number }).ok)} SSE streams, ${f.calls} calls at ${f.callsPerSec}/s: rings ${r.received}/${r.expected} (lost ${r.lost}, dup ${r.duplicates}, wrong agent ${r.wrongAgent}); after the ${f.warmupCalls}-call warm-up: p50 ${l.p50} ms, p95 ${l.p95}, p99 ${l.p99}, max ${l.max} (n ${l.n}); AMI → stream p50/p99 ${h.amiToStream?.p50}/${h.amiToStream?.p99}, stream → SSE ${h.streamToSse?.p50}/${h.streamToSse?.p99}; warm-up p50/p99/max ${lw.p50}/${lw.p99}/${lw.max}.`);
  } else if (b) rows.push('', `(b) failed: ${(b.problems as string[]).join('; ')}`);
  const c = res.failover as Record<string, unknown> | undefined;
  if (c?.stream) {
    const s = c.stream as Record<string, unknown>;
    type Gap = { longestGapMs: number; sameEventsAmiGapMs: number | null; longestExcessOverAmiGapMs: number };
    const g = c.gaps as Record<string, Record<string, Gap>>;
    const sl = c.storeLatencyMs as Record<string, Stats>;
    const gs = (x: Record<string, Gap> | undefined, k: string) => `${x?.[k]?.longestGapMs} ms (AMI frames ${String(x?.[k]?.sameEventsAmiGapMs)} ms apart; excess ${x?.[k]?.longestExcessOverAmiGapMs})`;
    rows.push(
      '',
      `(c) HA pair, ${String((c.feed as Record<string, unknown>).eventsPerSec)} events/s, bridge A SIGKILLed: stream ${String(s.messages)} messages for ${String(s.expectedIds)} ids — ${s.exactlyOnce ? 'every id exactly once' : `NOT exactly once (missing ${String(s.missing)}, extra ${String(s.extra)}, twice ${String(s.idsMoreThanOnce)})`}.`,
      `    longest gap by stream timestamp: around the kill ${gs(g.byStreamTimestamp, 'aroundKill')}; before ${gs(g.byStreamTimestamp, 'beforeKill')}; after ${gs(g.byStreamTimestamp, 'afterKill')}. By subscriber receipt, around the kill: ${gs(g.bySubscriberReceipt, 'aroundKill')}.`,
      `    messages each bridge's NATS connection sent (nats-server /connz: publishes + a few API requests): ${(c.publishersPerNatsServer as Array<{ messagesIn: number; closed: string | null }> | undefined)?.map((x) => `${x.messagesIn}${x.closed ? ` (closed: ${x.closed})` : ''}`).join(', ')}.`,
      `    store latency p50/p99/max: before ${sl.beforeKill?.p50}/${sl.beforeKill?.p99}/${sl.beforeKill?.max} ms, around the kill ${sl.aroundKill?.p50}/${sl.aroundKill?.p99}/${sl.aroundKill?.max} ms, after ${sl.afterKill?.p50}/${sl.afterKill?.p99}/${sl.afterKill?.max} ms.`,
    );
  } else if (c) rows.push('', `(c) failed: ${(c.problems as string[]).join('; ')}`);
  const problems = Object.entries(res).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).flatMap((r) => ((r as { problems?: string[] }).problems ?? []).map((p) => `${k}: ${p}`)));
  if (problems.length) rows.push('', `PROBLEMS: ${problems.join('; ')}`);
  return rows.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string', default: 'a,b,c' },
      'webhook-runs': { type: 'string', default: '1,2' },
      'warmup-seconds': { type: 'string', default: '3' },
      rate: { type: 'string', default: '500' },
      'paced-seconds': { type: 'string', default: '15' },
      'max-events': { type: 'string', default: '8000' },
      agents: { type: 'string', default: '1000' },
      'pop-rate': { type: 'string', default: '50' },
      'pop-seconds': { type: 'string', default: '20' },
      'ha-rate': { type: 'string', default: '300' },
      'ha-seconds': { type: 'string', default: '12' },
      'kill-at': { type: 'string', default: '6' },
      'quiet-wait': { type: 'string', default: '20' },
      out: { type: 'string', default: path.join(ROOT, 'bench/results/bus.json') },
      note: { type: 'string' },
    },
    strict: true,
  });
  const num = (name: string, min: number, max: number): number => {
    const v = values[name as keyof typeof values];
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}] (is '${String(v)}')`);
    return n;
  };
  const webhookRuns = (values['webhook-runs'] ?? '').split(',').map((r) => {
    const m = /^([1-4])(:recorded-agents)?$/.exec(r.trim());
    if (!m) throw new Error(`--webhook-runs: '${r}' is not N or N:recorded-agents (N = 1…4 webhook nodes)`);
    return { nodes: Number(m[1]), freshAgents: !m[2] };
  });
  const opts: Options = {
    webhookRuns,
    warmupSeconds: num('warmup-seconds', 0, 60),
    rate: num('rate', 1, 100_000),
    pacedSeconds: num('paced-seconds', 1, 600),
    maxEvents: num('max-events', 1, 1_000_000),
    agents: num('agents', 1, 10_000),
    popRate: num('pop-rate', 0.1, 10_000),
    popSeconds: num('pop-seconds', 1, 600),
    haRate: num('ha-rate', 1, 100_000),
    haSeconds: num('ha-seconds', 2, 600),
    killAt: num('kill-at', 1, 600),
    quietWait: num('quiet-wait', 0, 3600),
  };
  if (opts.killAt >= opts.haSeconds - 1) throw new Error('--kill-at must be at least 1 s before the end of --ha-seconds');
  const scenarios = new Set((values.scenarios ?? '').split(',').map((s) => s.trim()));
  for (const s of scenarios) if (!['a', 'b', 'c'].includes(s)) throw new Error(`--scenarios: '${s}' is not a, b or c`);
  if (!fs.existsSync(path.join(ROOT, 'dist/cli.js'))) throw new Error('dist/ is missing: run `npm run build` first (or `npm run bench:bus`)');
  const natsVersion = spawnSync(NATS_SERVER, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^nats-server: /, '');
  const meta: Record<string, unknown> = {
    benchmark: 'NATS bus: AMI -> PBX-side bridge (nats sink) -> JetStream -> delivery nodes (webhook, screen pop); HA pair failover',
    date: new Date().toISOString(),
    machine: machine({ nproc: NPROC, tmpdirFilesystem: true }),
    natsServer: natsVersion,
    note: values.note ?? null,
    command: `node ${[...process.execArgv, path.relative(ROOT, SELF), ...process.argv.slice(2)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ')}`,
    gitHead: gitHead(ROOT),
    parameters: {
      ...opts,
      stream: `${STREAM}: subjects crm.>, file storage, duplicate window 120 s (made by the bench as the nats sink makes it), ${PARTITIONS} partitions`,
      bridges: 'nats sink defaults (concurrency 64, publishTimeoutMs 5000); outbox synchronous normal; log level info to a file',
      webhookNodes: `source consumer ${CONSUMER}, leaseSeconds 2; webhook sink json, concurrency 8`,
      popNode: 'source without consumer; http with tokenSecret; one screen-pop rule (call.ringing, new-tab); sinks: []',
      latency: "arrival (Date.now() in the receiving process) − Date.parse(event.time), where event.time is the AMI frame's Timestamp, stamped when this process wrote it; ms resolution",
      cpu: 'no pinning; % of one core per process over the phase (bench = this process: AMI load generator, and in (c) the stream subscriber)',
    },
  };
  const calDir = tempDir('crm-bridge-bench-bus-cal-');
  const results: Record<string, unknown> = {};
  try {
    const tens = new Map<boolean, TenCalls>();
    const tenCalls = (fresh: boolean): TenCalls => {
      let t = tens.get(fresh);
      if (!t) {
        t = calibrateTenCalls(calDir, fresh);
        tens.set(fresh, t);
        ((meta.tenCalls ??= {}) as Record<string, unknown>)[fresh ? 'freshAgents' : 'recordedAgents'] = { agents: t.agents, framesPerClone: t.framesPerClone, eventsPerClone: t.eventsPerClone, eventsOnce: t.eventsOnce, eventsFor1_2_3Clones: t.eventsFor123, distinctAgentsIn3Clones: t.distinctAgentsIn3Clones, eventsPerFrame: round(t.eventsPerFrame, 4), rewriting: t.set.rewriting };
        process.stderr.write(`ten-calls clones (agents ${t.agents}): ${t.framesPerClone} AMI frames and ${t.eventsPerClone} events each (replay of 1/2/3 clones: ${t.eventsFor123.join('/')})\n`);
      }
      return t;
    };
    const quiet = async (label: string) => {
      if (opts.quietWait <= 0) return null;
      const q = await waitForQuiet(25, opts.quietWait, NPROC);
      process.stderr.write(`\n== ${label} (machine ${q.busyPctAtStart}% of a core busy before it, after waiting ${q.waitedS} s)\n`);
      return q;
    };
    if (scenarios.has('a')) {
      results.webhook = [];
      for (const run of opts.webhookRuns) {
        const ten = tenCalls(run.freshAgents);
        const q = await quiet(`(a) ${run.nodes} webhook node(s), agents ${ten.agents}`);
        (results.webhook as unknown[]).push({ ...(await runWebhook(run.nodes, ten, opts)), agents: ten.agents, machineBefore: q });
      }
    }
    if (scenarios.has('b')) {
      const direct = calibrateDirectCalls(calDir, 1000, opts.agents);
      meta.directCalls = { framesPerCall: direct.offsetsMs.length, eventsPerCall: direct.eventsPerCall, recordedAgent: direct.recordedAgent, did: direct.did, agents: `${direct.recordedAgent} -> 1000 + (call mod ${opts.agents})` };
      const q = await quiet('(b) ring → pop');
      results.pop = { ...(await runPop(direct, opts)), machineBefore: q };
    }
    if (scenarios.has('c')) {
      const ten = tenCalls(true);
      const q = await quiet('(c) HA pair failover');
      results.failover = { ...(await runFailover(ten, opts)), agents: ten.agents, machineBefore: q };
    }
  } finally {
    removeDir(calDir);
  }
  (meta.machine as Record<string, unknown>).loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  const text = summary(meta, results);
  process.stdout.write(`\n${text}\n`);
  fs.mkdirSync(path.dirname(values.out as string), { recursive: true });
  fs.writeFileSync(values.out as string, `${JSON.stringify({ ...meta, results, summary: text }, null, 2)}\n`);
  process.stderr.write(`\nwrote ${path.relative(process.cwd(), values.out as string)}\n`);
  const all = Object.values(results).flatMap((v) => (Array.isArray(v) ? v : [v])) as Array<{ ok: boolean }>;
  return all.every((r) => r.ok) ? 0 : 1;
}

await runBench('bus.ts', main);
