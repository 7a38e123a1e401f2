// AMI handlers for a caller in an app_queue queue: joins (call.queued), leaves, abandons. The
// members it rings are dialling (src/normalizer/dial-events.ts); agents logging in and pausing
// are agent events (src/normalizer/agent-events.ts).
import type { AmiEvent } from './ami-event.js';
import { channelEvent } from './calls.js';
import { isConnected } from './model.js';
import type { TrackerState } from './state.js';

export function onQueueCallerJoin(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit || !ev.queue) return;
  const call = hit.call;
  s.ensureStarted(call);
  const pos = Number(ev.position);
  call.queue = { name: ev.queue, position: Number.isSafeInteger(pos) && pos > 0 ? pos : null, joinedAt: s.now, leftAt: null };
  s.emit(call, 'call.queued', { agent: null, channel: { uniqueid: hit.ch.uniqueid, name: hit.ch.name } });
}

export function onQueueCallerLeave(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (hit?.call.queue && hit.call.queue.leftAt === null) hit.call.queue.leftAt = s.now;
}

/**
 * The caller left the queue before anyone answered. app_queue says so on a queue timeout too,
 * so QUEUESTATUS (when VarSet events are there) still decides; without it this is an abandon.
 */
export function onQueueCallerAbandon(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit || isConnected(hit.call)) return;
  hit.call.callerGaveUp = true;
  if (hit.call.queue && hit.call.queue.leftAt === null) hit.call.queue.leftAt = s.now;
}
