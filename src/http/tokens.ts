// Who is asking: tokens for the agent stream, page and API. Static tokens come from the config
// (agents[].token, http.supervisors[].token); signed tokens are minted by `crm-bridge token` as
// `cbt1.<payload>.<hmac>` with an expiry, so they can be handed out without editing the config.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Viewer } from '../sinks/screenpop.js';

/** Who holds a token: the screen-pop sink's viewers (an agent, a supervisor). */
export type Principal = Viewer;

interface Payload {
  /** agent id, or absent for a supervisor */
  a?: string;
  /** supervisor name */
  s?: string;
  /** expiry, seconds since the epoch */
  e: number;
}

const PREFIX = 'cbt1';

function b64url(buf: Buffer): string {
  return buf.toString('base64url');
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Parses `8h`, `30m`, `2d`, `3600` (seconds). */
export function parseTtl(ttl: string): number | null {
  const m = /^(\d+)\s*([smhd]?)$/.exec(ttl.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * unit : null;
}

export function mintToken(secret: string, who: Principal, ttlSeconds: number, now = Date.now()): string {
  const payload: Payload = { e: Math.floor(now / 1000) + ttlSeconds, ...(who.kind === 'agent' ? { a: who.agentId } : { s: who.name }) };
  const body = b64url(Buffer.from(JSON.stringify(payload)));
  const mac = b64url(createHmac('sha256', secret).update(`${PREFIX}.${body}`).digest());
  return `${PREFIX}.${body}.${mac}`;
}

export class TokenVerifier {
  /** sha256(token) -> principal: lookups compare fixed-length digests, in constant time. */
  private readonly statics: Array<[Buffer, Principal]> = [];

  constructor(
    staticTokens: Array<{ token: string; who: Principal }>,
    private readonly secret: string | undefined,
  ) {
    for (const { token, who } of staticTokens) this.statics.push([digest(token), who]);
  }

  verify(token: string | null | undefined, now = Date.now()): Principal | null {
    if (!token) return null;
    if (token.startsWith(`${PREFIX}.`) && this.secret) return this.verifySigned(token, now);
    const d = digest(token);
    let found: Principal | null = null;
    // Every entry is compared, so the time taken says nothing about which one matched.
    for (const [known, who] of this.statics) if (timingSafeEqual(known, d)) found = who;
    return found;
  }

  private verifySigned(token: string, now: number): Principal | null {
    const [, body, mac] = token.split('.');
    if (!body || !mac) return null;
    const expected = createHmac('sha256', this.secret!).update(`${PREFIX}.${body}`).digest();
    const got = Buffer.from(mac, 'base64url');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return null;
    let payload: Payload;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
    } catch {
      return null;
    }
    if (typeof payload.e !== 'number' || payload.e * 1000 <= now) return null;
    if (typeof payload.a === 'string' && payload.a) return { kind: 'agent', agentId: payload.a };
    if (typeof payload.s === 'string' && payload.s) return { kind: 'supervisor', name: payload.s };
    return null;
  }
}

/** The token of an `Authorization: Bearer <token>` header, or null when there is none (or it is malformed). */
export function bearerToken(header: string | undefined): string | null {
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1]! : null;
}
