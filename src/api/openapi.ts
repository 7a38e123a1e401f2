// The OpenAPI 3.1 document served at GET /api/v1/openapi.json, built from the router's own
// endpoint table (an API endpoint cannot exist without being described) and from the description
// of the server's other routes (server-docs.ts: the agent stream and pops, health, metrics), which
// test/validators.test.ts checks against a real server. Request schemas are the ones the API
// validates with (OpenAPI 3.1 schemas are JSON Schema 2020-12). `redocly lint` passes on it
// (test/validators.test.ts runs it).
import { PROBLEM_CONTENT_TYPE } from '../http/problem.js';
import { VERSION } from '../util/version.js';

export interface ResponseDoc {
  description: string;
  /** The body: a components/schemas name, or a schema written out; absent for no body. */
  schema?: string | Record<string, unknown>;
  /** The body's media type: application/json unless said (`Problem` bodies: application/problem+json). */
  mediaType?: string;
  headers?: Record<string, { description: string; schema: Record<string, unknown> }>;
}

export interface OperationDoc {
  operationId: string;
  summary: string;
  description?: string;
  /** One tag: the group the operation is listed under (TAGS). */
  tags: [Tag];
  /** Parameters, as OpenAPI writes them. */
  parameters?: ReadonlyArray<Record<string, unknown>>;
  /** A components/schemas name. */
  requestBody?: string;
  responses: Record<string, ResponseDoc>;
}

/** A schema that is `type` or null. */
export const nullable = (type: string) => ({ type: [type, 'null'] });

export interface EndpointDoc {
  method: string;
  path: string;
  /**
   * Who may call it: `api` (Bearer), `agent` (Bearer or ?token=, as EventSource cannot set
   * headers), `metrics` (Bearer), or `public` (no token).
   */
  auth: 'api' | 'agent' | 'metrics' | 'public';
  operation: OperationDoc;
}

export const TAGS = {
  calls: 'Click-to-call: the CRM (or the agent) asks the PBX to place a call.',
  presence: "The agents' CRM presence and their queue pause state.",
  agent: "What the agent page (and a CRM's own client) reads: the agent's event stream and its screen pops.",
  supervisor: "The supervisors' wallboard figures: queues, agents, calls in progress, today's chart and missed calls.",
  operations: 'Health, readiness and Prometheus metrics, for the service manager, the load balancer and the monitoring.',
  meta: 'This document.',
} as const;
export type Tag = keyof typeof TAGS;

/**
 * RFC 9457 problem details, as every error of the HTTP server is written (src/http/problem.ts).
 * `error` and `problems` are extension members kept for clients of the earlier `{ error }` shape.
 */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', format: 'uri-reference', description: 'about:blank: the status code says it all; `title` is its reason phrase.' },
    title: { type: 'string', description: "The status code's reason phrase (Not Found, Too Many Requests…)." },
    status: { type: 'integer', minimum: 400, maximum: 599, description: 'The HTTP status code, repeated.' },
    detail: { type: 'string', description: 'What went wrong this time, for a person.' },
    instance: { type: 'string', format: 'uri-reference', description: 'Not sent today; allowed by RFC 9457.' },
    error: { type: 'string', description: 'The same as `detail` (for clients of the `{ error }` shape).' },
    problems: { type: 'array', items: { type: 'string' }, description: 'Every problem found, one per line: `field: what is wrong`.' },
  },
} as const;

/** A `Retry-After` response header (seconds), as 429 and 503 answers carry it. */
export function retryAfterHeader(description: string): NonNullable<ResponseDoc['headers']> {
  return { 'Retry-After': { description, schema: { type: 'integer', minimum: 1 } } };
}

/** An error answer: a `Problem` body. */
export function problem(description: string, headers?: ResponseDoc['headers']): ResponseDoc {
  return { description, schema: 'Problem', ...(headers ? { headers } : {}) };
}

/**
 * Any request that carries a token, on any route, from an address that sent too many wrong
 * tokens (http.authThrottle): refused before the token is looked at.
 */
export const THROTTLED = problem(
  'This address sent too many wrong tokens (http.authThrottle): its requests that carry a token are refused, unchecked, until Retry-After has passed.',
  retryAfterHeader('Seconds until the address may try again.'),
);

/** Responses every API endpoint can give. */
export const AUTH_RESPONSES: Record<string, ResponseDoc> = {
  '401': problem('No token, or not a valid one (Authorization: Bearer <token>).', { 'WWW-Authenticate': { description: 'Bearer', schema: { type: 'string' } } }),
  '403': problem('A valid token that may not do this (a supervisor token; an agent token acting for another agent).'),
  '429': problem(
    "Over this token's rate limit (api.rateLimit), or this address sent too many wrong tokens (http.authThrottle).",
    retryAfterHeader('Seconds to wait before the next request.'),
  ),
};

const SECURITY: Record<EndpointDoc['auth'], Array<Record<string, string[]>> | null> = {
  // The document's default: no `security` on the operation.
  api: null,
  agent: [{ bearer: [] }, { queryToken: [] }],
  metrics: [{ bearer: [] }],
  public: [],
};

function response(r: ResponseDoc): Record<string, unknown> {
  const mediaType = r.mediaType ?? (r.schema === 'Problem' ? PROBLEM_CONTENT_TYPE.split(';')[0]! : 'application/json');
  const schema = typeof r.schema === 'string' ? { $ref: `#/components/schemas/${r.schema}` } : r.schema;
  return {
    description: r.description,
    ...(r.headers ? { headers: r.headers } : {}),
    ...(schema ? { content: { [mediaType]: { schema } } } : {}),
  };
}

export function openApiDocument(endpoints: readonly EndpointDoc[], schemas: Record<string, unknown>): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<Tag>();
  for (const e of endpoints) {
    const op = e.operation;
    op.tags.forEach((t) => tags.add(t));
    const security = SECURITY[e.auth];
    (paths[e.path] ??= {})[e.method.toLowerCase()] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: op.tags,
      ...(security ? { security } : {}),
      ...(op.parameters ? { parameters: op.parameters } : {}),
      ...(op.requestBody
        ? { requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.requestBody}` } } } } }
        : {}),
      responses: Object.fromEntries(Object.entries(op.responses).map(([status, r]) => [status, response(r)])),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'asterisk-crm-bridge HTTP API',
      version: VERSION,
      description:
        "The bridge's HTTP server (http.listen): the JSON API under /api/v1 (acting back on the PBX), the agents' event streams and screen pops, health, readiness and metrics. Every route but this document, /healthz and /readyz needs a token: `Authorization: Bearer <token>` (the agent routes also take `?token=`, as EventSource cannot set headers); each operation says which tokens it takes. Every error is an RFC 9457 problem (`application/problem+json`, schema Problem), also an unknown path (404), a wrong method (405, with Allow) and an internal error (500). The agent page and widget files (/agent, /agent/assets/…, /widget…) are not described here.",
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    // Relative: the document is served by the bridge it describes, on whatever address reaches it.
    servers: [{ url: '/', description: 'The bridge that serves this document (http.listen, or the reverse proxy in front of it).' }],
    security: [{ bearer: [] }],
    tags: (Object.keys(TAGS) as Tag[]).filter((t) => tags.has(t)).map((name) => ({ name, description: TAGS[name] })),
    paths,
    components: {
      schemas: { ...schemas, Problem: PROBLEM_SCHEMA },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'The token each operation names: an API token (api.tokens), an agent token (static or minted), a supervisor token, or http.metricsToken.' },
        queryToken: { type: 'apiKey', in: 'query', name: 'token', description: 'An agent or supervisor token in the query string, for the agent routes only (EventSource cannot set headers).' },
      },
    },
  };
}
