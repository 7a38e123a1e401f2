// The OpenAPI 3.1 document served at GET /api/v1/openapi.json, built from the router's own
// endpoint table: an endpoint cannot exist without being described. Request schemas are the
// ones the API validates with (OpenAPI 3.1 schemas are JSON Schema 2020-12).
import { VERSION } from '../util/version.js';

export interface ResponseDoc {
  description: string;
  /** A components/schemas name; absent for responses without a body described here. */
  schema?: string;
  headers?: Record<string, { description: string; schema: Record<string, unknown> }>;
}

export interface OperationDoc {
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** Path parameters, as OpenAPI writes them. */
  parameters?: ReadonlyArray<Record<string, unknown>>;
  /** A components/schemas name. */
  requestBody?: string;
  responses: Record<string, ResponseDoc>;
}

export interface EndpointDoc {
  method: string;
  path: string;
  /** Public endpoints need no token. */
  auth: boolean;
  operation: OperationDoc;
}

export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'string', description: 'What went wrong, for a person.' },
    problems: { type: 'array', items: { type: 'string' }, description: 'Every problem found, one per line: `field: what is wrong`.' },
  },
} as const;

/** A `Retry-After` response header (seconds), as 429 and 503 answers carry it. */
export function retryAfterHeader(description: string): ResponseDoc['headers'] {
  return { 'Retry-After': { description, schema: { type: 'integer', minimum: 1 } } };
}

/** Responses every authenticated endpoint can give. */
export const AUTH_RESPONSES: Record<string, ResponseDoc> = {
  '401': { description: 'No token, or not a valid one (Authorization: Bearer <token>).', schema: 'Error' },
  '403': { description: 'A valid token that may not do this (a supervisor token; an agent token acting for another agent).', schema: 'Error' },
  '429': {
    description: "Over this token's rate limit (api.rateLimit).",
    schema: 'Error',
    headers: retryAfterHeader('Seconds to wait before the next request.'),
  },
};

export function openApiDocument(endpoints: readonly EndpointDoc[], schemas: Record<string, unknown>): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of endpoints) {
    const op = e.operation;
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.headers ? { headers: r.headers } : {}),
        ...(r.schema ? { content: { 'application/json': { schema: { $ref: `#/components/schemas/${r.schema}` } } } } : {}),
      };
    }
    (paths[e.path] ??= {})[e.method.toLowerCase()] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(op.tags ? { tags: op.tags } : {}),
      ...(e.auth ? {} : { security: [] }),
      ...(op.parameters ? { parameters: op.parameters } : {}),
      ...(op.requestBody
        ? { requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.requestBody}` } } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'asterisk-crm-bridge API',
      version: VERSION,
      description:
        'Acting back on the PBX. Every endpoint but this document needs `Authorization: Bearer <token>`: an API token (api.tokens) or an agent\'s own token, which acts for that agent only. Errors are `{ error, problems? }`. Each token has a rate limit (429 with Retry-After).',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token (api.tokens) or an agent token.' } },
    },
  };
}
