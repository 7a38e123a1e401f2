// Presence over the API: PUT /api/v1/agents/{id}/presence { state, reason? } (the CRM's presence
// changed: bring the agent's queues in step, per api.presence.mode) and GET of the same path (the
// agent's state on the PBX, for a CRM that starts up and wants to align). The logic lives in
// src/presence/sync.ts; this file is HTTP: validation, who may act for whom, status codes.
import type { IncomingMessage } from 'node:http';
import type { Agent } from '../events/types.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import { PresenceError, type PresenceState, type PresenceSync, type SetResult } from '../presence/sync.js';
import type { ApiPrincipal } from './auth.js';
import { compileBodySchema, NO_CONTROL, readValidBody } from './body.js';
import { ApiError } from './errors.js';

export interface PresenceRequest {
  state: PresenceState;
  reason?: string;
}

export const PRESENCE_REQUEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['state'],
  properties: {
    state: { enum: ['ready', 'not_ready'], description: "The agent's presence in the CRM, now." },
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: 100,
      pattern: NO_CONTROL,
      description: 'Why not ready (lunch, ticket, …): becomes the queue pause reason (default api.presence.defaultReason).',
      examples: ['lunch'],
    },
  },
} as const;

const MEMBERSHIP_SCHEMA = {
  type: 'object',
  required: ['queue', 'interface', 'paused', 'reason'],
  properties: {
    queue: { type: 'string' },
    interface: { type: 'string', description: "The member's interface in the queue (Local/201@agents, PJSIP/201)." },
    paused: { type: 'boolean' },
    reason: { type: ['string', 'null'], description: 'The pause reason, null when not paused or none was given.' },
  },
} as const;

const PBX_STATE = {
  enum: ['ready', 'not_ready', 'logged_out'],
  description: 'ready: unpaused in at least one queue; not_ready: paused in all its queues; logged_out: in no queue.',
} as const;

export const PRESENCE_RESULT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['agent', 'mode', 'state', 'pbx', 'changed', 'queues'],
  properties: {
    agent: { type: 'string' },
    mode: { enum: ['synchronized', 'complementary'] },
    state: { enum: ['ready', 'not_ready'], description: 'The CRM state the request gave.' },
    pbx: { ...PBX_STATE, description: `The PBX state this request leads to. ${PBX_STATE.description}` },
    changed: { type: 'array', items: { type: 'string' }, description: 'Queues whose pause state this request changed; empty when the PBX was already there (no change, no event).' },
    queues: { type: 'array', items: MEMBERSHIP_SCHEMA },
  },
} as const;

export const PBX_PRESENCE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['agent', 'mode', 'pbx', 'queues'],
  properties: {
    agent: { type: 'string' },
    mode: { enum: ['synchronized', 'complementary'] },
    pbx: PBX_STATE,
    queues: { type: 'array', items: MEMBERSHIP_SCHEMA },
  },
} as const;

export class PresenceApi {
  private readonly validate = compileBodySchema(PRESENCE_REQUEST_SCHEMA as unknown as Record<string, unknown>);

  constructor(
    private readonly sync: PresenceSync,
    private readonly agents: AgentDirectory,
  ) {}

  async put(req: IncomingMessage, who: ApiPrincipal, id: string): Promise<{ status: number; body: SetResult }> {
    const body = await readValidBody<PresenceRequest>(req, this.validate);
    const agent = this.agent(id, who);
    try {
      return { status: 200, body: await this.sync.set(agent, body.state, body.reason ?? null) };
    } catch (err) {
      if (!(err instanceof PresenceError)) throw err;
      if (err.kind === 'not_member') throw new ApiError(409, err.message);
      if (err.kind === 'unavailable') throw new ApiError(503, err.message, undefined, { 'retry-after': '5' });
      throw new ApiError(502, err.message);
    }
  }

  get(who: ApiPrincipal, id: string): { status: number; body: unknown } {
    const agent = this.agent(id, who);
    const { state, queues } = this.sync.pbxState(agent.id);
    return { status: 200, body: { agent: agent.id, mode: this.sync.mode, pbx: state, queues } };
  }

  private agent(rawId: string, who: ApiPrincipal): Agent {
    let id: string;
    try {
      id = decodeURIComponent(rawId);
    } catch {
      throw new ApiError(400, 'agent id in the path is not valid percent-encoding');
    }
    if (who.kind === 'agent' && id !== who.agentId) {
      throw new ApiError(403, `an agent's token sets that agent's presence only ('${who.agentId}'), not '${id}'`);
    }
    const agent = this.agents.byId(id) ?? this.agents.fromExtension(id);
    if (!agent || agent.id !== id) throw new ApiError(404, `no agent '${id}' (neither a configured agent id nor an extension matching calls.extensionPattern)`);
    return agent;
  }
}
