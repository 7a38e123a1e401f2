// Why this file is long: every browser-facing route (agent page, pops, widget, wallboard) shares
// its token checks, stream caps and CSP here.
//
// The daemon's HTTP server (`http.listen`): the agents' event streams and page, the pops, the
// widget and the supervisors' wallboard. Every data endpoint needs a token; tokens are never logged (only paths are).
import { readFileSync, readdirSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, BlockList } from 'node:net';
import { extname } from 'node:path';
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import type { HttpConfig, ScreenPopRule } from '../config/schema.js';
import { type BridgeEvent, isCallEvent } from '../events/types.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import type { Source } from '../sources/source.js';
import { compileText, compileUrl, templateVars, UrlRenderError, type CompiledTemplate, type CompiledUrl } from '../template/index.js';
import { ScreenPopSink, describe } from '../sinks/screenpop.js';
import type { WallboardSink } from '../sinks/wallboard.js';
import { addressKey, AuthThrottle } from './auth-throttle.js';
import { clientAddress, trustedProxies } from './client-address.js';
import { FramingChecker, type Framing } from './framing.js';
import { sendProblem } from './problem.js';
import { bearerToken, type Principal, type TokenVerifier } from './tokens.js';

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
  /** Why `url` is null although the rule has one: the values would make a path segment `.` or `..`. */
  urlError?: string;
}

interface CompiledRule {
  id: string;
  events: Set<string>;
  target: ScreenPopRule['target'];
  name: string | null;
  closeOn: string[];
  url: CompiledUrl | null;
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
    .map((r) => {
      const pop: Pop = {
        ruleId: r.id,
        target: r.target,
        name: r.name,
        url: null,
        text: r.text ? r.text.render(vars) : null,
        callId: isCallEvent(event) ? event.callId : null,
        eventId: event.id,
      };
      // A caller whose number or name is `..` must not open another page of the CRM (nor the
      // emptied URL): the pop then has no URL, says why, and its text still shows.
      try {
        if (r.url) pop.url = r.url.renderChecked(vars);
      } catch (err) {
        if (!(err instanceof UrlRenderError)) throw err;
        pop.urlError = err.message;
      }
      return pop;
    });
}

/** Why an authentication failed, for crm_bridge_auth_failures_total{reason}. */
export type AuthFailureReason = 'no_token' | 'invalid_token' | 'throttled';
/** Which cap refused something, for crm_bridge_caps_hit_total{cap}. */
export type CapName = 'sse_per_token' | 'sse_per_address';

/** What the server counts (BridgeMetrics implements it). */
export interface HttpMetrics {
  authFailure(reason: AuthFailureReason): void;
  capHit(cap: CapName): void;
}

export const DEFAULT_AUTH_THROTTLE = { maxFailures: 10, windowSeconds: 60 };
export const DEFAULT_STREAM_CAPS = { perToken: 10, perAddress: 50 };

export interface HttpServerContext {
  config: HttpConfig;
  rules: ScreenPopRule[];
  /** The screen-pop sink whose event streams this server serves. */
  screenpop: ScreenPopSink;
  /** The bridge's event source: its status is told to every agent page (connected / unreachable). */
  source?: Pick<Source, 'kind' | 'status$'>;
  tokens: TokenVerifier;
  agents: AgentDirectory;
  log: Logger;
  /** More routes (the JSON API, health, metrics): `[method, path pattern, handler]`. */
  extraRoutes?: Array<[string, RegExp, Handler]>;
  metrics?: HttpMetrics;
  /** The supervisors' wallboard (GET /supervisor); absent: those routes answer 404. */
  wallboard?: WallboardSink | null;
  /** Whether a token is one of api.tokens (refused on the supervisor routes with 403, not 401). */
  isApiToken?: (token: string) => boolean;
  /** Whether the API (and so the wallboard's call-back) is on. */
  callBack?: boolean;
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
  private readonly throttle: AuthThrottle;
  /** http.trustedProxies, or null: the socket's peer is the client. */
  private proxies: BlockList | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  /** Set by stop(): requests still arriving on open sockets are refused. */
  private closing = false;
  private sourceStatus: Subscription | null = null;
  /** Open event streams per principal (`agent:201`) and per address key. */
  private readonly streamsByWho = new Map<string, number>();
  private readonly streamsByAddress = new Map<string, number>();
  /** Caps already reported, so a client retrying in a loop makes one log line, not one per try. */
  private readonly capsReported = new Set<string>();

  constructor(private ctx: HttpServerContext) {
    this.routes = this.buildRoutes();
    const t = ctx.config.authThrottle ?? DEFAULT_AUTH_THROTTLE;
    this.throttle = new AuthThrottle({ maxFailures: t.maxFailures, windowMs: t.windowSeconds * 1000, log: ctx.log });
    this.proxies = ctx.config.trustedProxies?.length ? trustedProxies(ctx.config.trustedProxies) : null;
  }

  /**
   * New settings (SIGHUP reload): rules, tokens, agents, API. The listening socket and the open
   * streams stay; `config.listen` itself only changes with a restart.
   */
  reconfigure(next: Omit<HttpServerContext, 'screenpop' | 'source' | 'log'>): void {
    const rules = compileRules(next.rules);
    this.ctx = { ...this.ctx, ...next, config: { ...next.config, listen: this.ctx.config.listen } };
    this.rules = rules;
    this.routes = this.buildRoutes();
    const t = this.ctx.config.authThrottle ?? DEFAULT_AUTH_THROTTLE;
    this.throttle.configure(t.maxFailures, t.windowSeconds * 1000);
    this.proxies = this.ctx.config.trustedProxies?.length ? trustedProxies(this.ctx.config.trustedProxies) : null;
  }

  /** The key the per-address defences count this request under (client-address.ts). */
  private addressOf(req: IncomingMessage): string {
    return addressKey(clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.proxies));
  }

  private buildRoutes(): Array<[string, RegExp, Handler]> {
    const ctx = this.ctx;
    return [
      ['GET', /^\/$/, (_q, res) => this.landing(res)],
      ['GET', /^\/agent\/?$/, (_q, res) => this.page(res, 'agent/index.html')],
      ['GET', /^\/agent\/assets\/([A-Za-z0-9_.-]+)$/, (_q, res, _u, p) => this.page(res, `agent/${p[0]}`)],
      ['GET', /^\/agent\/me$/, (req, res, url) => this.me(req, res, url)],
      ['GET', /^\/agent\/events$/, (req, res, url) => this.events(req, res, url)],
      ['GET', /^\/agent\/pops\/([A-Za-z0-9_-]+)$/, (req, res, url, p) => this.pops(req, res, url, p[0] ?? '')],
      ['GET', /^\/supervisor\/?$/, (req, res, url) => this.supervisorPage(req, res, url)],
      ['GET', /^\/supervisor\/assets\/([A-Za-z0-9_.-]+)$/, (_q, res, _u, p) => this.page(res, `supervisor/${p[0]}`)],
      ['GET', /^\/supervisor\/me$/, (req, res, url) => this.supervisorMe(req, res, url)],
      ['GET', /^\/supervisor\/events$/, (req, res, url) => this.supervisorEvents(req, res, url)],
      ['GET', /^\/widget\.js$/, (_q, res) => this.page(res, 'widget/widget.js', true)],
      ['GET', /^\/widget\/?$/, (_q, res) => this.page(res, 'widget/index.html', true)],
      ['GET', /^\/widget\/([A-Za-z0-9_.-]+)$/, (_q, res, _u, p) => this.page(res, `widget/${p[0]}`, true)],
      ...(ctx.extraRoutes ?? []),
    ];
  }

  /** The address actually bound (port 0 in tests). */
  get address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null) ?? null;
  }

  async start(): Promise<void> {
    this.closing = false;
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
    const windowMs = (this.ctx.config.authThrottle ?? DEFAULT_AUTH_THROTTLE).windowSeconds * 1000;
    this.sweeper = setInterval(() => this.throttle.sweep(), windowMs);
    this.sweeper.unref();
    const source = this.ctx.source;
    if (source) {
      this.sourceStatus = source.status$.subscribe((s) => {
        this.ctx.screenpop.setSourceStatus(source.kind, s);
        this.ctx.wallboard?.setSourceStatus(source.kind, s);
      });
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    // A page whose stream just ended reconnects, possibly over a keep-alive socket close() has not
    // reached yet: from now on every request is refused and its socket closed, so nothing new holds
    // the shutdown open.
    this.closing = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.sourceStatus?.unsubscribe();
    this.sourceStatus = null;
    this.throttle.clear();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private loadFiles(): void {
    try {
      this.files.set('index.html', { body: readFileSync(new URL('index.html', WEB_ROOT)), type: TYPES['.html'] ?? 'text/html' });
    } catch {
      this.ctx.log.warn({ file: 'index.html' }, 'web files missing');
    }
    for (const dir of ['agent', 'widget', 'supervisor']) {
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
    if (this.closing) {
      req.resume();
      return sendProblem(res, 503, 'the bridge is stopping', { headers: { connection: 'close', 'retry-after': '5' } });
    }
    const url = new URL(req.url ?? '/', 'http://bridge');
    this.cors(req, res);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    // Only requests that carry a token can be guesses: those are the ones throttled and counted.
    const token = this.presentedToken(req, url);
    const address = this.addressOf(req);
    if (token !== null) {
      const admission = this.throttle.admit(address);
      if (!admission.ok) {
        this.ctx.metrics?.authFailure('throttled');
        const detail = `too many failed authentications from this address: retry in ${admission.retryAfterSeconds} s`;
        return sendProblem(res, 429, detail, { headers: { 'retry-after': String(admission.retryAfterSeconds) } });
      }
    }
    let pathKnown = false;
    for (const [method, re, handler] of this.routes) {
      const m = re.exec(url.pathname);
      if (!m) continue;
      pathKnown = true;
      if (req.method !== method) continue;
      try {
        await handler(req, res, url, m.slice(1));
        // Every route answers 401 for a token it does not know (the agent routes, the API,
        // /metrics): judged here, so a route added later is covered without a call of its own.
        if (res.statusCode === 401) {
          this.ctx.metrics?.authFailure(token === null ? 'no_token' : 'invalid_token');
          if (token !== null) this.throttle.failure(address, url.pathname);
        }
      } catch (err) {
        // Paths only: a query string may hold a token.
        this.ctx.log.error({ err, path: url.pathname }, 'HTTP handler failed');
        if (!res.headersSent) sendProblem(res, 500, 'internal error: the bridge logged it');
        else res.end();
      }
      return;
    }
    if (pathKnown) {
      const allowed = this.routes.filter(([, re]) => re.test(url.pathname)).map(([method]) => method);
      return sendProblem(res, 405, `method ${req.method ?? ''} not allowed here`, { headers: { allow: [...new Set(allowed)].join(', ') } });
    }
    sendProblem(res, 404, 'not found');
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

  /**
   * The token a request presents, if any: `Authorization: Bearer` (the scheme in any case, RFC
   * 7235) or, for the agent routes (EventSource cannot set headers), `?token=`.
   */
  private presentedToken(req: IncomingMessage, url: URL): string | null {
    const header = req.headers.authorization;
    return bearerToken(header) ?? url.searchParams.get('token') ?? header ?? null;
  }

  private authenticate(req: IncomingMessage, res: ServerResponse, url: URL): Principal | null {
    const header = req.headers.authorization;
    const token = bearerToken(header) ?? url.searchParams.get('token');
    const who = this.ctx.tokens.verify(token);
    if (!who) {
      // Logged by the throttle (first failure of a window, then a summary), not once per try.
      sendProblem(res, 401, token ? 'invalid or expired token' : 'a token is required (Authorization: Bearer, or ?token=)', { headers: { 'www-authenticate': 'Bearer' } });
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
      supervisorName: who.kind === 'supervisor' ? who.name : null,
      rules: this.rules.map((r) => ({ id: r.id, events: [...r.events], target: r.target, name: r.name, closeOn: r.closeOn })),
      keepAliveSeconds: this.ctx.config.keepAliveSeconds,
      allowedOrigins: this.ctx.config.allowedOrigins,
    });
  }

  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const who = this.authenticate(req, res, url);
    if (!who) return;
    if (!this.admitStream(req, res, who)) return;
    const last = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('lastEventId');
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    this.ctx.screenpop.open(who, res, last ?? null);
    this.ctx.log.info({ who: describe(who), resumed: Boolean(last) }, 'agent connected');
  }

  /**
   * A supervisor, or a refusal: 401 without a valid token, 403 for an agent's or an API token
   * (the wallboard shows every agent and caller; those tokens may not see that).
   */
  private supervisor(req: IncomingMessage, res: ServerResponse, url: URL): Principal | null {
    if (!this.ctx.wallboard) {
      sendProblem(res, 404, 'not found');
      return null;
    }
    const token = bearerToken(req.headers.authorization) ?? url.searchParams.get('token');
    if (token && this.ctx.isApiToken?.(token)) {
      sendProblem(res, 403, 'an API token cannot open the wallboard: use a supervisor token (http.supervisors); the API has the same figures under /api/v1/supervisor');
      return null;
    }
    const who = this.authenticate(req, res, url);
    if (!who) return null;
    if (who.kind !== 'supervisor') {
      sendProblem(res, 403, "an agent's token cannot open the wallboard: it needs a supervisor token (http.supervisors)");
      return null;
    }
    return who;
  }

  /**
   * GET /supervisor: the wallboard page. Without a token it shows its login form, as the agent
   * page does; a token in the address is checked first, so an agent's link to it fails plainly.
   */
  private supervisorPage(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (!this.ctx.wallboard) return sendProblem(res, 404, 'not found');
    const presented = bearerToken(req.headers.authorization) ?? url.searchParams.get('token');
    if (presented !== null && !this.supervisor(req, res, url)) return;
    this.page(res, 'supervisor/index.html');
  }

  private supervisorMe(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const who = this.supervisor(req, res, url);
    if (!who || who.kind !== 'supervisor') return;
    this.json(res, 200, { name: who.name, callBack: Boolean(this.ctx.callBack), timeZone: this.ctx.wallboard?.timeZone ?? null });
  }

  private supervisorEvents(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const who = this.supervisor(req, res, url);
    if (!who || !this.ctx.wallboard) return;
    if (!this.admitStream(req, res, who)) return;
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    this.ctx.wallboard.open(res);
    this.ctx.log.info({ who: describe(who) }, 'supervisor connected');
  }

  /**
   * Counts the stream against its principal's and its address's caps, or refuses it (429). A
   * leaked token, or one client opening streams in a loop, cannot hold every socket.
   */
  private admitStream(req: IncomingMessage, res: ServerResponse, who: Principal): boolean {
    const caps = this.ctx.config.streams ?? DEFAULT_STREAM_CAPS;
    const whoKey = describe(who);
    const address = this.addressOf(req);
    const hit: [CapName, string, number] | null =
      (this.streamsByWho.get(whoKey) ?? 0) >= caps.perToken
        ? ['sse_per_token', whoKey, caps.perToken]
        : (this.streamsByAddress.get(address) ?? 0) >= caps.perAddress
          ? ['sse_per_address', address, caps.perAddress]
          : null;
    if (hit) {
      const [cap, key, limit] = hit;
      this.ctx.metrics?.capHit(cap);
      if (!this.capsReported.has(`${cap} ${key}`)) {
        this.capsReported.add(`${cap} ${key}`);
        this.ctx.log.warn({ cap, who: whoKey, remote: address, limit }, `event stream refused: ${limit} streams already open ${cap === 'sse_per_token' ? `for ${whoKey}` : 'from this address'} (http.streams); further refusals are counted, not logged, until one closes`);
      }
      const detail = cap === 'sse_per_token' ? `${limit} event streams are already open for this token (http.streams.perToken): close one first` : `${limit} event streams are already open from this address (http.streams.perAddress): close one first`;
      sendProblem(res, 429, detail, { headers: { 'retry-after': '30' } });
      return false;
    }
    const inc = (m: Map<string, number>, k: string, by: number) => {
      const n = (m.get(k) ?? 0) + by;
      if (n > 0) m.set(k, n);
      else m.delete(k);
    };
    inc(this.streamsByWho, whoKey, 1);
    inc(this.streamsByAddress, address, 1);
    res.once('close', () => {
      inc(this.streamsByWho, whoKey, -1);
      inc(this.streamsByAddress, address, -1);
      this.capsReported.delete(`sse_per_token ${whoKey}`);
      this.capsReported.delete(`sse_per_address ${address}`);
    });
    return true;
  }

  private async pops(req: IncomingMessage, res: ServerResponse, url: URL, eventId: string): Promise<void> {
    const who = this.authenticate(req, res, url);
    if (!who) return;
    const event = this.ctx.screenpop.eventFor(who, eventId);
    if (!event) return sendProblem(res, 404, 'no such event for you');
    const pops = renderPops(this.rules, event);
    for (const p of pops) if (p.urlError) this.ctx.log.warn({ rule: p.ruleId, eventId, agent: who.kind === 'agent' ? who.agentId : null }, `screen pop without its URL: ${p.urlError}`);
    // The agent page's origin, as the browser sees it (reverse proxies pass Host / X-Forwarded-*).
    const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
    const parent = `${proto}://${(req.headers['x-forwarded-host'] as string | undefined) ?? req.headers.host ?? ''}`;
    await Promise.all(pops.filter((p) => p.target === 'embedded' && p.url).map(async (p) => (p.framing = await this.framing.check(p.url ?? '', parent))));
    this.json(res, 200, pops);
  }

  /**
   * GET /: a page of links for whoever opens the bridge's address (the agent page first), rather
   * than a bare 404 or a redirect that would hide what else is here. The API's line only when this
   * bridge serves the API.
   */
  private landing(res: ServerResponse): void {
    const api = this.routes.some(([method, re]) => method === 'GET' && re.test('/api/v1/openapi.json'));
    this.page(res, 'index.html', false, api ? undefined : (html) => html.replace(/[ \t]*<!-- if api -->.*?<!-- end api -->\n?/s, ''));
  }

  /**
   * A static file: the agent page, the widget and their scripts and styles. Every one carries the
   * same CSP, so no file of ours can be framed by a page that may not frame the page itself.
   */
  private page(res: ServerResponse, file: string, frameableByOrigins = false, transform?: (text: string) => string): void {
    const f = this.files.get(file);
    if (!f) return sendProblem(res, 404, 'not found');
    const ancestors = frameableByOrigins ? ["'self'", ...this.ctx.config.allowedOrigins].join(' ') : "'self'";
    res.writeHead(200, {
      'content-type': f.type,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // The page pops CRM pages (frames, requests) anywhere, but runs only its own scripts.
      'content-security-policy': `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; frame-src *; connect-src *; object-src 'none'; base-uri 'none'; frame-ancestors ${ancestors}`,
    });
    res.end(transform ? transform(f.body.toString('utf8')) : f.body);
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
