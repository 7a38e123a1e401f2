// What Asterisk's status words and cause codes mean in the contract: every such rule once, as a
// table, so the AMI and ARI paths (src/sources/ari/translate.ts) and every handler read the same answer.
// The tables are Maps, never plain objects: the key is text from the PBX, and a plain object would
// answer `toString`, `constructor` or `__proto__` with what its prototype holds (issue 15).
import type { AgentStatus, MissedReason, RingStopReason } from '../events/types.js';

// ---- Dial() ------------------------------------------------------------------------------------

/**
 * Dial statuses that report progress, not an end: AMI sends them as DialState, ARI's Dial event
 * carries them like any other status, and a DialEnd carrying one ends nothing.
 */
const DIAL_PROGRESS: ReadonlySet<string> = new Set(['RINGING', 'PROCEEDING', 'PROGRESS']);

export function isDialProgress(status: string): boolean {
  return DIAL_PROGRESS.has(status);
}

/** Dial()'s DIALSTATUS: why an agent's phone stopped ringing, and why a call was missed. */
const DIAL_STATUS: ReadonlyMap<string, { ring: RingStopReason; missed: MissedReason }> = new Map([
  ['NOANSWER', { ring: 'no_answer', missed: 'no_answer' }],
  ['BUSY', { ring: 'busy', missed: 'busy' }],
  ['CHANUNAVAIL', { ring: 'unavailable', missed: 'unavailable' }],
  ['CONGESTION', { ring: 'unavailable', missed: 'unavailable' }],
  ['INVALIDARGS', { ring: 'unavailable', missed: 'unavailable' }],
  ['DONTCALL', { ring: 'rejected', missed: 'unavailable' }],
  ['TORTURE', { ring: 'rejected', missed: 'unavailable' }],
  // Dial U() / M() routine refused the call (GOSUB_RESULT=ABORT): the callee turned it down.
  ['ABORT', { ring: 'rejected', missed: 'busy' }],
]);

/** Why a dialled phone stopped ringing, by the status its dial ended with (ANSWER and CANCEL are decided elsewhere). */
export function dialStopReason(status: string): RingStopReason {
  return DIAL_STATUS.get(status)?.ring ?? 'no_answer';
}

/** Why a call whose dial ended with `status` was missed, when the status says. */
export function dialMissedReason(status: string): MissedReason | undefined {
  return DIAL_STATUS.get(status)?.missed;
}

// ---- hang-up causes ----------------------------------------------------------------------------

/** Why a ringing phone stopped, by the Q.850 cause of its hang-up; null when the cause does not say. */
export function causeToStop(code: number): RingStopReason | null {
  switch (code) {
    case 26:
      return 'answered_elsewhere';
    case 17:
      return 'busy';
    case 18:
    case 19:
      return 'no_answer';
    case 21:
      return 'rejected';
    case 1:
    case 3:
    case 20:
    case 27:
    case 34:
    case 38:
      return 'unavailable';
    default:
      return null;
  }
}

// ---- Queue() -----------------------------------------------------------------------------------

/** Queue()'s QUEUESTATUS values that explain a missed call (TIMEOUT is not an abandon). */
const QUEUE_STATUS: ReadonlyMap<string, MissedReason> = new Map([
  ['TIMEOUT', 'timeout'],
  ['FULL', 'unavailable'],
  ['JOINEMPTY', 'unavailable'],
  ['LEAVEEMPTY', 'unavailable'],
  ['JOINUNAVAIL', 'unavailable'],
  ['LEAVEUNAVAIL', 'unavailable'],
]);

export function queueMissedReason(status: string): MissedReason | undefined {
  return QUEUE_STATUS.get(status);
}

// ---- devices and queue members -----------------------------------------------------------------

/** DeviceStateChange's State. */
const DEVICE_STATUS: ReadonlyMap<string, AgentStatus> = new Map([
  ['NOT_INUSE', 'idle'],
  ['INUSE', 'busy'],
  ['BUSY', 'busy'],
  ['RINGING', 'ringing'],
  ['RINGINUSE', 'ringing'],
  ['ONHOLD', 'on_hold'],
  ['UNAVAILABLE', 'unavailable'],
  ['INVALID', 'unavailable'],
  ['UNKNOWN', 'unavailable'],
]);

/** app_queue member Status numbers (AST_DEVICE_*). */
const MEMBER_STATUS: ReadonlyMap<string, AgentStatus> = new Map([
  ['0', 'unavailable'],
  ['1', 'idle'],
  ['2', 'busy'],
  ['3', 'busy'],
  ['4', 'unavailable'],
  ['5', 'unavailable'],
  ['6', 'ringing'],
  ['7', 'ringing'],
  ['8', 'on_hold'],
]);

export function deviceStatus(state: string): AgentStatus | undefined {
  return DEVICE_STATUS.get(state);
}

export function memberStatus(status: string): AgentStatus | undefined {
  return MEMBER_STATUS.get(status);
}
