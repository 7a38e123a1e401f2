// bench/bus.ts's traffic: recorded calls as clones split into frames stamped when written, a
// pacer, and what `crm-bridge replay` makes of them (calibration).
import fs from 'node:fs';
import path from 'node:path';
import { CRLF, replay, Stamper, UID_HEADER } from '../harness/ami.js';
import { cloneFrames, loadCloneSet, renderClone, type CallTrace, type CloneSet } from '../harness/clones.js';
import { recording } from '../harness/env.js';
import { pace, type Paced, type Writer } from '../harness/feed.js';
import { round } from '../harness/stats.js';
import { pbxConfig } from './lab.js';

// ------------------------------------------------------------------------------------------------
// AMI frames: a rendered clone split into frames, each with its Timestamp value cut out so that it
// is stamped when written.

export interface Frame {
  pre: string;
  post: string | null;
  /** The recorded (clone-window) Timestamp value. */
  ts: string | null;
}

export function splitFrames(text: string): Frame[] {
  const out: Frame[] = [];
  for (const f of text.split(`${CRLF}${CRLF}`)) {
    if (f === '') continue;
    const s = `${f}${CRLF}${CRLF}`;
    let i = s.startsWith('Timestamp: ') ? 0 : s.indexOf(`${CRLF}Timestamp: `);
    if (i < 0) {
      out.push({ pre: s, post: null, ts: null });
      continue;
    }
    if (i > 0) i += CRLF.length;
    const v = i + 'Timestamp: '.length;
    const e = s.indexOf(CRLF, v);
    out.push({ pre: s.slice(0, v), post: s.slice(e), ts: s.slice(v, e) });
  }
  return out;
}

export const stamped = (f: Frame, stamper: Stamper): string => (f.post === null ? f.pre : f.pre + stamper.stamp() + f.post);

/** Clone after clone, frame by frame, each stamped when taken. */
export class CloneFeed {
  clone: number;
  framesSent = 0;
  private frames: Frame[] = [];
  private i = 0;
  constructor(
    private readonly render: (k: number) => string,
    private readonly stamper: Stamper,
    firstClone = 0,
  ) {
    this.clone = firstClone;
  }
  next(): string {
    if (this.i >= this.frames.length) {
      this.frames = splitFrames(this.render(this.clone++));
      this.i = 0;
    }
    this.framesSent++;
    return stamped(this.frames[this.i++] as Frame, this.stamper);
  }
}

/**
 * Rewrites the recorded agents' extensions wherever they stand alone (Local/201@agents, Exten: 201,
 * MemberName: Agent 201, …; not inside ids or Timestamps, where .201 may be a sequence number).
 * `to(ext)` gives the new extension; `did` (a DID ending in the agent's extension) follows it.
 */
export function agentRewriter(agents: string[], did: string | null = null): (text: string, to: (ext: string) => string) => string {
  const AGENT = new RegExp(`${did ? `(?<![0-9])(${did})(?![0-9])|` : ''}(?<![0-9A-Za-z])(${agents.join('|')})(?![0-9])`, 'g');
  return (text, to) =>
    text
      .split(CRLF)
      .map((line) => {
        const header = line.slice(0, Math.max(0, line.indexOf(': ')));
        if (header === 'Timestamp' || header === 'BridgeUniqueid' || UID_HEADER.test(header)) return line;
        return line.replace(AGENT, (m) => {
          if (did && m === did) {
            const ext = agents.find((a) => did.endsWith(a)) ?? '';
            return did.slice(0, did.length - ext.length) + to(ext);
          }
          return to(m);
        });
      })
      .join(CRLF);
}

export interface FeedResult {
  frames: number;
  startedAt: number;
  endedAt: number;
  seconds: number;
  framesPerSecAchieved: number;
  /** How far behind its schedule the writer got (timer granularity, a busy machine). */
  maxLagMs: number;
}

/** `p` as the bus reports a feed. */
export const feedResult = (p: Paced): FeedResult => ({ frames: p.frames, startedAt: p.startedAt, endedAt: p.endedAt, seconds: round(p.seconds, 2), framesPerSecAchieved: round(p.frames / p.seconds, 0), maxLagMs: round(p.lateMs.reduce((a, b) => Math.max(a, b), 0), 1) });

/** Writes `total` frames at `framesPerSec`, every ~1 ms tick, through `write`. */
export async function feedPaced(write: Writer, next: () => string, total: number, framesPerSec: number, onTick?: (elapsedMs: number) => void): Promise<FeedResult> {
  const deadline = Date.now() + (total / framesPerSec) * 1000 * 3 + 30_000;
  return feedResult(await pace(total, (i) => ((i + 1) * 1000) / framesPerSec, next, write, deadline, onTick));
}

// ------------------------------------------------------------------------------------------------
// Calibration through the real `crm-bridge replay` (same pbx.name and calls settings as the bridges).

export function replayEvents(dir: string, name: string, greeting: string, body: string): Array<Record<string, unknown>> {
  const trace = path.join(dir, `${name}.ami`);
  fs.writeFileSync(trace, greeting + body, 'latin1');
  const config = path.join(dir, `${name}-replay.yaml`);
  fs.writeFileSync(config, pbxConfig(5038, 'nats://127.0.0.1:4222', dir, 'replay').replace(/sinks:\n(?: {2}.*\n)+/, 'sinks: []\n').replace('level: info', 'level: warn'));
  try {
    return replay(trace, config).events;
  } finally {
    fs.rmSync(trace, { force: true });
  }
}

export interface TenCalls {
  set: CloneSet;
  trace: CallTrace;
  /** Clone k as AMI text (its agents rewritten unless recorded agents were asked for). */
  render(k: number): string;
  agents: string;
  framesPerClone: number;
  eventsPerClone: number;
  /** Events of the first clone beyond eventsPerClone. */
  eventsOnce: number;
  eventsPerFrame: number;
  eventsFor123: number[];
  distinctAgentsIn3Clones: number;
}

/**
 * Clones of ten-calls.ami (10 queue calls answered by agents 201 and 202). Fresh agents: clone k's
 * agents are 10000 + 2k and 10001 + 2k, so that agent events spread over partitions as on a floor
 * with many agents, instead of every clone's agent events landing on the same two.
 */
export function calibrateTenCalls(dir: string, freshAgents: boolean): TenCalls {
  const set = loadCloneSet([recording('ten-calls.ami')]);
  const trace = set.traces[0] as CallTrace;
  const text0 = renderClone(trace, 0);
  const recorded = [...new Set([...text0.matchAll(/^Interface: Local\/(\d{2,6})@agents\r$/gm)].map((m) => m[1] as string))].sort();
  const rewrite = agentRewriter(recorded);
  const render = freshAgents ? (k: number) => rewrite(renderClone(trace, k), (ext) => String(10000 + k * recorded.length + recorded.indexOf(ext))) : (k: number) => renderClone(trace, k);
  const framesPerClone = cloneFrames(trace, 'full');
  if (splitFrames(render(0)).length !== framesPerClone) throw new Error('calibration: splitting a clone into frames does not give its frame count');
  const counts: number[] = [];
  let agents3 = 0;
  for (const n of [1, 2, 3]) {
    let body = '';
    for (let k = 0; k < n; k++) body += render(k);
    const events = replayEvents(dir, `ten-calls-${n}`, set.greeting, body);
    counts.push(events.length);
    if (n === 3) {
      if (new Set(events.map((e) => e.callId).filter(Boolean)).size !== 3 * trace.calls) throw new Error('calibration: 3 clones of ten-calls did not make 30 distinct calls');
      agents3 = new Set(events.map((e) => (e.agent as { id?: string } | null | undefined)?.id).filter(Boolean)).size;
      if (freshAgents && agents3 !== 3 * recorded.length) throw new Error(`calibration: 3 clones with fresh agents named ${agents3} agents, not ${3 * recorded.length}`);
    }
  }
  const [e1, e2, e3] = counts as [number, number, number];
  if (e3 - e2 !== e2 - e1) throw new Error(`calibration: events per clone are not constant (${counts.join(', ')})`);
  const perClone = e2 - e1;
  return {
    set,
    trace,
    render,
    agents: freshAgents ? `${recorded.join(', ')} -> 10000 + k × ${recorded.length} + i in clone k` : `${recorded.join(', ')} in every clone (as recorded)`,
    framesPerClone,
    eventsPerClone: perClone,
    eventsOnce: e1 - perClone,
    eventsPerFrame: perClone / framesPerClone,
    eventsFor123: counts,
    distinctAgentsIn3Clones: agents3,
  };
}

export interface DirectCalls {
  set: CloneSet;
  trace: CallTrace;
  recordedAgent: string;
  did: string | null;
  /** Each frame's offset from the call's first frame in the recording, ms. */
  offsetsMs: number[];
  eventsPerCall: number;
  agentOf(call: number): string;
  /** Call `call`'s frames (agent rewritten) and its call id (its first Linkedid). */
  render(call: number): { frames: Frame[]; callId: string };
}

export function loadDirectCalls(agentBase: number, agents: number): Omit<DirectCalls, 'eventsPerCall'> {
  const set = loadCloneSet([recording('direct-answered.ami')]);
  const trace = set.traces[0] as CallTrace;
  const text0 = renderClone(trace, 0);
  const exts = new Set([...text0.matchAll(/^(?:DialString|Interface|StateInterface): (?:Local\/)?(\d{2,6})@agents\r$/gm)].map((m) => m[1] as string));
  if (exts.size !== 1) throw new Error(`direct-answered.ami: expected a call to one agent, found ${[...exts].join(', ')}`);
  const recordedAgent = [...exts][0] as string;
  const did = /^DialString: (\d+)@from-pstn\r$/m.exec(text0)?.[1] ?? null;
  const agentOf = (call: number) => String(agentBase + (call % agents));
  const rewrite = agentRewriter([recordedAgent], did);
  const frames0 = splitFrames(text0);
  const t0 = Number(frames0.find((f) => f.ts !== null)?.ts ?? 0);
  const offsetsMs: number[] = [];
  for (const f of frames0) offsetsMs.push(Math.max(offsetsMs[offsetsMs.length - 1] ?? 0, f.ts !== null ? round((Number(f.ts) - t0) * 1000, 3) : 0));
  return {
    set,
    trace,
    recordedAgent,
    did,
    offsetsMs,
    agentOf,
    render: (call) => {
      const text = rewrite(renderClone(trace, call), () => agentOf(call));
      return { frames: splitFrames(text), callId: /^Linkedid: (\S+)\r$/m.exec(text)?.[1] ?? '?' };
    },
  };
}

export function calibrateDirectCalls(dir: string, agentBase: number, agents: number): DirectCalls {
  const d = loadDirectCalls(agentBase, agents);
  let body = '';
  const want: Array<{ callId: string; agent: string }> = [];
  for (let k = 0; k < 3; k++) {
    const { frames, callId } = d.render(k);
    body += frames.map((f) => (f.post === null ? f.pre : f.pre + String(f.ts) + f.post)).join('');
    want.push({ callId, agent: d.agentOf(k) });
  }
  const events = replayEvents(dir, 'direct-3', d.set.greeting, body);
  const rings = events.filter((e) => e.type === 'call.ringing').map((e) => ({ callId: String(e.callId), agent: String((e.agent as { id?: string } | null)?.id) }));
  if (JSON.stringify(rings) !== JSON.stringify(want)) throw new Error(`calibration: 3 rewritten calls rang ${JSON.stringify(rings)}, expected ${JSON.stringify(want)}`);
  if (events.length % 3 !== 0) throw new Error(`calibration: ${events.length} events for 3 calls`);
  return { ...d, eventsPerCall: events.length / 3 };
}

