// Writing AMI traffic to the daemon under test: on a schedule (pace: every ~1 ms timer tick, the
// frames that are due), or as fast as it reads (feedSocket); and waiting for what comes out.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { sleep, within } from './run.js';

/** Writes a chunk to the daemon(s); returns the bytes queued in this process (not yet read). */
export type Writer = (chunk: string) => number;

/** A Writer for `socket` that fails once the socket is gone or `maxQueuedMiB` wait in this process. */
export function writeTo(socket: net.Socket, maxQueuedMiB = 256): Writer {
  return (chunk) => {
    if (socket.destroyed) throw new Error("the daemon's AMI connection closed");
    socket.write(chunk, 'latin1');
    if (socket.writableLength > maxQueuedMiB * 1024 * 1024) throw new Error(`the daemon is not reading AMI: ${maxQueuedMiB} MiB queued`);
    return socket.writableLength;
  };
}

export interface Paced {
  frames: number;
  bytes: number;
  startedAt: number;
  endedAt: number;
  seconds: number;
  /** Loop turns, and the time between them (timer granularity, a busy machine). */
  ticks: number;
  tickGapsMs: number[];
  /** Per write: how late its first frame was against the schedule. */
  lateMs: number[];
  maxFramesPerWrite: number;
  maxWritableLengthBytes: number;
}

/**
 * Writes frames 0 … n−1, frame i (`take(i)`, stamped when taken) once `dueMs(i)` ms have passed
 * since the start (`dueMs` ascending): every ~1 ms tick, the frames due, in one write.
 */
export async function pace(n: number, dueMs: (i: number) => number, take: (i: number) => string, write: Writer, deadline: number, onTick?: (elapsedMs: number) => void): Promise<Paced> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const r = { frames: 0, bytes: 0, ticks: 0, tickGapsMs: [] as number[], lateMs: [] as number[], maxFramesPerWrite: 0, maxWritableLengthBytes: 0 };
  let lastTick = 0;
  while (r.frames < n) {
    if (Date.now() > deadline) throw new Error(`paced feed overran its deadline (${r.frames} of ${n} frames)`);
    const now = performance.now() - t0;
    if (r.ticks++ > 0) r.tickGapsMs.push(now - lastTick);
    lastTick = now;
    onTick?.(now);
    if (dueMs(r.frames) <= now) {
      r.lateMs.push(now - dueMs(r.frames));
      let chunk = '';
      const first = r.frames;
      for (; r.frames < n && dueMs(r.frames) <= now; r.frames++) chunk += take(r.frames);
      r.maxFramesPerWrite = Math.max(r.maxFramesPerWrite, r.frames - first);
      r.bytes += chunk.length;
      r.maxWritableLengthBytes = Math.max(r.maxWritableLengthBytes, write(chunk));
    }
    await sleep(1);
  }
  const endedAt = Date.now();
  return { ...r, startedAt, endedAt, seconds: (endedAt - startedAt) / 1000 };
}

/**
 * Call k of `calls` starts at k × 1000 / rate ms, its frame j at `offsetMs(j)` after that: the
 * calls' frames (k × F + j) in the order they are due, and when.
 */
export function schedule(calls: number, frames: number, rate: number, offsetMs: (j: number) => number): { order: Uint32Array; due: Float64Array } {
  const due = new Float64Array(calls * frames);
  for (let k = 0; k < calls; k++) for (let j = 0; j < frames; j++) due[k * frames + j] = (k * 1000) / rate + offsetMs(j);
  const order = Uint32Array.from({ length: due.length }, (_, i) => i).sort((a, b) => (due[a] as number) - (due[b] as number) || a - b);
  return { order, due };
}

export interface Unpaced {
  bytes: number;
  writes: number;
  frames: number;
  drainWaits: number;
  maxFramesPerWrite: number;
  maxWritableLengthBytes: number;
}

/**
 * Writes what `next` returns (null: the end) to `socket` as fast as it reads: writes of about
 * `chunkBytes`, one ending early where `unitEnds()` (a repetition or call ended: the caller may look
 * at the clock); after a write, 'drain' if the socket's buffer is full, else a turn of the event
 * loop, so that a fast generator never queues more than a chunk or two in this process.
 */
export async function feedSocket(socket: net.Socket, next: () => string | null, opts: { chunkBytes?: number; unitEnds?: () => boolean; deadline?: number } = {}): Promise<Unpaced> {
  const r: Unpaced = { bytes: 0, writes: 0, frames: 0, drainWaits: 0, maxFramesPerWrite: 0, maxWritableLengthBytes: 0 };
  const chunkBytes = opts.chunkBytes ?? 256 * 1024;
  for (let done = false; !done; ) {
    if (socket.destroyed) throw new Error(`the AMI client went away after ${r.frames} frames`);
    if (opts.deadline !== undefined && Date.now() > opts.deadline) throw new Error('unpaced feed overran its deadline');
    let chunk = '';
    let batch = 0;
    while (chunk.length < chunkBytes) {
      const s = next();
      if (s === null) {
        done = true;
        break;
      }
      chunk += s;
      batch++;
      if (opts.unitEnds?.()) break;
    }
    if (chunk === '') break;
    r.bytes += chunk.length;
    r.writes++;
    r.frames += batch;
    r.maxFramesPerWrite = Math.max(r.maxFramesPerWrite, batch);
    const ok = socket.write(chunk, 'latin1');
    r.maxWritableLengthBytes = Math.max(r.maxWritableLengthBytes, socket.writableLength);
    if (ok) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    r.drainWaits++;
    const drained = new Promise<void>((resolve) => {
      const go = () => {
        socket.off('drain', go);
        socket.off('close', go);
        resolve();
      };
      socket.on('drain', go);
      socket.on('close', go);
    });
    await (opts.deadline === undefined ? drained : within(drained, Math.max(1, opts.deadline - Date.now()), 'the AMI socket to drain'));
  }
  return r;
}

/**
 * Polls `poll()` every `everyMs` until `done(x)`; gives up after `stallMs` without `progress(x)`
 * changing, or `capMs` in all. `stalled`/`capped` say why it gave up.
 */
export async function waitUntil<T>(poll: () => Promise<T>, done: (x: T) => boolean, o: { capMs: number; everyMs: number; stallMs?: number; progress?: (x: T) => number }): Promise<{ last: T; waitedMs: number; stalled: boolean; capped: boolean }> {
  const start = Date.now();
  let lastProgress = start;
  let seen = Number.NaN;
  for (;;) {
    const last = await poll();
    const waitedMs = Date.now() - start;
    if (done(last)) return { last, waitedMs, stalled: false, capped: false };
    const p = o.progress?.(last) ?? 0;
    if (p !== seen) {
      seen = p;
      lastProgress = Date.now();
    }
    const stalled = Date.now() - lastProgress > (o.stallMs ?? Infinity);
    if (stalled || waitedMs > o.capMs) return { last, waitedMs, stalled, capped: !stalled };
    await sleep(o.everyMs);
  }
}
