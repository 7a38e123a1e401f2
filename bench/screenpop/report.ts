// bench/screenpop.ts's figures: every ring checked against the call and agent it was for, and the
// Markdown report.
import { perAgentKB, type HeapSummary, type MemReading } from '../harness/daemon-memory.js';
import { machineLine, readOptions } from '../harness/report.js';
import { type ClientsDump } from '../harness/sse.js';
import { latencyStats, per5s, type Stats } from '../harness/stats.js';
import { BUFFER_PER_AGENT, type Calibration, type FeedResult, type Trace } from './traffic.js';

// ------------------------------------------------------------------------------------------------
// Ring analysis

export interface RingResult {
  calls: number;
  ringsExpected: number;
  ringsReceived: number;
  lost: number;
  duplicates: number;
  wrongAgent: number;
  unexpected: number;
  latencyMs: Stats;
  latencyMsAfterFirst2s: Stats;
  latencyMsPer5s: Array<{ fromS: number; n: number; p50: number; p99: number; max: number }>;
  lostCalls: string[];
  /** When the last ring of the phase arrived (ms since the epoch). */
  lastArrivalAt: number;
  /** The slowest rings (at most 40), slowest first: written and read (ms since the epoch), to line up with other traces. */
  slowest: Array<{ time: number; at: number; ms: number; agent: string }>;
}

export function analyzeRings(trace: Trace, d: ClientsDump, phase: number, firstCall: number, calls: number, feedStartedAt: number): RingResult {
  const expected = new Map<string, string>();
  for (let k = 0; k < calls; k++) expected.set(trace.callIdOf(firstCall + k), trace.agentOf(firstCall + k));
  const seen = new Map<string, number>();
  let wrongAgent = 0;
  let unexpected = 0;
  let duplicates = 0;
  const lat: number[] = [];
  const steady: number[] = [];
  const times: number[] = [];
  const all: Array<{ time: number; at: number; ms: number; agent: string }> = [];
  let lastArrivalAt = Number.NaN;
  const r = d.rings;
  for (let i = 0; i < r.at.length; i++) {
    if (r.phase[i] !== phase) continue;
    const call = r.callId[i] as string;
    const want = expected.get(call);
    if (want === undefined) {
      unexpected++;
      continue;
    }
    if (r.agent[i] !== want || r.evAgent[i] !== want) {
      wrongAgent++;
      continue;
    }
    const n = (seen.get(call) ?? 0) + 1;
    seen.set(call, n);
    if (n > 1) {
      duplicates++;
      continue;
    }
    const l = (r.at[i] as number) - (r.time[i] as number);
    if (!(lastArrivalAt >= (r.at[i] as number))) lastArrivalAt = r.at[i] as number;
    lat.push(l);
    if ((r.time[i] as number) >= feedStartedAt + 2000) steady.push(l);
    times.push(r.time[i] as number);
    all.push({ time: r.time[i] as number, at: r.at[i] as number, ms: l, agent: want });
  }
  const lostCalls = [...expected.keys()].filter((c) => !seen.has(c));
  return {
    calls,
    ringsExpected: calls,
    ringsReceived: [...seen.values()].reduce((a, b) => a + b, 0),
    lost: lostCalls.length,
    duplicates,
    wrongAgent,
    unexpected,
    latencyMs: latencyStats(lat),
    latencyMsAfterFirst2s: latencyStats(steady),
    latencyMsPer5s: per5s(lat, (k) => Math.floor(((times[k] as number) - feedStartedAt) / 5000)),
    lostCalls: lostCalls.slice(0, 20),
    lastArrivalAt,
    slowest: all.sort((a, b) => b.ms - a.ms).slice(0, 40),
  };
}

// ------------------------------------------------------------------------------------------------

/** bench/screenpop.ts's options and their defaults (number: [default, min, max]). */
export const OPTIONS = {
  agents: [1000, 1, 20_000],
  'agent-base': [1000, 10, 900_000],
  rate: [50, 0.1, 2000],
  duration: [30, 1, 300],
  timing: 'recorded',
  'client-procs': [1, 1, 2],
  pin: 'auto',
  'fill-calls-per-agent': [Math.ceil(BUFFER_PER_AGENT / 5), 0, 1000],
  'fill-max-seconds': [600, 1, 3600],
  settle: [20, 0, 120],
  readings: [5, 1, 60],
  'quiet-wait': [120, 0, 3600],
  'heap-snapshot': false,
  /**
   * Rows put in the outbox of a webhook sink (to a local receiver) before the daemon starts, so
   * that the paced run happens while the delivery thread works through a backlog; 0: no webhook.
   */
  'webhook-backlog': [0, 0, 5_000_000],
  /**
   * The daemon's outbox.deliveriesPerSecondWhilePopping (0: no limit); -1: not in its config (its
   * default, 1000 — and a daemon older than the setting starts too).
   */
  'deliveries-per-second-while-popping': [-1, -1, 1_000_000],
  /**
   * The garbage collector of the harness's own processes on the side CPU (this one: the AMI
   * feeder; the SSE clients; the --webhook-backlog receiver): single-threaded (default), or V8's
   * default, whose helper threads compete with the clients for that CPU (BENCHMARKS.md, issue
   * 18, fourth and fifth passes).
   */
  'harness-gc': 'single-threaded',
} as const;

export type Options = ReturnType<typeof readOptions<typeof OPTIONS>>['opts'] & { timing: 'recorded' | 'back-to-back'; pin: 'auto' | 'none'; harnessGc: 'single-threaded' | 'default' };

// ------------------------------------------------------------------------------------------------
// Report

export function markdown(meta: Record<string, unknown>, r: Record<string, unknown>, opts: Options, cal: Calibration): string {
  const m = meta.machine as Record<string, unknown>;
  const p = meta.parameters as Record<string, unknown>;
  const rows: string[] = [machineLine(meta)];
  rows.push(`Load: ${opts.agents} agents (${String(p.agentExtensions)}), one SSE stream each from ${opts.clientProcs} client process(es); ${String(p.calls)} direct calls at ${opts.rate} calls/s, each ringing one agent in turn (trace ${String(p.trace)}: ${cal.framesPerCall} AMI frames, ${cal.eventsPerCall} events per call, ${cal.messagesPerCallToAgent} of them on the agent's stream; ${opts.timing} timing); CPU: ${String(p.cpuPlacement)}.`);
  rows.push('');
  type RR = RingResult;
  type Msgs = { expected: number | null; received: number; callExpected: number; callReceived: number };
  const pc = r.paced as { feed: FeedResult; rings: RR; messages: Msgs; latencyByTypeMs: Record<string, Stats>; cpu: Record<string, { mean: number; max: number } | null> } | null;
  const fl = r.fill as { feed: FeedResult; rings: RR; messages: Msgs; cpu: Record<string, { mean: number; max: number } | null>; processed: { seconds: number; callsPerSec: number; framesPerSec: number } } | null;
  rows.push('**Ring → agent\'s SSE message** (ms, AMI frame written → message parsed in the client process)');
  rows.push('');
  rows.push('| phase | calls (calls/s) | rings expected | reached their agent | lost | dup | other agent | p50 | p95 | p99 | max | p50 / p99 after first 2 s | call.* messages (received/expected) | all messages incl. agent.status |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const dash = (v: number) => (Number.isFinite(v) ? String(v) : '-');
  const ringRow = (name: string, x: { feed: FeedResult; rings: RR; messages: Msgs }) => {
    const l = x.rings.latencyMs;
    const s = x.rings.latencyMsAfterFirst2s;
    rows.push(`| ${name} | ${x.feed.calls} (${x.feed.callsPerSecAchieved}) | ${x.rings.ringsExpected} | ${x.rings.ringsReceived} | ${x.rings.lost} | ${x.rings.duplicates} | ${x.rings.wrongAgent} | ${l.p50} | ${l.p95} | ${l.p99} | ${l.max} | ${dash(s.p50)} / ${dash(s.p99)} | ${x.messages.callReceived}/${x.messages.callExpected} | ${x.messages.received}${x.messages.expected === null ? " (agents' calls overlap: not checked)" : `/${x.messages.expected}`} |`);
  };
  if (pc) ringRow(`paced ${opts.rate}/s, ${opts.timing}`, pc);
  const bl = r.webhookBacklog as { seeded: number; deliveredDuringPaced: number; deliveredPerSecDuringPaced: number; lastedThroughPaced: boolean } | null;
  if (bl) rows.push('', `Webhook backlog: ${bl.seeded} events waiting at start; ${bl.deliveredDuringPaced} delivered during the paced run (${bl.deliveredPerSecDuringPaced}/s), ${bl.lastedThroughPaced ? 'the backlog lasted through it' : 'the backlog was GONE before it ended'}.`, '');
  if (fl) ringRow('fill (unpaced, for memory; latency is queueing, not the figure asked for)', fl);
  if (pc) {
    rows.push('');
    rows.push(`Paced, by message type (p50 / p99 ms): ${Object.entries(pc.latencyByTypeMs).map(([k, v]) => `${k} ${v.p50} / ${v.p99} (n ${v.n})`).join('; ')}. Pacer: frames written p99 ${String(pc.feed.lateMs?.p99)} ms, max ${String(pc.feed.lateMs?.max)} ms after their schedule (stamped when written, so this shifts the load, not the measure).`);
  }
  rows.push('');
  rows.push('**Daemon memory** (VmRSS; median of the readings, min–max in brackets)');
  rows.push('');
  rows.push('| state | streams | events buffered per agent | VmRSS MB | RssAnon MB | read after s (stable within 1 MB?) | lowest VmRSS seen while settling |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const x of r.memory as MemReading[]) rows.push(`| ${x.state} | ${x.streams} | ${x.bufferedPerAgent} | ${x.rssMB.median} (${x.rssMB.min}–${x.rssMB.max}) | ${x.rssAnonMB.median} (${x.rssAnonMB.min}–${x.rssAnonMB.max}) | ${x.settledAfterS} (${x.stable ? 'yes' : 'NO'}) | ${Math.min(...x.seriesRssMB)} |`);
  rows.push('');
  const pa = r.perAgentKB as Record<string, ReturnType<typeof perAgentKB> | null>;
  const line = (label: string, v: ReturnType<typeof perAgentKB> | null) => (v ? `| ${label} | ${v.medianKB} | ${v.lowKB} – ${v.highKB} | ${v.anonMedianKB} |` : null);
  rows.push('| per connected agent | KB (median) | KB range from the readings\' spread | RssAnon KB |');
  rows.push('|---|---:|---:|---:|');
  for (const x of [
    line(`idle stream: (${opts.agents} streams − 0) / ${opts.agents}`, pa.idleStreams ?? null),
    line(`idle stream, marginal: second half of the streams`, pa.idleStreamsMarginalSecondHalf ?? null),
    line(`after the paced run (a few events buffered per agent) − 0 streams`, pa.afterPacedRun ?? null),
    line(`buffers full (${BUFFER_PER_AGENT} events per agent) − 0 streams`, pa.buffersFull ?? null),
    line(`buffers full − idle streams: the buffer alone`, pa.buffersFullMinusIdleStreams ?? null),
  ])
    if (x) rows.push(x);
  rows.push('');
  const cpuRow = (name: string, c: Record<string, { mean: number; max: number } | null>) => `| ${name} | ${['daemon', 'clients', 'bench', 'other', 'machine'].map((k) => (c[k] ? `${c[k]?.mean} (${c[k]?.max})` : '-')).join(' | ')} |`;
  rows.push(`**CPU %** of one core, mean (max of 1-s samples); the machine has ${String(m.nproc)} cores = ${Number(m.nproc) * 100} %`);
  rows.push('');
  rows.push('| phase | daemon | SSE clients | bench (AMI feeder) | other processes | whole machine |');
  rows.push('|---|---:|---:|---:|---:|---:|');
  if (pc) rows.push(cpuRow('paced', pc.cpu));
  if (fl) rows.push(cpuRow('fill', fl.cpu));
  if (fl) rows.push('', `Fill: ${fl.feed.calls} calls (${fl.feed.frames} AMI frames) written unpaced; the last ring reached its agent ${fl.processed.seconds} s after the first frame: the daemon got through ${fl.processed.callsPerSec} calls/s = ${fl.processed.framesPerSec} AMI frames/s with ${opts.agents} streams attached.`);
  const heap = r.heapSnapshot as HeapSummary | null;
  if (heap) {
    const ss = heap.slicedStrings;
    rows.push(
      '',
      `Heap snapshot of the daemon at the end (--heap-snapshot: SIGUSR2, after a full GC): live heap ${heap.liveMB} MB in ${heap.nodes} objects, strings ${heap.byType.find((b) => b.type === 'string')?.selfMB ?? '-'} MB. ${ss.count} V8 sliced strings (${ss.selfMB} MB themselves) keep ${ss.parents} parent strings alive, ${ss.parentsMB} MB (median ${ss.parentMedianKB} KB: AMI socket reads); they are held by the properties ${ss.heldBy.slice(0, 6).map((h) => `\`${h.name}\` ${h.count}`).join(', ')}.`,
    );
  }
  const problems = r.problems as string[];
  const warnings = r.warnings as string[];
  if (problems.length) rows.push('', `**PROBLEMS: ${problems.join('; ')}**`);
  if (warnings.length) rows.push('', `Warnings: ${warnings.join('; ')}`);
  return rows.join('\n');
}

