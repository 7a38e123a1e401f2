// The benchmarks' command lines and results: option parsing, the results' common head (what ran,
// where, when), writing the JSON, the Markdown machine line, and a .cpuprofile summed up.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ROOT } from './env.js';
import { gitHead } from './run.js';
import { machine } from './sample.js';
import { round } from './stats.js';

/** The options of a benchmark and their defaults: a number with its range, a string, a flag. */
type Spec = Record<string, readonly [number, number, number] | string | boolean>;
type Camel<K extends string> = K extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : K;
type Read<S extends Spec> = { [K in keyof S & string as Camel<K>]: S[K] extends readonly number[] ? number : S[K] extends boolean ? boolean : string };

/**
 * The command line: the options of `spec` (each read under its camelCase name; a number must lie in
 * its range and, with `integer`, be whole) plus --out (default bench/results/<name>.json) and
 * --note. `num(name, min, max, value)` reads a number from an option's text and says what is wrong.
 */
export function readOptions<S extends Spec>(name: string, spec: S, integer = false) {
  const options: NonNullable<ParseArgsConfig['options']> = { out: { type: 'string', default: path.join(ROOT, `bench/results/${name}.json`) }, note: { type: 'string' } };
  for (const [key, v] of Object.entries(spec)) options[key] = typeof v === 'boolean' ? { type: 'boolean', default: v } : { type: 'string', default: String(typeof v === 'object' ? v[0] : v) };
  const values = parseArgs({ options, strict: true }).values as Record<string, string | boolean | undefined>;
  const num = (key: string, min: number, max: number, v: unknown = values[key]): number => {
    const n = Number(v);
    if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < min || n > max) throw new Error(`--${key} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}] (is '${String(v)}')`);
    return n;
  };
  const opts: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(spec)) opts[key.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase())] = typeof v === 'object' ? num(key, v[1], v[2]) : values[key];
  return { opts: opts as Read<S>, num, out: String(values.out), note: (values.note as string | undefined) ?? null };
}

/** The results' head: what ran, on what machine, at which commit, with which command. */
export function resultsHead(benchmark: string, note: string | null, nproc: number, extra: Record<string, unknown> = {}, tmpdirFilesystem = false): Record<string, unknown> {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  return {
    benchmark,
    date: new Date().toISOString(),
    machine: machine({ nproc, tmpdirFilesystem }),
    ...extra,
    note,
    command: `node ${[...process.execArgv, path.relative(ROOT, process.argv[1] ?? ''), ...process.argv.slice(2)].map(quote).join(' ')}`,
    gitHead: gitHead(),
  };
}

/** Load average at the end, into the head's machine. */
export const endHead = (head: Record<string, unknown>) => ((head.machine as Record<string, unknown>).loadavgAtEnd = os.loadavg().map((x) => round(x, 2)));

/** Prints `text` and writes `results` (JSON) to `out`. */
export function writeResults(out: string, text: string, results: Record<string, unknown>): void {
  process.stdout.write(`\n${text}\n`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stderr.write(`\nwrote ${path.relative(process.cwd(), out)}\n`);
}

/** "Machine: 2 CPUs (…), 4 GB RAM, Node …; load average … at start, … at end; note." */
export function machineLine(head: Record<string, unknown>): string {
  const m = head.machine as Record<string, unknown>;
  return `Machine: ${String(m.nproc)} CPUs (${String(m.cpuModel)}), ${String(m.ramGB)} GB RAM, Node ${String(m.node)}; load average ${(m.loadavgAtStart as number[]).join(' ')} at start, ${((m.loadavgAtEnd as number[] | undefined) ?? []).join(' ')} at end${head.note ? `; ${String(head.note)}` : ''}.`;
}

// ------------------------------------------------------------------------------------------------
// A .cpuprofile (node --cpu-prof) summed up: self time by module and by function.

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples?: number[];
  timeDeltas?: number[];
}

/** The module a sample belongs to: one per bridge file, or (`byDir`) per bridge directory (ami/, normalizer/, …). */
function profileCategory(url: string, fn: string, byDir: boolean): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'program (native, outside JS)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm:${nm[1] as string}`;
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return `bridge:${(byDir ? (dist[1] as string).replace(/\/[^/]*$/, '/') : (dist[1] as string)).replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return `node:${/^node:(?:internal\/)?([^/]+)/.exec(url)?.[1] ?? url}`;
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  return url.replace(/^.*\/bench\//, 'bench/');
}

/** Self time (ms, % of busy) of the top modules and functions in `file`; idle excluded. */
export function summarizeCpuProfile(file: string, byDir = false, top = 25): { busyMs: number; byModule: Array<{ name: string; ms: number; pct: number }>; topFunctions: Array<{ name: string; ms: number; pct: number }> } {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfMs.set(samples[i] as number, (selfMs.get(samples[i] as number) ?? 0) + (deltas[i] ?? 0) / 1000);
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of selfMs) {
    const n = byId.get(id);
    if (!n) continue;
    const cat = profileCategory(n.callFrame.url, n.callFrame.functionName, byDir);
    if (cat === 'idle') continue;
    total += ms;
    cats.set(cat, (cats.get(cat) ?? 0) + ms);
    const name = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + ms);
  }
  const list = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms: round(ms, 0), pct: round((ms / total) * 100) }));
  return { busyMs: round(total, 0), byModule: list(cats), topFunctions: list(fns) };
}

/** The profile node --cpu-prof-dir=`dir` wrote, summed up; undefined if there is none. */
/**
 * The CPU profile(s) node --cpu-prof wrote in `dir`: one per thread. The busiest is summarized at
 * the top level (the main thread), every other thread under `threads` (the delivery thread).
 */
export function profileIn(dir: string, byDir = false): (ReturnType<typeof summarizeCpuProfile> & { threads?: Array<ReturnType<typeof summarizeCpuProfile>> }) | undefined {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  // BENCH_KEEP_PROFILES=dir keeps the raw profiles (for a look by time, e.g. the first seconds).
  const keep = process.env.BENCH_KEEP_PROFILES;
  if (keep) for (const f of files) fs.copyFileSync(path.join(dir, f), path.join(fs.mkdirSync(keep, { recursive: true }) ?? keep, f));
  const all = files.map((f) => summarizeCpuProfile(path.join(dir, f), byDir)).sort((a, b) => b.busyMs - a.busyMs);
  const [main, ...threads] = all;
  return main ? { ...main, ...(threads.length > 0 ? { threads } : {}) } : undefined;
}
