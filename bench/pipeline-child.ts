// One measured consumer of bench/pipeline.ts (--mode manager | bridge), in a process of its own;
// not run by hand. Logs in as 'warmup', then 'measure'; the window is from that Login accepted to
// the server's close seen. Prints one JSON line. Method: BENCHMARKS.md#method-pipeline
/// <reference path="../src/sources/ami/asterisk-manager.d.ts" />
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import AsteriskManager from 'asterisk-manager';
import pino from 'pino';
// The measured process loads only what it measures: the built modules themselves (not harness/dist.ts).
import { Bridge } from '../dist/bridge.js';
import { defaultConfig } from '../dist/config/load.js';
import type { BridgeEvent } from '../dist/events/types.js';
import type { Sink } from '../dist/sinks/sink.js';
import { TRACE_CALLS } from './harness/env.js';

export interface RunResult {
  mode: 'manager' | 'bridge';
  /** AMI event frames handed out by asterisk-manager ('managerevent'); manager mode only. */
  frames: number | null;
  /** Normalized events the sink received; bridge mode only. */
  events: number | null;
  /** Calls still tracked at the end (bridge mode): 0 when every call of the stream ended. */
  activeCallsAtEnd: number | null;
  seconds: number;
  cpuSeconds: number;
  maxRssMB: number;
  logLines: number;
}

interface Manager {
  on(event: string, fn: (...args: any[]) => void): void; // the package's untyped EventEmitter
  connect(port: number, host: string, cb: () => void): void;
  login(cb: (err?: unknown) => void): void;
  disconnect(): void;
}
type ManagerCtor = new (port?: number, host?: string, username?: string, password?: string, events?: boolean) => Manager;

async function runManager(port: number, username: string): Promise<Omit<RunResult, 'maxRssMB' | 'logLines'>> {
  const m = new (AsteriskManager as unknown as ManagerCtor)(undefined, '127.0.0.1', username, 'bench', true);
  let frames = 0;
  m.on('managerevent', () => frames++);
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  const closed = new Promise<void>((resolve, reject) => {
    m.on('close', () => resolve());
    m.on('error', (err: Error) => reject(err));
  });
  await new Promise<void>((resolve, reject) => {
    m.connect(port, '127.0.0.1', () =>
      m.login((err) => {
        if (err) return reject(new Error(`login failed: ${JSON.stringify(err)}`));
        t0 = performance.now();
        cpu0 = process.cpuUsage();
        resolve();
      }),
    );
  });
  await closed;
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  m.disconnect();
  return { mode: 'manager', frames, events: null, activeCallsAtEnd: null, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function runBridge(port: number, username: string, log: pino.Logger): Promise<Omit<RunResult, 'maxRssMB' | 'logLines'>> {
  let events = 0;
  const sink: Sink = {
    name: 'noop',
    start: async () => undefined,
    deliver: (_e: BridgeEvent) => void events++,
    stop: async () => undefined,
  };
  const config = defaultConfig({ pbx: { ami: { username, secret: 'bench' } }, calls: TRACE_CALLS });
  const bridge = new Bridge({ config, log, replay: { host: '127.0.0.1', port }, sinks: [sink] });
  await bridge.start();
  const source = bridge.source;
  if (!source) throw new Error('the bridge has no AMI source');
  await source.loggedIn;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await bridge.done;
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const activeCallsAtEnd = bridge.tracker?.activeCalls ?? null;
  await bridge.stop();
  return { mode: 'bridge', frames: null, events, activeCallsAtEnd, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const { values } = parseArgs({ options: { mode: { type: 'string' }, port: { type: 'string' } }, strict: true });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');
if (values.mode !== 'manager' && values.mode !== 'bridge') throw new Error("--mode must be 'manager' or 'bridge'");
let logLines = 0;
// Warnings and errors only, counted and passed on to stderr: a clean run logs nothing.
const log = pino({ level: 'warn' }, { write: (line: string) => void (logLines++, process.stderr.write(line)) });
const run = values.mode === 'manager' ? (u: string) => runManager(port, u) : (u: string) => runBridge(port, u, log);
await run('warmup');
const r = await run('measure');
const result: RunResult = { ...r, maxRssMB: Math.round(process.resourceUsage().maxRSS / 102.4) / 10, logLines };
process.stdout.write(`${JSON.stringify(result)}\n`);
