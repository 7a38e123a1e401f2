// Capped exponential backoff with jitter: AMI reconnects and webhook retries wait the same way.

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** 0..1: each delay is drawn uniformly from base × [1 − jitter, 1 + jitter], so a fleet does not retry in step. */
  jitter: number;
}

/** The delay before attempt `attempt` (1-based). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * Math.pow(policy.factor, Math.max(0, attempt - 1)));
  const spread = base * policy.jitter;
  return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}
