// The wallboard's figures as JSON (/api/v1/supervisor/…), for a CRM or Grafana: the same
// objects the supervisor page gets (src/supervisor/types.ts), described here for the OpenAPI
// document. API tokens and supervisor tokens; an agent's token gets 403 (it sees its own calls).
import type { FloorSnapshot } from '../supervisor/types.js';
import { AUTH_RESPONSES, nullable } from './openapi.js';
import type { Endpoint } from './router.js';

/** What the endpoints read (the wallboard sink). */
export interface FloorReader {
  snapshot(): FloorSnapshot;
}

const time = { type: 'string', format: 'date-time' };
const party = {
  type: 'object',
  required: ['number'],
  properties: { number: nullable('string'), name: nullable('string') },
};
const missedByReason = {
  type: 'object',
  description: 'Calls missed, by the call.missed reason.',
  required: ['abandoned', 'no_answer', 'busy', 'unavailable', 'timeout'],
  properties: Object.fromEntries(['abandoned', 'no_answer', 'busy', 'unavailable', 'timeout'].map((r) => [r, { type: 'integer', minimum: 0 }])),
};

export const SUPERVISOR_SCHEMAS: Record<string, unknown> = {
  QueueFigures: {
    type: 'object',
    description: "A queue now, and today's counters (since midnight in supervisor.timeZone).",
    required: ['name', 'waiting', 'longestWaitSince', 'agents', 'answered', 'missed', 'abandoned', 'abandonRate', 'serviceLevel', 'averageWaitSeconds', 'averageTalkSeconds'],
    properties: {
      name: { type: 'string' },
      waiting: { type: 'integer', minimum: 0, description: 'Callers waiting now.' },
      longestWaitSince: { ...nullable('string'), format: 'date-time', description: 'When the caller waiting longest joined (null: nobody waits).' },
      agents: {
        type: 'object',
        required: ['loggedIn', 'available', 'onCall', 'paused'],
        properties: { loggedIn: { type: 'integer' }, available: { type: 'integer' }, onCall: { type: 'integer' }, paused: { type: 'integer' } },
      },
      answered: { type: 'integer', minimum: 0 },
      missed: missedByReason,
      abandoned: { type: 'integer', minimum: 0, description: 'missed.abandoned: the caller hung up while waiting.' },
      abandonRate: { ...nullable('number'), description: 'abandoned / (answered + missed); null before the first call.' },
      serviceLevel: {
        type: 'object',
        required: ['seconds', 'answeredWithin', 'ratio'],
        properties: {
          seconds: { type: 'integer', description: 'N (supervisor.serviceLevelSeconds, or the queue\'s own).' },
          answeredWithin: { type: 'integer', description: 'Calls answered within N seconds of joining the queue.' },
          ratio: { ...nullable('number'), description: 'answeredWithin / (answered + missed).' },
        },
      },
      averageWaitSeconds: { ...nullable('number'), description: 'Average wait of the answered calls (ASA).' },
      averageTalkSeconds: { ...nullable('number'), description: 'Average talk time of the answered calls that ended.' },
    },
  },
  AgentFigures: {
    type: 'object',
    required: ['id', 'name', 'extension', 'state', 'since', 'pausedReason', 'queues', 'call', 'callsToday', 'talkSecondsToday'],
    properties: {
      id: { type: 'string' },
      name: nullable('string'),
      extension: nullable('string'),
      state: { type: 'string', enum: ['on_call', 'on_hold', 'ringing', 'paused', 'available', 'unavailable', 'logged_out'] },
      since: { ...time, description: 'When the agent entered `state`.' },
      pausedReason: { ...nullable('string'), description: 'The pause reason, when paused in every queue.' },
      queues: { type: 'array', items: { type: 'string' }, description: 'Queues the agent is logged in to.' },
      call: {
        type: ['object', 'null'],
        required: ['callId', 'direction', 'caller', 'called', 'queue', 'since'],
        properties: { callId: { type: 'string' }, direction: { type: 'string', enum: ['inbound', 'outbound', 'internal'] }, caller: party, called: { ...party, description: "Whom the call is to (an agent's own outbound call: the number dialled)." }, queue: nullable('string'), since: time },
      },
      callsToday: { type: 'integer', minimum: 0 },
      talkSecondsToday: { type: 'integer', minimum: 0 },
    },
  },
  LiveCall: {
    type: 'object',
    required: ['callId', 'direction', 'caller', 'called', 'queue', 'agent', 'state', 'started', 'stateSince'],
    properties: {
      callId: { type: 'string' },
      direction: { type: 'string', enum: ['inbound', 'outbound', 'internal'] },
      caller: party,
      called: party,
      queue: nullable('string'),
      agent: { type: ['object', 'null'], required: ['id', 'name'], properties: { id: { type: 'string' }, name: nullable('string') } },
      state: { type: 'string', enum: ['ringing', 'queued', 'talking'] },
      started: time,
      stateSince: time,
    },
  },
  ChartSlot: {
    type: 'object',
    required: ['label', 'answered', 'missed'],
    properties: { label: { type: 'string', description: 'The quarter hour, local time: "08:15".' }, answered: { type: 'integer' }, missed: missedByReason },
  },
  MissedCall: {
    type: 'object',
    required: ['id', 'time', 'caller', 'queue', 'reason', 'waitSeconds', 'calledBack'],
    properties: {
      id: { type: 'string', description: "The missed call's callId." },
      time: time,
      caller: party,
      queue: nullable('string'),
      reason: { type: 'string', enum: ['abandoned', 'no_answer', 'busy', 'unavailable', 'timeout'] },
      waitSeconds: nullable('number'),
      calledBack: {
        type: ['object', 'null'],
        description: 'Set once a call to this number (called_back) or from it (called_again) is answered after the miss.',
        required: ['time', 'callId', 'agent', 'how'],
        properties: { time, callId: { type: 'string' }, agent: nullable('string'), how: { type: 'string', enum: ['called_back', 'called_again'] } },
      },
    },
  },
  Floor: {
    type: 'object',
    required: ['day', 'timeZone', 'now', 'queues', 'agents', 'calls', 'chart', 'missed'],
    properties: {
      day: { type: 'string', description: 'The day the counters are for (YYYY-MM-DD in timeZone).' },
      timeZone: { type: 'string' },
      now: time,
      queues: { type: 'array', items: { $ref: '#/components/schemas/QueueFigures' } },
      agents: { type: 'array', items: { $ref: '#/components/schemas/AgentFigures' } },
      calls: { type: 'array', items: { $ref: '#/components/schemas/LiveCall' } },
      chart: { type: 'array', minItems: 96, maxItems: 96, items: { $ref: '#/components/schemas/ChartSlot' }, description: "Today's 96 quarter hours, midnight to midnight." },
      missed: { type: 'array', items: { $ref: '#/components/schemas/MissedCall' }, description: "Today's missed calls, newest first." },
    },
  },
};

const TOKENS = 'An API token or a supervisor token (an agent token gets 403).';

/** The endpoints under /api/v1/supervisor. */
export function supervisorEndpoints(prefix: string, floor: FloorReader): Endpoint[] {
  const read = (summary: string, operationId: string, path: string, schema: string | Record<string, unknown>, pick: (f: FloorSnapshot) => unknown): Endpoint => ({
    method: 'GET',
    path: `${prefix}/supervisor${path}`,
    pattern: new RegExp(`^${prefix}/supervisor${path}/?$`),
    auth: 'api',
    principals: ['api', 'supervisor'],
    operation: {
      operationId,
      summary,
      description: `${TOKENS} The same figures the wallboard (GET /supervisor) shows, computed from the normalized events.`,
      tags: ['supervisor'],
      responses: { '200': { description: summary, schema }, ...AUTH_RESPONSES },
    },
    handle: () => ({ status: 200, body: pick(floor.snapshot()) }),
  });
  const list = (name: string) => ({ type: 'array', items: { $ref: `#/components/schemas/${name}` } });
  return [
    read('The whole floor: queues, agents, calls in progress, today\'s chart and missed calls', 'getFloor', '', 'Floor', (f) => f),
    read("Every queue now, with today's counters", 'getQueues', '/queues', list('QueueFigures'), (f) => f.queues),
    read('Every agent: state, time in state, current call, calls today', 'getAgents', '/agents', list('AgentFigures'), (f) => f.agents),
    read('The calls in progress', 'getCalls', '/calls', list('LiveCall'), (f) => f.calls),
    read("Today: calls per quarter hour, and the missed calls", 'getToday', '/today', {
      type: 'object',
      required: ['day', 'timeZone', 'chart', 'missed'],
      properties: { day: { type: 'string' }, timeZone: { type: 'string' }, chart: list('ChartSlot'), missed: list('MissedCall') },
    }, (f) => ({ day: f.day, timeZone: f.timeZone, chart: f.chart, missed: f.missed })),
  ];
}
