// bench/bus.ts's lab: nats-server with JetStream, the stream and its lease bucket, the daemons
// (PBX-side bridges, webhook and pop nodes) with their configs and logs, CPU per process.
import fs from 'node:fs';
import path from 'node:path';
import { jetstream, jetstreamManager, StorageType, type JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { nanos } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { TRACE_CALLS } from '../harness/env.js';
import { readOptions } from '../harness/report.js';
import { startAmiServer, Stamper, type AmiServer, type Part } from '../harness/ami.js';
import { exited, freePort, pbxYaml, popYaml, removeDir, sleep, spawnTracked, startDaemon, stopChild, tempDir, within, type Daemon, type Exit } from '../harness/run.js';
import { cpuSnap as snap, type CpuSnap } from '../harness/sample.js';
import { latencyStats, round, type Stats } from '../harness/stats.js';


export const NATS_SERVER = '/usr/sbin/nats-server';
export const STREAM = 'CRM_EVENTS';
export const CONSUMER = 'crm-webhooks';
export const PARTITIONS = 16;

// ------------------------------------------------------------------------------------------------
// Processes: nats-server, daemons, the measuring child; CPU per phase.

/** A process whose CPU is reported: nats-server, a daemon, a measuring child. */
export type Proc = { name: string; pid: number };
export const cpuSnap = (procs: Proc[]): CpuSnap => snap(Object.fromEntries(procs.map((p) => [p.name, [p.pid]])));

export type NatsProc = Proc & { child: ReturnType<typeof spawnTracked>; exit: Promise<Exit>; url: string; monitorPort: number };

export async function startNatsServer(dir: string): Promise<NatsProc> {
  if (!fs.existsSync(NATS_SERVER)) throw new Error(`${NATS_SERVER} is missing: apt-get install nats-server`);
  const port = await freePort();
  const monitorPort = await freePort();
  const store = path.join(dir, 'nats');
  const child = spawnTracked(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-sd', store], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  return { name: 'nats-server', child, pid: child.pid ?? -1, exit: exited(child), url: `nats://127.0.0.1:${port}`, monitorPort };
}

/** nats-server's monitoring endpoint (-m): open and closed client connections with their message counts. */
export async function connections(monitorPort: number): Promise<Array<{ cid: number; name?: string; in_msgs: number; out_msgs: number; reason?: string }>> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/connz?state=all&limit=1000`);
  const body = (await res.json()) as { connections?: Array<{ cid: number; name?: string; in_msgs: number; out_msgs: number; reason?: string }> };
  return body.connections ?? [];
}

/** The stream as the nats sink creates it (src/sinks/nats.ts defaults), made first so that nodes can attach before the first publish. */
export async function createStream(url: string): Promise<void> {
  const nc = await connect({ servers: [url] });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['crm.>'], storage: StorageType.File, max_age: nanos(604_800_000), num_replicas: 1, duplicate_window: nanos(120_000) });
  await nc.close();
}

export function logLines(p: Daemon): Array<Record<string, unknown>> {
  return p
    .logLines()
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { msg: l, raw: true };
      }
    });
}

export async function waitLog(p: Daemon, pred: (l: Record<string, unknown>) => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (logLines(p).some(pred)) return;
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before ${what}: ${logLines(p).slice(-3).map((l) => JSON.stringify(l)).join(' ')}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Lines at warn or above (pino levels ≥ 40), for the results: problems a daemon reported. */
export function warnings(p: Daemon): { count: number; first: string[] } {
  const w = logLines(p).filter((l) => Number(l.level ?? 0) >= 40 || l.raw);
  return { count: w.length, first: w.slice(0, 4).map((l) => JSON.stringify(l).slice(0, 400)) };
}

/** SIGTERM to each daemon, in reverse start order (a killed one is left out); exits and logged warnings. */
export async function stopDaemons(daemons: Daemon[], problems: string[]): Promise<{ exits: Record<string, unknown>; warnings: Record<string, unknown> }> {
  const exits: Record<string, unknown> = {};
  const logged: Record<string, unknown> = {};
  for (const d of [...daemons].reverse()) {
    logged[d.name] = warnings(d);
    if (d.child.signalCode === 'SIGKILL') continue; // killed on purpose (the HA run)
    const e = await d.stop(problems);
    exits[d.name] = e;
    if (e.code !== 0) problems.push(`${d.name} exited with ${e.code ?? e.signal} after SIGTERM`);
  }
  return { exits, warnings: logged };
}

/** One scenario's lab: its temp dir, a fresh nats-server with the stream, what it started, what it found. */
export interface Lab {
  dir: string;
  nats: NatsProc;
  stamper: Stamper;
  /** The processes whose CPU is reported. */
  procs: Proc[];
  out: Record<string, unknown>;
  problems: string[];
  /** Starts a daemon: its CPU reported, stopped (SIGTERM) at the end. */
  daemon(name: string, yaml: string): Daemon;
  /** The PBX's AMI server, closed at the end. */
  amiServer(trace: { greeting: string; once: Part[][] }, opts?: Parameters<typeof startAmiServer>[2]): Promise<AmiServer>;
  /** `fn` at the end: before the daemons stop (`before`), or after them. */
  atEnd(fn: () => Promise<unknown>, before?: boolean): void;
}

/**
 * Runs `body` in a fresh lab (what it throws is a problem), then stops everything it started;
 * returns `out` with the daemons' exits and warnings, the problems and `ok`.
 */
export async function inLab(prefix: string, out: Record<string, unknown>, body: (lab: Lab) => Promise<void>): Promise<Record<string, unknown>> {
  const dir = tempDir(prefix);
  const problems: string[] = [];
  const daemons: Daemon[] = [];
  const before: Array<() => Promise<unknown>> = [];
  const after: Array<() => Promise<unknown>> = [];
  let nats: NatsProc | null = null;
  try {
    nats = await startNatsServer(dir);
    await createStream(nats.url);
    const stamper = new Stamper();
    const procs: Proc[] = [nats];
    const daemon = (name: string, yaml: string) => {
      const d = startDaemon(dir, name, `# written by bench/bus.ts\n${yaml}`);
      daemons.push(d);
      procs.push(d);
      return d;
    };
    const amiServer: Lab['amiServer'] = async (trace, opts) => {
      const ami = await startAmiServer(trace, stamper, opts);
      after.push(() => ami.close());
      return ami;
    };
    await body({ dir, nats, stamper, procs, out, problems, daemon, amiServer, atEnd: (fn, first = false) => (first ? before : after).unshift(fn) });
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    for (const fn of before) await fn();
    const stopped = await stopDaemons(daemons, problems);
    out.daemonExits = stopped.exits;
    out.daemonWarnings = stopped.warnings;
    for (const fn of after) await fn();
    if (nats) await stopChild(nats.child, nats.exit, 'nats-server', problems);
    removeDir(dir);
  }
  out.problems = problems;
  out.ok = problems.length === 0;
  return out;
}

// ------------------------------------------------------------------------------------------------
// Configs

export function pbxConfig(amiPort: number, natsUrl: string, dir: string, name: string): string {
  return `${pbxYaml(amiPort, name)}calls:
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

export function webhookNodeConfig(i: number, natsUrl: string, receiverPort: number, dir: string): string {
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

export function popNodeConfig(natsUrl: string, httpPort: number, secret: string, dir: string): string {
  return `source:
  type: nats
  name: pop-1
  servers: [${natsUrl}]
  stream: ${STREAM}
${popYaml(httpPort, secret)}outbox:
  path: ${path.join(dir, 'pop-1-outbox.db')}
log:
  level: info
`;
}

// ------------------------------------------------------------------------------------------------
// (a) AMI → bridge → JetStream → webhook node(s) → receiver

/** bench/bus.ts's options and their defaults (number: [default, min, max]). */
export const OPTIONS = {
  scenarios: 'a,b,c',
  'webhook-runs': '1,2',
  'warmup-seconds': [3, 0, 60],
  rate: [500, 1, 100_000],
  'paced-seconds': [15, 1, 600],
  'max-events': [8000, 1, 1_000_000],
  agents: [1000, 1, 10_000],
  'pop-rate': [50, 0.1, 10_000],
  'pop-seconds': [20, 1, 600],
  'ha-rate': [300, 1, 100_000],
  'ha-seconds': [12, 2, 600],
  'kill-at': [6, 1, 600],
  'quiet-wait': [20, 0, 3600],
} as const;

export type Options = Omit<ReturnType<typeof readOptions<typeof OPTIONS>>['opts'], 'scenarios' | 'webhookRuns'> & { webhookRuns: Array<{ nodes: number; freshAgents: boolean }> };

/** Event id (Nats-Msg-Id) -> when the stream stored it (its JetStream timestamp, ms), read from the start. */
export async function storedTimes(url: string): Promise<Map<string, number>> {
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

/**
 * Where the time went, for the events `idx` of a dump: AMI frame written -> stored in the stream
 * (the PBX-side bridge and JetStream), and stored -> arrival (the delivery node and HTTP or SSE).
 */
export function hops(stored: Map<string, number>, d: { id: string[]; time: number[]; at: number[] }, idx: Iterable<number>): [Stats, Stats] {
  const a: number[] = [];
  const b: number[] = [];
  for (const i of idx) {
    const st = stored.get(d.id[i] as string);
    if (st === undefined) continue;
    a.push(round(st - (d.time[i] as number), 1));
    b.push(round((d.at[i] as number) - st, 1));
  }
  return [latencyStats(a), latencyStats(b)];
}

/** Owner node id -> partitions it holds, from the lease bucket the webhook nodes share. */
export async function leases(url: string): Promise<Map<string, number>> {
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

