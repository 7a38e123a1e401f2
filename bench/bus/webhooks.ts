// bench/bus.ts (a): AMI → bridge → JetStream → webhook node(s) → receiver.
import { feedSocket, waitUntil, writeTo } from '../harness/feed.js';
import { startReceiver, type Receiver } from '../harness/receiver.js';
import { sleep, within } from '../harness/run.js';
import { cpuPct } from '../harness/sample.js';
import { latencyStats, round, type Stats } from '../harness/stats.js';
import { cpuSnap, hops, inLab, leases, PARTITIONS, pbxConfig, storedTimes, waitLog, webhookNodeConfig, type Options } from './lab.js';
import { CloneFeed, type FeedResult, feedPaced, type TenCalls } from './traffic.js';

/** Waits up to `ms` for the receiver to have `want` distinct events. */
const waitCount = async (recv: Receiver, want: number, ms: number) => (await waitUntil(() => recv.unique(), (n) => n >= want, { capMs: ms, everyMs: 200 })).waitedMs;

export async function runWebhook(nodes: number, ten: TenCalls, opts: Options): Promise<Record<string, unknown>> {
  return inLab('crm-bridge-bench-bus-a-', { nodes }, async ({ dir, nats, stamper, procs, out, problems, daemon, amiServer, atEnd }) => {
    const recv = await startReceiver('child');
    atEnd(() => recv.close());
    procs.push({ name: 'receiver', pid: recv.pid });
    const recvPort = recv.port;
    for (let i = 1; i <= nodes; i++) {
      const n = daemon(`webhooks-${i}`, webhookNodeConfig(i, nats.url, recvPort, dir));
      await waitLog(n, (l) => l.msg === 'NATS source connected', `webhooks-${i} to connect`);
    }
    // Every partition leased, and shared evenly (a newcomer gets its share within a lease round or two).
    const t0 = Date.now();
    let owners = new Map<string, number>();
    for (;;) {
      owners = await leases(nats.url).catch(() => new Map<string, number>());
      const counts = [...owners.values()];
      if (counts.length === nodes && counts.reduce((a, b) => a + b, 0) === PARTITIONS && Math.max(...counts) - Math.min(...counts) <= 1) break;
      if (Date.now() - t0 > 30_000) throw new Error(`partitions not shared among ${nodes} nodes after 30 s: ${JSON.stringify([...owners.values()])}`);
      await sleep(250);
    }
    out.partitionsPerNode = [...owners.values()];
    out.leasesSharedAfterMs = Date.now() - t0;

    const ami = await amiServer(ten.set);
    const bridge = daemon('bridge', pbxConfig(ami.port, nats.url, dir, 'bridge'));
    const socket = await within(ami.loggedIn, 30_000, 'the bridge to log in to AMI');
    await waitLog(bridge, (l) => l.msg === 'NATS connected', 'the bridge to reach NATS');

    const fps = opts.rate / ten.eventsPerFrame;
    const feed = new CloneFeed(ten.render, stamper);
    // Warm-up: the same rate for --warmup-seconds, delivered before the measured phase starts (a
    // cold start — JIT, first SQLite pages, consumers' first pulls — is reported apart).
    const warmClones = opts.warmupSeconds > 0 ? Math.max(1, Math.round((opts.rate * opts.warmupSeconds) / ten.eventsPerClone)) : 0;
    const expected0 = warmClones ? ten.eventsOnce + warmClones * ten.eventsPerClone : 0;
    let warm: FeedResult | null = null;
    if (warmClones) {
      process.stderr.write(`   warm-up: ${warmClones} clones (${expected0} events) at ${opts.rate} events/s\n`);
      warm = await feedPaced(writeTo(socket), () => feed.next(), warmClones * ten.framesPerClone, fps);
      await waitCount(recv, expected0, 60_000);
      await sleep(500);
    }
    // Paced.
    const pacedClones = Math.max(1, Math.round((opts.rate * opts.pacedSeconds) / ten.eventsPerClone));
    const expected1 = (warmClones ? 0 : ten.eventsOnce) + pacedClones * ten.eventsPerClone;
    process.stderr.write(`   paced: ${pacedClones} clones (${expected1} events) at ${opts.rate} events/s = ${round(fps, 0)} AMI frames/s\n`);
    const c0 = cpuSnap(procs);
    const paced = await feedPaced(writeTo(socket), () => feed.next(), pacedClones * ten.framesPerClone, fps);
    const c1 = cpuSnap(procs);
    const w1 = await waitCount(recv, expected0 + expected1, 60_000);
    const c2 = cpuSnap(procs);
    // Unpaced.
    const maxClones = Math.max(1, Math.round(opts.maxEvents / ten.eventsPerClone));
    const expected2 = maxClones * ten.eventsPerClone;
    process.stderr.write(`   unpaced: ${maxClones} clones (${expected2} events) as fast as the bridge reads\n`);
    const maxStart = Date.now();
    let left = maxClones * ten.framesPerClone;
    const fed = await feedSocket(socket, () => (left-- > 0 ? feed.next() : null), { chunkBytes: 64 * 1024 });
    const maxFed = Date.now();
    const c3 = cpuSnap(procs);
    await waitCount(recv, expected0 + expected1 + expected2, 120_000);
    const c4 = cpuSnap(procs);
    await sleep(500); // late duplicates
    const d = await recv.dump();
    const agentEvent = (i: number) => (d.type[i] as string).startsWith('agent.');

    const stored = await storedTimes(nats.url);
    const idx0: number[] = [];
    const idx1: number[] = [];
    const idx2: number[] = [];
    d.time.forEach((t, i) => (t >= maxStart ? idx2 : t >= paced.startedAt ? idx1 : idx0).push(i));
    const lat1 = idx1.map((i) => (d.at[i] as number) - (d.time[i] as number));
    const latAfter3s = idx1.filter((i) => (d.time[i] as number) >= paced.startedAt + 3000).map((i) => (d.at[i] as number) - (d.time[i] as number));
    const inFeed = idx1.filter((i) => (d.at[i] as number) >= paced.startedAt + 3000 && (d.at[i] as number) <= paced.endedAt).length;
    const lastAt1 = Math.max(...idx1.map((i) => d.at[i] as number));
    const at2 = idx2.map((i) => d.at[i] as number).sort((a, b) => a - b);
    const steady = (xs: number[]) => {
      const a = xs[Math.floor(xs.length * 0.1)] as number;
      const b = xs[Math.floor(xs.length * 0.9)] as number;
      return b > a ? round((Math.floor(xs.length * 0.9) - Math.floor(xs.length * 0.1)) / ((b - a) / 1000), 0) : null;
    };
    const byHop = (idx: number[]) => {
      const [amiToStream, streamToReceiver] = hops(stored, d, idx);
      return { amiToStream, streamToReceiver };
    };
    const perSecond = (idx: number[], from: number) => {
      const by = new Map<number, number[]>();
      for (const i of idx) {
        const s = Math.floor(((d.time[i] as number) - from) / 1000);
        by.set(s, [...(by.get(s) ?? []), (d.at[i] as number) - (d.time[i] as number)]);
      }
      return [...by.entries()].sort((x, y) => x[0] - y[0]).map(([s, v]) => ({ s, n: v.length, p50: latencyStats(v).p50, p99: latencyStats(v).p99 }));
    };
    const perNode = (idx: number[]) => Array.from({ length: nodes }, (_, j) => idx.filter((i) => d.node[i] === j + 1).length);
    out.warmup = warm && {
      clones: warmClones,
      feed: warm,
      expected: expected0,
      delivered: idx0.length,
      latencyMs: latencyStats(idx0.map((i) => (d.at[i] as number) - (d.time[i] as number))),
      latencyMsByHop: byHop(idx0),
      latencyMsPerSecondOfSending: perSecond(idx0, warm.startedAt),
    };
    out.paced = {
      offeredEventsPerSec: opts.rate,
      clones: pacedClones,
      feed: paced,
      offeredAchievedEventsPerSec: round(expected1 / paced.seconds, 0),
      expected: expected1,
      delivered: idx1.length,
      lost: expected1 - idx1.length,
      receivedPerSecWhileSending: round(inFeed / ((paced.endedAt - paced.startedAt - 3000) / 1000), 0),
      lastArrivalAfterFeedEndMs: lastAt1 - paced.endedAt,
      latencyMs: latencyStats(lat1),
      latencyMsAfterFirst3s: latencyStats(latAfter3s),
      latencyMsByHop: byHop(idx1),
      latencyMsByPartitionKind: {
        callEvents: latencyStats(idx1.filter((i) => !agentEvent(i)).map((i) => (d.at[i] as number) - (d.time[i] as number))),
        agentEvents: latencyStats(idx1.filter((i) => agentEvent(i)).map((i) => (d.at[i] as number) - (d.time[i] as number))),
      },
      latencyMsPerSecondOfSending: perSecond(idx1, paced.startedAt),
      perNode: perNode(idx1),
      waitedForDeliveryMs: w1,
      cpuPctWhileSending: cpuPct(c0, c1),
      cpuPctDraining: cpuPct(c1, c2),
    };
    out.unpaced = {
      clones: maxClones,
      expected: expected2,
      delivered: idx2.length,
      lost: expected2 - idx2.length,
      amiWrittenSeconds: round((maxFed - maxStart) / 1000, 2),
      amiFramesPerSecIn: round(fed.bytes > 0 ? (maxClones * ten.framesPerClone) / ((maxFed - maxStart) / 1000) : 0, 0),
      firstToLastArrivalSeconds: at2.length ? round(((at2[at2.length - 1] as number) - (at2[0] as number)) / 1000, 2) : null,
      receivedPerSec: at2.length > 1 ? round(at2.length / (((at2[at2.length - 1] as number) - maxStart) / 1000), 0) : null,
      receivedPerSecSteady: at2.length > 10 ? steady(at2) : null,
      lastArrivalAfterAmiWrittenMs: at2.length ? (at2[at2.length - 1] as number) - maxFed : null,
      latencyMsByHop: byHop(idx2),
      perNode: perNode(idx2),
      cpuPctWhileWriting: cpuPct(c2, c3),
      cpuPctDraining: cpuPct(c3, c4),
      cpuPctWhole: cpuPct(c2, c4),
    };
    out.receiver = { requests: d.requests, duplicates: d.duplicates, bad: d.bad, outOfOrderWithinACall: d.outOfOrder };
    if (idx0.length !== expected0) problems.push(`warm-up: ${idx0.length} of ${expected0} events reached the receiver`);
    if (idx1.length !== expected1) problems.push(`paced: ${idx1.length} of ${expected1} events reached the receiver`);
    if (idx2.length !== expected2) problems.push(`unpaced: ${idx2.length} of ${expected2} events reached the receiver`);
    if (d.duplicates) problems.push(`${d.duplicates} events reached the receiver more than once`);
    if (d.outOfOrder) problems.push(`${d.outOfOrder} events arrived after a later event of their call`);
    if (d.bad) problems.push(`${d.bad} requests without a webhook-id or a parseable event`);
    if (ami.logins !== 1) problems.push(`the bridge logged in to AMI ${ami.logins} times`);
    const p = out.paced as { latencyMs: Stats; receivedPerSecWhileSending: number };
    const u = out.unpaced as { receivedPerSec: number | null; receivedPerSecSteady: number | null };
    process.stderr.write(`   paced: ${idx1.length}/${expected1} delivered, ${p.receivedPerSecWhileSending} events/s at the receiver while sending; latency p50 ${p.latencyMs.p50} p99 ${p.latencyMs.p99} max ${p.latencyMs.max} ms\n`);
    process.stderr.write(`   unpaced: ${idx2.length}/${expected2} delivered, ${String(u.receivedPerSec)} events/s at the receiver (steady middle ${String(u.receivedPerSecSteady)})\n`);
  });
}
