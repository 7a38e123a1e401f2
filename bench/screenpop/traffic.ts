// bench/screenpop.ts's traffic: the recorded direct call as templates, one agent per call, what
// `crm-bridge replay` makes of 3 calls (calibration), and the feeds: paced on a schedule, or unpaced.
import type net from 'node:net';
import path from 'node:path';
import { CRLF, loadTemplate, render, replay, Stamper, writeReplayFile, type Part, type TemplateTrace } from '../harness/ami.js';
import { recording } from '../harness/env.js';
import { feedSocket, pace, schedule, writeTo } from '../harness/feed.js';
import { removeDir, tempDir } from '../harness/run.js';
import { round, spreadMs } from '../harness/stats.js';

export const TRACE_PATH = recording('direct-answered.ami');
/** http.bufferPerAgent's schema default (src/config/schema.ts); the bench config leaves it unset. */
export const BUFFER_PER_AGENT = 200;

// ------------------------------------------------------------------------------------------------
// The AMI stream: the recorded trace's frames as templates, rendered per call.

export interface Trace extends TemplateTrace {
  /** Each frame's offset from the call's first frame in the recording (its Timestamp), ms. */
  offsetsMs: number[];
  /** The call id (the first Linkedid) of repetition `rep`. */
  callIdOf(rep: number): string;
  /** The agent id (= extension) repetition `rep` rings. */
  agentOf(rep: number): string;
  bytesPerCall: number;
  rewritten: { recordedAgent: string; did: string | null; uniqueidEpochs: [number, number]; channelSeqs: [number, number]; headers: string[]; agents: string };
}

export function loadTrace(agentBase: number, agents: number): Trace {
  const agentOf = (rep: number) => String(agentBase + (rep % agents));
  const found = { agent: '', did: null as string | null };
  const t = loadTemplate(TRACE_PATH, (text, channels) => {
    // The one agent the recorded call rings, and the DID it came in on.
    const exts = new Set([...text.matchAll(/^(?:DialString|Interface|StateInterface): (?:Local\/)?(\d{2,6})@agents\r$/gm)].map((m) => m[1] as string));
    if (exts.size !== 1) throw new Error(`${TRACE_PATH}: expected a direct call to one agent (Local/EXT@agents), found ${exts.size}: ${[...exts].join(', ')}`);
    const agent = (found.agent = [...exts][0] as string);
    const did = (found.did = /^DialString: (\d+)@from-pstn\r$/m.exec(text)?.[1] ?? null);
    // One pass over a line: the DID (41004201 -> 41004 + ext) and the agent extension standing alone.
    const AGENT = new RegExp(`${did ? `(?<![0-9])(${did})(?![0-9])|` : ''}(?<![0-9A-Za-z])(${agent})(?![0-9])`, 'g');
    return (line) => {
      AGENT.lastIndex = 0;
      const hit = AGENT.test(line);
      AGENT.lastIndex = 0;
      // The agent (and DID) first, then the channel sequence numbers (8 hex digits after '-',
      // which the agent pattern cannot touch).
      return hit ? (rep) => channels(line.replace(AGENT, (m: string) => (did && m === did ? did.slice(0, did.length - agent.length) + agentOf(rep) : agentOf(rep))), rep) + CRLF : null;
    };
  });
  const { eMin, eMax, cMin, cMax, headers, firstLinked } = t.ids;
  const [linkedEpoch, linkedRest] = (firstLinked as string).split('.') as [string, string];
  const t0 = t.stamps[0] as number;
  const offsetsMs = t.stamps.map((s) => Math.max(0, round((s - t0) * 1000, 3)));
  for (let i = 1; i < offsetsMs.length; i++) offsetsMs[i] = Math.max(offsetsMs[i] as number, offsetsMs[i - 1] as number);
  const { agent, did } = found;
  return {
    ...t,
    offsetsMs,
    callIdOf: (rep) => `${Number(linkedEpoch) + rep * t.epochSpan}.${linkedRest}`,
    agentOf,
    bytesPerCall: t.bytesPerRep,
    rewritten: { recordedAgent: agent, did, uniqueidEpochs: [eMin, eMax], channelSeqs: [cMin, cMax], headers: [...headers].sort(), agents: `${agent} -> ${agentBase} + (call mod ${agents})${did ? `; DID ${did} -> ${did.slice(0, did.length - agent.length)}<agent>` : ''}` },
  };
}

// ------------------------------------------------------------------------------------------------
// Calibration: what the real `crm-bridge replay` makes of 3 rewritten calls.

export interface Calibration {
  framesPerCall: number;
  bytesPerCall: number;
  eventsPerCall: number;
  eventTypesPerCall: Record<string, number>;
  /** Events of a call that name its agent: what that agent's stream receives (call.started names none). */
  messagesPerCallToAgent: number;
  /** Of those, call.* events (ringing, answered, hangup): the ones due whatever the agent's other calls. */
  callMessagesPerCallToAgent: number;
  callIds: string[];
  ringAgents: string[];
  recordedGapsMs: { answer: number | null; hangup: number | null; last: number };
}

export function calibrate(trace: Trace): Calibration {
  const dir = tempDir('crm-bridge-bench-cal-');
  try {
    const file = path.join(dir, 'calls-3.ami');
    writeReplayFile(trace, 3, file);
    const events = replay(file).events as Array<{ type: string; callId?: string; agent?: { id?: string } | null }>;
    const callIds = [...new Set(events.map((e) => e.callId).filter((c): c is string => typeof c === 'string'))];
    const want = [0, 1, 2].map((i) => trace.callIdOf(i));
    if (callIds.join() !== want.join()) throw new Error(`calibration: calls ${callIds.join(', ')}, expected ${want.join(', ')}: the per-call rewriting is incomplete`);
    const rings = events.filter((e) => e.type === 'call.ringing');
    const ringAgents = rings.map((e) => e.agent?.id ?? '?');
    if (ringAgents.join() !== [0, 1, 2].map((i) => trace.agentOf(i)).join()) throw new Error(`calibration: the 3 calls rang ${ringAgents.join(', ')}, expected ${[0, 1, 2].map((i) => trace.agentOf(i)).join(', ')}`);
    if (events.length % 3 !== 0) throw new Error(`calibration: ${events.length} events for 3 calls`);
    const first = events.slice(0, events.length / 3);
    const types: Record<string, number> = {};
    for (const e of first) types[e.type] = (types[e.type] ?? 0) + 1;
    const mine = first.filter((e) => e.agent?.id === trace.agentOf(0));
    // Recorded gaps, for the report: where call.answered / call.hangup come from in the recording.
    const offs = trace.offsetsMs;
    const bigGaps = offs.map((o, i) => (i > 0 ? o - (offs[i - 1] as number) : 0));
    const jumps = bigGaps.map((g, i) => (g > 200 ? (offs[i] as number) : null)).filter((x): x is number => x !== null);
    return {
      framesPerCall: trace.frames.length,
      bytesPerCall: trace.bytesPerCall,
      eventsPerCall: first.length,
      eventTypesPerCall: types,
      messagesPerCallToAgent: mine.length,
      callMessagesPerCallToAgent: mine.filter((e) => e.type.startsWith('call.')).length,
      callIds,
      ringAgents,
      recordedGapsMs: { answer: jumps[0] ?? null, hangup: jumps[jumps.length - 1] ?? null, last: offs[offs.length - 1] as number },
    };
  } finally {
    removeDir(dir);
  }
}
export interface FeedResult {
  timing: 'recorded' | 'back-to-back' | 'unpaced';
  firstCall: number;
  calls: number;
  frames: number;
  bytes: number;
  startedAt: number;
  endedAt: number;
  seconds: number;
  framesPerSecAchieved: number;
  callsPerSecAchieved: number;
  /** paced: how late frames were written against their schedule (timer granularity, load). */
  lateMs?: { p50: number; p99: number; max: number };
  ticks?: number;
  maxFramesPerWrite: number;
  maxWritableLengthBytes: number;
  drainWaits: number;
  stampsBorrowed: number;
}

/**
 * Paced: call n (n = 0 … calls−1) starts at n × 1000 / rate ms; its frames at their recorded
 * offsets (timing recorded) or one per frame interval (back-to-back).
 */
export async function feedPaced(socket: net.Socket, trace: Trace, stamper: Stamper, firstCall: number, calls: number, rate: number, timing: 'recorded' | 'back-to-back', deadline: number): Promise<FeedResult> {
  const F = trace.frames.length;
  const { order, due } = schedule(calls, F, rate, (j) => (timing === 'recorded' ? (trace.offsetsMs[j] as number) : (j * 1000) / rate / F));
  const callStarts: number[] = [];
  const take = (i: number) => {
    const idx = order[i] as number;
    if (idx % F === 0) callStarts.push(Date.now());
    return render(trace.frames[idx % F] as Part[], firstCall + Math.floor(idx / F), stamper.stamp());
  };
  const p = await pace(order.length, (i) => due[order[i] as number] as number, take, writeTo(socket), deadline);
  const startsS = ((callStarts[callStarts.length - 1] ?? 0) - (callStarts[0] ?? 0)) / 1000;
  return {
    timing,
    firstCall,
    calls,
    frames: p.frames,
    bytes: p.bytes,
    startedAt: p.startedAt,
    endedAt: p.endedAt,
    seconds: p.seconds,
    framesPerSecAchieved: round(p.frames / p.seconds, 0),
    callsPerSecAchieved: calls > 1 ? round((calls - 1) / Math.max(0.001, startsS), 2) : Number.NaN,
    lateMs: spreadMs(p.lateMs),
    ticks: p.ticks,
    maxFramesPerWrite: p.maxFramesPerWrite,
    maxWritableLengthBytes: p.maxWritableLengthBytes,
    drainWaits: 0,
    stampsBorrowed: stamper.borrowed,
  };
}

/** Unpaced: whole calls back-to-back, ~64 KiB per write, as fast as the daemon reads. */
export async function feedUnpaced(socket: net.Socket, trace: Trace, stamper: Stamper, firstCall: number, maxCalls: number, maxSeconds: number, deadline: number, onProgress: (calls: number) => void): Promise<FeedResult> {
  const startedAt = Date.now();
  const stopAt = startedAt + maxSeconds * 1000;
  const F = trace.frames.length;
  let j = 0;
  let done = 0;
  const next = () => {
    if (j === 0 && (done >= maxCalls || Date.now() >= stopAt)) return null;
    const s = render(trace.frames[j] as Part[], firstCall + done, stamper.stamp());
    if (++j >= F) {
      j = 0;
      onProgress(++done);
    }
    return s;
  };
  const u = await feedSocket(socket, next, { chunkBytes: 65536, unitEnds: () => j === 0 && done >= maxCalls, deadline });
  const endedAt = Date.now();
  const seconds = (endedAt - startedAt) / 1000;
  return {
    timing: 'unpaced',
    firstCall,
    calls: done,
    frames: u.frames,
    bytes: u.bytes,
    startedAt,
    endedAt,
    seconds,
    framesPerSecAchieved: round(u.frames / seconds, 0),
    callsPerSecAchieved: round(done / seconds, 1),
    maxFramesPerWrite: u.maxFramesPerWrite,
    maxWritableLengthBytes: u.maxWritableLengthBytes,
    drainWaits: u.drainWaits,
    stampsBorrowed: stamper.borrowed,
  };
}
