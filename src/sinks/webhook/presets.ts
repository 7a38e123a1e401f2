// Webhook presets: each is a table of template settings (method, format, events, parameters),
// merged under the user's own settings — no special code paths. Documented in README
// ("Webhook presets") with the request each event produces.
import type { EventType } from '../../events/types.js';
import type { TemplateVars } from '../../template/vars.js';

export interface ParamSpecLike {
  from?: string;
  value?: string;
  as: string;
  map?: Record<string, string>;
  default?: string;
}

export interface PresetSettings {
  method: 'GET' | 'POST' | 'PUT';
  format: 'query' | 'form' | 'json';
  events: EventType[];
  /** Parameters every request carries. */
  params: ParamSpecLike[];
  /** Extra parameters per event type. */
  routes?: Partial<Record<EventType, { params: ParamSpecLike[] }>>;
  /** Only send an event type when these template variables have one of these values. */
  when?: Partial<Record<EventType, Record<string, string[]>>>;
  /** Event types sent for their first occurrence in a call only; later ones are not sent. */
  firstPerCall?: EventType[];
  /** How calls are told to the receiver (flow.ts); default: every event as it comes. */
  flow?: { hold: boolean; transfers: 'same-call' | 'new-call' };
  /** Parameters made of several variables (or none), after the table's; `vars.event` is the type sent as. */
  extra?: (vars: TemplateVars) => Array<[string, string]>;
}

const DIRECTION = { from: 'direction', as: 'direction', map: { inbound: 'in', outbound: 'out', internal: 'out' } };
/** Why an unanswered call ended, in the 7 causes Zammad and sipgate know. */
const MISSED_CAUSE = { abandoned: 'cancel', no_answer: 'noAnswer', timeout: 'noAnswer', busy: 'busy', unavailable: 'notFound' };
/**
 * Why an answered call ended. A call that ends answered with no talk time in it had its parties
 * handed to another call (the picker's own call in a pickup, a blonde transfer's consult call):
 * `forwarded`, the cause both CRMs use for "went on elsewhere" — Zammad counts an inbound call
 * hung up without an answer as missed unless its cause is `forwarded`.
 */
const ANSWERED_CAUSE = { from: 'talkSeconds', as: 'cause', map: { '0': 'forwarded' }, default: 'normalClearing' };

/**
 * Zammad generic CTI (`POST /api/v1/cti/{token}`, JSON): newCall, answer once per call, hangup
 * exactly once — from call.missed (with its cause) for an unanswered call, from call.hangup
 * (normalClearing, or forwarded) for an answered one.
 *
 * newCall waits for the call's second event (flow.ts, hold): call.started never knows the
 * queue, and the call.queued right after it does, so a queue call's newCall carries `queue` (what
 * Zammad's caller log and notify map filter on); for an inbound call that rings an agent first,
 * that agent is the called `user`. A transfer stays one call for Zammad: the target's answer is
 * not sent (it would restart the talk and waiting times, and write the target over the agent
 * who answered), and the hangup names the last agent.
 *
 * Parties that are not agents (agent null: an outbound call's remote party, a mobile reached
 * through a trunk) ring without any request — call.ringing is not sent, so never a second
 * newCall — and their answer is an `answer` without `user` or `answeringNumber`: Zammad writes
 * `user` over the called party's name and looks the answering agent up by `answeringNumber`,
 * and such a party is neither; the event does not carry its number (outbound, it is `to`).
 */
const zammad: PresetSettings = {
  method: 'POST',
  format: 'json',
  events: ['call.started', 'call.answered', 'call.missed', 'call.hangup'],
  params: [
    { from: 'event', as: 'event', map: { 'call.started': 'newCall', 'call.answered': 'answer', 'call.missed': 'hangup', 'call.hangup': 'hangup' } },
    { from: 'callerNumber', as: 'from', default: 'anonymous' },
    { from: 'calledNumber', as: 'to', default: 'unknown' },
    DIRECTION,
    { from: 'callId', as: 'callId' },
  ],
  routes: {
    'call.started': { params: [{ from: 'agentName', as: 'user' }, { from: 'queue', as: 'queue' }] },
    'call.answered': { params: [{ from: 'agentName', as: 'user' }, { from: 'agentExtension', as: 'answeringNumber' }] },
    'call.missed': { params: [{ from: 'reason', as: 'cause', map: MISSED_CAUSE }] },
    'call.hangup': { params: [ANSWERED_CAUSE, { from: 'agentName', as: 'user' }, { from: 'agentExtension', as: 'answeringNumber' }] },
  },
  when: { 'call.hangup': { disposition: ['answered'] } },
  firstPerCall: ['call.answered'],
  flow: { hold: true, transfers: 'same-call' },
};

/** `<server>:<id>`: agent ids and callIds are unique per PBX only (the server plays sipgate's account). */
const global = (vars: TemplateVars, name: string): string | null => (vars[name] ? `${vars.server}:${vars[name]}` : null);
const some = (pairs: Array<[string, string | null | undefined]>): Array<[string, string]> => pairs.filter((p): p is [string, string] => typeof p[1] === 'string' && p[1] !== '');

/**
 * sipgate.io push format (form-encoded), what its pushes carry (../shared/receivers.md):
 * newCall with `user[]`, `userId[]` and `fullUserId[]` (the called agent inbound — the first one
 * rung —, the calling agent outbound), `origCallId` and `xcid`; answer with `user`, `userId`,
 * `fullUserId`, `answeringNumber`; hangup with `cause` and `answeringNumber`. Same newCall hold
 * and answer-once rule as Zammad; a transfer, as sipgate does it, starts a new call: newCall with
 * its own callId (`<callId>-<seq>`), `origCallId` the first call's, `to` the target and `diversion`
 * the transferring agent's number; the target's answer is that call's; at the end the first call
 * hangs up (normalClearing, answered by the transferring agent), then the new one.
 */
const sipgate: PresetSettings = {
  method: 'POST',
  format: 'form',
  events: zammad.events,
  params: zammad.params,
  routes: {
    'call.started': { params: [{ from: 'agentName', as: 'user[]' }, { from: 'agentId', as: 'userId[]' }] },
    'call.answered': { params: [{ from: 'agentName', as: 'user' }, { from: 'agentId', as: 'userId' }, { from: 'agentExtension', as: 'answeringNumber' }] },
    'call.missed': { params: [{ from: 'reason', as: 'cause', map: MISSED_CAUSE }] },
    'call.hangup': { params: [ANSWERED_CAUSE, { from: 'agentExtension', as: 'answeringNumber' }] },
  },
  when: zammad.when,
  firstPerCall: zammad.firstPerCall,
  flow: { hold: true, transfers: 'new-call' },
  extra: (vars) => {
    switch (vars.event) {
      case 'call.started':
        return some([['fullUserId[]', global(vars, 'agentId')], ['origCallId', vars.origCallId], ['xcid', global(vars, 'callId')], ['diversion', vars.diversion]]);
      case 'call.answered':
        return some([['fullUserId', global(vars, 'agentId')], ['diversion', vars.diversion]]);
      default:
        return some([['diversion', vars.diversion]]);
    }
  },
};

/** Every event as JSON, the contract's own shape. */
const genericJson: PresetSettings = {
  method: 'POST',
  format: 'json',
  events: [],
  params: [],
};

export const PRESETS: Record<string, PresetSettings> = {
  zammad,
  sipgate,
  'generic-json': genericJson,
};
