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

/** How to make a secret every Standard Webhooks library accepts. */
export const MAKE_A_SECRET = 'echo "whsec_$(openssl rand -base64 32)"';

/** Standard (RFC 4648 §4) base64 with its padding: what the receivers' libraries decode. */
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The HMAC key of a `whsec_…` secret (a secret without the prefix is taken as base64 too).
 * Node's decoder is lenient — it skips characters outside the alphabet, accepts base64url and
 * missing padding — so a secret such as `whsec_my-secret!` would give *some* key here while the
 * receiver's Standard Webhooks library refuses it or decodes another key: nothing would ever
 * verify. Only strict base64 is accepted, the same bytes on both ends.
 */
export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const key = STRICT_BASE64.test(b64) ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
  if (key.length === 0) throw new Error(`must be whsec_ followed by standard base64 (A-Z a-z 0-9 + /, padded with =), which Standard Webhooks libraries can decode; make one with \`${MAKE_A_SECRET}\``);
  return key;
}

export function sign(key: Buffer, id: string, timestampSeconds: number, body: string): SignatureHeaders {
  const ts = String(Math.floor(timestampSeconds));
  const mac = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${mac}` };
}
