// bench/bus.ts (c): an HA pair, both publishing, one killed with SIGKILL.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { waitUntil } from '../harness/feed.js';
import { children, sleep, within } from '../harness/run.js';
import { cpuPct, type CpuSnap } from '../harness/sample.js';
import { latencyStats, round } from '../harness/stats.js';
import { connections, cpuSnap, inLab, pbxConfig, STREAM, waitLog, type Options } from './lab.js';
import { CloneFeed, feedPaced, replayEvents, type TenCalls } from './traffic.js';

// ------------------------------------------------------------------------------------------------
// (c) HA pair: both publish, one killed with SIGKILL

export interface Stored {
  seq: number;
  msgId: string;
  storedAt: number;
  receivedAt: number;
  time: number;
}

/** Longest gap between consecutive entries of ascending `ts` whose later entry lies in (from, to]; with the pair's indexes. */
export function longestGap(ts: number[], from: number, to: number): { gapMs: number; i: number } {
  let best = { gapMs: 0, i: -1 };
  for (let i = 1; i < ts.length; i++) {
    const t = ts[i] as number;
    if (t <= from || t > to) continue;
    const g = t - (ts[i - 1] as number);
    if (g > best.gapMs) best = { gapMs: round(g, 3), i };
  }
  return best;
}

export async function runFailover(ten: TenCalls, opts: Options): Promise<Record<string, unknown>> {
  return inLab('crm-bridge-bench-bus-c-', {}, async ({ dir, nats, stamper, procs, out, problems, daemon, amiServer, atEnd }) => {
    const stored: Stored[] = [];
    // A subscriber from the stream's start: what the stream holds, in order, as it is stored.
    const nc = await connect({ servers: [nats.url] });
    const consumer = await jetstream(nc).consumers.get(STREAM);
    const iter = await consumer.consume();
    void (async () => {
      for await (const m of iter as AsyncIterable<JsMsg>) {
        const receivedAt = performance.timeOrigin + performance.now();
        const ev = m.json<{ time?: string }>();
        stored.push({ seq: m.seq, msgId: m.headers?.get('Nats-Msg-Id') ?? '', storedAt: Number(m.timestampNanos / BigInt(1000)) / 1000, receivedAt, time: Date.parse(ev.time ?? '') });
      }
    })().catch(() => undefined);
    atEnd(async () => {
      iter.stop();
      await nc.close().catch(() => undefined);
    }, true);
    const sockets: net.Socket[] = [];
    const ami = await amiServer(ten.set, { onLogin: (s) => sockets.push(s) });
    const a = daemon('bridge-a', pbxConfig(ami.port, nats.url, dir, 'bridge-a'));
    await waitLog(a, (l) => l.msg === 'NATS connected', 'bridge A to reach NATS');
    const b = daemon('bridge-b', pbxConfig(ami.port, nats.url, dir, 'bridge-b'));
    await waitLog(b, (l) => l.msg === 'NATS connected', 'bridge B to reach NATS');
    for (let i = 0; sockets.length < 2 && i < 300; i++) await sleep(100);
    if (sockets.length < 2) throw new Error(`${sockets.length} of 2 bridges logged in to AMI`);
    await sleep(500); // both have read their login's frames

    const clones = Math.max(1, Math.round((opts.haRate * opts.haSeconds) / ten.eventsPerClone));
    const fps = opts.haRate / ten.eventsPerFrame;
    const written: string[] = [];
    const feed = new CloneFeed(ten.render, stamper);
    let killedAt = Number.NaN;
    let cKill: CpuSnap | null = null;
    process.stderr.write(`   ${clones} clones (${clones * ten.eventsPerClone} events) at ${opts.haRate} events/s to both bridges; bridge A killed (SIGKILL) at ${opts.killAt} s\n`);
    const c0 = cpuSnap(procs);
    const fed = await feedPaced(
      (chunk) => {
        written.push(chunk);
        const live = sockets.filter((s) => !s.destroyed);
        if (live.length === 0) throw new Error('no bridge is connected to AMI any more');
        for (const s of live) s.write(chunk, 'latin1');
        return Math.max(...live.map((s) => s.writableLength));
      },
      () => feed.next(),
      clones * ten.framesPerClone,
      fps,
      (elapsed) => {
        if (Number.isNaN(killedAt) && elapsed >= opts.killAt * 1000) {
          cKill = cpuSnap(procs);
          killedAt = performance.timeOrigin + performance.now();
          a.child.kill('SIGKILL');
        }
      },
    );
    const c1 = cpuSnap(procs);
    const aExit = await within(a.exit, 10_000, 'bridge A to die');
    children.delete(a.child);
    // What the stream must hold: the ids `crm-bridge replay` makes of the very bytes written.
    const expected = replayEvents(dir, 'ha-written', ten.set.greeting, written.join(''));
    written.length = 0;
    const want = new Set(expected.map((e) => String(e.id)));
    await waitUntil(async () => new Set(stored.map((s) => s.msgId)), (have) => [...want].every((id) => have.has(id)), { capMs: 60_000, everyMs: 200 });
    await sleep(1000); // anything that would come after
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAM);
    const copies = new Map<string, number>();
    for (const s of stored) copies.set(s.msgId, (copies.get(s.msgId) ?? 0) + 1);
    const missing = [...want].filter((id) => !copies.has(id));
    const extra = [...copies.keys()].filter((id) => !want.has(id));
    const twice = [...copies.entries()].filter(([, n]) => n > 1);
    const storeTs = stored.map((s) => s.storedAt);
    const recvTs = stored.map((s) => s.receivedAt);
    const timeTs = stored.map((s) => s.time);
    const first = storeTs[0] ?? Number.NaN;
    const last = storeTs[storeTs.length - 1] ?? Number.NaN;
    // The longest gap in a span, with how far apart the same two events' AMI frames were written
    // (the traffic's own gap) and the excess: what the bus added.
    const gapIn = (ts: number[], from: number, to: number) => {
      const g = longestGap(ts, from, to);
      const amiGap = g.i > 0 ? (timeTs[g.i] as number) - (timeTs[g.i - 1] as number) : null;
      let excess = 0;
      for (let i = 1; i < ts.length; i++) {
        const t = ts[i] as number;
        if (t > from && t <= to) excess = Math.max(excess, t - (ts[i - 1] as number) - ((timeTs[i] as number) - (timeTs[i - 1] as number)));
      }
      return { longestGapMs: round(g.gapMs, 1), atMsAfterKill: g.i > 0 ? round((ts[g.i - 1] as number) - killedAt, 0) : null, sameEventsAmiGapMs: amiGap, longestExcessOverAmiGapMs: round(excess, 1) };
    };
    const spans = (ts: number[]) => ({
      aroundKill: gapIn(ts, killedAt - 1000, killedAt + 3000),
      beforeKill: gapIn(ts, first + 1000, killedAt - 1000),
      afterKill: gapIn(ts, killedAt + 3000, last),
    });
    const storeLat = (from: number, to: number) => latencyStats(stored.filter((s) => s.time >= from && s.time < to).map((s) => round(s.storedAt - s.time, 1)));
    out.feed = { clones, events: expected.length, eventsPerSec: opts.haRate, amiFramesPerSec: round(fps, 0), ...fed, killAfterS: opts.killAt };
    out.killedA = { atMsAfterFeedStart: round(killedAt - fed.startedAt, 0), exit: aExit };
    out.stream = {
      messages: info.state.messages,
      subscriberSaw: stored.length,
      expectedIds: want.size,
      missing: missing.length,
      extra: extra.length,
      idsMoreThanOnce: twice.length,
      exactlyOnce: missing.length === 0 && extra.length === 0 && twice.length === 0 && info.state.messages === want.size,
      firstMissing: missing.slice(0, 5),
      firstExtra: extra.slice(0, 5),
    };
    out.gaps = {
      spans: 'consecutive stream messages (stream order) whose later one lies in: around the kill (kill − 1 s, kill + 3 s]; before (first + 1 s, kill − 1 s]; after (kill + 3 s, last]',
      byStreamTimestamp: spans(storeTs),
      bySubscriberReceipt: spans(recvTs),
    };
    out.storeLatencyMs = {
      what: 'JetStream timestamp − AMI frame written, by when the frame was written',
      beforeKill: storeLat(fed.startedAt + 1000, killedAt - 500),
      aroundKill: storeLat(killedAt - 500, killedAt + 1000),
      afterKill: storeLat(killedAt + 1000, Infinity),
    };
    out.cpuPct = cKill ? { beforeKill: cpuPct(c0, cKill), afterKill: cpuPct(cKill, c1) } : null;
    // Both bridges published (the stream kept one copy): what each one's connection sent.
    out.publishersPerNatsServer = (await connections(nats.monitorPort))
      .filter((c) => c.name === `crm-bridge nats:${STREAM}`)
      .map((c) => ({ cid: c.cid, messagesIn: c.in_msgs, closed: c.reason ?? null }));
    if (!(out.stream as { exactlyOnce: boolean }).exactlyOnce) problems.push(`stream: ${missing.length} ids missing, ${extra.length} unexpected, ${twice.length} more than once, ${info.state.messages} messages for ${want.size} ids`);
    if (aExit.signal !== 'SIGKILL') problems.push(`bridge A did not die of SIGKILL (${JSON.stringify(aExit)})`);
    const g = (out.gaps as { byStreamTimestamp: Record<string, { longestGapMs: number }> }).byStreamTimestamp;
    process.stderr.write(`   stream: ${info.state.messages} messages for ${want.size} expected ids (missing ${missing.length}, extra ${extra.length}, twice ${twice.length}); longest gap around the kill ${g.aroundKill?.longestGapMs} ms (before ${g.beforeKill?.longestGapMs}, after ${g.afterKill?.longestGapMs} ms)\n`);
  });
}
