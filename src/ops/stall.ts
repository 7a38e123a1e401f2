// Is a durable sink still delivering? A CRM that refuses everything, a request the HTTP client
// hangs on, a sink whose slots are all taken: from outside they look the same — events pile up
// in the outbox and nothing leaves. That is what /readyz and crm_bridge_sink_stalled report.

export interface SinkProgress {
  /** Events waiting in the outbox for this sink. */
  pending: number;
  /** Age of the oldest of them, ms (0 when none). */
  oldestPendingAgeMs: number;
  /** Last successful delivery by this process, epoch ms; null if none yet. */
  lastDeliveryAt: number | null;
  /** When this process started delivering (stands in for the last delivery before the first). */
  since: number;
}

/**
 * Why the sink counts as stalled, or null: it has had events waiting for at least `afterMs` and
 * has delivered none for at least `afterMs`. Both, so that a busy sink with one event stuck in
 * its retries (it still delivers the others) and a sink idle for a day (nothing to deliver) are
 * not stalled. `afterMs` 0 turns the check off.
 */
export function stallProblem(p: SinkProgress, afterMs: number, now: number): string | null {
  if (afterMs <= 0 || p.pending === 0 || p.oldestPendingAgeMs < afterMs) return null;
  const silentMs = now - (p.lastDeliveryAt ?? p.since);
  if (silentMs < afterMs) return null;
  const last = p.lastDeliveryAt === null ? 'none since start' : `last ${Math.round(silentMs / 1000)} s ago`;
  return `stalled: ${p.pending} event(s) waiting, the oldest for ${Math.round(p.oldestPendingAgeMs / 1000)} s; deliveries: ${last} (outbox.stalledAfterMs ${afterMs})`;
}
