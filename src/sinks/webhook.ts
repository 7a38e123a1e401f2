// The webhook sink: every accepted event goes into the durable outbox first, then a dispatcher
// delivers it as an HTTP request built from templates — at least once, in order per call, with
// retries, signatures (Standard Webhooks) and auth. A slow or dead CRM only delays this sink.
import type { Agent as HttpAgent } from 'undici';
import { type BridgeEvent, type CallEvent, type EventType, eventJson, isCallEvent } from '../events/types.js';
import { EVENT_TYPES } from '../events/types.js';
import type { Logger } from 'pino';
import { Dispatcher, type DeliveryOutcome, type DeliveryResult, type Outbox, type OutboxItem } from '../outbox/index.js';
import type { DeliveryPace } from '../outbox/pace.js';
import { partitionOf } from '../outbox/partition.js';
import { appendParams, compileBody, compileHeader, compileParams, compileUrl, isHeaderName, templateVars, TemplateError, type CompiledTemplate, type CompiledUrl, type ParamSpec } from '../template/index.js';
import { under } from '../template/errors.js';
import { createAuthenticator, type AuthConfig, type Authenticator } from './webhook/auth.js';
import { attemptDeadlineMs, createHttpAgent, send, type PreparedRequest } from './webhook/http.js';
import { redactUrl } from '../util/redact.js';
import { PRESETS, type PresetSettings } from './webhook/presets.js';
import { CallStates } from './webhook/call-state.js';
import { needsState, plan, type FlowOptions } from './webhook/flow.js';
import { secretKey, sign } from './webhook/sign.js';
import { secretSchema } from '../util/secret.js';
import type { JsonSchema } from '../util/json-schema.js';
import type { Sink, SinkContext, SinkDefinition } from './sink.js';

type Method = 'GET' | 'POST' | 'PUT';
type Format = 'query' | 'form' | 'json';

/** At stop, how long the HTTP client may take to close politely before its sockets are destroyed. */
const HTTP_CLOSE_GRACE_MS = 1000;

export interface WebhookSinkConfig {
  type: 'webhook';
  name?: string;
  preset?: string;
  url: string;
  method?: Method;
  format?: Format;
  params?: ParamSpec[];
  body?: unknown;
  headers?: Record<string, string>;
  events?: EventType[];
  filter?: { queue?: string[]; agent?: string[]; direction?: string[]; server?: string[] };
  routes?: Partial<Record<EventType, { params: ParamSpec[] }>>;
  when?: Partial<Record<EventType, Record<string, string[]>>>;
  firstPerCall?: EventType[];
  auth?: AuthConfig;
  secret?: string;
  timeouts: { connectMs: number; readMs: number };
  retry: { initialDelayMs: number; maxDelayMs: number; factor: number; jitter: number };
  maxAttempts: number;
  maxAgeMs: number;
  concurrency: number;
}

/** The settings a sink runs with: the user's, over its preset's, over the defaults. */
export interface ResolvedWebhook {
  method: Method;
  format: Format;
  events: Set<string> | null;
  when: Partial<Record<string, Record<string, string[]>>>;
  /** How calls are told (held newCall, answer once, transfers): flow.ts. */
  flow: FlowOptions;
  /** The preset's parameters made of several variables. */
  extra: PresetSettings['extra'] | null;
  url: CompiledUrl;
  /** Header name (lower case) and value template; values are encoded as compileHeader says. */
  headers: Array<[string, CompiledTemplate]>;
  /** The preset's parameters, then the user's (compiled apart so errors name the user's rows). */
  params: Array<ReturnType<typeof compileParams>>;
  routes: Map<string, ReturnType<typeof compileParams>>;
  body: ReturnType<typeof compileBody> | null;
  /** HMAC key of the signing secret, or null. */
  key: Buffer | null;
}

type Problem = { path: Array<string | number>; message: string };

/**
 * Compiles a sink's settings: the user's, over its preset's, over the defaults. Every problem is
 * collected with its path in the sink entry (config validation reports them all at once); the
 * result is usable only when there are none.
 */
function compileWebhook(config: WebhookSinkConfig, problems: Problem[]): ResolvedWebhook {
  const attempt = <T>(path: Array<string | number>, compile: () => T): T | null => {
    try {
      return compile();
    } catch (err) {
      if (err instanceof TemplateError) problems.push(...under(path, err.problems));
      else problems.push({ path, message: (err as Error).message });
      return null;
    }
  };
  const preset: PresetSettings | undefined = config.preset ? PRESETS[config.preset] : undefined;
  if (config.preset && !preset) problems.push({ path: ['preset'], message: `unknown preset '${config.preset}' (known: ${Object.keys(PRESETS).join(', ')})` });
  const method = config.method ?? preset?.method ?? 'POST';
  const format = config.format ?? preset?.format ?? 'json';
  if (method === 'GET' && format !== 'query') problems.push({ path: ['format'], message: `method GET sends no body: use format query (is '${format}')` });
  const events = config.events ?? (preset?.events.length ? preset.events : null);
  // Compiled in the order the keys are documented, so problems are reported in that order.
  const url = attempt(['url'], () => compileUrl(config.url)) ?? compileUrl('');
  const headers: ResolvedWebhook['headers'] = [];
  for (const [name, value] of Object.entries(config.headers ?? {})) {
    if (!isHeaderName(name)) problems.push({ path: ['headers', name], message: 'is not a valid HTTP header name (letters, digits and !#$%&\'*+-.^_`|~ only)' });
    const compiled = attempt(['headers', name], () => compileHeader(value));
    if (compiled) headers.push([name.toLowerCase(), compiled]);
  }
  const params = attempt(['params'], () => compileParams(config.params ?? [])) ?? compileParams([]);
  const routes = new Map<string, ReturnType<typeof compileParams>>();
  for (const [type, route] of Object.entries(preset?.routes ?? {})) if (route) routes.set(type, compileParams(route.params as ParamSpec[]));
  for (const [type, route] of Object.entries(config.routes ?? {})) {
    const compiled = route ? attempt(['routes', type, 'params'], () => compileParams(route.params)) : null;
    if (compiled) routes.set(type, compiled);
  }
  return {
    method,
    format,
    events: events ? new Set(events) : null,
    when: { ...(preset?.when ?? {}), ...(config.when ?? {}) },
    flow: {
      hold: preset?.flow?.hold ?? false,
      transfers: preset?.flow?.transfers ?? 'same-call',
      firstPerCall: new Set(config.firstPerCall ?? preset?.firstPerCall ?? []),
    },
    extra: preset?.extra ?? null,
    url,
    headers,
    params: [compileParams((preset?.params ?? []) as ParamSpec[]), params],
    routes,
    body: config.body !== undefined ? attempt(['body'], () => compileBody(config.body, format === 'form' ? 'form' : 'json')) : null,
    key: config.secret ? attempt(['secret'], () => secretKey(config.secret ?? '')) : null,
  };
}

/** Compiles a sink's templates; throws listing everything that is wrong. */
export function resolveWebhook(config: WebhookSinkConfig): ResolvedWebhook {
  const problems: Problem[] = [];
  const resolved = compileWebhook(config, problems);
  if (problems.length > 0) throw new Error(problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; '));
  return resolved;
}

/** What a request is about when it is not simply its event (flow.ts: Outgoing without the event). */
export interface RequestAs {
  as: EventType;
  set: Record<string, string | null>;
}

/** The template variables of a request: its event's, with `event` the type it is sent as and `set` over them. */
function requestVars(event: BridgeEvent, request?: RequestAs): Record<string, string | null> {
  const vars = templateVars(event);
  return request ? { ...vars, event: request.as, ...request.set } : vars;
}

/**
 * Builds the HTTP request for one event (without auth and signature headers), or for what a
 * preset's call flow sends for it (`request`). Throws when the request cannot be built for this
 * event (a `.`/`..` path segment, a URL that is no http(s) URL once rendered, a body that fails
 * to render): such an event can never be delivered.
 */
export function buildRequest(w: ResolvedWebhook, event: BridgeEvent, userAgent: string, request?: RequestAs): PreparedRequest {
  const vars = requestVars(event, request);
  const rendered = w.url.renderChecked(vars);
  const protocol = URL.canParse(rendered) ? new URL(rendered).protocol : null;
  if (protocol !== 'http:' && protocol !== 'https:') throw new Error(`webhook URL is not an absolute http(s) URL once rendered: ${redactUrl(rendered.slice(0, 100))}`);
  const params = [...w.params.flatMap((p) => p.render(vars)), ...(w.routes.get(request?.as ?? event.type)?.render(vars) ?? []), ...(w.extra?.(vars) ?? [])];
  const headers: Record<string, string> = { 'user-agent': userAgent };
  for (const [name, t] of w.headers) headers[name] = t.render(vars);
  let body: string | null = null;
  let url = rendered;
  if (w.format === 'query') {
    // Appended as text: re-serializing the URL would re-encode the template's literal query.
    url = appendParams(rendered, params, 'query');
  } else if (w.format === 'form') {
    if (params.length > 0) body = new URLSearchParams(params).toString();
    else if (w.body) body = w.body.serialize(vars);
    else body = new URLSearchParams(Object.entries(vars).filter((kv): kv is [string, string] => kv[1] !== null)).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else {
    body = params.length > 0 ? JSON.stringify(Object.fromEntries(params)) : w.body ? w.body.serialize(vars) : JSON.stringify(event);
    headers['content-type'] = 'application/json';
  }
  return { method: w.method, url, headers, body };
}

function passesFilter(config: WebhookSinkConfig, w: ResolvedWebhook, e: BridgeEvent, request?: RequestAs): boolean {
  const type = request?.as ?? e.type;
  if (w.events && !w.events.has(type)) return false;
  const f = config.filter;
  const vars = f || w.when[type] ? requestVars(e, request) : null;
  if (f && vars) {
    if (f.queue && !f.queue.includes(vars.queue ?? '')) return false;
    if (f.agent && !f.agent.includes(vars.agentId ?? '') && !f.agent.includes(vars.agentExtension ?? '')) return false;
    if (f.direction && !f.direction.includes(vars.direction ?? '')) return false;
    if (f.server && !f.server.includes(e.server)) return false;
  }
  const cond = w.when[type];
  if (cond && vars) {
    for (const [name, allowed] of Object.entries(cond)) if (!allowed.includes(vars[name] ?? '')) return false;
  }
  return true;
}

/** Outcomes of one sink's attempts, for metrics (SinkContext.onOutcome without the sink's name). */
type OutcomeListener = (outcome: DeliveryOutcome) => void;

/**
 * For a sink that sends each event as it is (JSON, the default body, no parameters) to a URL
 * with fixed headers, the request without its body: the stored row IS the body (the outbox
 * keeps JSON.stringify(event)), so a delivery needs neither to parse it nor to serialize it
 * again. Null when anything in the request depends on the event.
 */
function passthrough(w: ResolvedWebhook, userAgent: string): PreparedRequest | null {
  const fixed = (t: { names: readonly string[] }) => t.names.length === 0;
  const noParams = w.params.every((p) => fixed(p) && p.render({}).length === 0);
  if (w.format !== 'json' || w.body || w.extra || w.routes.size > 0 || !noParams || !fixed(w.url) || !w.headers.every(([, t]) => fixed(t))) return null;
  const url = w.url.render({});
  const protocol = URL.canParse(url) ? new URL(url).protocol : null;
  if (protocol !== 'http:' && protocol !== 'https:') return null;
  // The same headers, in the same order, as buildRequest gives.
  const headers: Record<string, string> = { 'user-agent': userAgent };
  for (const [name, t] of w.headers) headers[name] = t.render({});
  headers['content-type'] = 'application/json';
  return { method: w.method, url, headers, body: null };
}

/**
 * Takes a webhook sink's rows out of the outbox and sends them: the Dispatcher (order, retries,
 * dead letters) with the sink's HTTP client, auth and signatures. Like the whole sink, it runs on
 * the delivery thread (src/sinks/delivery-thread.ts), or on the main thread when there is none.
 */
export class WebhookDelivery {
  private readonly resolved: ResolvedWebhook;
  private readonly http: HttpAgent;
  private readonly auth: Authenticator;
  private readonly dispatcher: Dispatcher;
  /** The request every event gets, but for its body, when nothing in it depends on the event. */
  private readonly passthrough: PreparedRequest | null;

  constructor(
    private readonly config: WebhookSinkConfig,
    name: string,
    outbox: Outbox,
    private readonly ctx: { log: Logger; userAgent: string; onOutcome?: OutcomeListener; pace?: DeliveryPace },
  ) {
    this.resolved = resolveWebhook(config);
    this.passthrough = passthrough(this.resolved, ctx.userAgent);
    this.http = createHttpAgent({ connectTimeoutMs: config.timeouts.connectMs, readTimeoutMs: config.timeouts.readMs, connections: config.concurrency });
    this.auth = createAuthenticator(config.auth, ctx.log, config.timeouts.readMs);
    this.dispatcher = new Dispatcher(
      outbox,
      {
        sink: name,
        concurrency: config.concurrency,
        retry: config.retry,
        maxAttempts: config.maxAttempts,
        maxAgeMs: config.maxAgeMs,
        // Whatever the HTTP client does, an attempt ends and frees its slot by then (plus the
        // OAuth2 token fetch, which has its own readMs timeout).
        attemptTimeoutMs: attemptDeadlineMs(this.httpTimeouts) + config.timeouts.readMs,
        log: ctx.log,
        ...(ctx.pace ? { pace: ctx.pace } : {}),
        ...(ctx.onOutcome ? { onOutcome: ctx.onOutcome } : {}),
      },
      (item, signal) => this.attempt(item, signal),
    );
    this.dispatcher.start();
  }

  /** Rows were committed for this sink: look now. */
  notify(): void {
    this.dispatcher.notify();
  }

  /** Lets deliveries in flight finish (5 s), then closes the HTTP client; the rest stays in the outbox. */
  async stop(): Promise<void> {
    await this.dispatcher.stop({ deadlineMs: 5_000 });
    // close() waits for every request undici still holds; one it never settles (a hung
    // receiver, a request stuck in its queue) must not hold the daemon's shutdown.
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([this.http.close().then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), HTTP_CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    if (!closed) await this.http.destroy();
  }

  private get httpTimeouts() {
    return { connectTimeoutMs: this.config.timeouts.connectMs, readTimeoutMs: this.config.timeouts.readMs };
  }

  private async attempt(item: OutboxItem, signal: AbortSignal): Promise<DeliveryResult> {
    const w = this.resolved;
    let req: PreparedRequest;
    // A call flow's request is stored with what it is sent as ({"request":…}); any other row is
    // the event itself, which a sink that sends events as they are sends as stored.
    if (this.passthrough && !item.payload.startsWith('{"request":')) {
      req = { ...this.passthrough, headers: { ...this.passthrough.headers }, body: item.payload };
    } else {
      const stored = JSON.parse(item.payload) as BridgeEvent | { request: RequestAs; event: BridgeEvent };
      const [event, request] = 'request' in stored ? [stored.event, stored.request] : [stored, undefined];
      try {
        req = buildRequest(w, event, this.ctx.userAgent, request);
      } catch (err) {
        return { ok: false, retry: false, invalid: true, error: `the request cannot be built: ${(err as Error).message}` };
      }
    }
    // The row's id: the event's, or for a second request made of one event, its own.
    if (w.key) Object.assign(req.headers, sign(w.key, item.eventId, Date.now() / 1000, req.body ?? ''));
    else req.headers['webhook-id'] = item.eventId;
    try {
      const authorization = await this.auth.header();
      if (authorization) req.headers.authorization = authorization;
    } catch (err) {
      return { ok: false, retry: true, error: `auth: ${(err as Error).message}` };
    }
    const outcome = await send(this.http, req, signal, attemptDeadlineMs(this.httpTimeouts));
    if (outcome.ok) return { ok: true };
    if (outcome.status === 401 && this.config.auth?.type === 'oauth2') {
      // The token may have been revoked early: fetch a new one next time.
      this.auth.invalidate();
      return { ok: false, retry: true, error: outcome.error };
    }
    if (outcome.retry) return { ok: false, retry: true, afterMs: outcome.afterMs, error: outcome.error };
    return { ok: false, retry: false, error: outcome.error, ...(outcome.invalid ? { invalid: true } : {}) };
  }
}

class WebhookSink implements Sink {
  readonly name: string;
  private resolved: ResolvedWebhook | null = null;
  private deliveries: WebhookDelivery | null = null;
  /** What the call flow remembers of each call, when it needs to (flow.ts, call-state.ts). */
  private states: CallStates | null = null;

  constructor(
    private readonly config: WebhookSinkConfig,
    private readonly ctx: SinkContext,
  ) {
    this.name = config.name ?? `webhook:${config.preset ?? new URL(config.url.replace(/[{<][^}>]*[}>]/g, 'x')).host}`;
  }

  async start(): Promise<void> {
    this.resolved = resolveWebhook(this.config);
    const outbox = this.ctx.outbox();
    if (needsState(this.resolved.flow)) {
      this.states = new CallStates(outbox.database, this.name);
      // A call whose call.hangup this sink never saw (the file moved between bridges) is forgotten.
      this.states.expire(Date.now() - Math.max(this.config.maxAgeMs, 2 * 86_400_000));
    }
    const onOutcome = this.ctx.onOutcome ? (o: DeliveryOutcome) => this.ctx.onOutcome?.(this.name, o) : undefined;
    this.deliveries = new WebhookDelivery(this.config, this.name, outbox, { log: this.ctx.log, userAgent: this.ctx.userAgent, ...(onOutcome ? { onOutcome } : {}), ...(this.ctx.pace ? { pace: this.ctx.pace } : {}) });
  }

  deliver(event: BridgeEvent, json?: string): void {
    const w = this.resolved;
    if (!w) return;
    if (!this.states || !isCallEvent(event)) {
      if (!passesFilter(this.config, w, event)) return;
      this.ctx.outbox().enqueue(this.name, partitionOf(event), event.id, json ?? eventJson(event));
    } else if (!this.tell(w, this.states, event)) return;
    this.deliveries?.notify();
  }

  /**
   * Runs the call flow on a call event and enqueues what it sends, each request with the
   * variables it is sent with (the outbox keeps them: a retry after a restart sends the same).
   * The flow's memory of the call is written beside the outbox rows, in the same transaction
   * when the bridge runs one (its call ledger's). False when nothing is to be sent.
   */
  private tell(w: ResolvedWebhook, states: CallStates, event: CallEvent): boolean {
    const key = `${event.server}|${event.callId}`;
    const accepts = (as: EventType, e: CallEvent, set: Record<string, string | null>) => passesFilter(this.config, w, e, { as, set });
    const { out, state } = plan(w.flow, states.get(key), event, accepts);
    states.set(key, state);
    if (out.length === 0) return false;
    const partition = partitionOf(event);
    this.ctx.outbox().enqueueMany(out.map((o) => ({ sink: this.name, partition, eventId: o.id, payload: JSON.stringify({ request: { as: o.as, set: o.set }, event: o.event }) })));
    return true;
  }

  async stop(): Promise<void> {
    const deliveries = this.deliveries;
    this.deliveries = null;
    await deliveries?.stop();
  }
}

const paramSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['as'],
  description: 'One parameter: `from` a template variable (or `value`, a fixed string), sent `as` the name the CRM expects.',
  properties: {
    from: { type: 'string', description: 'Template variable to take the value from.' },
    value: { type: 'string', description: 'A fixed value.' },
    as: { type: 'string', minLength: 1, description: 'Parameter name the CRM expects.' },
    map: { type: 'object', additionalProperties: { type: 'string' }, description: 'Translate values (e.g. inbound: in).' },
    default: { type: 'string', description: 'Sent when the value is absent.' },
    keepEmpty: { type: 'boolean', description: 'Send the parameter empty when the value is absent (default: leave it out).' },
  },
  oneOf: [{ required: ['from'] }, { required: ['value'] }],
};

const eventTypes = { type: 'array', items: { enum: [...EVENT_TYPES] }, uniqueItems: true };

export const webhookSink: SinkDefinition<WebhookSinkConfig> = {
  type: 'webhook',
  durable: true,
  schema: {
    type: 'object',
    description: 'Delivers events to an HTTP endpoint (a CRM), durably, in order per call.',
    required: ['type', 'url'],
    additionalProperties: false,
    properties: {
      type: { const: 'webhook' },
      name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]+$', description: 'Name in logs, metrics and `crm-bridge outbox`. Default: webhook:<host>.' },
      preset: { enum: Object.keys(PRESETS), description: 'A ready set of template settings: zammad, sipgate, generic-json.' },
      url: { type: 'string', minLength: 1, description: 'URL template: {name} holders and <%KEY%> keys, each value encoded for where it lands.' },
      method: { enum: ['GET', 'POST', 'PUT'], description: 'Default POST (or the preset\'s).' },
      format: { enum: ['query', 'form', 'json'], description: 'query: parameters in the URL; form: urlencoded body; json: JSON body. Default json.' },
      params: { type: 'array', items: paramSchema, description: 'Parameter mapping (OMniLeads style).' },
      body: { description: 'JSON/form body template: an object whose string leaves are templates. Default: the event itself (json).' },
      headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Extra headers (values are templates).' },
      events: { ...eventTypes, description: 'Only these event types. Default: all (or the preset\'s).' },
      filter: {
        type: 'object',
        additionalProperties: false,
        description: 'Only events matching every given list.',
        properties: {
          queue: { type: 'array', items: { type: 'string' } },
          agent: { type: 'array', items: { type: 'string' }, description: 'Agent ids or extensions.' },
          direction: { type: 'array', items: { enum: ['inbound', 'outbound', 'internal'] } },
          server: { type: 'array', items: { type: 'string' } },
        },
      },
      routes: { type: 'object', description: 'Extra parameters per event type: { call.answered: { params: [...] } }.', additionalProperties: { type: 'object', additionalProperties: false, required: ['params'], properties: { params: { type: 'array', items: paramSchema } } } },
      firstPerCall: { ...eventTypes, description: "Send only the first event of these types in each call (zammad and sipgate presets: call.answered, so a transfer target's answer does not restart the CRM's talk time). Default: none (or the preset's)." },
      when: { type: 'object', description: 'Per event type, template variables that must have one of the listed values.', additionalProperties: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } } },
      auth: {
        type: 'object',
        additionalProperties: false,
        required: ['type'],
        description: 'none | basic (username, password) | bearer (token) | oauth2 (tokenUrl, clientId, clientSecret; client credentials, token cached and refreshed before expiry).',
        properties: {
          type: { enum: ['none', 'basic', 'bearer', 'oauth2'] },
          username: { type: 'string' },
          password: secretSchema('Basic auth password.'),
          token: secretSchema('Bearer token.'),
          tokenUrl: { type: 'string', minLength: 1, description: 'OAuth2 token endpoint.' },
          clientId: { type: 'string', minLength: 1 },
          clientSecret: secretSchema('OAuth2 client secret.'),
          scope: { type: 'string' },
          audience: { type: 'string' },
          refreshBeforeSeconds: { type: 'integer', minimum: 0, description: 'Refresh the token this long before it expires (default 60).' },
        },
        allOf: [
          { if: { properties: { type: { const: 'basic' } } }, then: { required: ['username', 'password'] } },
          { if: { properties: { type: { const: 'bearer' } } }, then: { required: ['token'] } },
          { if: { properties: { type: { const: 'oauth2' } } }, then: { required: ['tokenUrl', 'clientId', 'clientSecret'] } },
        ],
      },
      secret: secretSchema('Standard Webhooks signing secret (whsec_ + base64): every request is signed.'),
      timeouts: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: {
          connectMs: { type: 'integer', minimum: 1, default: 5000, description: 'TCP/TLS connect timeout.' },
          readMs: { type: 'integer', minimum: 1, default: 10000, description: 'Time allowed for the response headers and body.' },
        },
      },
      retry: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: {
          initialDelayMs: { type: 'integer', minimum: 1, default: 1000 },
          maxDelayMs: { type: 'integer', minimum: 1, default: 300000 },
          factor: { type: 'number', minimum: 1, default: 2 },
          jitter: { type: 'number', minimum: 0, maximum: 1, default: 0.2 },
        },
      },
      maxAttempts: { type: 'integer', minimum: 1, default: 15, description: 'Attempts before an event moves to the dead letters.' },
      maxAgeMs: { type: 'integer', minimum: 1, default: 86400000, description: 'Age after which an undelivered event moves to the dead letters.' },
      concurrency: { type: 'integer', minimum: 1, maximum: 256, default: 4, description: 'Requests in flight at once (never two of one call).' },
    },
  },
  create: (config, ctx) => new WebhookSink(config, ctx),
  validate(config) {
    const problems: Problem[] = [];
    compileWebhook(config, problems);
    return problems;
  },
};
