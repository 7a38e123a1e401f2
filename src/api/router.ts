// The versioned JSON API (/api/v1) on the daemon's HTTP server (src/http/server.ts appends these
// routes to its table). One endpoint table drives routing, authentication, rate limiting and the
// OpenAPI document, so they cannot disagree.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApiConfig } from '../config/schema.js';
import type { TokenVerifier } from '../http/tokens.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import { ApiAuth, principalKey, type ApiPrincipal } from './auth.js';
import { CALL_ACCEPTED_SCHEMA, CALL_REQUEST_SCHEMA, ClickToCall, type AmiActions } from './click-to-call.js';
import { ApiError, sendJson } from './errors.js';
import { AUTH_RESPONSES, ERROR_SCHEMA, openApiDocument, type EndpointDoc } from './openapi.js';
import { RateLimiter } from './rate-limit.js';

export const API_PREFIX = '/api/v1';

export interface ApiContext {
  config: ApiConfig;
  /** The AMI source: click-to-call sends its Originate through it. */
  ami: AmiActions;
  agents: AgentDirectory;
  /** The HTTP server's verifier of agent (and supervisor) tokens; agents may act for themselves. */
  tokens: TokenVerifier | null;
  log: Logger;
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
  handle(req: IncomingMessage, who: ApiPrincipal | null): Promise<Reply> | Reply;
}

/** Same shape as the HTTP server's route handlers. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL, params: string[]) => Promise<void>;

/** Every API endpoint, described. */
export function apiEndpoints(ctx: ApiContext): Endpoint[] {
  const clickToCall = new ClickToCall({ config: ctx.config.clickToCall, ami: ctx.ami, agents: ctx.agents, log: ctx.log, ...(ctx.newId ? { newId: ctx.newId } : {}) });
  const endpoints: Endpoint[] = [
    {
      method: 'POST',
      path: `${API_PREFIX}/calls`,
      pattern: new RegExp(`^${API_PREFIX}/calls/?$`),
      auth: true,
      operation: {
        operationId: 'createCall',
        summary: "Click-to-call: ring the agent's device, then dial the number",
        tags: ['calls'],
        description: `Rings the agent's device first (an agent's first configured interface, else ${ctx.config.clickToCall.agentChannel}); once the agent answers, dials the number in context '${ctx.config.clickToCall.context}'. Allowed numbers (after normalization): ${ctx.config.clickToCall.numberPattern}. Every event of the call carries origin 'click-to-call' and callId = the returned id.`,
        requestBody: 'CallRequest',
        responses: {
          '202': { description: "Accepted: the agent's device is being rung.", schema: 'CallAccepted' },
          '400': { description: 'The body is not valid JSON or breaks the schema; `problems` lists every problem.', schema: 'Error' },
          ...AUTH_RESPONSES,
          '413': { description: 'The body is too large.', schema: 'Error' },
          '415': { description: 'The body is not application/json.', schema: 'Error' },
          '422': { description: 'Unknown agent, an agent without a device, or a number that is not allowed.', schema: 'Error' },
          '502': { description: 'Asterisk refused the Originate.', schema: 'Error' },
          '503': {
            description: 'The PBX is not reachable (AMI not connected).',
            schema: 'Error',
            headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 1 } } },
          },
          '504': { description: 'Asterisk did not answer the Originate in time.', schema: 'Error' },
        },
      },
      handle: (req, who) => clickToCall.handle(req, who!),
    },
  ];
  const openapi: Endpoint = {
    method: 'GET',
    path: `${API_PREFIX}/openapi.json`,
    pattern: new RegExp(`^${API_PREFIX}/openapi\\.json$`),
    auth: false,
    operation: {
      operationId: 'getOpenApi',
      summary: 'This document (OpenAPI 3.1)',
      tags: ['meta'],
      responses: { '200': { description: 'The OpenAPI document of this API.' } },
    },
    handle: () => ({ status: 200, body: document }),
  };
  endpoints.push(openapi);
  const document = openApiDocument(endpoints, { CallRequest: CALL_REQUEST_SCHEMA, CallAccepted: CALL_ACCEPTED_SCHEMA, Error: ERROR_SCHEMA });
  return endpoints;
}

/** The routes src/http/server.ts appends to its table: `[method, path pattern, handler]`. */
export function apiRoutes(ctx: ApiContext): Array<[string, RegExp, RouteHandler]> {
  const auth = new ApiAuth(ctx.config.tokens, ctx.tokens);
  const { perMinute, burst } = ctx.config.rateLimit;
  const limiter = new RateLimiter(perMinute, burst, ctx.now);
  const log = ctx.log;

  const serve = async (e: Endpoint, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let who: ApiPrincipal | null = null;
    try {
      if (e.auth) {
        who = auth.authenticate(req.headers.authorization);
        const take = limiter.take(principalKey(who));
        if (!take.ok) {
          throw new ApiError(429, `rate limit exceeded: ${perMinute} requests a minute, bursts of ${burst}; retry in ${take.retryAfterSeconds} s`, undefined, {
            'retry-after': String(take.retryAfterSeconds),
          });
        }
      }
      const reply = await e.handle(req, who);
      sendJson(res, reply.status, reply.body, reply.headers);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err; // the HTTP server logs it and answers 500
      // Paths only, never headers: they hold tokens.
      const level = err.status === 401 || err.status === 403 || err.status >= 500 ? 'warn' : 'info';
      log[level]({ path: e.path, status: err.status, who: who ? principalKey(who) : null, remote: req.socket.remoteAddress, error: err.message }, 'API request refused');
      sendJson(res, err.status, err.body, err.headers);
    }
  };

  return apiEndpoints(ctx).map((e) => [e.method, e.pattern, (req, res) => serve(e, req, res)]);
}
