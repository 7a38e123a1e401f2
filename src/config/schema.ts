import { natsSourceSchema, type NatsSourceConfig } from '../sources/nats.js';
import { amiConfigSchema, type AmiConfig } from '../sources/ami/config.js';
import { ariConfigSchema, type AriConfig } from '../sources/ari/config.js';
// Why this file is long: the schema of every top-level section, one description and default per
// key, is the config's one reference (README and schema/config.v1.json are made from it).
//
// The configuration schema: one JSON Schema, a description and default per key, and the
// TypeScript shape of a loaded config. Adding a top-level section (http, screenpop, api, source)
// is adding a property here and a field to BridgeConfig; env overrides, secret handling and the
// config.yaml key check follow from the schema. `additionalProperties: false` at every level
// makes a misspelt key an error instead of a silently ignored setting.
import { SINKS } from '../sinks/registry.js';
import type { JsonSchema } from '../util/json-schema.js';
import { secretSchema } from '../util/secret.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface PbxConfig {
  name: string;
  /** At least one of ami / ari is configured (the loader checks). */
  ami?: AmiConfig;
  ari?: AriConfig;
}

export interface CallsConfig {
  inboundContexts: string[];
  agentContexts: string[];
  extensionPattern: string;
  agentsFromPbx: boolean;
  maxInProgress: number;
  maxAgents: number;
}

export interface AgentConfig {
  id: string;
  name?: string;
  extension?: string;
  interfaces: string[];
  token?: string;
  queues?: string[];
}

export interface HttpConfig {
  listen: string;
  allowedOrigins: string[];
  keepAliveSeconds: number;
  retryMs: number;
  bufferPerAgent: number;
  tokenSecret?: string;
  metricsToken?: string;
  supervisors: Array<{ name: string; token: string }>;
  /** Optional in the type so that tests may build an HttpConfig by hand; a loaded config has both. */
  authThrottle?: { maxFailures: number; windowSeconds: number };
  streams?: { perToken: number; perAddress: number };
  /** Reverse proxies whose X-Forwarded-For names the client (optional in the type, as above). */
  trustedProxies?: string[];
}

/** The JSON API (/api/v1) on the HTTP server: tokens, rate limit, click-to-call. */
export interface ApiConfig {
  tokens: Array<{ name: string; token: string }>;
  rateLimit: { perMinute: number; burst: number };
  clickToCall: {
    agentChannel: string;
    context: string;
    numberPattern: string;
    callerId: string;
    ringTimeoutSeconds: number;
  };
  presence: {
    mode: 'synchronized' | 'complementary';
    defaultReason: string;
    crmReadyReason: string;
  };
}

export type PopTarget = 'new-tab' | 'named-tab' | 'embedded' | 'hash' | 'background' | 'clipboard';

export interface ScreenPopRule {
  id?: string;
  events: string[];
  url?: string;
  text?: string;
  target: PopTarget;
  name?: string;
  closeOn?: string[];
}

/**
 * One `sinks:` entry. Its keys beyond `type` and `name` are checked by the sink's own schema
 * (the SINKS table); the sink's `create()` receives the entry as its typed config.
 */
export interface SinkConfig {
  type: string;
  name?: string;
  [key: string]: unknown;
}

export interface LogConfig {
  level: LogLevel;
}

export interface ShutdownConfig {
  timeoutMs: number;
}

export interface StartupConfig {
  /** Run a recorded call through the pipeline before connecting (src/warm-up.ts). */
  warmUp: boolean;
}

/** A loaded config: validated, every default filled, every secret resolved. */
export interface OutboxConfig {
  path?: string;
  synchronous: 'normal' | 'full';
  /** A sink with events waiting and no delivery for this long is stalled (/readyz not ready); 0: off. */
  stalledAfterMs: number;
  /** Webhook deliveries on a thread of their own (src/sinks/delivery-thread.ts); false: on the main thread. */
  deliveryThread: boolean;
  /** While screen pops go out, the durable sinks together deliver at most this many events a second; 0: no limit (src/outbox/pace.ts). */
  deliveriesPerSecondWhilePopping: number;
}

/** The supervisor's wallboard (GET /supervisor; src/sinks/wallboard.ts). */
export interface SupervisorConfig {
  /** false: no wallboard, no /api/v1/supervisor, no per-queue gauges (and none of their work). */
  enabled: boolean;
  /** IANA time zone whose midnight resets today's counters; absent: the machine's. */
  timeZone?: string;
  serviceLevelSeconds: number;
  queues: Array<{ name: string; serviceLevelSeconds: number }>;
  path?: string;
  retentionDays: number;
  pushIntervalMs: number;
}

export interface BridgeConfig {
  /** A delivery node has no pbx in its file: the loader names it after `source.name`. */
  pbx: PbxConfig;
  /** A delivery node: events from the NATS stream instead of a PBX. */
  source?: NatsSourceConfig;
  calls: CallsConfig;
  agents: AgentConfig[];
  sinks: SinkConfig[];
  outbox: OutboxConfig;
  http?: HttpConfig;
  api?: ApiConfig;
  screenpop: ScreenPopRule[];
  supervisor: SupervisorConfig;
  log: LogConfig;
  startup: StartupConfig;
  shutdown: ShutdownConfig;
}

export const DEFAULT_INBOUND_CONTEXTS = ['from-pstn', 'from-trunk', 'from-external', 'from-did-direct', 'ext-did'];
export const DEFAULT_AGENT_CONTEXTS = ['agents', 'from-queue'];
export const DEFAULT_EXTENSION_PATTERN = '^[0-9]{2,6}$';

const contextList = (description: string, defaults: string[]): JsonSchema => ({
  type: 'array',
  description,
  items: { type: 'string', minLength: 1 },
  uniqueItems: true,
  default: defaults,
});



const pbxSchema: JsonSchema = {
  type: 'object',
  description: 'The Asterisk server this bridge watches.',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9_.-]+$',
      description: "This PBX's name: the `server` of every event (and later part of NATS subjects). Letters, digits, '_', '.', '-'.",
    },
    ami: amiConfigSchema,
    ari: ariConfigSchema,
  },
};

const callsSchema: JsonSchema = {
  type: 'object',
  description: 'How calls are classified.',
  additionalProperties: false,
  default: {},
  properties: {
    inboundContexts: contextList('Dialplan contexts where calls from outside (trunks, DIDs) enter: a channel created there makes an inbound call.', DEFAULT_INBOUND_CONTEXTS),
    agentContexts: contextList('Contexts whose Local channels (Local/EXT@<context>) are agent devices.', DEFAULT_AGENT_CONTEXTS),
    extensionPattern: {
      type: 'string',
      minLength: 1,
      regexp: true,
      default: DEFAULT_EXTENSION_PATTERN,
      description: 'JavaScript regular expression: a device channel (PJSIP/201-…) whose endpoint matches is an agent extension, unless the PBX lists the device as a trunk.',
    },
    agentsFromPbx: {
      type: 'boolean',
      default: true,
      description: 'Recognise agents from what the PBX lists over AMI (queue members; PJSIP endpoints and SIP/IAX2 peers classified as phones; trunks are never agents). false: only agents, agentContexts and extensionPattern.',
    },
    maxInProgress: {
      type: 'integer',
      minimum: 1,
      default: 50000,
      description: 'At most this many calls in progress are tracked: a new call beyond ends the oldest (its call.hangup, hangupBy system), logged once and counted in crm_bridge_caps_hit_total{cap="calls"}.',
    },
    maxAgents: {
      type: 'integer',
      minimum: 1,
      default: 10000,
      description: 'At most this many agents learnt from AMI (queue members, their names, agent seq): beyond, the least recently seen is forgotten, logged once and counted in crm_bridge_caps_hit_total{cap="agents"}.',
    },
  },
};

const agentsSchema: JsonSchema = {
  type: 'array',
  description: 'Known agents. Agents not listed are still recognised by extensionPattern, with their extension as id.',
  default: [],
  // Each would make the agent directory ambiguous: one of the two entries would never match.
  uniqueBy: [{ key: 'id' }, { key: 'extension' }, { key: 'interfaces', ignoreCase: true }],
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['id'],
    properties: {
      id: { type: 'string', minLength: 1, description: 'Stable agent id sent in events (e.g. the CRM user id).' },
      name: { type: 'string', minLength: 1, description: 'Display name. Default: the queue MemberName, if any.' },
      extension: { type: 'string', minLength: 1, description: 'Extension dialled to reach the agent (transfers, internal calls).' },
      interfaces: {
        type: 'array',
        default: [],
        description: 'Device interfaces of the agent (PJSIP/201, Local/201@agents); matched case-insensitively.',
        items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]*/\\S+$' },
      },
      token: secretSchema("The agent's static token for the screen-pop stream and the agent page (or mint signed ones: `crm-bridge token`)."),
      queues: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        uniqueItems: true,
        description: "Queues whose calls this agent's screen pop also receives (e.g. call.queued). Default: only calls the agent is part of.",
      },
    },
  },
};

const httpSchema: JsonSchema = {
  type: 'object',
  description: "The daemon's HTTP server: agents' screen-pop stream and page, the widget, and (later) the API and metrics.",
  additionalProperties: false,
  required: ['listen'],
  properties: {
    listen: { type: 'string', pattern: '^(\\[[0-9a-fA-F:]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$', description: 'host:port to listen on, e.g. 127.0.0.1:8090.' },
    allowedOrigins: {
      type: 'array',
      default: [],
      items: { type: 'string', pattern: '^https?://[^/\\s]+$' },
      description: 'Origins of CRM pages allowed to call the HTTP endpoints from a browser (CORS) and to exchange messages with the widget, e.g. https://crm.example.com.',
    },
    keepAliveSeconds: { type: 'integer', minimum: 1, maximum: 300, default: 15, description: 'Seconds between keep-alive comments on event streams.' },
    retryMs: { type: 'integer', minimum: 100, default: 3000, description: 'Reconnect delay hinted to browsers (SSE retry:).' },
    bufferPerAgent: { type: 'integer', minimum: 1, maximum: 100000, default: 200, description: 'Events kept per agent so a reconnecting browser (Last-Event-ID) misses nothing.' },
    tokenSecret: secretSchema('Key that signs tokens minted with `crm-bridge token` (32+ random bytes).'),
    metricsToken: secretSchema('Bearer token Prometheus sends to scrape GET /metrics (supervisor tokens work too). Absent: /metrics needs a supervisor token.'),
    authThrottle: {
      type: 'object',
      description: 'Failed authentications (a wrong token, on any route that takes one) per client address: past maxFailures in windowSeconds, every request from that address carrying a token gets 429 with Retry-After, unchecked, until the window has passed. IPv6 addresses count per /64.',
      additionalProperties: false,
      default: {},
      properties: {
        maxFailures: { type: 'integer', minimum: 1, maximum: 100000, default: 10, description: 'Wrong tokens an address may send per window before it is throttled.' },
        windowSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60, description: 'The window, and how long an address stays throttled.' },
      },
    },
    streams: {
      type: 'object',
      description: 'Open event streams (GET /agent/events) allowed at once; one more gets 429.',
      additionalProperties: false,
      default: {},
      properties: {
        perToken: { type: 'integer', minimum: 1, maximum: 100000, default: 10, description: "Per agent or supervisor, whichever of its tokens is used (an agent's browser tabs, its widget)." },
        perAddress: { type: 'integer', minimum: 1, maximum: 100000, default: 50, description: 'Per client address (IPv6: per /64). Behind a reverse proxy, list it in trustedProxies so that each browser counts by its own address.' },
      },
    },
    trustedProxies: {
      type: 'array',
      default: [],
      items: { type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' },
      description:
        "Reverse proxies in front of the bridge (addresses or subnets: 127.0.0.1, 10.0.0.0/8). A request from one of them is counted, by the wrong-token throttle and http.streams.perAddress, under the right-most X-Forwarded-For address that is not a trusted proxy. From any other peer X-Forwarded-For is ignored. Empty: the socket's peer, always.",
    },
    supervisors: {
      type: 'array',
      default: [],
      description: 'Tokens that may watch every agent\'s stream.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'token'],
        properties: {
          name: { type: 'string', minLength: 1, description: 'Who holds it (for the logs).' },
          token: secretSchema('The supervisor token.'),
        },
      },
    },
  },
};

const apiSchema: JsonSchema = {
  type: 'object',
  description: 'The versioned JSON API (/api/v1) on the HTTP server (needs http): click-to-call and presence. Absent: no API.',
  additionalProperties: false,
  properties: {
    tokens: {
      type: 'array',
      default: [],
      description: "API tokens (Authorization: Bearer), e.g. one per CRM. An agent's own token may also place calls, for that agent only.",
      uniqueBy: [{ key: 'name' }],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'token'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Who holds it (for the logs and the rate limit).' },
          token: secretSchema('The API token (32+ random characters).'),
        },
      },
    },
    rateLimit: {
      type: 'object',
      description: 'Per-token rate limit (token bucket); over it, requests get 429 with Retry-After.',
      additionalProperties: false,
      default: {},
      properties: {
        perMinute: { type: 'integer', minimum: 1, maximum: 100000, default: 60, description: 'Sustained requests per minute per token.' },
        burst: { type: 'integer', minimum: 1, maximum: 100000, default: 10, description: 'Requests a token may make at once before the rate applies.' },
      },
    },
    clickToCall: {
      type: 'object',
      description: "POST /api/v1/calls: ring the agent's device, then dial the number.",
      additionalProperties: false,
      default: {},
      properties: {
        agentChannel: {
          type: 'string',
          pattern: '^[A-Za-z][A-Za-z0-9_]*/([^\\s{},]|\\{(extension|id)\\})+$',
          default: 'PJSIP/{extension}',
          description: "Device to ring for an agent without interfaces ({extension}, {id}); an agent with interfaces rings its first one.",
        },
        context: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', default: 'from-internal', description: 'Dialplan context the number is dialled in once the agent answers.' },
        numberPattern: {
          type: 'string',
          minLength: 1,
          regexp: true,
          default: '^\\+?[0-9]{3,15}$',
          description: 'JavaScript regular expression: the allow-list of dialable numbers, checked after normalization (spaces, dashes, dots and parentheses removed).',
        },
        callerId: {
          type: 'string',
          pattern: '^([^{}\\x00-\\x1f]|\\{(number|extension|name|id)\\})*$',
          default: '"{number}" <{extension}>',
          description: "Caller ID of the agent's leg ({number}, {extension}, {name}, {id}): what the agent's phone shows, and the call's caller.",
        },
        ringTimeoutSeconds: { type: 'integer', minimum: 5, maximum: 300, default: 30, description: "How long the agent's device rings before the call is given up." },
      },
    },
    presence: {
      type: 'object',
      description: "PUT /api/v1/agents/{id}/presence and the crmPresence field of agent events: the agent's queue availability and CRM presence kept in step.",
      additionalProperties: false,
      default: {},
      properties: {
        mode: {
          type: 'string',
          enum: ['synchronized', 'complementary'],
          default: 'synchronized',
          description: "synchronized: the same state on both sides. complementary: never ready on both (CRM ready pauses the queues; queues ready tell the CRM not_ready).",
        },
        defaultReason: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\x00-\\x1f]*$', default: 'crm', description: 'Pause reason when the CRM sets not_ready without one (synchronized mode).' },
        crmReadyReason: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\x00-\\x1f]*$', default: 'crm-ready', description: 'Complementary mode: pause reason while the agent is ready in the CRM.' },
      },
    },
  },
};

const screenpopSchema: JsonSchema = {
  type: 'array',
  default: [],
  description: 'Screen-pop rules: which events pop what in the agent page, and how.',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['events', 'target'],
    properties: {
      id: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Rule id (default: its position, rule-1, rule-2, …).' },
      events: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^(call|agent)\\.[a-z_]+$' }, description: 'Event types that pop, e.g. [call.ringing].' },
      url: { type: 'string', minLength: 1, description: 'URL template (same engine and variables as webhooks), values encoded for where they land.' },
      text: { type: 'string', minLength: 1, description: 'Text template for target clipboard.' },
      target: { enum: ['new-tab', 'named-tab', 'embedded', 'hash', 'background', 'clipboard'], description: 'Where the pop goes.' },
      name: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', description: 'Window name for target named-tab (default crm).' },
      closeOn: { type: 'array', uniqueItems: true, items: { type: 'string' }, description: 'Events that close a pending pop of the same call (default [call.ring_stopped]).' },
    },
  },
};

function sinksSchema(): JsonSchema {
  // Implied sinks (the screen-pop sink, from `http`) are not written under `sinks:`.
  const branches = Object.entries(SINKS).filter(([, def]) => !def.implied).map(([key, def]) => {
    const props = def.schema['properties'] as Record<string, JsonSchema> | undefined;
    // Programmer errors in a sink definition: fail at startup, not with a puzzling message later.
    if (def.type !== key) throw new Error(`SINKS: row '${key}' holds the definition of '${def.type}'`);
    if (props?.['type']?.['const'] !== def.type) throw new Error(`SINKS: schema of '${def.type}' must have properties.type.const = '${def.type}'`);
    return def.schema;
  });
  return {
    type: 'array',
    description: 'Where events are delivered. Each entry has a `type` (one of the registered sinks) and that sink\'s keys.',
    default: [{ type: 'log' }],
    // A sink's name keys its rows in the outbox and its metrics: two sinks cannot share one.
    uniqueBy: [{ key: 'name' }],
    items: { type: 'object', discriminator: { propertyName: 'type' }, oneOf: branches },
  };
}

const outboxSchema: JsonSchema = {
  type: 'object',
  description: 'The durable outbox (SQLite) where durable sinks (webhook) keep events until delivered.',
  additionalProperties: false,
  default: {},
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      description:
        "SQLite file. Default: $STATE_DIRECTORY/outbox.db under systemd (StateDirectory=), else ./data/outbox.db.",
    },
    synchronous: {
      type: 'string',
      enum: ['normal', 'full'],
      default: 'normal',
      description: "normal survives a crash of the daemon (kill -9); full also survives power loss, at a cost in throughput.",
    },
    stalledAfterMs: {
      type: 'integer',
      minimum: 0,
      default: 600000,
      description:
        'A durable sink that has had events waiting this long and delivered none for this long is stalled: /readyz answers 503 naming it, and crm_bridge_sink_stalled is 1. 0 turns the check off. Default 10 minutes.',
    },
    deliveryThread: {
      type: 'boolean',
      default: true,
      description:
        'Webhook deliveries (HTTP, retries, the outbox bookkeeping of each attempt) run on a thread of their own, so a burst of AMI input and a busy CRM each get a core. false: on the main thread (a one-core machine).',
    },
    deliveriesPerSecondWhilePopping: {
      type: 'integer',
      minimum: 0,
      default: 1000,
      description:
        "Screen pops first: while pops are going out (one in the last 2 s), the durable sinks (webhook, nats) together deliver at most this many events a second; the rest waits in the outbox, in order, and goes at full speed when pops stop. Live traffic stays far below it; it slows a backlog's catch-up so the pops keep their CPU. 0: no limit.",
    },
  },
};

const supervisorSchema: JsonSchema = {
  type: 'object',
  description: "The supervisors' wallboard at GET /supervisor (http.supervisors' tokens), its JSON API (/api/v1/supervisor/…) and per-queue metrics. On whenever http is, unless enabled is false.",
  additionalProperties: false,
  default: {},
  properties: {
    enabled: {
      type: 'boolean',
      default: true,
      description: 'false: no wallboard (GET /supervisor answers 404), no /api/v1/supervisor and no per-queue gauges, and none of the work of keeping them (a few % of a core at 50 calls/s).',
    },
    timeZone: {
      type: 'string',
      minLength: 1,
      timeZone: true,
      description: "IANA time zone (Europe/Berlin) whose midnight resets today's counters and whose quarter hours the chart shows. Default: the machine's time zone (TZ, /etc/localtime).",
    },
    serviceLevelSeconds: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: 20,
      description: 'Service level: the share of queue calls answered within this many seconds of joining the queue (of calls answered or missed). Per queue below.',
    },
    queues: {
      type: 'array',
      default: [],
      description: 'Per-queue settings.',
      uniqueBy: [{ key: 'name' }],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'serviceLevelSeconds'],
        properties: {
          name: { type: 'string', minLength: 1, description: "The queue's name in Asterisk (queues.conf)." },
          serviceLevelSeconds: { type: 'integer', minimum: 1, maximum: 3600, description: "This queue's service-level threshold." },
        },
      },
    },
    path: {
      type: 'string',
      minLength: 1,
      description: "SQLite file of today's counters, so a restart keeps them. Default: wallboard.db beside the outbox (':memory:' with an in-memory outbox).",
    },
    retentionDays: { type: 'integer', minimum: 1, maximum: 3660, default: 31, description: 'Days of counters kept in the file (older ones are deleted at midnight).' },
    pushIntervalMs: { type: 'integer', minimum: 50, maximum: 10000, default: 250, description: 'Changes are pushed to the open wallboards at most this often (one patch with everything that changed).' },
  },
};

const logSchema: JsonSchema = {
  type: 'object',
  description: "The daemon's own logs (pino JSON on standard error).",
  additionalProperties: false,
  default: {},
  properties: {
    level: { type: 'string', enum: LOG_LEVELS, default: 'info', description: 'Minimum level logged.' },
  },
};

const startupSchema: JsonSchema = {
  type: 'object',
  description: 'Starting.',
  additionalProperties: false,
  default: {},
  properties: {
    warmUp: {
      type: 'boolean',
      default: true,
      description:
        'Before connecting to AMI, play a call recorded on a real Asterisk through the reader, a scratch normalizer, the contract check and (on the delivery thread) a scratch outbox and the webhook sinks\' requests to a loopback server, then a full GC, so the first real calls run on compiled code (about 1.5 s on a 2-core VM). Nothing of it reaches a sink. false: start cold.',
    },
  },
};

const shutdownSchema: JsonSchema = {
  type: 'object',
  description: 'Stopping (SIGTERM / SIGINT): a second signal exits at once.',
  additionalProperties: false,
  default: {},
  properties: {
    timeoutMs: {
      type: 'integer',
      minimum: 1000,
      maximum: 600000,
      default: 15000,
      description: 'How long draining may take before the daemon exits anyway (what is left stays in the outbox). Keep it below systemd TimeoutStopSec.',
    },
  },
};


let cached: JsonSchema | null = null;

/**
 * The whole schema. Built on first use rather than at import: it embeds the sink table's schemas,
 * whose modules load after this one.
 */
export function configSchema(): JsonSchema {
  cached ??= {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'asterisk-crm-bridge configuration',
    type: 'object',
    additionalProperties: false,
    required: [],
    properties: {
      pbx: pbxSchema,
      source: natsSourceSchema,
      calls: callsSchema,
      agents: agentsSchema,
      sinks: sinksSchema(),
      outbox: outboxSchema,
      http: httpSchema,
      api: apiSchema,
      screenpop: screenpopSchema,
      supervisor: supervisorSchema,
      log: logSchema,
      startup: startupSchema,
      shutdown: shutdownSchema,
    },
  };
  return cached;
}
