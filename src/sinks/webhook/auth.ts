// Authentication of webhook requests: none, basic, bearer, or an OAuth2 client-credentials
// token fetched from the CRM's token endpoint, cached, and refreshed before it expires.
import type { Logger } from 'pino';
import { request } from 'undici';

export type AuthConfig =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'oauth2'; tokenUrl: string; clientId: string; clientSecret: string; scope?: string; audience?: string; refreshBeforeSeconds?: number };

export interface Authenticator {
  /** The Authorization header value, or null for none. Rejects when a token cannot be had. */
  header(): Promise<string | null>;
  /** The CRM said 401: forget a cached token so the next attempt fetches a new one. */
  invalidate(): void;
}

export function createAuthenticator(config: AuthConfig | undefined, log: Logger, timeoutMs = 10_000): Authenticator {
  if (!config || config.type === 'none') return { header: async () => null, invalidate: () => undefined };
  if (config.type === 'basic') {
    const value = `Basic ${Buffer.from(`${config.username}:${config.password}`).toString('base64')}`;
    return { header: async () => value, invalidate: () => undefined };
  }
  if (config.type === 'bearer') return { header: async () => `Bearer ${config.token}`, invalidate: () => undefined };
  return new OAuth2ClientCredentials(config, log, timeoutMs);
}

class OAuth2ClientCredentials implements Authenticator {
  private token: string | null = null;
  private expiresAt = 0;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly config: Extract<AuthConfig, { type: 'oauth2' }>,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  async header(): Promise<string> {
    const margin = (this.config.refreshBeforeSeconds ?? 60) * 1000;
    if (this.token && Date.now() < this.expiresAt - margin) return `Bearer ${this.token}`;
    // One fetch at a time: concurrent deliveries share it.
    this.pending ??= this.fetch().finally(() => (this.pending = null));
    return `Bearer ${await this.pending}`;
  }

  invalidate(): void {
    this.token = null;
    this.expiresAt = 0;
  }

  private async fetch(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (this.config.scope) form.set('scope', this.config.scope);
    if (this.config.audience) form.set('audience', this.config.audience);
    const basic = Buffer.from(`${encodeURIComponent(this.config.clientId)}:${encodeURIComponent(this.config.clientSecret)}`).toString('base64');
    const res = await request(this.config.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}`, accept: 'application/json' },
      body: form.toString(),
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new Error(`OAuth2 token endpoint answered ${res.statusCode}: ${text.slice(0, 200)}`);
    }
    let parsed: { access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw new Error('OAuth2 token endpoint did not answer JSON');
    }
    if (typeof parsed.access_token !== 'string' || parsed.access_token === '') throw new Error('OAuth2 token endpoint gave no access_token');
    const ttl = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 3600;
    this.token = parsed.access_token;
    this.expiresAt = Date.now() + ttl * 1000;
    this.log.debug({ expiresInSeconds: ttl }, 'OAuth2 token obtained');
    return this.token;
  }
}
