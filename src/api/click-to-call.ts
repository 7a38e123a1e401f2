// Click-to-call: POST /api/v1/calls { agent, number, vars? } rings the agent's device first
// (AMI Originate, Async) and, once the agent answers, dials the number in the configured
// context. The call is tagged with CRMBRIDGE_ORIGIN=click-to-call, which the normalizer turns
// into `origin: 'click-to-call'` on every event of the call, and its Uniqueid (ChannelId) is the
// request's id, so the events' `callId` is the id this endpoint returns.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { ApiConfig } from '../config/schema.js';
import { CRM_VAR_PREFIX, EXPORT_LIST, ORIGIN_VARIABLE } from '../events/crm-vars.js';
import type { Agent } from '../events/types.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import type { ApiPrincipal } from './auth.js';
import { compileBodySchema, NO_CONTROL, readValidBody } from './body.js';
import { ApiError } from './errors.js';

export const ORIGIN = 'click-to-call';
/** CRM variables a caller may attach: exported like the dialplan's own (OMniLeads convention). */
export const VAR_NAME_PATTERN = `^${CRM_VAR_PREFIX}[A-Za-z0-9_]{1,64}$`;
const MAX_VARS = 20;
/** Whatever numberPattern allows, a number sent to Asterisk is digits (* and #), with an optional leading +. */
const DIALABLE = /^\+?[0-9*#]{1,40}$/;

export interface CallRequest {
  agent: string;
  number: string;
  vars?: Record<string, string>;
}

export interface CallAccepted {
  id: string;
  agent: string;
  number: string;
  status: 'originating';
}

export const CALL_REQUEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['agent', 'number'],
  properties: {
    agent: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      pattern: NO_CONTROL,
      description:
        "The agent whose device rings first: a configured agent's id, or an extension matching calls.extensionPattern. An agent's own token may only name that agent.",
      examples: ['u-1042', '201'],
    },
    number: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      pattern: NO_CONTROL,
      description: 'The number to call. Spaces, dashes, dots and parentheses are removed and a leading + kept; the result must be allowed by api.clickToCall.numberPattern.',
      examples: ['+49 (30) 1234-5678'],
    },
    vars: {
      type: 'object',
      maxProperties: MAX_VARS,
      propertyNames: { pattern: VAR_NAME_PATTERN },
      additionalProperties: { type: 'string', maxLength: 256, pattern: NO_CONTROL },
      description: "CRM variables (Omlcrm… names) set on the call and exported: every event of the call carries them in `vars`.",
      examples: [{ Omlcrmcustomerid: '12345' }],
    },
  },
} as const;

export const CALL_ACCEPTED_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'agent', 'number', 'status'],
  properties: {
    id: { type: 'string', description: "The call's id: every event of this call carries it as `callId`." },
    agent: { type: 'string', description: "The agent's id, as the call's events name it." },
    number: { type: 'string', description: 'The number dialled, normalized.' },
    status: { const: 'originating', description: "The agent's device is being rung; the call's events tell the rest." },
  },
} as const;

/** `+49 (30) 1234-56.78` -> `+493012345678`: whitespace, dashes, dots and parentheses go; a leading + stays. */
export function normalizeNumber(raw: string): string {
  return raw.trim().replace(/[\s\-\u2010-\u2015\u2212.()]/g, '');
}

/** `{name}` holders replaced by `values` (the config schema only lets known names through). */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z]+)\}/g, (whole, key: string) => values[key] ?? whole);
}

/**
 * An Originate `Variable:` value. Asterisk splits the header's list at commas and gives
 * backslash, double quotes, parentheses and brackets a meaning; a backslash makes each literal
 * (verified against Asterisk 22: the channel gets the value exactly).
 */
export function escapeVariableValue(value: string): string {
  return value.replace(/[\\,"()[\]]/g, '\\$&');
}

export type AgentResolution = { ok: true; agent: Agent; device: string } | { ok: false; problem: string };

/** The agent named by a request and the device to ring, or why there is none. */
export function resolveAgent(id: string, agents: AgentDirectory, agentChannel: string): AgentResolution {
  const device = (agent: Agent): string | null =>
    agent.interface ?? (agent.extension ? renderTemplate(agentChannel, { extension: agent.extension, id: agent.id }) : null);
  const configured = agents.byId(id);
  if (configured) {
    const d = device(configured);
    if (!d) return { ok: false, problem: `agent: agent '${id}' has no device to ring (give it an extension or interfaces in the config)` };
    return { ok: true, agent: configured, device: d };
  }
  const byExtension = agents.fromExtension(id);
  if (byExtension && byExtension.id === id) return { ok: true, agent: byExtension, device: device(byExtension) ?? '' };
  if (byExtension) return { ok: false, problem: `agent: no agent '${id}' (extension ${id} belongs to agent '${byExtension.id}': name that id)` };
  return { ok: false, problem: `agent: no agent '${id}' (neither a configured agent id nor an extension matching calls.extensionPattern)` };
}

export interface OriginateInput {
  id: string;
  device: string;
  agent: Agent;
  number: string;
  vars: Record<string, string>;
  config: ApiConfig['clickToCall'];
}

/** The caller ID of the agent's leg. No quotes or angle brackets from the values, which would change its parse. */
function callerIdOf(o: OriginateInput): string {
  const clean = (s: string | null) => (s ?? '').replace(/["<>]/g, '');
  return renderTemplate(o.config.callerId, {
    number: clean(o.number),
    extension: clean(o.agent.extension),
    name: clean(o.agent.name ?? o.agent.id),
    id: clean(o.agent.id),
  });
}

/** The AMI Originate action for a click-to-call. */
export function originateAction(o: OriginateInput): Record<string, string> {
  const callerId = callerIdOf(o);
  const names = Object.keys(o.vars);
  const variables = [
    `${ORIGIN_VARIABLE}=${ORIGIN}`,
    ...names.map((n) => `${n}=${escapeVariableValue(o.vars[n] ?? '')}`),
    ...(names.length ? [`${EXPORT_LIST}=${names.join('&')}`] : []),
  ];
  const fields: Record<string, string> = {
    action: 'Originate',
    channel: o.device,
    context: o.config.context,
    exten: o.number,
    priority: '1',
    async: 'true',
    timeout: String(o.config.ringTimeoutSeconds * 1000),
    callerid: callerId,
    // The first channel's Uniqueid, hence the call's Linkedid, hence its callId in events.
    channelid: o.id,
    variable: variables.join(','),
  };
  // Defence in depth: the schemas already keep line breaks out; one here would end the AMI action.
  for (const [k, v] of Object.entries(fields)) {
    if (/[\r\n]/.test(v)) throw new Error(`Originate ${k} would contain a line break`);
  }
  return fields;
}

/** What click-to-call needs of the AMI source (AmiSource has it). */
export interface AmiActions {
  readonly status: { state: string };
  action(fields: Record<string, string>): Promise<unknown>;
}

/** What click-to-call needs of the ARI source (AriSource has it). */
export interface AriOriginate {
  readonly status: { state: string };
  originate(o: { endpoint: string; context: string; extension: string; callerId: string; timeoutSeconds: number; channelId: string; variables: Record<string, string> }): Promise<void>;
}

/** Places the call: AMI Originate, or ARI POST /channels when the bridge has no AMI. */
export interface Originator {
  readonly via: 'AMI' | 'ARI';
  readonly status: { state: string };
  originate(o: OriginateInput): Promise<void>;
}

export function amiOriginator(ami: AmiActions): Originator {
  return {
    via: 'AMI',
    get status() {
      return ami.status;
    },
    originate: async (o) => {
      await ami.action(originateAction(o));
    },
  };
}

/** The same call over ARI: the same device, context, number, caller ID, id and variables (no escaping: JSON). */
export function ariOriginator(ari: AriOriginate): Originator {
  return {
    via: 'ARI',
    get status() {
      return ari.status;
    },
    originate: async (o) => {
      const names = Object.keys(o.vars);
      const variables: Record<string, string> = { [ORIGIN_VARIABLE]: ORIGIN, ...o.vars, ...(names.length ? { [EXPORT_LIST]: names.join('&') } : {}) };
      await ari.originate({ endpoint: o.device, context: o.config.context, extension: o.number, callerId: callerIdOf(o), timeoutSeconds: o.config.ringTimeoutSeconds, channelId: o.id, variables });
    },
  };
}

export interface ClickToCallContext {
  config: ApiConfig['clickToCall'];
  /** null: neither AMI nor ARI can place calls: requests are refused with 503. */
  originator: Originator | null;
  agents: AgentDirectory;
  log: Logger;
  newId?: () => string;
}

export class ClickToCall {
  private readonly validate = compileBodySchema(CALL_REQUEST_SCHEMA as unknown as Record<string, unknown>);
  private readonly numberRe: RegExp;
  private readonly warned = new Set<string>();

  constructor(private readonly ctx: ClickToCallContext) {
    this.numberRe = new RegExp(ctx.config.numberPattern);
  }

  async handle(req: IncomingMessage, who: ApiPrincipal): Promise<{ status: number; body: CallAccepted }> {
    const body = await readValidBody<CallRequest>(req, this.validate);
    if (who.kind === 'agent' && body.agent !== who.agentId) {
      throw new ApiError(403, `an agent's token places calls for that agent only ('${who.agentId}'), not for '${body.agent}'`);
    }
    const problems: string[] = [];
    const resolved = resolveAgent(body.agent, this.ctx.agents, this.ctx.config.agentChannel);
    if (!resolved.ok) problems.push(resolved.problem);
    const number = normalizeNumber(body.number);
    if (!DIALABLE.test(number)) {
      problems.push(`number: '${body.number}' is not a phone number (digits, * and #, with an optional leading +, once spaces, dashes, dots and parentheses are removed)`);
    } else if (!this.numberRe.test(number)) {
      problems.push(`number: '${number}' is not allowed (api.clickToCall.numberPattern ${this.ctx.config.numberPattern})`);
    }
    if (!resolved.ok || problems.length) {
      throw new ApiError(422, problems.length === 1 ? problems[0]! : `cannot place this call: ${problems.length} problems`, problems.length > 1 ? problems : undefined);
    }
    const { agent, device } = resolved;
    this.warnIfNotAgentDevice(agent, device);
    const originator = this.ctx.originator;
    if (!originator) throw new ApiError(503, 'click-to-call needs pbx.ami or pbx.ari');
    const state = originator.status.state;
    if (state !== 'connected') throw this.unavailable(state, originator.via);
    const id = (this.ctx.newId ?? randomUUID)();
    try {
      await originator.originate({ id, device, agent, number, vars: body.vars ?? {}, config: this.ctx.config });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/not connected/i.test(message)) throw this.unavailable('disconnected', originator.via);
      if (/timed out/i.test(message)) throw new ApiError(504, `Asterisk did not answer the Originate in time: ${message}`);
      throw new ApiError(502, `Asterisk refused the call: ${message}`);
    }
    this.ctx.log.info({ id, agent: agent.id, device, number, via: originator.via, vars: Object.keys(body.vars ?? {}) }, 'click-to-call: ringing the agent, then the number');
    return { status: 202, body: { id, agent: agent.id, number, status: 'originating' } };
  }

  private unavailable(state: string, via: string): ApiError {
    return new ApiError(503, `the PBX is not reachable right now (${via} ${state}); try again`, undefined, { 'retry-after': '5' });
  }

  /** A device the normalizer would not take for the agent's makes events that do not name the agent. */
  private warnIfNotAgentDevice(agent: Agent, device: string): void {
    if (this.warned.has(device)) return;
    this.warned.add(device);
    if (this.ctx.agents.fromChannel(device)?.id === agent.id) return;
    this.ctx.log.warn(
      { agent: agent.id, device },
      "click-to-call rings a device the bridge does not recognise as this agent's (see calls.agentContexts, calls.extensionPattern, agents[].interfaces): its events will not name the agent",
    );
  }
}
