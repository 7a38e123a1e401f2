// bench/bus.ts (b): ring → pop through the bus.
import { randomBytes } from 'node:crypto';
import { mintToken } from '../harness/dist.js';
import { pace, schedule, waitUntil, writeTo } from '../harness/feed.js';
import { freePort, sleep, within } from '../harness/run.js';
import { cpuPct } from '../harness/sample.js';
import { startClients } from '../harness/sse.js';
import { latencyStats, round, type Stats } from '../harness/stats.js';
import { cpuSnap, hops, inLab, pbxConfig, popNodeConfig, storedTimes, waitLog, type Options } from './lab.js';
import { feedResult, type Frame, stamped, type DirectCalls } from './traffic.js';

// ------------------------------------------------------------------------------------------------
// (b) ring → pop through the bus, 1,000 agents

export async function runPop(direct: DirectCalls, opts: Options): Promise<Record<string, unknown>> {
  return inLab('crm-bridge-bench-bus-b-', {}, async ({ dir, nats, stamper, procs, out, problems, daemon, amiServer, atEnd }) => {
    const secret = randomBytes(32).toString('hex');
    const httpPort = await freePort();
    const pop = daemon('pop-1', popNodeConfig(nats.url, httpPort, secret, dir));
    await waitLog(pop, (l) => l.msg === 'HTTP server listening', "the pop node's HTTP server");
    await waitLog(pop, (l) => l.msg === 'NATS source connected', 'the pop node to connect to NATS');
    const sse = await startClients();
    atEnd(async () => {
      await sse.closing().catch(() => undefined);
      await sse.close();
    }, true);
    procs.push({ name: 'sse', pid: sse.pid });
    const streams = Array.from({ length: opts.agents }, (_, i) => {
      const agent = direct.agentOf(i);
      return { agent, token: mintToken(secret, { kind: 'agent', agentId: agent }, 6 * 3600) };
    });
    const conn = await sse.connect(httpPort, streams);
    out.streams = conn;
    process.stderr.write(`   ${conn.ok} SSE streams attached in ${conn.ms} ms (${conn.failed} failed)\n`);
    if (conn.failed) problems.push(`${conn.failed} of ${opts.agents} SSE streams failed to attach`);

    const ami = await amiServer(direct.set);
    const bridge = daemon('bridge', pbxConfig(ami.port, nats.url, dir, 'bridge'));
    const socket = await within(ami.loggedIn, 30_000, 'the bridge to log in to AMI');
    await waitLog(bridge, (l) => l.msg === 'NATS connected', 'the bridge to reach NATS');

    // Call n starts at n / rate s; its frames keep their recorded offsets (bench/screenpop.ts, timing recorded).
    // The first --warmup-seconds of calls are the warm-up: delivered and checked like the others, their latency reported apart.
    const warmCalls = Math.round(opts.popRate * opts.warmupSeconds);
    const calls = warmCalls + Math.max(1, Math.round(opts.popRate * opts.popSeconds));
    const F = direct.offsetsMs.length;
    const { order, due } = schedule(calls, F, opts.popRate, (j) => direct.offsetsMs[j] as number);
    const rendered = new Map<number, Frame[]>();
    const callIds: string[] = [];
    const take = (i: number) => {
      const idx = order[i] as number;
      const call = Math.floor(idx / F);
      let frames = rendered.get(call);
      if (!frames) {
        const r = direct.render(call);
        frames = r.frames;
        callIds[call] = r.callId;
        rendered.set(call, frames);
      }
      if (idx % F === F - 1) rendered.delete(call);
      return stamped(frames[idx % F] as Frame, stamper);
    };
    process.stderr.write(`   ${calls} calls (the first ${warmCalls} a warm-up) at ${opts.popRate}/s, each ringing one of ${opts.agents} agents, recorded timing (${F} frames per call, last at +${direct.offsetsMs[F - 1]} ms)\n`);
    const c0 = cpuSnap(procs);
    const fed = feedResult(await pace(order.length, (i) => due[order[i] as number] as number, take, writeTo(socket), Date.now() + (opts.warmupSeconds + opts.popSeconds + 60) * 1000));
    const c1 = cpuSnap(procs);
    // Every ring at its agent (or a deadline).
    await waitUntil(async () => (await sse.count()).rings, (rings) => rings >= calls, { capMs: 60_000, everyMs: 200 });
    await sleep(500);
    const all = await sse.dump();
    const d = { ...all.rings, streamAgent: all.rings.agent, eventAgent: all.rings.evAgent, messages: all.messagesByPhase.reduce((a, b) => a + (b ?? 0), 0), foreign: all.foreign, bad: all.badMessages, cut: all.cut.length };
    const callOf = new Map(callIds.map((c, k) => [c, k]));
    const seen = new Map<string, number>();
    let wrongAgent = 0;
    let unknown = 0;
    const lat: number[] = [];
    const latWarm: number[] = [];
    const measured = new Set<number>();
    for (let r = 0; r < d.at.length; r++) {
      const call = callOf.get(d.callId[r] as string);
      if (call === undefined) {
        unknown++;
        continue;
      }
      seen.set(d.callId[r] as string, (seen.get(d.callId[r] as string) ?? 0) + 1);
      if (d.streamAgent[r] !== direct.agentOf(call) || d.eventAgent[r] !== direct.agentOf(call)) wrongAgent++;
      const l = (d.at[r] as number) - (d.time[r] as number);
      if (call < warmCalls) latWarm.push(l);
      else {
        lat.push(l);
        measured.add(r);
      }
    }
    const stored = await storedTimes(nats.url);
    const [amiToStream, streamToSse] = hops(stored, d, measured);
    out.latencyMsByHop = { amiToStream, streamToSse };
    const lost = callIds.filter((c) => !seen.has(c)).length;
    const dup = [...seen.values()].filter((v) => v > 1).reduce((a, v) => a + v - 1, 0);
    out.feed = { calls, warmupCalls: warmCalls, callsPerSec: opts.popRate, frames: fed.frames, seconds: fed.seconds, maxLagMs: fed.maxLagMs, eventsPerCall: direct.eventsPerCall };
    out.rings = { expected: calls, received: d.at.length, lost, duplicates: dup, wrongAgent, unknownCall: unknown, foreignMessages: d.foreign, badMessages: d.bad, streamsCut: d.cut, messagesOnAllStreams: d.messages };
    out.latencyMs = latencyStats(lat);
    out.latencyMsWarmup = latencyStats(latWarm);
    out.cpuPctWhileCalling = cpuPct(c0, c1);
    if (lost) problems.push(`${lost} of ${calls} rings never reached their agent`);
    if (dup) problems.push(`${dup} rings arrived twice`);
    if (wrongAgent) problems.push(`${wrongAgent} rings reached another agent's stream`);
    if (d.foreign) problems.push(`${d.foreign} messages naming another agent reached an agent's stream`);
    if (d.cut) problems.push(`${d.cut} SSE streams were cut`);
    const l = out.latencyMs as Stats;
    process.stderr.write(`   rings ${d.at.length}/${calls} (lost ${lost}, dup ${dup}, wrong agent ${wrongAgent}); latency after the warm-up p50 ${l.p50} p99 ${l.p99} max ${l.max} ms (warm-up p99 ${(out.latencyMsWarmup as Stats).p99} ms)\n`);
  });
}
