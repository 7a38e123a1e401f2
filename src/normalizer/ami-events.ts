// The AMI -> normalized-event mapping, as one table: each AMI event the normalizer uses, the
// filter it must pass (src/normalizer/ami-fields.ts) and the handler that reads it. An event with
// no row still counts: CallTracker follows the Linkedid every event carries (a channel whose
// Linkedid changes joined another call) before any handler runs.
import type { AmiEvent } from './ami-event.js';
import { onDeviceState, onMemberLogin, onMemberPause, onMemberStatus } from './agent-events.js';
import { entersABridge, endsADial, namesADevice, placesADial, ringsAMember, transferSucceeded } from './ami-fields.js';
import { onBridgeDestroy, onBridgeEnter, onBridgeLeave } from './bridges.js';
import { onNewCallerid, onNewchannel, onNewstate, onVarSet } from './channel-events.js';
import { onAgentCalled, onAgentConnect, onAgentRingNoAnswer, onDialBegin, onDialEnd, onPickup } from './dial-events.js';
import { onHangup, onHangupRequest } from './hangup-events.js';
import { onQueueCallerAbandon, onQueueCallerJoin, onQueueCallerLeave } from './queue-events.js';
import type { TrackerState } from './state.js';
import { onAttendedTransfer, onBlindTransfer } from './transfer-events.js';

export type AmiHandler = (s: TrackerState, ev: AmiEvent) => void;

/** A handler that runs only for events that pass `filter` (and gets them typed by it). */
function when<E extends AmiEvent>(filter: (ev: AmiEvent) => ev is E, handle: (s: TrackerState, ev: E) => void): AmiHandler;
function when(filter: (ev: AmiEvent) => boolean, handle: AmiHandler): AmiHandler;
function when(filter: (ev: AmiEvent) => boolean, handle: AmiHandler): AmiHandler {
  return (s, ev) => {
    if (filter(ev)) handle(s, ev);
  };
}

/** Keyed by the AMI event name in lower case. */
const AMI_EVENTS: Readonly<Record<string, AmiHandler>> = {
  // a channel
  newchannel: onNewchannel,
  newcallerid: onNewCallerid,
  varset: onVarSet,
  newstate: onNewstate,
  // dialling
  dialbegin: when(placesADial, onDialBegin),
  dialend: when(endsADial, onDialEnd),
  agentcalled: when(ringsAMember, onAgentCalled),
  agentconnect: onAgentConnect,
  agentringnoanswer: onAgentRingNoAnswer,
  pickup: onPickup,
  // a caller in a queue
  queuecallerjoin: onQueueCallerJoin,
  queuecallerleave: onQueueCallerLeave,
  queuecallerabandon: onQueueCallerAbandon,
  // bridges
  bridgeenter: when(entersABridge, onBridgeEnter),
  bridgeleave: onBridgeLeave,
  bridgedestroy: onBridgeDestroy,
  // hanging up: a party asks (HangupRequest), the PBX asks (SoftHangupRequest), a channel goes
  hanguprequest: (s, ev) => onHangupRequest(s, ev, false),
  softhanguprequest: (s, ev) => onHangupRequest(s, ev, true),
  hangup: onHangup,
  // transfers
  blindtransfer: when(transferSucceeded, onBlindTransfer),
  attendedtransfer: when(transferSucceeded, onAttendedTransfer),
  // agents
  queuememberadded: (s, ev) => onMemberLogin(s, ev, 'agent.login'),
  queuememberremoved: (s, ev) => onMemberLogin(s, ev, 'agent.logout'),
  queuememberpause: onMemberPause,
  queuememberstatus: onMemberStatus,
  devicestatechange: when(namesADevice, onDeviceState),
};

/**
 * What the bridge reads of the busiest AMI events (lab/recordings: VarSet 34 % of the frames,
 * Newexten 12 %, TestEvent 7 %, NewConnectedLine 4 %, DTMF 4 %), by lower-case name: the AMI
 * reader (src/sources/ami/parser.ts) decodes and keeps only these headers of such a frame. Every
 * event: its name, Timestamp, Uniqueid, DestUniqueid (ids, tracker.ts), Linkedid (followLinkedid;
 * the error log), ActionID and Response (the source's actions). Besides, VarSet's row reads the
 * channel's name (channelEvent), the variable and its value. The others have no row, and nothing
 * else reads them (src/presence reads queue member events only). A change to a handler of these
 * events must change this table: test/lean-frames.test.ts compares every recording's events
 * with and without it.
 */
const READ_BY_ALL = ['event', 'timestamp', 'uniqueid', 'destuniqueid', 'linkedid', 'actionid', 'response'];
export const HEADERS_READ: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['varset', new Set([...READ_BY_ALL, 'channel', 'variable', 'value'])],
  ...['newexten', 'testevent', 'newconnectedline', 'dtmfbegin', 'dtmfend', 'localbridge', 'dialstate', 'bridgecreate', 'musiconholdstart', 'musiconholdstop', 'rtcpsent', 'rtcpreceived'].map(
    (name) => [name, new Set(READ_BY_ALL)] as const,
  ),
]);

/** For events with no row: their Linkedid was followed, and nothing else is to be done. */
const LINKEDID_ONLY: AmiHandler = () => undefined;

/** The handler for an AMI event name (lower case). */
export function amiHandler(name: string): AmiHandler {
  return (Object.hasOwn(AMI_EVENTS, name) ? AMI_EVENTS[name] : undefined) ?? LINKEDID_ONLY;
}
