// The versioned JSON API (/api/v1) on the daemon's HTTP server (src/http/server.ts appends these
// routes to its table). One endpoint table drives routing, authentication, rate limiting and the
// OpenAPI document, so they cannot disagree.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApiConfig } from '../config/schema.js';
import type { TokenVerifier } from '../http/tokens.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import { ApiAuth, principalKey, type ApiPrincipal, type PrincipalKind } from './auth.js';
import { amiOriginator, ariOriginator, CALL_ACCEPTED_SCHEMA, CALL_REQUEST_SCHEMA, ClickToCall, type AmiActions, type AriOriginate } from './click-to-call.js';
import { ApiError, sendJson } from './errors.js';
import { AUTH_RESPONSES, openApiDocument, problem, retryAfterHeader, THROTTLED, type EndpointDoc } from './openapi.js';
import { SERVER_ENDPOINTS, SERVER_SCHEMAS } from './server-docs.js';
import { PBX_PRESENCE_SCHEMA, PRESENCE_REQUEST_SCHEMA, PRESENCE_RESULT_SCHEMA, PresenceApi } from './presence.js';
import { RateLimiter } from './rate-limit.js';
import { SUPERVISOR_SCHEMAS, supervisorEndpoints, type FloorReader } from './supervisor.js';
import type { PresenceSync } from '../presence/sync.js';

export const API_PREFIX = '/api/v1';
const PRESENCE_PATH = new RegExp(`^${API_PREFIX}/agents/([^/]+)/presence/?$`);
const AGENT_ID_PARAMETER = {
  name: 'id',
  in: 'path',
  required: true,
  description: "The agent's id (or extension, for agents not in the config).",
  schema: { type: 'string', minLength: 1, maxLength: 128 },
} as const;

export interface ApiContext {
  config: ApiConfig;
  /** The AMI source: click-to-call sends its Originate through it (null: ARI alone, no AMI). */
  ami: AmiActions | null;
  /** The ARI source: click-to-call uses it when there is no AMI. */
  ari?: AriOriginate | null;
  /** Presence sync (needs AMI); null: the presence endpoints answer 503. */
  presence: PresenceSync | null;
  agents: AgentDirectory;
  /** The HTTP server's verifier of agent (and supervisor) tokens; agents may act for themselves. */
  tokens: TokenVerifier | null;
  log: Logger;
  /** The wallboard (src/sinks/wallboard.ts): its figures under /api/v1/supervisor; null: no such endpoints. */
  floor?: FloorReader | null;
  /** Injected by tests. */
  now?: () => number;
  newId?: () => string;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Endpoint extends EndpointDoc {
  pattern: RegExp;
  /** The kinds of token it takes (default: API and agent tokens). */
  principals?: readonly PrincipalKind[];
  /** `params`: the path pattern's groups, undecoded. */
  handle(req: IncomingMessage, who: ApiPrincipal | null, params: string[]): Promise<Reply> | Reply;
}

/** Same shape as the HTTP server's route handlers. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL, params: string[]) => Promise<void>;

/** Every API endpoint, described. */
export function apiEndpoints(ctx: ApiContext): Endpoint[] {
  const presenceApi = ctx.presence ? new PresenceApi(ctx.presence, ctx.agents) : null;
  const presence = (req: IncomingMessage): PresenceApi => {
    if (presenceApi) return presenceApi;
    req.resume();
    throw new ApiError(503, 'presence needs the AMI source (pbx.ami): ARI cannot pause queue members');
  };
  const originator = ctx.ami ? amiOriginator(ctx.ami) : ctx.ari ? ariOriginator(ctx.ari) : null;
  const clickToCall = new ClickToCall({ config: ctx.config.clickToCall, originator, agents: ctx.agents, log: ctx.log, ...(ctx.newId ? { newId: ctx.newId } : {}) });
  const endpoints: Endpoint[] = [
    {
      method: 'POST',
      path: `${API_PREFIX}/calls`,
      pattern: new RegExp(`^${API_PREFIX}/calls/?$`),
      auth: 'api',
      // A supervisor calls a missed caller back from the wallboard, from an agent it picks.
      principals: ['api', 'agent', 'supervisor'],
      operation: {
        operationId: 'createCall',
        summary: "Click-to-call: ring the agent's device, then dial the number",
        tags: ['calls'],
        description: `Rings the agent's device first (an agent's first configured interface, else ${ctx.config.clickToCall.agentChannel}) through ${ctx.ami ? 'AMI Originate' : 'ARI POST /channels'}; once the agent answers, dials the number in context '${ctx.config.clickToCall.context}'. Allowed numbers (after normalization): ${ctx.config.clickToCall.numberPattern}. Every event of the call carries origin 'click-to-call' and callId = the returned id. Takes an API token, an agent's token (for that agent only) or a supervisor's token (any agent: the wallboard's call-back).`,
        requestBody: 'CallRequest',
        responses: {
          '202': { description: "Accepted: the agent's device is being rung.", schema: 'CallAccepted' },
          '400': problem('The body is not valid JSON or breaks the schema; `problems` lists every problem.'),
          ...AUTH_RESPONSES,
          '413': problem('The body is too large.'),
          '415': problem('The body is not application/json.'),
          '422': problem('Unknown agent, an agent without a device, or a number that is not allowed.'),
          '502': problem('Asterisk refused the Originate.'),
          '503': problem('The PBX is not reachable (AMI, or ARI without AMI, not connected).', retryAfterHeader('Seconds to wait before trying again.')),
          '504': problem('Asterisk did not answer the Originate in time.'),
        },
      },
      handle: (req, who) => clickToCall.handle(req, who!),
    },
    {
      method: 'PUT',
      path: `${API_PREFIX}/agents/{id}/presence`,
      pattern: PRESENCE_PATH,
      auth: 'api',
      operation: {
        operationId: 'setPresence',
        summary: "The agent's CRM presence changed: bring the agent's queues in step",
        tags: ['presence'],
        description: `Mode '${ctx.config.presence.mode}' (api.presence.mode). synchronized: ready unpauses the agent in all its queues, not_ready pauses them with the reason. complementary: ready pauses them (reason '${ctx.config.presence.crmReadyReason}'), not_ready leaves them as they are. Asking for the state the PBX is already in changes nothing. The agent.paused / agent.unpaused events this causes carry origin 'api' and no crmPresence, so they are not bounced back to the CRM.`,
        parameters: [AGENT_ID_PARAMETER],
        requestBody: 'PresenceRequest',
        responses: {
          '200': { description: 'Done: the queues now follow the CRM (`changed` lists the queues this request changed).', schema: 'PresenceResult' },
          '400': problem('The body is not valid JSON or breaks the schema (`problems` lists every problem), or the agent id in the path is not valid percent-encoding.'),
          ...AUTH_RESPONSES,
          '404': problem('No such agent.'),
          '409': problem('The agent is not a member of any queue.'),
          '413': problem('The body is too large.'),
          '415': problem('The body is not application/json.'),
          '502': problem('Asterisk refused a QueuePause.'),
          '503': problem('The PBX is not reachable (AMI not connected), or presence is not available (no AMI).', retryAfterHeader('Seconds to wait before trying again.')),
        },
      },
      handle: (req, who, params) => presence(req).put(req, who!, params[0] ?? ''),
    },
    {
      method: 'GET',
      path: `${API_PREFIX}/agents/{id}/presence`,
      pattern: PRESENCE_PATH,
      auth: 'api',
      operation: {
        operationId: 'getPresence',
        summary: "The agent's state on the PBX: its queues and whether each is paused",
        tags: ['presence'],
        parameters: [AGENT_ID_PARAMETER],
        responses: {
          '200': { description: "The agent's queue memberships, as the bridge last saw them.", schema: 'PbxPresence' },
          '400': problem('The agent id in the path is not valid percent-encoding.'),
          ...AUTH_RESPONSES,
          '404': problem('No such agent.'),
          '503': problem('Presence is not available (no AMI).'),
        },
      },
      handle: (req, who, params) => presence(req).get(who!, params[0] ?? ''),
    },
  ];
  if (ctx.floor) endpoints.push(...supervisorEndpoints(API_PREFIX, ctx.floor));
  const openapi: Endpoint = {
    method: 'GET',
    path: `${API_PREFIX}/openapi.json`,
    pattern: new RegExp(`^${API_PREFIX}/openapi\\.json$`),
    auth: 'public',
    operation: {
      operationId: 'getOpenApi',
      summary: 'This document (OpenAPI 3.1)',
      tags: ['meta'],
      responses: {
        '200': { description: 'The OpenAPI document of this server.', schema: { type: 'object', description: 'OpenAPI 3.1' } },
        '429': THROTTLED,
      },
    },
    handle: () => ({ status: 200, body: document }),
  };
  endpoints.push(openapi);
  const document = openApiDocument([...endpoints, ...SERVER_ENDPOINTS], {
    ...SERVER_SCHEMAS,
    CallRequest: CALL_REQUEST_SCHEMA,
    CallAccepted: CALL_ACCEPTED_SCHEMA,
    PresenceRequest: PRESENCE_REQUEST_SCHEMA,
    PresenceResult: PRESENCE_RESULT_SCHEMA,
    PbxPresence: PBX_PRESENCE_SCHEMA,
    ...(ctx.floor ? SUPERVISOR_SCHEMAS : {}),
  });
  return endpoints;
}

/** The routes src/http/server.ts appends to its table: `[method, path pattern, handler]`. */
export function apiRoutes(ctx: ApiContext): Array<[string, RegExp, RouteHandler]> {
  const auth = new ApiAuth(ctx.config.tokens, ctx.tokens);
  const { perMinute, burst } = ctx.config.rateLimit;
  const limiter = new RateLimiter(perMinute, burst, ctx.now);
  const log = ctx.log;

  const serve = async (e: Endpoint, req: IncomingMessage, res: ServerResponse, params: string[]): Promise<void> => {
    let who: ApiPrincipal | null = null;
    try {
      if (e.auth !== 'public') {
        who = auth.authenticate(req.headers.authorization, e.principals);
        const take = limiter.take(principalKey(who));
        if (!take.ok) {
          throw new ApiError(429, `rate limit exceeded: ${perMinute} requests a minute, bursts of ${burst}; retry in ${take.retryAfterSeconds} s`, undefined, {
            'retry-after': String(take.retryAfterSeconds),
          });
        }
      }
      const reply = await e.handle(req, who, params);
      sendJson(res, reply.status, reply.body, reply.headers);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err; // the HTTP server logs it and answers 500
      // Paths only, never headers: they hold tokens.
      const level = err.status === 401 || err.status === 403 || err.status >= 500 ? 'warn' : 'info';
      log[level]({ path: e.path, status: err.status, who: who ? principalKey(who) : null, remote: req.socket.remoteAddress, error: err.message }, 'API request refused');
      err.send(res);
    }
  };

  return apiEndpoints(ctx).map((e) => [e.method, e.pattern, (req, res, _url, params) => serve(e, req, res, params)]);
}
