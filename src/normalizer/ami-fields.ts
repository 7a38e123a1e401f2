// Reading AMI events: header values as the contract wants them, and the filters the mapping
// table (src/normalizer/ami-events.ts) applies before a handler runs. A filter only looks at the
// event itself; it narrows the event's type, so the handler gets the headers it needs as strings.
import { type AmiEvent, amiTimestamp } from './ami-event.js';
import { isDialProgress } from './statuses.js';

/** An AMI event known to carry (non-empty) headers K. */
export type AmiEventWith<K extends string> = AmiEvent & { readonly [P in K]: string };

function has<K extends string>(ev: AmiEvent, ...keys: K[]): ev is AmiEventWith<K> {
  return keys.every((k) => !!ev[k]);
}

/** A caller-id-like value, or null when empty or Asterisk's `<unknown>`. */
export function cidOrNull(v: string | undefined): string | null {
  if (v === undefined) return null;
  const t = v.trim();
  return t === '' || t === '<unknown>' ? null : t;
}

/** The largest Q.850 cause value: the field is 7 bits (Asterisk's AST_CAUSE_INTERWORKING, 127). */
export const MAX_CAUSE = 127;

/**
 * The Q.850 cause an event carries (Hangup, HangupRequest): a whole number 0-127 written in
 * decimal digits, NaN when it has none or something else (`1.5`, `-3`, `99999999999`, `0x10`):
 * such a value is no cause, and the contract's `cause.code` is then null.
 */
export function causeCode(ev: AmiEvent): number {
  const c = ev.cause;
  if (c === undefined || c.length === 0 || c.length > 3 || !DIGITS.test(c)) return NaN;
  const n = Number(c);
  return n <= MAX_CAUSE ? n : NaN;
}

const DIGITS = /^[0-9]+$/;

/**
 * The latest time an event may carry: 9999-12-31T23:59:59Z, the last second the contract's
 * `time` (exactly four year digits) can write. A Timestamp beyond it, or not a positive number,
 * is not believed (see eventTime).
 */
export const LATEST_TIMESTAMP = 253_402_300_799;

/**
 * Seconds since the epoch from the AMI `Timestamp` header (timestampevents = yes), or null when
 * the event has none or one that no event can be dated with: not a finite number, 0 or less
 * (before 1970-01-01), or after LATEST_TIMESTAMP (`253402300800`, `1e20`). The tracker then
 * dates the event with when it was received, as it does when Asterisk sends no Timestamp.
 */
export function eventTime(ev: AmiEvent): number | null {
  const ts = amiTimestamp(ev);
  return ts !== null && ts <= LATEST_TIMESTAMP ? ts : null;
}

/** The channel reached Up (Newstate). */
export function isUp(ev: AmiEvent): boolean {
  const state = ev.channelstatedesc ?? '';
  return state === 'Up' || ev.channelstate === '6';
}

// ---- filters -----------------------------------------------------------------------------------

/** A DialBegin from a calling channel. An Originate's own dial of its first channel has none: nothing rings. */
export function placesADial(ev: AmiEvent): ev is AmiEventWith<'channel' | 'destuniqueid' | 'destchannel'> {
  return has(ev, 'channel', 'destuniqueid', 'destchannel');
}

/** A DialEnd that ends a dial: RINGING, PROCEEDING and PROGRESS only report progress. */
export function endsADial(ev: AmiEvent): ev is AmiEventWith<'channel' | 'destuniqueid' | 'dialstatus'> {
  return has(ev, 'channel', 'destuniqueid', 'dialstatus') && !isDialProgress(ev.dialstatus);
}

/** An AgentCalled that names the member's channel. */
export function ringsAMember(ev: AmiEvent): ev is AmiEventWith<'destuniqueid' | 'destchannel'> {
  return has(ev, 'destuniqueid', 'destchannel');
}

/** A transfer that happened: a failed one (Result: Fail, Invalid, Not Permitted) changed nothing. */
export function transferSucceeded(ev: AmiEvent): boolean {
  return !ev.result || ev.result === 'Success';
}

/** A channel entering a bridge. */
export function entersABridge(ev: AmiEvent): ev is AmiEventWith<'bridgeuniqueid' | 'uniqueid'> {
  return has(ev, 'bridgeuniqueid', 'uniqueid');
}

/** The state of a device (PJSIP/201), not of a custom or queue state (Custom:x, Queue:sales_avail). */
export function namesADevice(ev: AmiEvent): ev is AmiEventWith<'device'> {
  return has(ev, 'device') && ev.device.includes('/');
}
