// Webhook presets: each is a table of template settings (method, format, events, parameters),
// merged under the user's own settings — no special code paths. Documented in README
// ("Webhook presets") with the request each event produces.
import type { EventType } from '../events/types.js';

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
}

const DIRECTION = { from: 'direction', as: 'direction', map: { inbound: 'in', outbound: 'out', internal: 'out' } };
/** Why an unanswered call ended, in the 7 causes Zammad and sipgate know. */
const MISSED_CAUSE = { abandoned: 'cancel', no_answer: 'noAnswer', timeout: 'noAnswer', busy: 'busy', unavailable: 'notFound' };

/**
 * Zammad generic CTI (`POST /api/v1/cti/{token}`, JSON): newCall when the call starts, answer
 * when an agent answers, hangup exactly once — from call.missed (with its cause) for an
 * unanswered call, from call.hangup (normalClearing) for an answered one.
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
    'call.hangup': { params: [{ value: 'normalClearing', as: 'cause' }, { from: 'agentName', as: 'user' }, { from: 'agentExtension', as: 'answeringNumber' }] },
  },
  when: { 'call.hangup': { disposition: ['answered'] } },
};

/** sipgate.io push format (form-encoded, `user[]` arrays on newCall), same event rules as Zammad. */
const sipgate: PresetSettings = {
  method: 'POST',
  format: 'form',
  events: zammad.events,
  params: zammad.params,
  routes: {
    'call.started': { params: [{ from: 'agentName', as: 'user[]' }, { from: 'agentId', as: 'userId[]' }] },
    'call.answered': { params: [{ from: 'agentName', as: 'user' }, { from: 'agentId', as: 'userId' }, { from: 'agentExtension', as: 'answeringNumber' }] },
    'call.missed': { params: [{ from: 'reason', as: 'cause', map: MISSED_CAUSE }] },
    'call.hangup': { params: [{ value: 'normalClearing', as: 'cause' }, { from: 'agentExtension', as: 'answeringNumber' }] },
  },
  when: zammad.when,
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
