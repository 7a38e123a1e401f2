// The warm-up at start: before the bridge connects to AMI, a call recorded on a real Asterisk
// (lab/recordings/ten-calls.ami, shipped in the package) goes through the code every AMI frame and
// every event will run — the AMI reader, a scratch normalizer, the contract check, the JSON of
// each event — and then, on the delivery thread, through the outbox and the webhook sinks' request
// path to a loopback server (src/sinks/warm-up.ts).
//
// Why: V8 compiles a function well only after it has run a while. A daemon started during a busy
// hour (a restart, a failover) met its first calls with none of that done, and at 1,000 events/s
// its first second fell behind by hundreds of events, which took seconds to deliver (BENCHMARKS.md,
// "Issue 18, third pass"). Warmed, the first real call runs compiled code.
//
// Then a full garbage collection on each thread: the warm-up leaves tens of MB of garbage (its
// scratch calls, events and JSON) that V8 would otherwise collect in a major GC during the first
// real seconds; measured, that collection was the difference between a p99 of 74–314 ms and
// 13–27 ms over the first 5 s at 1,000 events/s (BENCHMARKS.md, "Issue 18, third pass").
//
// What it cannot do: touch anything real. The scratch normalizer is not the bridge's (its calls,
// agents and ids are its own and are dropped), no event reaches a sink, the outbox, the ledger, the
// metrics or a log line but the one that says how long it took. `startup.warmUp: false` skips it.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { collectGarbage } from './util/gc.js';
import { normalizerOptions } from './config/normalizer.js';
import type { BridgeConfig } from './config/schema.js';
import { eventJson } from './events/types.js';
import { validateEvent } from './events/validator.js';
import { HEADERS_READ } from './normalizer/ami-events.js';
import { createTracker, step } from './normalizer/index.js';
import type { DeliveryThread } from './sinks/delivery-thread.js';
import { AmiParser } from './sources/ami/parser.js';

/** The recording played: ten concurrent queue calls with two agents (1,348 AMI frames, 74 events). */
export const WARM_UP_TRACE = new URL('../lab/recordings/ten-calls.ami', import.meta.url);
/** How many times the main thread plays it (≈ 27,000 frames, 1,480 events; about 1.5 s in all on a small machine). */
export const WARM_UP_REPEATS = 20;
/** AMI reads are this big at most (the socket's), so the reader sees reads like a real one. */
const READ_BYTES = 64 * 1024;

export interface WarmUpResult {
  /** Milliseconds on the main thread, and on the delivery thread (null: it had nothing to warm, or went away). */
  mainMs: number;
  deliveryMs: number | null;
  frames: number;
  events: number;
  /** Requests the delivery thread's loopback server answered. */
  requests: number;
  /** Whether a full garbage collection followed (src/util/gc.ts). */
  collected: boolean;
}

/** Plays the trace `repeats` times through a scratch pipeline; returns the events' JSON and the frame count. */
export function warmMainThread(config: BridgeConfig, trace: Buffer, repeats = WARM_UP_REPEATS): { json: string[]; frames: number } {
  const tracker = createTracker(normalizerOptions(config));
  const json: string[] = [];
  let frames = 0;
  for (let r = 0; r < repeats; r += 1) {
    const parser = new AmiParser({}, HEADERS_READ);
    for (let at = 0; at < trace.length; at += READ_BYTES) {
      for (const item of parser.feed(trace.subarray(at, at + READ_BYTES))) {
        if (item.kind !== 'frame' || !item.event.event) continue;
        frames += 1;
        for (const event of step(tracker, { kind: 'event', event: item.event, receivedAt: Date.now() })) {
          validateEvent(event);
          json.push(eventJson(event));
        }
      }
    }
  }
  return { json, frames };
}

/**
 * Warms both threads; never throws (a warm-up that fails is logged and the bridge starts cold).
 * `thread`: the delivery thread, when durable sinks run on one.
 */
export async function warmUp(config: BridgeConfig, thread: DeliveryThread | null, log: Logger): Promise<WarmUpResult | null> {
  const started = performance.now();
  let trace: Buffer;
  try {
    trace = readFileSync(WARM_UP_TRACE);
  } catch (err) {
    log.warn({ err, trace: WARM_UP_TRACE.pathname }, 'warm-up skipped: its recording is missing from the package; the first calls run on code not yet compiled');
    return null;
  }
  log.debug({ trace: WARM_UP_TRACE.pathname, repeats: WARM_UP_REPEATS, deliveryThread: thread !== null }, 'warming up');
  try {
    const { json, frames } = warmMainThread(config, trace);
    const mainMs = Math.round(performance.now() - started);
    const report = thread ? await thread.warmUp(json, config.calls.maxInProgress, config.calls.maxAgents) : null;
    if (report?.error) log.warn({ error: report.error }, 'warm-up of the delivery thread did not finish; starting anyway');
    // The warm-up's garbage goes now, not in a collection during the first real calls.
    const collected = collectGarbage();
    const result: WarmUpResult = { mainMs, deliveryMs: report?.ms ?? null, frames, events: json.length, requests: report?.requests ?? 0, collected };
    log.info(result, `warmed up in ${Math.round(performance.now() - started)} ms (a recorded call through the reader, normalizer, contract check${report ? ', outbox and webhook requests to a loopback server' : ''}, then a full GC); nothing of it reaches a sink`);
    return result;
  } catch (err) {
    log.warn({ err }, 'warm-up failed; starting anyway (the first calls run on code not yet compiled)');
    return null;
  }
}
