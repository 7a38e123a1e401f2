// What the contract gate costs (issue 15): validateEvent per normalized event, next to the
// normalizer per AMI frame and per event, over every recording; the median of 5 rounds of each.
//   npm run build && node --import @tapjs/typescript/import bench/validate.ts [--seconds 3]
// Method: BENCHMARKS.md#method-micro-benchmarks
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTracker, validateEvent, type AmiEvent, type BridgeEvent } from './harness/dist.js';
import { recordings } from './harness/env.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const OPTS = { server: 'pbx1', inboundContexts: ['from-pstn', 'from-trunk'], agentContexts: ['agents', 'phones'], extensionPattern: '^[0-9]{2,6}$', agents: [] };

/** AMI text -> flat records the way src/normalizer/ami-event.ts shapes them (keys lower case, no spaces). */
function parse(text: string): AmiEvent[] {
  const out: AmiEvent[] = [];
  for (const block of text.split('\r\n\r\n')) {
    const ev: Record<string, string> = {};
    for (const line of block.split('\r\n')) {
      const i = line.indexOf(': ');
      if (i > 0) ev[line.slice(0, i).toLowerCase().replace(/ /g, '')] ??= line.slice(i + 2);
    }
    if (ev.event) out.push(ev);
  }
  return out;
}

const traces = recordings().map((f) => parse(readFileSync(f, 'latin1')));
const frames = traces.reduce((n, t) => n + t.length, 0);
const events: BridgeEvent[] = [];
for (const trace of traces) {
  const tracker = createTracker(OPTS);
  for (const ev of trace) events.push(...tracker.handle(ev, Date.now()));
}
const invalid = events.filter((e) => validateEvent(e).length > 0).length;
if (invalid > 0) throw new Error(`${invalid} fixture events are invalid`);

function timed(work: () => number): number {
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(Math.round((seconds / 5) * 1e9));
    let now = start;
    while (now < end) {
      n += work();
      now = process.hrtime.bigint();
    }
    rounds.push(Number(now - start) / n);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

// Warm both paths up (JIT) before measuring.
for (let i = 0; i < 50; i++) for (const e of events) validateEvent(e);
const validateNs = timed(() => {
  for (const e of events) validateEvent(e);
  return events.length;
});
const normalizeNsPerFrame = timed(() => {
  for (const trace of traces) {
    const tracker = createTracker(OPTS);
    for (const ev of trace) tracker.handle(ev, 0);
  }
  return frames;
});
const normalizeNsPerEvent = (normalizeNsPerFrame * frames) / events.length;
const fmt = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;
console.log(`fixtures: ${traces.length} traces, ${frames} AMI frames, ${events.length} events (${(events.length / frames).toFixed(3)} per frame)`);
console.log(`| what | cost |\n|---|---|`);
console.log(`| validateEvent, per event | ${fmt(validateNs)} |`);
console.log(`| normalizer (CallTracker.handle), per AMI frame | ${fmt(normalizeNsPerFrame)} |`);
console.log(`| normalizer, per event it emits | ${fmt(normalizeNsPerEvent)} |`);
console.log(`| validation added per AMI frame (per-event cost × events per frame) | ${fmt((validateNs * events.length) / frames)} (${(((validateNs * events.length) / frames / normalizeNsPerFrame) * 100).toFixed(1)} % of the normalizer) |`);
