// NATS bus benchmark: (a) webhooks through JetStream, (b) ring -> pop through it, (c) an HA pair's
// failover, all through real daemons and a real nats-server -js.
//   npm run bench:bus [-- options]           method and options: BENCHMARKS.md#method-nats-bus
import { spawnSync } from 'node:child_process';
import { requireBuild } from './harness/env.js';
import { endHead, readOptions, resultsHead, writeResults } from './harness/report.js';
import { removeDir, runBench, tempDir } from './harness/run.js';
import { NPROC, waitForQuiet } from './harness/sample.js';
import { round, type Stats } from './harness/stats.js';
import { CONSUMER, NATS_SERVER, OPTIONS, PARTITIONS, STREAM, type Options } from './bus/lab.js';
import { type TenCalls, calibrateTenCalls, calibrateDirectCalls } from './bus/traffic.js';
import { runWebhook } from './bus/webhooks.js';
import { runPop } from './bus/pop.js';
import { runFailover } from './bus/failover.js';

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
  const { opts: o, out, note } = readOptions('bus', OPTIONS);
  const { scenarios: scenarioList, webhookRuns: runList, ...rest } = o;
  const webhookRuns = runList.split(',').map((r) => {
    const m = /^([1-4])(:recorded-agents)?$/.exec(r.trim());
    if (!m) throw new Error(`--webhook-runs: '${r}' is not N or N:recorded-agents (N = 1…4 webhook nodes)`);
    return { nodes: Number(m[1]), freshAgents: !m[2] };
  });
  const opts: Options = { webhookRuns, ...rest };
  if (opts.killAt >= opts.haSeconds - 1) throw new Error('--kill-at must be at least 1 s before the end of --ha-seconds');
  const scenarios = new Set(scenarioList.split(',').map((s) => s.trim()));
  for (const s of scenarios) if (!['a', 'b', 'c'].includes(s)) throw new Error(`--scenarios: '${s}' is not a, b or c`);
  requireBuild('bus');
  const natsVersion = spawnSync(NATS_SERVER, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^nats-server: /, '');
  const meta = resultsHead('NATS bus: AMI -> PBX-side bridge (nats sink) -> JetStream -> delivery nodes (webhook, screen pop); HA pair failover', note, NPROC, { natsServer: natsVersion }, true);
  meta.parameters = {
    ...opts,
    stream: `${STREAM}: subjects crm.>, file storage, duplicate window 120 s (made by the bench as the nats sink makes it), ${PARTITIONS} partitions`,
    bridges: 'nats sink defaults (concurrency 64, publishTimeoutMs 5000); outbox synchronous normal; log level info to a file',
    webhookNodes: `source consumer ${CONSUMER}, leaseSeconds 2; webhook sink json, concurrency 8`,
    popNode: 'source without consumer; http with tokenSecret; one screen-pop rule (call.ringing, new-tab); sinks: []',
    latency: "arrival (Date.now() in the receiving process) − Date.parse(event.time), where event.time is the AMI frame's Timestamp, stamped when this process wrote it; ms resolution",
    cpu: 'no pinning; % of one core per process over the phase (bench = this process: AMI load generator, and in (c) the stream subscriber)',
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
  endHead(meta);
  const text = summary(meta, results);
  writeResults(out, text, { ...meta, results, summary: text });
  const all = Object.values(results).flatMap((v) => (Array.isArray(v) ? v : [v])) as Array<{ ok: boolean }>;
  return all.every((r) => r.ok) ? 0 : 1;
}

await runBench('bus.ts', main);
