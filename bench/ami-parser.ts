// Micro-benchmark: AMI bytes -> flat events, our parser against asterisk-manager's reader and
// flattenFrame, on the same 64 KB reads. Method: BENCHMARKS.md#method-micro-benchmarks
//   npm run build && node --import @tapjs/typescript/import bench/ami-parser.ts [MB]
import { readFileSync } from 'node:fs';
import { AmiParser, flattenFrame, type ManagerFrame } from './harness/dist.js';
// parserLean reads as the source does: of the busiest events, only the headers the normalizer reads.
import { HEADERS_READ } from '../dist/normalizer/ami-events.js';
import { recordings } from './harness/env.js';
import { packageReader } from './harness/package-reader.js';

const one = Buffer.concat(
  recordings().map((f) => {
    const b = readFileSync(f);
    return b.subarray(b.indexOf('\n') + 1); // without the greeting
  }),
);
const targetMb = Number(process.argv[2] ?? 40);
const stream = Buffer.concat(Array.from({ length: Math.ceil((targetMb * 1024 * 1024) / one.length) }, () => one));
const CHUNK = 64 * 1024;
const chunks: Buffer[] = [];
for (let off = 0; off < stream.length; off += CHUNK) chunks.push(stream.subarray(off, off + CHUNK));

async function packageRun(): Promise<number> {
  const { manager: m, socket } = packageReader();
  let n = 0;
  m.on('managerevent', (frame: ManagerFrame) => {
    if (flattenFrame(frame).event.event) n++;
  });
  // As a socket with setEncoding('utf-8') would hand them over: one string per read.
  for (const c of chunks) {
    socket.emit('data', c.toString('utf8'));
    await new Promise<void>((r) => setImmediate(r));
  }
  return n;
}

async function ourRun(lean = false): Promise<number> {
  const p = lean ? new AmiParser({}, HEADERS_READ) : new AmiParser();
  let n = 0;
  for (const c of chunks) {
    for (const item of p.feed(c)) if (item.kind === 'frame' && item.event.event) n++;
    await new Promise<void>((r) => setImmediate(r));
  }
  return n;
}

async function time(run: () => Promise<number>): Promise<{ frames: number; ms: number }> {
  const t0 = process.hrtime.bigint();
  const frames = await run();
  return { frames, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

const results: Record<string, number[]> = { package: [], parser: [], parserLean: [] };
let frames = 0;
for (let round = 0; round < 5; round++) {
  for (const [name, run] of [['package', packageRun], ['parser', () => ourRun()], ['parserLean', () => ourRun(true)]] as const) {
    const r = await time(run);
    frames = r.frames;
    results[name]!.push(r.frames / (r.ms / 1000));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pkg = median(results.package!);
const ours = median(results.parser!);
const lean = median(results.parserLean!);
console.log(
  JSON.stringify(
    {
      bytes: stream.length,
      frames,
      framesPerSec: { asteriskManagerPlusFlatten: Math.round(pkg), parser: Math.round(ours), parserLean: Math.round(lean) },
      ratio: Math.round((ours / pkg) * 100) / 100,
      ratioLean: Math.round((lean / pkg) * 100) / 100,
      rounds: results,
    },
    null,
    2,
  ),
);
