// The measured process of bench/memory.ts (run by it as plain JavaScript under --expose-gc; not
// by hand): the real Bridge on the bench's AMI server; at each `UserEvent: BenchPhase` marker
// (--part open) or every --sample-every calls (--part completed) it reads memory, then tells the
// parent over IPC. Method: BENCHMARKS.md#method-memory
import v8 from 'node:v8';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Bridge } from '../dist/bridge.js';
import { defaultConfig } from '../dist/config/load.js';
import type { BridgeEvent } from '../dist/events/types.js';
import type { Sink } from '../dist/sinks/sink.js';

export interface MemoryReading {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

export type ToParent =
  | { type: 'phase'; phase: string; events: number; completedCalls: number; activeCalls: number; trackedChannels: number; beforeGc: MemoryReading; afterGc: MemoryReading; heapSpacesAfterGc: Record<string, number> }
  | { type: 'sample'; completedCalls: number; events: number; atMs: number; beforeGc: MemoryReading; afterGc: MemoryReading };

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

function reading(): MemoryReading {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

function fullGc(): void {
  // Two rounds: the first may only queue finalizers (weak refs, FinalizationRegistry) for the second.
  gc?.();
  gc?.();
}

const { values } = parseArgs({ options: { port: { type: 'string' }, part: { type: 'string' }, 'sample-every': { type: 'string', default: '10000' }, calls: { type: 'string' } }, strict: true });
const port = Number(values.port);
const sampleEvery = Number(values['sample-every']);
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');
if (values.part !== 'open' && values.part !== 'completed') throw new Error("--part must be 'open' or 'completed'");
const send = (m: ToParent) => process.send?.(m);

let events = 0;
let completedCalls = 0;
const t0 = Date.now();
const sink: Sink = {
  name: 'noop',
  start: async () => undefined,
  deliver: (e: BridgeEvent) => {
    events++;
    if (e.type !== 'call.hangup') return;
    completedCalls++;
    if (values.part === 'completed' && completedCalls % sampleEvery === 0) {
      const beforeGc = reading();
      fullGc();
      send({ type: 'sample', completedCalls, events, atMs: Date.now() - t0, beforeGc, afterGc: reading() });
    }
  },
  stop: async () => undefined,
};
const log = pino({ level: 'warn' }, pino.destination(2));
// --calls: the `calls` settings as JSON (harness/env.ts TRACE_CALLS; this file imports nothing of bench/).
const config = defaultConfig({ pbx: { ami: { username: 'memory', secret: 'bench' } }, calls: JSON.parse(values.calls ?? '{}') as Record<string, unknown> });
const bridge = new Bridge({ config, log, replay: { host: '127.0.0.1', port }, sinks: [sink] });
await bridge.start();
const source = bridge.ami;
if (!source) throw new Error('the bridge has no AMI source');
source.input$.subscribe((input) => {
  if (input.kind !== 'event' || input.event.event !== 'UserEvent' || input.event.userevent !== 'BenchPhase') return;
  const phase = input.event.phase ?? '?';
  // After this frame has gone through the whole pipeline (this subscriber is the last of input$).
  setImmediate(() => {
    const beforeGc = reading();
    fullGc();
    const afterGc = reading();
    const heapSpacesAfterGc = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    const tracker = bridge.tracker;
    send({ type: 'phase', phase, events, completedCalls, activeCalls: tracker?.activeCalls ?? -1, trackedChannels: tracker?.trackedChannels ?? -1, beforeGc, afterGc, heapSpacesAfterGc });
  });
});
await bridge.done;
await bridge.stop();
process.disconnect?.();
