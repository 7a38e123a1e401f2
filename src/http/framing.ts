// Can a CRM page be shown in an iframe of the agent page? Browsers show a blank frame (and fire
// its load event anyway) when the page forbids it, so the agent page cannot tell by itself. The
// bridge asks: one HEAD request per URL (cached), reading X-Frame-Options and CSP frame-ancestors.
import { request } from 'undici';

export type Framing = 'allowed' | 'refused' | 'unknown';

const TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 1000;

/** Decides from response headers whether a page may be framed by `parentOrigin`. */
export function framingFrom(headers: Record<string, string | string[] | undefined>, pageUrl: string, parentOrigin: string): Framing {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : v) ?? '';
  const csp = first(headers['content-security-policy']);
  const ancestors = /(?:^|;)\s*frame-ancestors\s+([^;]*)/i.exec(csp)?.[1]?.trim();
  if (ancestors !== undefined) {
    const sources = ancestors.split(/\s+/).filter(Boolean);
    if (sources.includes("'none'")) return 'refused';
    const pageOrigin = new URL(pageUrl).origin;
    const ok = sources.some((s) => s === '*' || s === parentOrigin || (s === "'self'" && pageOrigin === parentOrigin) || (s.startsWith('*.') && new URL(parentOrigin).host.endsWith(s.slice(1))));
    return ok ? 'allowed' : 'refused';
  }
  const xfo = first(headers['x-frame-options']).trim().toUpperCase();
  if (xfo === 'DENY') return 'refused';
  if (xfo === 'SAMEORIGIN') return new URL(pageUrl).origin === parentOrigin ? 'allowed' : 'refused';
  return 'allowed';
}

export class FramingChecker {
  private readonly cache = new Map<string, { framing: Framing; at: number }>();

  async check(url: string, parentOrigin: string, now = Date.now()): Promise<Framing> {
    let key: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'unknown';
      key = `${parentOrigin} ${u.origin}${u.pathname}`;
    } catch {
      return 'unknown';
    }
    const hit = this.cache.get(key);
    if (hit && now - hit.at < TTL_MS) return hit.framing;
    let framing: Framing = 'unknown';
    try {
      const res = await request(url, { method: 'HEAD', headersTimeout: 2000, bodyTimeout: 2000, maxRedirections: 0 } as Parameters<typeof request>[1]);
      await res.body.dump();
      framing = framingFrom(res.headers, url, parentOrigin);
    } catch {
      framing = 'unknown';
    }
    if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { framing, at: now });
    return framing;
  }
}
