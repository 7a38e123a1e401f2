// Reading AMI events: header values as the contract wants them, and the filters the mapping
// table (src/normalizer/ami-events.ts) applies before a handler runs. A filter only looks at the
// event itself; it narrows the event's type, so the handler gets the headers it needs as strings.
import type { AmiEvent } from '../ami/frame.js';
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

/** The Q.850 cause an event carries (Hangup, HangupRequest), NaN when it has none. */
export function causeCode(ev: AmiEvent): number {
  return ev.cause !== undefined && ev.cause !== '' ? Number(ev.cause) : NaN;
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
