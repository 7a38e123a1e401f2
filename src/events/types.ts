// The normalized event contract, v1 (README "Event contract"; schema/events.v1.json).
// Every sink and every CRM sees these shapes and nothing else, so they change only with a new
// specVersion.

export const SPEC_VERSION = '1' as const;

export type Direction = 'inbound' | 'outbound' | 'internal';

export interface Party {
  number: string | null;
  name?: string | null;
}

export interface Agent {
  id: string;
  extension: string | null;
  name: string | null;
  interface: string | null;
}

export interface QueueInfo {
  name: string;
  position: number | null;
  waitSeconds: number | null;
}

export interface ChannelRef {
  uniqueid: string;
  name: string;
}

export type RingStopReason =
  | 'answered_elsewhere'
  | 'no_answer'
  | 'busy'
  | 'unavailable'
  | 'caller_hangup'
  | 'rejected';

export type MissedReason = 'abandoned' | 'no_answer' | 'busy' | 'unavailable' | 'timeout';

export type HangupBy = 'caller' | 'agent' | 'system';

export type AgentStatus = 'idle' | 'ringing' | 'busy' | 'unavailable' | 'on_hold';

export interface Envelope {
  specVersion: typeof SPEC_VERSION;
  id: string;
  time: string;
  server: string;
  seq: number;
}

export interface CallFields {
  callId: string;
  direction: Direction;
  caller: Party;
  called: Party;
  agent: Agent | null;
  queue: QueueInfo | null;
  vars: Record<string, string>;
  channel: ChannelRef | null;
  /** How the call came to be; 'click-to-call' for calls the bridge originated (issue: acting back). */
  origin?: string;
}

export interface CallStarted extends Envelope, CallFields { type: 'call.started' }
export interface CallQueued extends Envelope, CallFields { type: 'call.queued'; queue: QueueInfo }
/** One device rung: `agent` null for a party that is not an agent, `channel` names the device. */
export interface CallRinging extends Envelope, CallFields { type: 'call.ringing'; agent: Agent | null; channel: ChannelRef }
export interface CallAnswered extends Envelope, CallFields {
  type: 'call.answered';
  agent: Agent | null;
  channel: ChannelRef;
  ringSeconds: number | null;
}
export interface CallRingStopped extends Envelope, CallFields {
  type: 'call.ring_stopped';
  agent: Agent | null;
  channel: ChannelRef;
  reason: RingStopReason;
}
export interface TransferInfo {
  kind: 'blind' | 'attended';
  from: Agent | null;
  to: { number: string | null; agent: Agent | null };
}
export interface CallTransferred extends Envelope, CallFields {
  type: 'call.transferred';
  transfer: TransferInfo;
}
export interface CallMissed extends Envelope, CallFields {
  type: 'call.missed';
  reason: MissedReason;
  waitSeconds: number | null;
}
export interface HangupCause {
  code: number | null;
  text: string | null;
}
export interface Durations {
  ringSeconds: number | null;
  talkSeconds: number | null;
  totalSeconds: number | null;
}
export interface CallHangup extends Envelope, CallFields {
  type: 'call.hangup';
  disposition: 'answered' | 'missed';
  hangupBy: HangupBy;
  cause: HangupCause;
  durations: Durations;
}

export interface AgentEventBase extends Envelope {
  agent: Agent;
}
/** Presence sync (api.presence): what the CRM should set now; absent when it need not change. */
export interface CrmPresenceField {
  crmPresence?: 'ready' | 'not_ready';
}
export interface AgentLogin extends AgentEventBase, CrmPresenceField { type: 'agent.login'; queue: QueueInfo }
export interface AgentLogout extends AgentEventBase, CrmPresenceField { type: 'agent.logout'; queue: QueueInfo }
export interface AgentPaused extends AgentEventBase, CrmPresenceField {
  type: 'agent.paused';
  queue: QueueInfo | null;
  reason: string | null;
  /** 'api': the bridge made this change on a CRM's request. */
  origin?: 'api';
}
export interface AgentUnpaused extends AgentEventBase, CrmPresenceField {
  type: 'agent.unpaused';
  queue: QueueInfo | null;
  reason: string | null;
  origin?: 'api';
}
export interface AgentStatusEvent extends AgentEventBase { type: 'agent.status'; status: AgentStatus }

export type CallEvent =
  | CallStarted
  | CallQueued
  | CallRinging
  | CallAnswered
  | CallRingStopped
  | CallTransferred
  | CallMissed
  | CallHangup;

export type AgentEvent = AgentLogin | AgentLogout | AgentPaused | AgentUnpaused | AgentStatusEvent;

export type BridgeEvent = CallEvent | AgentEvent;
export type EventType = BridgeEvent['type'];

export const EVENT_TYPES: readonly EventType[] = [
  'call.started',
  'call.queued',
  'call.ringing',
  'call.answered',
  'call.ring_stopped',
  'call.transferred',
  'call.missed',
  'call.hangup',
  'agent.login',
  'agent.logout',
  'agent.paused',
  'agent.unpaused',
  'agent.status',
];

export function isCallEvent(e: BridgeEvent): e is CallEvent {
  return e.type.startsWith('call.');
}

/**
 * The event as JSON, made once however many sinks on this thread need it in the same turn of the
 * event loop (the screen pop's SSE frame, the hand-over of the AMI read's batch to the delivery
 * thread, the log sink). Events are never changed once emitted, so the text stays true. The cache
 * lives for one turn only: a screen pop's buffers keep events for minutes, and holding their JSON
 * that long would cost ~0.6 KB per buffered event (measured: bench:screenpop, buffers full).
 */
let jsonCache = new Map<BridgeEvent, string>();
let clearQueued = false;
export function eventJson(event: BridgeEvent): string {
  let json = jsonCache.get(event);
  if (json === undefined) {
    json = JSON.stringify(event);
    jsonCache.set(event, json);
    if (!clearQueued) {
      clearQueued = true;
      setImmediate(() => {
        jsonCache = new Map();
        clearQueued = false;
      });
    }
  }
  return json;
}
