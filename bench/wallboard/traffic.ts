// bench/wallboard.ts's traffic: a contact centre of `queues` queues with `perQueue` agents each,
// made of real recordings — the agents log in with agent-session.ami's QueueMemberAdded, the calls
// are queue-answered.ami and queue-abandoned.ami — each clone with its own ids, queue, agents and
// caller; and the paced feed, which notes when each call's marked frames were written.
import type net from 'node:net';
import fs from 'node:fs';
import { CRLF, loadTemplate, render, type Part, type Stamper, type TemplateTrace } from '../harness/ami.js';
import { splitGreeting } from '../harness/dist.js';
import { recording } from '../harness/env.js';
import { pace, writeTo } from '../harness/feed.js';
import { round, spreadMs } from '../harness/stats.js';

export const ANSWERED = recording('queue-answered.ami');
export const ABANDONED = recording('queue-abandoned.ami');
export const SESSION = recording('agent-session.ami');

/** The floor: queue q is `q001`…; its agents are agentBase + q × perQueue + i, i < perQueue. */
export interface Floor {
  queues: number;
  perQueue: number;
  agentBase: number;
}
export const queueName = (q: number) => `q${String(q + 1).padStart(3, '0')}`;
export const agentExt = (f: Floor, q: number, i: number) => String(f.agentBase + q * f.perQueue + i);

/**
 * Call n: queue n mod queues; the c-th call of its queue (c = floor(n / queues)) rings the
 * queue's agent pair c mod (perQueue / 2) — the recordings ring two members (ringall), 201 and
 * 202, and 201 answers — so a pair's calls never overlap while a pair gets a call at most every
 * queues × pairs / rate s. Caller numbers are unique per call (+49151 + 8 digits).
 */
export function route(f: Floor, n: number): { queue: string; agents: [string, string]; caller: string } {
  const q = n % f.queues;
  const c = Math.floor(n / f.queues);
  const pair = c % Math.floor(f.perQueue / 2);
  return { queue: queueName(q), agents: [agentExt(f, q, 2 * pair), agentExt(f, q, 2 * pair + 1)], caller: `+49151${String(20_000_000 + n)}` };
}

export interface CallTrace extends TemplateTrace {
  name: 'answered' | 'abandoned';
  offsetsMs: number[];
  /** The clone number (template repetition) of call n, and back. */
  repOf(n: number): number;
  callIdOf(n: number): string;
  /** Indexes of the frames whose write time is noted: QueueCallerJoin, AgentConnect / QueueCallerAbandon. */
  marks: { join: number; answer: number | null; abandon: number | null };
}

const RECORDED = { queue: 'sales', agents: ['201', '202'], caller: '+4915112345678' };

function loadCall(file: string, name: CallTrace['name'], f: Floor, repBase: number): CallTrace {
  const t = loadTemplate(file, (text, channels) => {
    for (const a of RECORDED.agents) if (!text.includes(`Local/${a}@agents`)) throw new Error(`${file}: agent ${a} is not rung (the routing expects 201 and 202)`);
    if (!new RegExp(`^Queue: ${RECORDED.queue}\r$`, 'm').test(text)) throw new Error(`${file}: not a call to queue ${RECORDED.queue}`);
    // The queue name standing alone (Queue: sales, Queue:sales_avail), the members (Local/201@agents,
    // Agent 201, Exten: 201) and the caller's number.
    const RE = /(?<![0-9A-Za-z])(sales)(?![0-9A-Za-z])|(?<![0-9A-Za-z])(201|202)(?![0-9])|(\+4915112345678)/g;
    return (line) => {
      RE.lastIndex = 0;
      const hit = RE.test(line);
      RE.lastIndex = 0;
      if (!hit) return null;
      return (rep) => {
        const r = route(f, rep - repBase);
        return channels(line.replace(RE, (_m, q?: string, a?: string) => (q ? r.queue : a ? (a === '201' ? r.agents[0] : r.agents[1]) : r.caller)), rep) + CRLF;
      };
    };
  });
  const t0 = t.stamps[0] as number;
  const offsetsMs = t.stamps.map((s) => Math.max(0, round((s - t0) * 1000, 3)));
  for (let i = 1; i < offsetsMs.length; i++) offsetsMs[i] = Math.max(offsetsMs[i] as number, offsetsMs[i - 1] as number);
  const eventOf = (i: number) => /^Event: (\w+)/.exec(render(t.frames[i] as Part[], 0, '0'))?.[1];
  const find = (ev: string) => {
    const i = t.frames.findIndex((_, k) => eventOf(k) === ev);
    return i < 0 ? null : i;
  };
  const join = find('QueueCallerJoin');
  if (join === null) throw new Error(`${file}: no QueueCallerJoin`);
  const [linkedEpoch, linkedRest] = (t.ids.firstLinked as string).split('.') as [string, string];
  return {
    ...t,
    name,
    offsetsMs,
    repOf: (n) => n + repBase,
    callIdOf: (n) => `${Number(linkedEpoch) + (n + repBase) * t.epochSpan}.${linkedRest}`,
    marks: { join, answer: find('AgentConnect'), abandon: find('QueueCallerAbandon') },
  };
}

export interface Traffic {
  answered: CallTrace;
  abandoned: CallTrace;
  greeting: string;
  once: Part[][];
  /** Whether call n is abandoned: every `abandonEvery`-th call. */
  isAbandoned(n: number): boolean;
  trace(n: number): CallTrace;
  /** One agent's login: agent-session.ami's frames up to its QueueMemberAdded and the queue's state after it. */
  login(queue: string, agent: string, stamp: () => string): string;
  rewriting: string;
}

/**
 * The two call templates; the abandoned one's clone numbers start past every id the answered one
 * uses for `maxCalls` calls (Uniqueid epochs and channel sequence numbers of the two recordings
 * would otherwise meet).
 */
export function loadTraffic(f: Floor, maxCalls: number, abandonEvery: number): Traffic {
  const answered = loadCall(ANSWERED, 'answered', f, 0);
  const probe = loadTemplate(ABANDONED);
  const a = answered.ids;
  const b = probe.ids;
  const cSpanA = a.cMax - a.cMin + 1;
  const cSpanB = b.cMax - b.cMin + 1;
  const repBase = Math.max(0, Math.ceil((a.eMin + (maxCalls + 1) * answered.epochSpan - b.eMin) / probe.epochSpan), Math.ceil((a.cMin + (maxCalls + 1) * cSpanA - b.cMin) / cSpanB)) + 1;
  const abandoned = loadCall(ABANDONED, 'abandoned', f, repBase);
  // The login: FullyBooted/SuccessfulAuth come from the call template; the session's frames up
  // to QueueMemberAdded and the DeviceStateChange after it (its pause and removal are left out).
  const { body } = splitGreeting(fs.readFileSync(SESSION));
  const frames = body.toString('latin1').split(`${CRLF}${CRLF}`).filter((x) => x.startsWith('Event: ') && !/^Event: (FullyBooted|SuccessfulAuth)\r$/m.test(x));
  const added = frames.findIndex((x) => x.startsWith('Event: QueueMemberAdded'));
  if (added < 0) throw new Error(`${SESSION}: no QueueMemberAdded`);
  const loginFrames = frames.slice(0, added + 2).map((x) => `${x}${CRLF}${CRLF}`);
  const member = /^Interface: Local\/(\d+)@agents\r$/m.exec(frames[added] as string)?.[1];
  const queue = /^Queue: (\S+)\r$/m.exec(frames[added] as string)?.[1];
  if (!member || !queue) throw new Error(`${SESSION}: QueueMemberAdded without Queue/Interface`);
  const SESSION_RE = new RegExp(`(?<![0-9A-Za-z])(${queue})(?![0-9A-Za-z])|(?<![0-9A-Za-z])(${member})(?![0-9])`, 'g');
  return {
    answered,
    abandoned,
    greeting: answered.greeting,
    once: answered.once,
    isAbandoned: (n) => abandonEvery > 0 && n % abandonEvery === abandonEvery - 1,
    trace: (n) => (abandonEvery > 0 && n % abandonEvery === abandonEvery - 1 ? abandoned : answered),
    login: (q, agent, stamp) => loginFrames.map((x) => x.replace(SESSION_RE, (_m, qq?: string) => (qq ? q : agent)).replace(/^Timestamp: .*$/m, `Timestamp: ${stamp()}`)).join(''),
    rewriting:
      `per clone: Uniqueid/Linkedid epochs + clone × the recording's epoch span, channel sequence numbers + clone × their span, BridgeUniqueid tail + clone (harness loadTemplate); abandoned clones numbered from ${repBase} so the two recordings' ids never meet; ` +
      `queue 'sales' -> the call's queue; members 201/202 -> the queue's agent pair (Local/201@agents, Agent 201, Exten: 201); caller +4915112345678 -> +49151 + (20000000 + call); ` +
      `login: agent-session.ami's ${loginFrames.length} frames up to QueueMemberAdded and the DeviceStateChange after it, '${queue}' -> queue, ${member} -> agent`,
  };
}

/** Writes every agent's login (queue by queue) at once; returns the frames written. */
export function writeLogins(socket: net.Socket, traffic: Traffic, f: Floor, stamper: Stamper): number {
  const write = writeTo(socket);
  let n = 0;
  for (let q = 0; q < f.queues; q++) {
    let chunk = '';
    for (let i = 0; i < f.perQueue; i++) chunk += traffic.login(queueName(q), agentExt(f, q, i), () => stamper.stamp());
    n += (chunk.match(/\r\n\r\n/g) ?? []).length;
    write(chunk);
  }
  return n;
}

export interface Feed {
  calls: number;
  abandoned: number;
  frames: number;
  bytes: number;
  startedAt: number;
  seconds: number;
  framesPerSecAchieved: number;
  lateMs: { p50: number; p99: number; max: number };
  /** Per call: ms at which its marked frames were written (NaN: not in the trace). */
  joinAt: Float64Array;
  answerAt: Float64Array;
  abandonAt: Float64Array;
}

/**
 * Call n starts at n × 1000 / rate ms; its frames keep their recorded offsets. Every ~1 ms tick
 * writes the frames due, each stamped (Timestamp) when it is taken.
 */
export async function feedCalls(socket: net.Socket, traffic: Traffic, stamper: Stamper, calls: number, rate: number, deadline: number): Promise<Feed> {
  const starts: number[] = [];
  let total = 0;
  for (let n = 0; n < calls; n++) {
    starts.push(total);
    total += traffic.trace(n).frames.length;
  }
  const callOf = new Uint32Array(total);
  const frameOf = new Uint32Array(total);
  const due = new Float64Array(total);
  for (let n = 0; n < calls; n++) {
    const t = traffic.trace(n);
    for (let j = 0; j < t.frames.length; j++) {
      const k = (starts[n] as number) + j;
      callOf[k] = n;
      frameOf[k] = j;
      due[k] = (n * 1000) / rate + (t.offsetsMs[j] as number);
    }
  }
  const order = Uint32Array.from({ length: total }, (_, i) => i).sort((a, b) => (due[a] as number) - (due[b] as number) || a - b);
  const joinAt = new Float64Array(calls).fill(Number.NaN);
  const answerAt = new Float64Array(calls).fill(Number.NaN);
  const abandonAt = new Float64Array(calls).fill(Number.NaN);
  const take = (i: number) => {
    const k = order[i] as number;
    const n = callOf[k] as number;
    const j = frameOf[k] as number;
    const t = traffic.trace(n);
    const now = Date.now();
    if (j === t.marks.join) joinAt[n] = now;
    else if (j === t.marks.answer) answerAt[n] = now;
    else if (j === t.marks.abandon) abandonAt[n] = now;
    return render(t.frames[j] as Part[], t.repOf(n), stamper.stamp());
  };
  const p = await pace(total, (i) => due[order[i] as number] as number, take, writeTo(socket), deadline);
  let abandoned = 0;
  for (let n = 0; n < calls; n++) if (traffic.isAbandoned(n)) abandoned++;
  return { calls, abandoned, frames: p.frames, bytes: p.bytes, startedAt: p.startedAt, seconds: p.seconds, framesPerSecAchieved: round(p.frames / p.seconds, 0), lateMs: spreadMs(p.lateMs), joinAt, answerAt, abandonAt };
}
