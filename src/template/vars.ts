// The one flat set of names every template reads (docs/templates.md "Variables"): derived from an
// event once, then shared by the URL, headers, body and params of every sink that renders it.
import { CRM_VAR_PREFIX } from '../events/crm-vars.js';
import type { Agent, BridgeEvent, CallEvent, QueueInfo } from '../events/types.js';

/**
 * Values by name: every fixed name (null when the event lacks it) and each exported `Omlcrm…`
 * variable. A name missing here (an `Omlcrm…` variable the call does not have) renders as null.
 */
export type TemplateVars = Readonly<Record<string, string | null>>;

/** The fixed names, in the order docs/templates.md lists them. */
export const KNOWN_NAMES = [
  // The contract's list (contract "Template variables").
  'event',
  'eventId',
  'time',
  'callId',
  'uniqueid',
  'direction',
  'callerNumber',
  'callerName',
  'calledNumber',
  'agentId',
  'agentExtension',
  'agentName',
  'queue',
  'queuePosition',
  'queueWait',
  'ringSeconds',
  'talkSeconds',
  'hangupCause',
  'transferKind',
  'transferTo',
  'server',
  'status',
  // Extras that presets and CRMs need.
  'reason',
  'disposition',
  'hangupBy',
  'hangupCauseCode',
  'totalSeconds',
  'waitSeconds',
  'agentStatus',
  'paused',
  'crmPresence',
  'origin',
] as const;

export type KnownName = (typeof KNOWN_NAMES)[number];

const KNOWN = new Set<string>(KNOWN_NAMES);

/** The prefix of dialplan CRM variables (contract "CRM variables from the dialplan"). */
export { CRM_VAR_PREFIX };

/** Same rule as the contract's `vars` keys: `^Omlcrm[A-Za-z0-9_]*$`, case-sensitive. */
function isCrmVarName(name: string): boolean {
  if (!name.startsWith(CRM_VAR_PREFIX)) return false;
  for (let i = CRM_VAR_PREFIX.length; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
    if (!ok) return false;
  }
  return true;
}

/** A fixed name, or an `Omlcrm…` dialplan variable (which renders as null when the call has none). */
export function isKnownName(name: string): boolean {
  return KNOWN.has(name) || isCrmVarName(name);
}

/** WorldSmart `<%KEY%>` keys and the names they read (docs/templates.md "WorldSmart keys"). */
export const WORLDSMART_KEYS: Readonly<Record<string, KnownName>> = {
  CALLERID: 'callerNumber',
  USERID: 'agentId',
  USEREXT: 'agentExtension',
  SYSTIME: 'time',
  DID: 'calledNumber',
  QUEUENAME: 'queue',
  QUEUEWAITTIME: 'queueWait',
  TRANSFERID: 'transferTo',
  DNDSTATUS: 'paused',
};

/** Tencent CCC pop-up `status`: 100 incoming call, 200 connected, 400 ended. */
const TENCENT_STATUS: Partial<Record<BridgeEvent['type'], string>> = {
  'call.ringing': '100',
  'call.answered': '200',
  'call.hangup': '400',
};

/** A number as a plain decimal string (`3.2`, `0.003`, never `3e-7`); null stays null. */
function decimal(n: number | null | undefined): string | null {
  if (n === null || n === undefined || !Number.isFinite(n)) return null;
  const s = String(n);
  // Exponent notation only appears below 1e-6 or from 1e21: far outside any duration or position.
  return s.includes('e') ? n.toFixed(3) : s;
}

/** The values every template can use, derived from one event. Pure; compute once per event. */
export function templateVars(event: BridgeEvent): TemplateVars {
  const agent: Agent | null = event.agent;
  const queue: QueueInfo | null = 'queue' in event ? event.queue : null;
  const call: CallEvent | null = event.type.startsWith('call.') ? (event as CallEvent) : null;
  const out: Record<KnownName, string | null> = {
    event: event.type,
    eventId: event.id,
    time: event.time,
    callId: call?.callId ?? null,
    uniqueid: call?.channel?.uniqueid ?? null,
    direction: call?.direction ?? null,
    callerNumber: call?.caller.number ?? null,
    callerName: call?.caller.name ?? null,
    calledNumber: call?.called.number ?? null,
    agentId: agent?.id ?? null,
    agentExtension: agent?.extension ?? null,
    agentName: agent?.name ?? null,
    queue: queue?.name ?? null,
    queuePosition: decimal(queue?.position),
    queueWait: decimal(queue?.waitSeconds),
    ringSeconds: null,
    talkSeconds: null,
    hangupCause: null,
    transferKind: null,
    transferTo: null,
    server: event.server,
    status: TENCENT_STATUS[event.type] ?? null,
    reason: null,
    disposition: null,
    hangupBy: null,
    hangupCauseCode: null,
    totalSeconds: null,
    waitSeconds: null,
    agentStatus: null,
    paused: null,
    crmPresence: 'crmPresence' in event ? event.crmPresence ?? null : null,
    origin: 'origin' in event ? event.origin ?? null : null,
  };
  switch (event.type) {
    case 'call.answered':
      out.ringSeconds = decimal(event.ringSeconds);
      break;
    case 'call.ring_stopped':
      out.reason = event.reason;
      break;
    case 'call.transferred':
      out.transferKind = event.transfer.kind;
      out.transferTo = event.transfer.to.number ?? event.transfer.to.agent?.extension ?? null;
      break;
    case 'call.missed':
      out.reason = event.reason;
      out.waitSeconds = decimal(event.waitSeconds);
      break;
    case 'call.hangup':
      out.disposition = event.disposition;
      out.hangupBy = event.hangupBy;
      out.hangupCause = event.cause.text;
      out.hangupCauseCode = decimal(event.cause.code);
      out.ringSeconds = decimal(event.durations.ringSeconds);
      out.talkSeconds = decimal(event.durations.talkSeconds);
      out.totalSeconds = decimal(event.durations.totalSeconds);
      break;
    case 'agent.paused':
    case 'agent.unpaused':
      out.reason = event.reason;
      out.paused = event.type === 'agent.paused' ? '1' : '0';
      break;
    case 'agent.status':
      out.agentStatus = event.status;
      break;
    case 'call.started':
    case 'call.queued':
    case 'call.ringing':
    case 'agent.login':
    case 'agent.logout':
      break;
    default:
      return unreachable(event);
  }
  // The contract guarantees vars keys are Omlcrm…, so they cannot shadow a fixed name.
  return call ? { ...call.vars, ...out } : out;
}

function unreachable(event: never): never {
  throw new Error(`unknown event type ${(event as { type: string }).type}`);
}
