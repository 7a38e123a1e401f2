// Standard Webhooks signatures (https://www.standardwebhooks.com): the receiver can prove a
// request came from us and was not altered or replayed.
//
//   signed content = `${webhook-id}.${webhook-timestamp}.${body}`
//   webhook-signature = "v1," + base64(HMAC-SHA256(key, signed content))
// where key = base64-decode(secret without its "whsec_" prefix).
import { createHmac } from 'node:crypto';

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** The HMAC key of a `whsec_…` secret (a secret without the prefix is taken as base64 too). */
export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const key = Buffer.from(b64, 'base64');
  if (key.length === 0) throw new Error('webhook secret must be base64 (optionally prefixed whsec_)');
  return key;
}

export function sign(key: Buffer, id: string, timestampSeconds: number, body: string): SignatureHeaders {
  const ts = String(Math.floor(timestampSeconds));
  const mac = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${mac}` };
}
