// Capped exponential backoff with jitter: AMI reconnects and webhook retries wait the same way.
import type { JsonSchema } from './json-schema.js';

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

/** The config of a reconnect policy (pbx.ami.reconnect, pbx.ari.reconnect). */
export const reconnectSchema: JsonSchema = {
  type: 'object',
  description: 'Capped exponential backoff between reconnection attempts.',
  additionalProperties: false,
  default: {},
  properties: {
    initialDelayMs: { type: 'integer', minimum: 1, default: 500, description: 'Delay before the first retry, in ms.' },
    maxDelayMs: { type: 'integer', minimum: 1, default: 30000, description: 'Upper bound of the delay, in ms.' },
    factor: { type: 'number', minimum: 1, default: 2, description: 'Each failed attempt multiplies the delay by this.' },
    jitter: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.2,
      description: 'Randomizes each delay by up to this fraction, so many bridges do not reconnect in step.',
    },
  },
};
