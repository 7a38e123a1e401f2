// A daemon's memory, for bench/screenpop.ts: VmRSS readings of an idle daemon once they have
// settled, the change per agent between two of them, and (--heap-snapshot, a diagnostic) what its
// live heap is made of.
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from './run.js';
import { procSample } from './sample.js';
import { pct, round } from './stats.js';

export interface MemReading {
  state: string;
  streams: number;
  /** Buffered events per agent the daemon holds (expected, from what was sent and received). */
  bufferedPerAgent: number;
  rssMB: { median: number; min: number; max: number };
  rssAnonMB: { median: number; min: number; max: number };
  readingsKB: Array<{ rss: number; anon: number }>;
  /** Seconds from the request to the last reading. */
  settledAfterS: number;
  /** The last readings were within 1 MB of each other. */
  stable: boolean;
  /** Every reading, once a second after the settling time. */
  seriesRssMB: number[];
}

/**
 * Memory of an idle daemon without --expose-gc: waits `settleS`, then reads VmRSS once a second
 * until the last `n` readings are within `stableKB` of each other (V8's memory reducer has run its
 * idle-time GCs) or `maxS` seconds have passed; reports those last `n` readings.
 */
export async function memReadings(pid: number, state: string, streams: number, bufferedPerAgent: number, settleS: number, n: number, stableKB = 1024, maxS = 120): Promise<MemReading> {
  const start = Date.now();
  await sleep(settleS * 1000);
  const series: Array<{ rss: number; anon: number }> = [];
  let rs: Array<{ rss: number; anon: number }> = [];
  let stable = false;
  for (let i = 0; i < maxS + n; i++) {
    if (i > 0) await sleep(1000);
    const s = procSample(pid);
    if (!s) throw new Error(`the daemon is gone (reading memory: ${state})`);
    series.push({ rss: s.rssKB, anon: s.anonKB });
    rs = series.slice(-n);
    if (rs.length === n) {
      const v = rs.map((r) => r.rss);
      if (Math.max(...v) - Math.min(...v) <= stableKB) {
        stable = true;
        break;
      }
    }
    if (Date.now() - start > maxS * 1000) break;
  }
  const st = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: round(pct(s, 50) / 1024, 1), min: round((s[0] as number) / 1024, 1), max: round((s[s.length - 1] as number) / 1024, 1) };
  };
  const m: MemReading = {
    state,
    streams,
    bufferedPerAgent,
    rssMB: st(rs.map((r) => r.rss)),
    rssAnonMB: st(rs.map((r) => r.anon)),
    readingsKB: rs,
    settledAfterS: round((Date.now() - start) / 1000, 0),
    stable,
    seriesRssMB: series.map((r) => round(r.rss / 1024, 1)),
  };
  process.stderr.write(`   memory, ${state}: VmRSS ${m.rssMB.median} MB (${m.rssMB.min}–${m.rssMB.max}), RssAnon ${m.rssAnonMB.median} MB; ${stable ? 'stable' : 'NOT stable'} after ${m.settledAfterS} s (series ${m.seriesRssMB.join(' ')})\n`);
  return m;
}

/** KB per agent between two readings, with the range the readings' spread allows. */
export function perAgentKB(a: MemReading, b: MemReading, agents: number): { medianKB: number; lowKB: number; highKB: number; anonMedianKB: number } {
  return {
    medianKB: round(((b.rssMB.median - a.rssMB.median) * 1024) / agents, 1),
    lowKB: round(((b.rssMB.min - a.rssMB.max) * 1024) / agents, 1),
    highKB: round(((b.rssMB.max - a.rssMB.min) * 1024) / agents, 1),
    anonMedianKB: round(((b.rssAnonMB.median - a.rssAnonMB.median) * 1024) / agents, 1),
  };
}

// ------------------------------------------------------------------------------------------------
// --heap-snapshot: what the daemon's live heap is made of (a diagnostic, after every reading).

export interface HeapSummary {
  fileMB: number;
  liveMB: number;
  nodes: number;
  byType: Array<{ type: string; count: number; selfMB: number }>;
  topConstructors: Array<{ name: string; count: number; selfMB: number }>;
  slicedStrings: {
    count: number;
    selfMB: number;
    /** Distinct strings that sliced strings point into, and their size: text kept alive by slices. */
    parents: number;
    parentsMB: number;
    parentMedianKB: number;
    /** The properties through which sliced strings are referenced (uniqueid, name, …). */
    heldBy: Array<{ name: string; count: number }>;
  };
}

export async function takeHeapSnapshot(pid: number, dir: string): Promise<HeapSummary> {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  // Node writes Heap.<date>.<pid>.….heapsnapshot into the daemon's cwd; done when its size holds.
  let file: string | null = null;
  let lastSize = -1;
  let stableSince = Date.now();
  const start = Date.now();
  for (let i = 0; i < 3000 && Date.now() - start < 600_000; i++) {
    await sleep(200);
    file ??= fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)) ?? null;
    if (!file) continue;
    const size = fs.statSync(path.join(dir, file)).size;
    if (size !== lastSize) {
      lastSize = size;
      stableSince = Date.now();
    } else if (size > 0 && Date.now() - stableSince > 3000) break;
  }
  if (!file) throw new Error('no heap snapshot was written');
  const full = path.join(dir, file);
  const size = fs.statSync(full).size;
  if (size > 450 * 1024 * 1024) throw new Error(`heap snapshot of ${round(size / 2 ** 20)} MB is too big to parse here: use fewer agents`);
  const snap = JSON.parse(fs.readFileSync(full, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  fs.rmSync(full, { force: true });
  const meta = snap.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const types = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = snap;
  const slicedType = types.indexOf('sliced string');
  const objectType = types.indexOf('object');
  const byType = new Map<string, { count: number; size: number }>();
  const ctors = new Map<string, { count: number; size: number }>();
  const parents = new Map<number, number>();
  const heldBy = new Map<string, number>();
  let live = 0;
  let slicedCount = 0;
  let slicedSize = 0;
  let e = 0;
  for (let i = 0; i < nodes.length; i += nf) {
    const t = nodes[i + nType] as number;
    const sz = nodes[i + nSize] as number;
    const ec = nodes[i + nEdges] as number;
    live += sz;
    const tn = types[t] ?? String(t);
    const bt = byType.get(tn) ?? { count: 0, size: 0 };
    bt.count++;
    bt.size += sz;
    byType.set(tn, bt);
    if (t === objectType) {
      const name = strings[nodes[i + nName] as number] ?? '?';
      const c = ctors.get(name) ?? { count: 0, size: 0 };
      c.count++;
      c.size += sz;
      ctors.set(name, c);
    }
    if (t === slicedType) {
      slicedCount++;
      slicedSize += sz;
      for (let k = 0; k < ec; k++) {
        const b = e + k * ef;
        if (strings[edges[b + eName] as number] === 'parent') {
          const to = edges[b + eTo] as number;
          parents.set(to, nodes[to + nSize] as number);
        }
      }
    }
    for (let k = 0; k < ec; k++) {
      const b = e + k * ef;
      const to = edges[b + eTo] as number;
      if (nodes[to + nType] === slicedType && edgeTypes[edges[b + eType] as number] === 'property') {
        const name = strings[edges[b + eName] as number] ?? '?';
        heldBy.set(name, (heldBy.get(name) ?? 0) + 1);
      }
    }
    e += ec * ef;
  }
  const mb = (b: number) => round(b / 2 ** 20, 1);
  const parentSizes = [...parents.values()].sort((a, b) => a - b);
  return {
    fileMB: mb(size),
    liveMB: mb(live),
    nodes: nodes.length / nf,
    byType: [...byType.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, 8).map(([type, v]) => ({ type, count: v.count, selfMB: mb(v.size) })),
    topConstructors: [...ctors.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, 10).map(([name, v]) => ({ name, count: v.count, selfMB: mb(v.size) })),
    slicedStrings: {
      count: slicedCount,
      selfMB: mb(slicedSize),
      parents: parents.size,
      parentsMB: mb(parentSizes.reduce((a, b) => a + b, 0)),
      parentMedianKB: round(pct(parentSizes, 50) / 1024, 1),
      heldBy: [...heldBy.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, count]) => ({ name, count })),
    },
  };
}
