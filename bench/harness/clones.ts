// Recorded calls as clones (bench/pipeline.ts, bench/memory.ts, bench/bus.ts): a recorded trace's
// event frames rendered again and again, each clone with Uniqueid/Linkedid epochs, channel
// sequence numbers, BridgeUniqueids and Timestamps of its own, so the normalizer sees call after
// call, each with the real event sequence Asterisk sent. Clone numbers are meant to be unique
// across all traces of a set: every trace's epochs, channel sequence numbers and times are moved
// to the window of clone k, so two clones with different numbers share no Uniqueid, Linkedid or
// channel name (BridgeUniqueids: the recorded UUID's tail + k, random 48-bit tails apart).
import fs from 'node:fs';
import path from 'node:path';
import { CHANNEL, CRLF, idParts, mergeLiterals, scanIds, UID_HEADER, UID_VALUE, UUID, type Part } from './ami.js';

export type ClonePart = 'full' | 'open' | 'rest';

type Slot =
  | { kind: 'epoch'; rel: number; tail: string }
  | { kind: 'chan'; rel: number }
  | { kind: 'ts'; relUs: number }
  | { kind: 'uuid'; tail: number };

interface CloneFrame {
  parts: Array<string | Slot>;
  /** False when the frame belongs to a call that, in part 'open', has already begun to hang up. */
  open: boolean;
}

export interface CallTrace {
  /** File name without `.ami`. */
  name: string;
  /** The id windows one clone occupies (the same for every trace of a set). */
  windows: CloneWindows;
  frames: CloneFrame[];
  /** Calls per clone: distinct Linkedids of its Newchannel frames. */
  calls: number;
  openFrames: number;
  bytes: number;
}

export interface CloneSet {
  greeting: string;
  /** FullyBooted and SuccessfulAuth, sent once after login (startAmiServer). */
  once: Part[][];
  traces: CallTrace[];
  /** How the ids are rewritten, for the results. */
  rewriting: string;
}

interface CloneWindows {
  eSpan: number;
  cSpan: number;
  tSpanUs: number;
}

const HANGUPS = new Set(['Hangup', 'HangupRequest', 'SoftHangupRequest']);
const CLONE_EPOCH_BASE = 1_800_000_000;
const CLONE_TIME_BASE_US = 1_800_000_000_000_000;

function headerValue(text: string, name: string): string | undefined {
  const key = `${name}: `;
  let from: number;
  if (text.startsWith(key)) from = key.length;
  else {
    const at = text.indexOf(`${CRLF}${key}`);
    if (at < 0) return undefined;
    from = at + 2 + key.length;
  }
  const end = text.indexOf(CRLF, from);
  return text.slice(from, end < 0 ? undefined : end);
}

/**
 * Reads recorded traces (greeting, responses and event frames as captured from the AMI socket)
 * for cloning. Action responses and the recorder's `UserEvent: RecordingEnd` are dropped; the
 * first trace's FullyBooted/SuccessfulAuth become `once`. In part 'open', a call (a Linkedid of a
 * Newchannel) is cut before the first Hangup/HangupRequest/SoftHangupRequest of its first channel
 * (the channel whose Uniqueid is the Linkedid): from there on, every frame naming that Linkedid
 * (in any *Linkedid header) is left for part 'rest'; frames naming no call (device and queue
 * member state, global VarSets) stay in 'open'.
 */
export function loadCloneSet(files: string[]): CloneSet {
  let greeting = '';
  const once: Part[][] = [];
  const loaded: Array<{ name: string; texts: string[] }> = [];
  let eSpan = 0;
  let cSpan = 0;
  let tSpanUs = 0;
  const ranges: Array<{ eMin: number; cMin: number; tMinUs: number }> = [];
  for (const file of files) {
    const { greeting: g, body } = splitGreetingText(fs.readFileSync(file, 'latin1'));
    greeting ||= g;
    const texts: string[] = [];
    for (const t of body.split(`${CRLF}${CRLF}`)) {
      const text = t.replace(/^(\r\n)+/, '');
      if (!text.startsWith('Event: ')) continue; // responses to the recorder's actions
      const event = headerValue(text, 'Event');
      if (event === 'FullyBooted' || event === 'SuccessfulAuth') {
        if (loaded.length === 0) once.push(mergeLiterals(text.split(CRLF).flatMap((l) => idParts(l, 0) ?? [l + CRLF]).concat(CRLF)));
        continue;
      }
      if (event === 'UserEvent' && headerValue(text, 'UserEvent') === 'RecordingEnd') continue;
      texts.push(text);
    }
    const { eMin, eMax, cMin, cMax } = scanIds(texts);
    let tMin = Infinity;
    let tMax = -Infinity;
    for (const text of texts) {
      const ts = headerValue(text, 'Timestamp');
      if (ts === undefined) continue;
      const us = timestampUs(ts);
      tMin = Math.min(tMin, us);
      tMax = Math.max(tMax, us);
    }
    ranges.push({ eMin: Number.isFinite(eMin) ? eMin : 0, cMin: Number.isFinite(cMin) ? cMin : 0, tMinUs: Number.isFinite(tMin) ? tMin : 0 });
    if (Number.isFinite(eMin)) eSpan = Math.max(eSpan, eMax - eMin + 1);
    if (Number.isFinite(cMin)) cSpan = Math.max(cSpan, cMax - cMin + 1);
    if (Number.isFinite(tMin)) tSpanUs = Math.max(tSpanUs, tMax - tMin + 1_000_000);
    loaded.push({ name: path.basename(file).replace(/\.ami$/, ''), texts });
  }
  const windows: CloneWindows = { eSpan, cSpan, tSpanUs };
  const traces = loaded.map(({ name, texts }, i) => compileCloneTrace(name, texts, ranges[i] as { eMin: number; cMin: number; tMinUs: number }, windows));
  return {
    greeting,
    once,
    traces,
    rewriting:
      `clone k (numbered across all traces): every *Uniqueid/*Linkedid epoch e -> ${CLONE_EPOCH_BASE} + k×${eSpan} + (e − the trace's first epoch); ` +
      `channel sequence numbers (PJSIP/201-0000001a) n -> k×${cSpan} + (n − the trace's first); BridgeUniqueid UUID tail + k; ` +
      `Timestamp t -> ${CLONE_TIME_BASE_US / 1e6} s + k×${tSpanUs / 1e6} s + (t − the trace's first Timestamp), so clones follow each other in time with the recorded spacing inside each`,
  };
}

function splitGreetingText(raw: string): { greeting: string; body: string } {
  if (raw.startsWith('Asterisk Call Manager/')) {
    const eol = raw.indexOf('\n');
    return { greeting: raw.slice(0, eol + 1), body: raw.slice(eol + 1) };
  }
  return { greeting: 'Asterisk Call Manager/11.0.0\r\n', body: raw };
}

function timestampUs(ts: string): number {
  const [sec, frac = ''] = ts.split('.');
  return Number(sec) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

function compileCloneTrace(name: string, texts: string[], range: { eMin: number; cMin: number; tMinUs: number }, windows: CloneWindows): CallTrace {
  // Calls and where each is cut for part 'open'.
  const calls = new Set<string>();
  const cutAt = new Map<string, number>();
  texts.forEach((text, i) => {
    const event = headerValue(text, 'Event') ?? '';
    if (event === 'Newchannel') {
      const l = headerValue(text, 'Linkedid');
      if (l) calls.add(l);
    }
    const uid = headerValue(text, 'Uniqueid');
    if (HANGUPS.has(event) && uid && uid === headerValue(text, 'Linkedid') && !cutAt.has(uid)) cutAt.set(uid, i);
  });
  const frames: CloneFrame[] = texts.map((text, i) => {
    const parts: Array<string | Slot> = [];
    let open = true;
    for (const line of text.split(CRLF)) {
      const colon = line.indexOf(': ');
      const header = colon >= 0 ? line.slice(0, colon) : '';
      const value = colon >= 0 ? line.slice(colon + 2) : '';
      if (header === 'Timestamp') {
        parts.push('Timestamp: ', { kind: 'ts', relUs: timestampUs(value) - range.tMinUs }, CRLF);
        continue;
      }
      const uid = UID_VALUE.exec(value);
      if (uid && UID_HEADER.test(header)) {
        if (/Linkedid$/i.test(header) && (cutAt.get(value) ?? Infinity) <= i) open = false;
        parts.push(`${header}: `, { kind: 'epoch', rel: Number(uid[1]) - range.eMin, tail: `.${uid[2] as string}` }, CRLF);
        continue;
      }
      const uuid = header === 'BridgeUniqueid' ? UUID.exec(value) : null;
      if (uuid) {
        parts.push(`${header}: ${uuid[1] as string}`, { kind: 'uuid', tail: parseInt(uuid[2] as string, 16) }, CRLF);
        continue;
      }
      let last = 0;
      for (const c of line.matchAll(CHANNEL)) {
        const at = (c.index ?? 0) + (c[1] as string).length;
        parts.push(line.slice(last, at), { kind: 'chan', rel: parseInt(c[2] as string, 16) - range.cMin });
        last = at + 8;
      }
      parts.push(line.slice(last) + CRLF);
    }
    parts.push(CRLF);
    const merged: Array<string | Slot> = [];
    for (const p of parts) {
      const prev = merged[merged.length - 1];
      if (typeof p === 'string' && typeof prev === 'string') merged[merged.length - 1] = prev + p;
      else if (p !== '') merged.push(p);
    }
    return { parts: merged, open };
  });
  const t: CallTrace = { name, windows, frames, calls: calls.size, openFrames: frames.filter((f) => f.open).length, bytes: 0 };
  t.bytes = renderClone(t, 0, 'full').length;
  return t;
}

/** Clone k of `trace`: its frames of `part`, as AMI text. */
export function renderClone(trace: CallTrace, k: number, part: ClonePart = 'full'): string {
  const { eSpan, cSpan, tSpanUs } = trace.windows;
  const epochBase = CLONE_EPOCH_BASE + k * eSpan;
  const chanBase = k * cSpan;
  const timeBase = CLONE_TIME_BASE_US + k * tSpanUs;
  let s = '';
  for (const f of trace.frames) {
    if (part === 'open' ? !f.open : part === 'rest' ? f.open : false) continue;
    for (const p of f.parts) {
      if (typeof p === 'string') s += p;
      else if (p.kind === 'epoch') s += `${epochBase + p.rel}${p.tail}`;
      else if (p.kind === 'chan') s += ((chanBase + p.rel) % 0x100000000).toString(16).padStart(8, '0');
      else if (p.kind === 'ts') {
        const us = timeBase + p.relUs;
        s += `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
      } else s += ((p.tail + k) % 2 ** 48).toString(16).padStart(12, '0');
    }
  }
  return s;
}

/** Frames of `part` in one clone of `trace`. */
export function cloneFrames(trace: CallTrace, part: ClonePart): number {
  return part === 'full' ? trace.frames.length : part === 'open' ? trace.openFrames : trace.frames.length - trace.openFrames;
}
