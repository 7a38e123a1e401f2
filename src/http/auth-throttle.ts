// Failed authentications per client address. Each wrong token costs an address one of its
// `maxFailures` per window; past that, every request of that address that carries a token is
// refused (429, Retry-After) without the token being looked at, until the window has passed.
// A guesser gets `maxFailures` tries a window instead of thousands a second, and the log gets
// three lines per address and window (first failure, throttled, summary) instead of one per try.
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { plain } from './client-address.js';

export type Admission = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface AuthThrottleOptions {
  maxFailures: number;
  windowMs: number;
  log: Logger;
  /** Addresses remembered at most (least recently seen forgotten first): bounds the memory. */
  maxAddresses?: number;
  now?: () => number;
}

interface Entry {
  windowStart: number;
  failures: number;
  /** 0 while not throttled. */
  blockedUntil: number;
  /** Requests refused while throttled, for the summary. */
  refused: number;
}

export const DEFAULT_MAX_ADDRESSES = 10_000;
/** First-failure lines per window, all addresses together: many addresses cannot flood the log either. */
export const FIRST_FAILURE_LINES_PER_WINDOW = 100;

/**
 * The key an address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64,
 * since whoever has one IPv6 address usually has the 2^64 of its subnet.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const ip = plain(address); // IPv4-mapped: IPv4
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

export class AuthThrottle {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly maxAddresses: number;
  /** The log budget for first failures: its window, lines spent, lines left out. */
  private lines = { windowStart: 0, spent: 0, suppressed: 0 };

  constructor(private opts: AuthThrottleOptions) {
    this.now = opts.now ?? Date.now;
    this.maxAddresses = opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  }

  /** New limits (SIGHUP reload); what each address has used so far stays. */
  configure(maxFailures: number, windowMs: number): void {
    this.opts = { ...this.opts, maxFailures, windowMs };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether a request carrying a token from `key` may be checked at all. */
  admit(key: string): Admission {
    const e = this.entries.get(key);
    if (!e) return { ok: true };
    const now = this.now();
    if (e.blockedUntil > now) {
      e.refused++;
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((e.blockedUntil - now) / 1000)) };
    }
    this.expire(key, e, now);
    return { ok: true };
  }

  /** A request from `key` carried a token that let nobody in. */
  failure(key: string, path: string): void {
    const now = this.now();
    let e = this.entries.get(key);
    if (e) this.expire(key, e, now);
    e = this.entries.get(key);
    if (!e) e = { windowStart: now, failures: 0, blockedUntil: 0, refused: 0 };
    // Most recently seen last: the map's order is the eviction order.
    this.entries.delete(key);
    this.entries.set(key, e);
    e.failures++;
    const windowSeconds = Math.round(this.opts.windowMs / 1000);
    if (e.failures === 1) this.firstFailure(key, path, now, windowSeconds);
    if (e.failures >= this.opts.maxFailures && e.blockedUntil === 0) {
      e.blockedUntil = now + this.opts.windowMs;
      this.opts.log.warn({ remote: key, failures: e.failures, retryAfterSeconds: windowSeconds }, 'too many failed authentications: throttling this address (its requests with a token get 429, unchecked)');
    }
    while (this.entries.size > this.maxAddresses) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.summarize(oldest, entry, 'forgotten (too many addresses)');
      this.entries.delete(oldest);
    }
  }

  /** Forgets the addresses whose window and throttling are over (run periodically). */
  sweep(): void {
    const now = this.now();
    for (const [key, e] of this.entries) this.expire(key, e, now);
    this.rollLogWindow(now);
  }

  private firstFailure(key: string, path: string, now: number, windowSeconds: number): void {
    this.rollLogWindow(now);
    if (this.lines.spent >= FIRST_FAILURE_LINES_PER_WINDOW) {
      this.lines.suppressed++;
      return;
    }
    this.lines.spent++;
    this.opts.log.warn({ remote: key, path }, `refused: no valid token (further failures from this address within ${windowSeconds} s are counted, not logged)`);
  }

  private rollLogWindow(now: number): void {
    if (now - this.lines.windowStart < this.opts.windowMs) return;
    if (this.lines.suppressed > 0) {
      this.opts.log.warn({ addresses: this.lines.suppressed, logged: this.lines.spent }, 'refused: no valid token, from more addresses than are logged one by one');
    }
    this.lines = { windowStart: now, spent: 0, suppressed: 0 };
  }

  /** Forgets everything, with a summary of each address still throttled (at shutdown). */
  clear(): void {
    for (const [key, e] of this.entries) this.summarize(key, e, 'daemon stopping');
    this.entries.clear();
  }

  private expire(key: string, e: Entry, now: number): void {
    if (e.blockedUntil > now) return;
    if (e.blockedUntil === 0 && now - e.windowStart < this.opts.windowMs) return;
    this.summarize(key, e, 'window over');
    this.entries.delete(key);
  }

  private summarize(key: string, e: Entry, why: string): void {
    if (e.blockedUntil === 0) return;
    this.opts.log.warn({ remote: key, failures: e.failures, refused: e.refused, why }, 'address no longer throttled');
  }
}
