// What a Map under set/delete churn costs the young generation, against src/util/churn-map.ts.
//
//   npm run bench:map-churn [-- --pairs 3000000 --live 8]
//
// Each variant runs in a node of its own with --trace-gc-nvp: `pairs` set/delete pairs, 200 per
// turn of the event loop, `live` entries in the map at any time (a dispatcher's deliveries in
// flight), each value a small object with a string and an array. The figures are V8's own, per
// scavenge: bytes promoted to the old generation, the pause, and the mark-compacts of the run.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { requireBuild, ROOT } from './harness/env.js';

const { values } = parseArgs({ options: { pairs: { type: 'string', default: '3000000' }, live: { type: 'string', default: '8' } }, strict: true });
const pairs = Number(values.pairs);
const live = Number(values.live);
requireBuild('map-churn', 'dist/util/churn-map.js');

const churnMapUrl = pathToFileURL(path.join(ROOT, 'dist/util/churn-map.js')).href;
const script = (kind: 'Map' | 'ChurnMap') => `
const { ChurnMap } = await import(${JSON.stringify(churnMapUrl)});
const m = ${kind === 'Map' ? 'new Map()' : 'new ChurnMap()'};
const keys = [];
let n = 0;
function turn() {
  for (let i = 0; i < 200; i++) {
    const k = 'call.' + n++;
    m.set(k, { k, text: 'x'.repeat(50) + n, list: new Array(20).fill(n) });
    keys.push(k);
    if (keys.length > ${live}) m.delete(keys.shift());
  }
  if (n < ${pairs}) setImmediate(turn);
}
turn();
`;

interface Row { kind: string; scavenges: number; promotedKBPerScavenge: number; meanPauseMs: number; maxPauseMs: number; markCompacts: number; seconds: number }

function run(kind: 'Map' | 'ChurnMap'): Row {
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--trace-gc-nvp', '--input-type=module', '-e', script(kind)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${kind}: node exited ${r.status}: ${r.stderr}`);
  const scavenges: Array<{ pause: number; promoted: number }> = [];
  let markCompacts = 0;
  for (const line of r.stdout.split('\n')) {
    const f = Object.fromEntries([...line.matchAll(/(\w+)=([\d.]+|\w+)/g)].map((m) => [m[1], m[2]]));
    if (f.gc === 's') scavenges.push({ pause: Number(f.pause), promoted: Number(f.promoted) });
    else if (f.gc === 'mc') markCompacts += 1;
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    kind,
    scavenges: scavenges.length,
    promotedKBPerScavenge: Math.round(sum(scavenges.map((s) => s.promoted)) / Math.max(1, scavenges.length) / 1024),
    meanPauseMs: Math.round((sum(scavenges.map((s) => s.pause)) / Math.max(1, scavenges.length)) * 100) / 100,
    maxPauseMs: Math.max(0, ...scavenges.map((s) => s.pause)),
    markCompacts,
    seconds: (Date.now() - started) / 1000,
  };
}

process.stdout.write(`${pairs} set/delete pairs, ${live} entries live, node ${process.version}\n\n`);
process.stdout.write('| structure | scavenges | promoted KB / scavenge | mean pause ms | max pause ms | mark-compacts | run s |\n|---|---:|---:|---:|---:|---:|---:|\n');
for (const kind of ['Map', 'ChurnMap'] as const) {
  const r = run(kind);
  process.stdout.write(`| ${r.kind} | ${r.scavenges} | ${r.promotedKBPerScavenge} | ${r.meanPauseMs} | ${r.maxPauseMs} | ${r.markCompacts} | ${r.seconds} |\n`);
}
