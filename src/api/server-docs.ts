// The HTTP server's routes that are not the API's, described for the OpenAPI document: the agent
// routes (src/http/server.ts) and the operations routes (src/ops/routes.ts). They are written
// here, beside the rest of the document, because the HTTP server sits below the API and cannot
// know OpenAPI; test/validators.test.ts calls every one of them on a real server and checks the
// statuses and media types described here.
import { AUTH_RESPONSES, nullable, problem, retryAfterHeader, THROTTLED, type EndpointDoc } from './openapi.js';

const POP_TARGETS = ['new-tab', 'named-tab', 'embedded', 'hash', 'background', 'clipboard'];

export const SERVER_SCHEMAS: Record<string, unknown> = {
  SupervisorMe: {
    type: 'object',
    required: ['name', 'callBack', 'timeZone'],
    properties: {
      name: { type: 'string', description: "The supervisor's name (http.supervisors[].name)." },
      callBack: { type: 'boolean', description: 'Whether the API is on, so the wallboard can call missed callers back (POST /api/v1/calls).' },
      timeZone: { ...nullable('string'), description: "supervisor.timeZone: the day and quarter hours of today's figures." },
    },
  },
  AgentMe: {
    type: 'object',
    required: ['agent', 'supervisor', 'supervisorName', 'rules', 'keepAliveSeconds', 'allowedOrigins'],
    properties: {
      agent: {
        description: "The token's agent (null for a supervisor token).",
        oneOf: [
          {
            type: 'object',
            required: ['id', 'extension', 'name', 'interface'],
            properties: { id: { type: 'string' }, extension: nullable('string'), name: nullable('string'), interface: nullable('string') },
          },
          { type: 'null' },
        ],
      },
      supervisor: { type: 'boolean', description: 'A supervisor token: the stream carries every agent\'s events.' },
      supervisorName: { ...nullable('string'), description: "The supervisor's name (http.supervisors[].name; null for an agent token): the agent page keeps one popping tab per supervisor too." },
      rules: {
        type: 'array',
        description: 'The screen-pop rules (screenpop), without their templates.',
        items: {
          type: 'object',
          required: ['id', 'events', 'target', 'name', 'closeOn'],
          properties: {
            id: { type: 'string' },
            events: { type: 'array', items: { type: 'string' } },
            target: { enum: POP_TARGETS },
            name: nullable('string'),
            closeOn: { type: 'array', items: { type: 'string' } },
          },
        },
      },
      keepAliveSeconds: { type: 'integer', description: 'How often the event stream sends a keep-alive comment (http.keepAliveSeconds).' },
      allowedOrigins: { type: 'array', items: { type: 'string' }, description: 'http.allowedOrigins: the CRM origins that may frame the widget and call the API from a browser.' },
    },
  },
  Pop: {
    type: 'object',
    required: ['ruleId', 'target', 'name', 'url', 'text', 'callId', 'eventId'],
    properties: {
      ruleId: { type: 'string', description: "The rule's id (rule-<n> when it has none)." },
      target: { enum: POP_TARGETS },
      name: { ...nullable('string'), description: 'The window name (named-tab).' },
      url: { ...nullable('string'), description: "The rendered URL; null when the rule has none or the values would change the URL's path (urlError)." },
      text: { ...nullable('string'), description: 'The rendered text (clipboard).' },
      callId: nullable('string'),
      eventId: { type: 'string' },
      framing: { enum: ['allowed', 'refused', 'unknown'], description: 'Embedded pops: whether the CRM page lets the agent page frame it.' },
      urlError: { type: 'string', description: 'Why `url` is null although the rule has one.' },
    },
  },
  Health: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } },
  Readiness: {
    type: 'object',
    required: ['status', 'checks'],
    properties: {
      status: { enum: ['ready', 'not ready'] },
      checks: {
        type: 'object',
        description: "One entry per check (the source, e.g. `ami`; `outbox`; `sink:<name>` for a stalled sink; `daemon` while stopping): 'ok', or what is wrong.",
        additionalProperties: { type: 'string' },
      },
    },
  },
};

const AGENT_401 = problem('No token, or not a valid one (an agent or supervisor token: Authorization: Bearer, or ?token=).', {
  'WWW-Authenticate': { description: 'Bearer', schema: { type: 'string' } },
});
const AGENT_TOKENS = "An agent's token (static or minted: `crm-bridge token`) or a supervisor's.";

const SUPERVISOR_TOKENS = "A supervisor's token (http.supervisors; Authorization: Bearer, or ?token=).";
const SUPERVISOR_403 = problem("An agent's token or an API token: the wallboard shows every agent and caller, for supervisors only.");

export const SERVER_ENDPOINTS: EndpointDoc[] = [
  {
    method: 'GET',
    path: '/',
    auth: 'public',
    operation: {
      operationId: 'getLanding',
      summary: 'A page of links: the agent page, the widget, this document when served, /healthz',
      tags: ['agent'],
      responses: { '200': { description: 'The landing page.', mediaType: 'text/html; charset=utf-8', schema: { type: 'string' } }, '429': THROTTLED },
    },
  },
  {
    method: 'GET',
    path: '/agent/me',
    auth: 'agent',
    operation: {
      operationId: 'getAgentMe',
      summary: 'Who the token is, and the screen-pop rules',
      description: AGENT_TOKENS,
      tags: ['agent'],
      responses: { '200': { description: "The token's agent and what its page needs.", schema: 'AgentMe' }, '401': AGENT_401, '429': THROTTLED },
    },
  },
  {
    method: 'GET',
    path: '/agent/events',
    auth: 'agent',
    operation: {
      operationId: 'streamAgentEvents',
      summary: "The agent's events, as Server-Sent Events",
      description: `${AGENT_TOKENS} A stream of the events of the agent's calls (and of the queues it follows; a supervisor gets every event), each as \`id: <event id>\` and \`data: <the event as JSON>\` (docs/events.md, schema/events.v1.json). It opens with \`retry: <http.retryMs>\` and sends a comment line every http.keepAliveSeconds. A named \`status\` event (no id: it is never replayed) tells the bridge's event source and its state (\`{ source, state, since }\`: connected, or the PBX unreachable) at open and at every change. Reconnecting with Last-Event-ID (or ?lastEventId=) replays what was missed if it is still buffered (http.bufferPerAgent), else the agent's calls in progress.`,
      tags: ['agent'],
      parameters: [
        { name: 'Last-Event-ID', in: 'header', required: false, description: 'The id of the last event received: resume after it.', schema: { type: 'string' } },
        { name: 'lastEventId', in: 'query', required: false, description: 'The same, for clients that cannot set the header.', schema: { type: 'string' } },
      ],
      responses: {
        '200': {
          description: 'The event stream; it stays open.',
          mediaType: 'text/event-stream',
          schema: { type: 'string', description: 'Server-Sent Events (text/event-stream): `retry:`, then `id:`/`data:` per event, and `:` keep-alive comments.' },
        },
        '401': AGENT_401,
        '429': problem(
          'Too many streams already open for this token or from this address (http.streams), or this address sent too many wrong tokens (http.authThrottle).',
          retryAfterHeader('Seconds to wait before trying again.'),
        ),
      },
    },
  },
  {
    method: 'GET',
    path: '/agent/pops/{eventId}',
    auth: 'agent',
    operation: {
      operationId: 'getAgentPops',
      summary: 'The screen pops of one event the token received',
      description: `${AGENT_TOKENS} The screenpop rules rendered for an event this token's stream carried (still buffered); embedded pops say whether the CRM page lets itself be framed.`,
      tags: ['agent'],
      parameters: [{ name: 'eventId', in: 'path', required: true, description: "The event's id.", schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } }],
      responses: {
        '200': { description: 'The pops, one per matching rule (none: an empty list).', schema: { type: 'array', items: { $ref: '#/components/schemas/Pop' } } },
        '401': AGENT_401,
        '404': problem('No such event for this token (never sent to it, or no longer buffered).'),
        '429': THROTTLED,
      },
    },
  },
  {
    method: 'GET',
    path: '/supervisor/me',
    auth: 'agent',
    operation: {
      operationId: 'getSupervisorMe',
      summary: 'Who the supervisor token is, and what its wallboard can do',
      description: SUPERVISOR_TOKENS,
      tags: ['supervisor'],
      responses: { '200': { description: 'The supervisor.', schema: 'SupervisorMe' }, '401': AGENT_401, '403': SUPERVISOR_403, '429': THROTTLED },
    },
  },
  {
    method: 'GET',
    path: '/supervisor/events',
    auth: 'agent',
    operation: {
      operationId: 'streamFloor',
      summary: "The wallboard's figures, live, as Server-Sent Events",
      description: `${SUPERVISOR_TOKENS} Opens with \`retry: <http.retryMs>\` and an \`event: snapshot\` whose data is the whole floor (the shape of GET /api/v1/supervisor, schema Floor when the API is on: queues, agents, calls in progress, today's chart and missed calls). Then \`event: patch\` at most every supervisor.pushIntervalMs with what changed: \`{ now, queues?, agents?, calls?, callsEnded?, chart?, missed? }\`, whole objects replacing those of the same key (queue name, agent id, callId, chart index, missed id); \`callsEnded\` lists calls to remove. A new \`snapshot\` (midnight) replaces everything. Comment lines keep it alive every http.keepAliveSeconds. A stream that falls 1 MB behind is closed; the client reconnects and gets a snapshot.`,
      tags: ['supervisor'],
      responses: {
        '200': {
          description: 'The stream; it stays open.',
          mediaType: 'text/event-stream',
          schema: { type: 'string', description: 'Server-Sent Events: `retry:`, `event: snapshot`, then `event: patch`, and `:` keep-alive comments.' },
        },
        '401': AGENT_401,
        '403': SUPERVISOR_403,
        '429': problem(
          'Too many streams already open for this token or from this address (http.streams), or this address sent too many wrong tokens (http.authThrottle).',
          retryAfterHeader('Seconds to wait before trying again.'),
        ),
      },
    },
  },
  {
    method: 'GET',
    path: '/healthz',
    auth: 'public',
    operation: {
      operationId: 'getHealth',
      summary: 'Liveness: the process answers',
      tags: ['operations'],
      responses: { '200': { description: 'Alive.', schema: 'Health' }, '429': THROTTLED },
    },
  },
  {
    method: 'GET',
    path: '/readyz',
    auth: 'public',
    operation: {
      operationId: 'getReadiness',
      summary: 'Readiness: the source connected, the outbox usable, no durable sink stalled',
      description: 'A readiness report rather than an error: 503 carries the same body as 200, saying which check failed.',
      tags: ['operations'],
      responses: {
        '200': { description: 'Ready.', schema: 'Readiness' },
        '429': THROTTLED,
        '503': { description: 'Not ready: `checks` says what is not.', schema: 'Readiness' },
      },
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    auth: 'metrics',
    operation: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description: 'http.metricsToken or a supervisor token. The text exposition format (README: Operations lists the metrics).',
      tags: ['operations'],
      responses: {
        '200': { description: 'The metrics.', mediaType: 'text/plain; version=0.0.4', schema: { type: 'string' } },
        '401': { ...AUTH_RESPONSES['401']!, description: 'No token, or a token the bridge does not know (Authorization: Bearer).' },
        '403': problem('A known token that may not read metrics (an agent or API token).'),
        '429': THROTTLED,
      },
    },
  },
];
