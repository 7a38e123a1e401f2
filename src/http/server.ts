// The daemon's HTTP server (`http.listen`): the agents' event streams and page, the pops, and
// the widget. Every data endpoint needs a token; tokens are never logged (only paths are).
import { readFileSync, readdirSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';
import type { Logger } from 'pino';
import { apiRoutes, type ApiContext } from '../api/router.js';
import type { HttpConfig, ScreenPopRule } from '../config/schema.js';
import type { BridgeEvent } from '../events/types.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import { compileText, compileUrl, templateVars, type CompiledTemplate } from '../template/index.js';
import { AgentChannel, describe } from './agent-channel.js';
import { FramingChecker, type Framing } from './framing.js';
import type { Principal, TokenVerifier } from './tokens.js';

export interface Pop {
  ruleId: string;
  target: ScreenPopRule['target'];
  name: string | null;
  url: string | null;
  text: string | null;
  callId: string | null;
  eventId: string;
  /** For embedded pops: whether the CRM page lets itself be framed by the agent page. */
  framing?: Framing;
}

interface CompiledRule {
  id: string;
  events: Set<string>;
  target: ScreenPopRule['target'];
  name: string | null;
  closeOn: string[];
  url: CompiledTemplate | null;
  text: CompiledTemplate | null;
}

export function compileRules(rules: readonly ScreenPopRule[]): CompiledRule[] {
  return rules.map((r, i) => ({
    id: r.id ?? `rule-${i + 1}`,
    events: new Set(r.events),
    target: r.target,
    name: r.target === 'named-tab' ? (r.name ?? 'crm') : (r.name ?? null),
    closeOn: r.closeOn ?? ['call.ring_stopped'],
    url: r.url ? compileUrl(r.url) : null,
    text: r.text ? compileText(r.text) : null,
  }));
}

export function renderPops(rules: readonly CompiledRule[], event: BridgeEvent): Pop[] {
  const vars = templateVars(event);
  return rules
    .filter((r) => r.events.has(event.type))
    .map((r) => ({
      ruleId: r.id,
      target: r.target,
      name: r.name,
      url: r.url ? r.url.render(vars) : null,
      text: r.text ? r.text.render(vars) : null,
      callId: 'callId' in event ? event.callId : null,
      eventId: event.id,
    }));
}

export interface HttpServerContext {
  config: HttpConfig;
  rules: ScreenPopRule[];
  channel: AgentChannel;
  tokens: TokenVerifier;
  agents: AgentDirectory;
  log: Logger;
  /** The JSON API (/api/v1), when `api` is configured. */
  api?: ApiContext;
  /** More routes (health, metrics): `[method, path pattern, handler]`. */
  extraRoutes?: Array<[string, RegExp, Handler]>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, params: string[]) => void | Promise<void>;

const WEB_ROOT = new URL('../../web/', import.meta.url);
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.md': 'text/markdown; charset=utf-8',
};

export class HttpServer {
  private server: http.Server | null = null;
  private rules: CompiledRule[] = [];
  private routes: Array<[string, RegExp, Handler]> = [];
  /** Static files, read once at start: only these names can ever be served. */
  private readonly files = new Map<string, { body: Buffer; type: string }>();
  private readonly framing = new FramingChecker();

  constructor(private ctx: HttpServerContext) {
    this.routes = this.buildRoutes();
  }

  /**
   * New settings (SIGHUP reload): rules, tokens, agents, API. The listening socket and the open
   * streams stay; `config.listen` itself only changes with a restart.
   */
  reconfigure(next: Omit<HttpServerContext, 'channel' | 'log'>): void {
    const rules = compileRules(next.rules);
    this.ctx = { ...this.ctx, ...next, config: { ...next.config, listen: this.ctx.config.listen } };
    this.rules = rules;
    this.routes = this.buildRoutes();
  }

  private buildRoutes(): Array<[string, RegExp, Handler]> {
    const ctx = this.ctx;
    return [
      ['GET', /^\/agent\/?$/, (_q, res) => this.page(res, 'agent/index.html')],
      ['GET', /^\/agent\/assets\/([A-Za-z0-9_.-]+)$/, (_q, res, _u, p) => this.asset(res, `agent/${p[0]}`)],
      ['GET', /^\/agent\/me$/, (req, res, url) => this.me(req, res, url)],
      ['GET', /^\/agent\/events$/, (req, res, url) => this.events(req, res, url)],
      ['GET', /^\/agent\/pops\/([A-Za-z0-9_-]+)$/, (req, res, url, p) => this.pops(req, res, url, p[0] ?? '')],
      ['GET', /^\/widget\.js$/, (_q, res) => this.asset(res, 'widget/widget.js')],
      ['GET', /^\/widget\/?$/, (_q, res) => this.page(res, 'widget/index.html', true)],
      ['GET', /^\/widget\/([A-Za-z0-9_.-]+)$/, (_q, res, _u, p) => this.asset(res, `widget/${p[0]}`)],
      ...(ctx.api ? apiRoutes(ctx.api) : []),
      ...(ctx.extraRoutes ?? []),
    ];
  }

  /** The address actually bound (port 0 in tests). */
  get address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null) ?? null;
  }

  async start(): Promise<void> {
    this.rules = compileRules(this.ctx.rules);
    this.loadFiles();
    const { host, port } = parseListen(this.ctx.config.listen);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.ctx.log.info({ listen: this.ctx.config.listen, port: this.address?.port }, 'HTTP server listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private loadFiles(): void {
    for (const dir of ['agent', 'widget']) {
      let names: string[] = [];
      try {
        names = readdirSync(new URL(`${dir}/`, WEB_ROOT));
      } catch {
        this.ctx.log.warn({ dir }, 'web files missing');
      }
      for (const name of names) {
        const type = TYPES[extname(name)];
        if (type) this.files.set(`${dir}/${name}`, { body: readFileSync(new URL(`${dir}/${name}`, WEB_ROOT)), type });
      }
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://bridge');
    this.cors(req, res);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    let pathKnown = false;
    for (const [method, re, handler] of this.routes) {
      const m = re.exec(url.pathname);
      if (!m) continue;
      pathKnown = true;
      if (req.method !== method) continue;
      try {
        await handler(req, res, url, m.slice(1));
      } catch (err) {
        // Paths only: a query string may hold a token.
        this.ctx.log.error({ err, path: url.pathname }, 'HTTP handler failed');
        if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
        else res.end();
      }
      return;
    }
    if (pathKnown) {
      const allowed = this.routes.filter(([, re]) => re.test(url.pathname)).map(([method]) => method);
      return this.json(res, 405, { error: 'method not allowed' }, { allow: [...new Set(allowed)].join(', ') });
    }
    this.json(res, 404, { error: 'not found' });
  }

  private cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origin && this.ctx.config.allowedOrigins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-headers', 'authorization, content-type, last-event-id');
      res.setHeader('access-control-allow-methods', 'GET, POST, PUT, OPTIONS');
      res.setHeader('access-control-max-age', '600');
    }
    res.setHeader('vary', 'origin');
  }

  private authenticate(req: IncomingMessage, res: ServerResponse, url: URL): Principal | null {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : url.searchParams.get('token');
    const who = this.ctx.tokens.verify(token);
    if (!who) {
      this.ctx.log.warn({ path: url.pathname, remote: req.socket.remoteAddress, hadToken: Boolean(token) }, 'refused: no valid token');
      this.json(res, 401, { error: token ? 'invalid or expired token' : 'a token is required (Authorization: Bearer, or ?token=)' }, { 'www-authenticate': 'Bearer' });
      return null;
    }
    return who;
  }

  private me(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const who = this.authenticate(req, res, url);
    if (!who) return;
    const agent = who.kind === 'agent' ? (this.ctx.agents.byId(who.agentId) ?? { id: who.agentId, extension: null, name: null, interface: null }) : null;
    this.json(res, 200, {
      agent,
      supervisor: who.kind === 'supervisor',
      rules: this.rules.map((r) => ({ id: r.id, events: [...r.events], target: r.target, name: r.name, closeOn: r.closeOn })),
      keepAliveSeconds: this.ctx.config.keepAliveSeconds,
      allowedOrigins: this.ctx.config.allowedOrigins,
    });
  }

  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const who = this.authenticate(req, res, url);
    if (!who) return;
    const last = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('lastEventId');
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    this.ctx.channel.open(who, res, last ?? null);
    this.ctx.log.info({ who: describe(who), resumed: Boolean(last) }, 'agent connected');
  }

  private async pops(req: IncomingMessage, res: ServerResponse, url: URL, eventId: string): Promise<void> {
    const who = this.authenticate(req, res, url);
    if (!who) return;
    const event = this.ctx.channel.eventFor(who, eventId);
    if (!event) return this.json(res, 404, { error: 'no such event for you' });
    const pops = renderPops(this.rules, event);
    // The agent page's origin, as the browser sees it (reverse proxies pass Host / X-Forwarded-*).
    const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
    const parent = `${proto}://${(req.headers['x-forwarded-host'] as string | undefined) ?? req.headers.host ?? ''}`;
    await Promise.all(pops.filter((p) => p.target === 'embedded' && p.url).map(async (p) => (p.framing = await this.framing.check(p.url ?? '', parent))));
    this.json(res, 200, pops);
  }

  private page(res: ServerResponse, file: string, frameableByOrigins = false): void {
    const f = this.files.get(file);
    if (!f) return this.json(res, 404, { error: 'not found' });
    const ancestors = frameableByOrigins ? ["'self'", ...this.ctx.config.allowedOrigins].join(' ') : "'self'";
    res.writeHead(200, {
      'content-type': f.type,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // The page pops CRM pages (frames, requests) anywhere, but runs only its own scripts.
      'content-security-policy': `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; frame-src *; connect-src *; object-src 'none'; base-uri 'none'; frame-ancestors ${ancestors}`,
    });
    res.end(f.body);
  }

  private asset(res: ServerResponse, file: string): void {
    const f = this.files.get(file);
    if (!f) return this.json(res, 404, { error: 'not found' });
    res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    res.end(f.body);
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  }
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}
