// bench/webhook.ts's traffic: ten-calls.ami as templates, repetition after repetition, what
// `crm-bridge replay` makes of 1, 2 and 3 repetitions (calibration), and the feeds: paced or unpaced.
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CHANNEL, CRLF, loadTemplate, render, replay, Stamper, writeReplayFile, type Part, type TemplateTrace } from '../harness/ami.js';
import { recording } from '../harness/env.js';
import { feedSocket, pace, writeTo } from '../harness/feed.js';
import { tempDir, removeDir } from '../harness/run.js';
import { round, spreadMs } from '../harness/stats.js';

export const TRACE_PATH = recording('ten-calls.ami');
export const NPROC = os.availableParallelism();

export interface Trace extends TemplateTrace {
  freshAgents: boolean;
  rewritten: { uniqueidEpochs: [number, number]; channelSeqs: [number, number]; headers: string[]; agents: string };
}

export function loadTrace(freshAgents: boolean): Trace {
  // The agents' extensions, from the queue members' interfaces (Local/201@agents, PJSIP/201).
  const agentExts: string[] = [];
  const t = loadTemplate(TRACE_PATH, (body, channels) => {
    for (const m of body.matchAll(/^(?:Interface|StateInterface): (?:Local|PJSIP|SIP)\/(\d{2,6})(?:@[^\r]*)?\r$/gm)) if (!agentExts.includes(m[1] as string)) agentExts.push(m[1] as string);
    agentExts.sort();
    if (!freshAgents || !agentExts.length) return null;
    // +agents: repetition r gets its own agents 10000 + r × (number of agents) + i, so agent
    // partitions are as many as in a contact centre with that many agents instead of the recorded two.
    const AGENT = new RegExp(`(?<![0-9A-Za-z])(${agentExts.join('|')})(?![0-9])`, 'g');
    return (line) => {
      CHANNEL.lastIndex = 0;
      const hit = AGENT.test(line) || CHANNEL.test(line);
      AGENT.lastIndex = 0;
      CHANNEL.lastIndex = 0;
      return hit ? (rep) => channels(line, rep).replace(AGENT, (ext: string) => String(10000 + rep * agentExts.length + agentExts.indexOf(ext))) + CRLF : null;
    };
  });
  const { eMin, eMax, cMin, cMax, headers } = t.ids;
  return { ...t, freshAgents, rewritten: { uniqueidEpochs: [eMin, eMax], channelSeqs: [cMin, cMax], headers: [...headers].sort(), agents: freshAgents ? `${agentExts.join(', ')} -> 10000 + rep × ${agentExts.length} + i` : `${agentExts.join(', ')} (as recorded, in every repetition)` } };
}

/** Renders repetition after repetition, frame by frame. */
export class Stream {
  rep = 0;
  index = 0;
  framesSent = 0;
  bytesSent = 0;
  constructor(
    private readonly trace: Trace,
    private readonly stamper: Stamper,
  ) {}
  get framesPerRep(): number {
    return this.trace.frames.length;
  }
  /** The next frame, stamped now. */
  next(): string {
    const s = render(this.trace.frames[this.index] as Part[], this.rep, this.stamper.stamp());
    if (++this.index >= this.trace.frames.length) {
      this.index = 0;
      this.rep++;
    }
    this.framesSent++;
    this.bytesSent += s.length;
    return s;
  }
}

// ------------------------------------------------------------------------------------------------
// Calibration: normalized events per repetition, via the real `crm-bridge replay`.

export interface Calibration {
  framesPerRep: number;
  bytesPerRep: number;
  /** Events of a stream of 1, 2, 3 repetitions. */
  eventsForReps: number[];
  eventsPerRep: number;
  /** Events of a 1-repetition stream minus eventsPerRep (once-only events). */
  eventsOnce: number;
  eventsPerFrame: number;
  distinctCallsFor3Reps: number;
  distinctAgentsFor3Reps: number;
  eventTypesPerRep: Record<string, number>;
  replayStderr: string;
}

export function calibrate(trace: Trace): Calibration {
  const dir = tempDir('crm-bridge-bench-cal-');
  try {
    const counts: number[] = [];
    let calls3 = 0;
    let agents3 = 0;
    const types: Record<string, number> = {};
    let stderr = '';
    for (const reps of [1, 2, 3]) {
      const file = path.join(dir, `reps-${reps}.ami`);
      writeReplayFile(trace, reps, file);
      const { events, stderr: err } = replay(file);
      stderr += err;
      counts.push(events.length);
      if (reps === 1) for (const e of events) types[String(e.type)] = (types[String(e.type)] ?? 0) + 1;
      if (reps === 3) {
        calls3 = new Set(events.filter((e) => typeof e.callId === 'string').map((e) => e.callId)).size;
        agents3 = new Set(events.map((e) => (e.agent as { id?: string } | undefined)?.id).filter(Boolean)).size;
      }
    }
    const [e1, e2, e3] = counts as [number, number, number];
    const perRep = e2 - e1;
    if (e3 - e2 !== perRep) throw new Error(`calibration: events per repetition are not constant (${counts.join(', ')} for 1, 2, 3 repetitions)`);
    if (calls3 !== 30) throw new Error(`calibration: 3 repetitions gave ${calls3} distinct calls, not 30: the per-repetition rewriting is incomplete`);
    return { framesPerRep: trace.frames.length, bytesPerRep: trace.bytesPerRep, eventsForReps: counts, eventsPerRep: perRep, eventsOnce: e1 - perRep, eventsPerFrame: perRep / trace.frames.length, distinctCallsFor3Reps: calls3, distinctAgentsFor3Reps: agents3, eventTypesPerRep: types, replayStderr: stderr };
  } finally {
    removeDir(dir);
  }
}

// ------------------------------------------------------------------------------------------------
// Feeding the daemon

export interface FeedResult {
  mode: 'paced' | 'max';
  reps: number;
  frames: number;
  bytes: number;
  startedAt: number;
  endedAt: number;
  seconds: number;
  framesPerSecAchieved: number;
  /** paced: timer ticks and their gaps; how far the pacer fell behind. */
  ticks?: number;
  tickGapMs?: { p50: number; p99: number; max: number };
  maxFramesPerWrite: number;
  /** Bytes queued in this process because the daemon did not read fast enough. */
  maxWritableLengthBytes: number;
  drainWaits: number;
  stampsBorrowed: number;
}

/** Paced: `reps` repetitions at `framesPerSec`, the frames due written every ~1 ms timer tick. */
export async function feedPaced(socket: net.Socket, stream: Stream, stamper: Stamper, reps: number, framesPerSec: number, deadline: number): Promise<FeedResult> {
  const p = await pace(reps * stream.framesPerRep, (i) => ((i + 1) * 1000) / framesPerSec, () => stream.next(), writeTo(socket, 512), deadline);
  return { mode: 'paced', reps, frames: p.frames, bytes: stream.bytesSent, startedAt: p.startedAt, endedAt: p.endedAt, seconds: p.seconds, framesPerSecAchieved: round(p.frames / p.seconds, 0), ticks: p.ticks, tickGapMs: spreadMs(p.tickGapsMs), maxFramesPerWrite: p.maxFramesPerWrite, maxWritableLengthBytes: p.maxWritableLengthBytes, drainWaits: 0, stampsBorrowed: stamper.borrowed };
}

/** Unpaced: as fast as the socket drains, ~64 KiB per write, whole repetitions, for `seconds`. */
export async function feedMax(socket: net.Socket, stream: Stream, stamper: Stamper, seconds: number, maxReps: number, deadline: number): Promise<FeedResult> {
  const startedAt = Date.now();
  const stopAt = startedAt + seconds * 1000;
  const next = () => (stream.index === 0 && (Date.now() >= stopAt || stream.rep >= maxReps) ? null : stream.next());
  const u = await feedSocket(socket, next, { chunkBytes: 65536, unitEnds: () => stream.index === 0, deadline });
  const endedAt = Date.now();
  return { mode: 'max', reps: stream.rep, frames: stream.framesSent, bytes: stream.bytesSent, startedAt, endedAt, seconds: (endedAt - startedAt) / 1000, framesPerSecAchieved: round(stream.framesSent / ((endedAt - startedAt) / 1000), 0), maxFramesPerWrite: u.maxFramesPerWrite, maxWritableLengthBytes: u.maxWritableLengthBytes, drainWaits: u.drainWaits, stampsBorrowed: stamper.borrowed };
}
