// ARI websocket events -> the AMI-shaped records the normalizer consumes
// (src/normalizer/ami-events.ts). Pure: the output depends only on the message and the explicit TranslateState the
// caller passes in, so a recorded ARI stream always translates to the same AMI records (and the
// tracker then gives the same event ids).
//
// The mapping mirrors what Asterisk itself does when it turns the same Stasis messages into AMI
// (main/manager_channels.c, manager_bridges.c): a Channel snapshot becomes the channel headers
// AMI prints with a prefix (`Channel`, `Uniqueid`, `Linkedid`, `CallerIDNum`, `Context`, ... or
// `DestChannel`, `TransfereeUniqueid`, ...), lower-cased like src/normalizer/ami-event.ts does. Verified
// against recordings of the same scenarios from both interfaces (lab/recordings/*.ami and
// lab/recordings/ari/*.jsonl, Asterisk 22.10).
//
// Linkedid. ARI's Channel model has no Linkedid. With `channelvars = CHANNEL(linkedid)` in
// ari.conf [general], Asterisk evaluates the function each time it builds a channel snapshot, so
// every Channel in every event carries the current Linkedid in `channelvars` (seen on 22.10 for
// every channel of every recorded scenario, transfer legs included). Without that setting the
// caller may fill `state.linkedids` (AriSource asks Asterisk for CHANNEL(linkedid) when a channel
// is created); failing both, a Local `;2` takes its `;1`'s Linkedid and any other channel its own
// Uniqueid — which splits a call into one call per channel, hence the requirement.
//
// Timestamps. ARI stamps events in milliseconds; AMI's `Timestamp` is `epoch.micro`, and the
// tracker derives event ids from (event, uniqueid, Timestamp). Two events of one kind for one
// channel in the same millisecond (two Dial NOANSWERs of a ring-all queue) would then share an id,
// so the translation uses the microsecond digits as a per-millisecond ordinal: the n-th such
// event gets `.mmm00n`. ARI also delivers events of different topics a millisecond or two out of
// order; a small step back is clamped to the latest time seen so a call's times never go backwards.
import type { AmiEvent } from '../../normalizer/ami-event.js';
import { localPartner } from '../../normalizer/local-channels.js';
import { isDialProgress } from '../../normalizer/statuses.js';
import type { SnapshotChannel } from '../../normalizer/tracker.js';

/** The channel variable (ari.conf `channelvars`) that carries a channel's Linkedid. */
export const LINKEDID_VAR = 'CHANNEL(linkedid)';

export interface AriCallerId {
  name?: string;
  number?: string;
}

/** ARI's Channel model (rest-api/api-docs/channels.json), as far as the translation reads it. */
export interface AriChannel {
  id: string;
  name: string;
  state?: string;
  caller?: AriCallerId;
  connected?: AriCallerId;
  accountcode?: string;
  dialplan?: { context?: string; exten?: string; priority?: number; app_name?: string; app_data?: string };
  language?: string;
  channelvars?: Record<string, string | null | undefined> | null;
}

export interface AriBridge {
  id: string;
  technology?: string;
  bridge_type?: string;
  bridge_class?: string;
  creator?: string;
  name?: string;
  channels?: string[];
}

/** One ARI websocket message. */
export interface AriMessage {
  type: string;
  timestamp?: string;
  [key: string]: unknown;
}

export interface TranslateState {
  /** Linkedid by channel id, for channels without the variable: filled by the caller (a lookup) or derived. */
  readonly linkedids: Map<string, string>;
  /** Channel id by channel name (channels without the variable), for a Local channel's partner. */
  readonly byName: Map<string, string>;
  /** Latest event time seen, in microseconds since the epoch. */
  lastMicros: number;
  /** Per whole second: the (event, channel, time) keys already handed out, for unique timestamps. */
  readonly stamped: Map<number, Set<string>>;
  /** Channels seen without the Linkedid variable (for the source's warning). */
  missingLinkedidVar: number;
}

export function createTranslateState(): TranslateState {
  return { linkedids: new Map(), byName: new Map(), lastMicros: 0, stamped: new Map(), missingLinkedidVar: 0 };
}

/**
 * After a resync: forgets the channels of `candidates` (those known when the query went out)
 * that Asterisk no longer lists — destroyed while we were away, so no ChannelDestroyed freed them.
 */
export function pruneTranslateState(state: TranslateState, live: ReadonlySet<string>, candidates: Iterable<string>): void {
  const gone = new Set<string>();
  for (const id of candidates) if (!live.has(id)) gone.add(id);
  for (const id of gone) state.linkedids.delete(id);
  for (const [name, id] of state.byName) if (gone.has(id)) state.byName.delete(name);
}

/** Is this a ChannelCreated whose Linkedid the caller should look up (no variable, nothing known)? */
export function needsLinkedidLookup(msg: AriMessage, state: TranslateState): string | null {
  if (msg.type !== 'ChannelCreated') return null;
  const ch = asChannel(msg.channel);
  if (!ch || linkedidVar(ch) !== null || state.linkedids.has(ch.id)) return null;
  return ch.id;
}

/** AMI's ChannelState numbers (enum ast_channel_state). A Map: the key is the PBX's text. */
const CHANNEL_STATE: ReadonlyMap<string, string> = new Map([
  ['Down', '0'],
  ['Rsrvd', '1'],
  ['Rsrved', '1'],
  ['OffHook', '2'],
  ['Dialing', '3'],
  ['Ring', '4'],
  ['Ringing', '5'],
  ['Up', '6'],
  ['Busy', '7'],
  ['Dialing Offhook', '8'],
  ['Pre-ring', '9'],
  ['Unknown', '10'],
]);

type Translator = (msg: AriMessage, state: TranslateState) => Record<string, string> | null;

/**
 * One row per ARI event the normalizer can use: the AMI event it becomes. Anything else
 * (StasisStart/End — only for channels in our own Stasis app, which subscribe-all puts none in —,
 * playback, recording, endpoint, DTMF, talk detection ...) translates to nothing.
 */
const TRANSLATORS: Record<string, Translator> = {
  ChannelCreated: (m, s) => channelEvent('Newchannel', m, s),
  ChannelStateChange: (m, s) => channelEvent('Newstate', m, s),
  ChannelCallerId: (m, s) => channelEvent('NewCallerid', m, s, { cid_callingpres: str(m.caller_presentation) }),
  ChannelConnectedLine: (m, s) => channelEvent('NewConnectedLine', m, s),
  ChannelDialplan: (m, s) => channelEvent('Newexten', m, s, { application: str(m.dialplan_app), appdata: str(m.dialplan_app_data) }),
  // A global variable (no channel) concerns no call.
  ChannelVarset: (m, s) => channelEvent('VarSet', m, s, { variable: str(m.variable), value: str(m.value) }),
  ChannelHangupRequest: (m, s) => channelEvent(m.soft === true ? 'SoftHangupRequest' : 'HangupRequest', m, s, { cause: str(m.cause) }),
  ChannelDestroyed: (m, s) => channelEvent('Hangup', m, s, { cause: str(m.cause), 'cause-txt': str(m.cause_txt) }),
  ChannelHold: (m, s) => channelEvent('Hold', m, s, { musicclass: str(m.musicclass) }),
  ChannelUnhold: (m, s) => channelEvent('Unhold', m, s),
  ChannelEnteredBridge: (m, s) => channelEvent('BridgeEnter', m, s, bridgeFields('', asBridge(m.bridge))),
  ChannelLeftBridge: (m, s) => channelEvent('BridgeLeave', m, s, bridgeFields('', asBridge(m.bridge))),
  Dial: (m, s) => {
    const peer = asChannel(m.peer);
    if (!peer) return null;
    const status = str(m.dialstatus);
    const event = status === '' ? 'DialBegin' : isDialProgress(status) ? 'DialState' : 'DialEnd';
    const caller = asChannel(m.caller);
    // An Originate's dial of its first channel has no calling channel: AMI then prints Dest* only.
    return {
      event,
      ...(caller ? channelFields('', caller, s) : {}),
      ...channelFields('dest', peer, s),
      ...(event === 'DialBegin' ? { dialstring: str(m.dialstring) } : { dialstatus: status }),
      ...(m.forward ? { forward: str(m.forward) } : {}),
    };
  },
  BridgeBlindTransfer: (m, s) => {
    const transferer = asChannel(m.channel);
    const transferee = asChannel(m.transferee);
    return {
      event: 'BlindTransfer',
      result: str(m.result),
      ...(transferer ? channelFields('transferer', transferer, s) : {}),
      ...(transferee ? channelFields('transferee', transferee, s) : {}),
      ...bridgeFields('', asBridge(m.bridge)),
      isexternal: m.is_external === true ? 'Yes' : 'No',
      context: str(m.context),
      extension: str(m.exten),
    };
  },
  BridgeAttendedTransfer: (m, s) => {
    const out: Record<string, string> = { event: 'AttendedTransfer', result: str(m.result) };
    const parts: Array<[string, unknown]> = [
      ['origtransferer', m.transferer_first_leg],
      ['secondtransferer', m.transferer_second_leg],
      ['transferee', m.transferee],
      ['transfertarget', m.transfer_target],
    ];
    for (const [prefix, value] of parts) {
      const ch = asChannel(value);
      if (ch) Object.assign(out, channelFields(prefix, ch, s));
    }
    Object.assign(out, bridgeFields('orig', asBridge(m.transferer_first_leg_bridge)), bridgeFields('second', asBridge(m.transferer_second_leg_bridge)));
    out.isexternal = m.is_external === true ? 'Yes' : 'No';
    out.desttype = str(m.destination_type);
    if (m.destination_bridge) out.destbridgeuniqueid = str(m.destination_bridge);
    if (m.destination_application) out.destapp = str(m.destination_application);
    return out;
  },
  DeviceStateChanged: (m) => {
    const ds = m.device_state as { name?: unknown; state?: unknown } | undefined;
    if (!ds || typeof ds.name !== 'string') return null;
    return { event: 'DeviceStateChange', device: ds.name, state: str(ds.state) };
  },
};

/**
 * Translates one ARI message into AMI-shaped events (zero or one today; a list so a future
 * message may map to several). Updates `state`.
 */
export function translate(msg: AriMessage, state: TranslateState): AmiEvent[] {
  // Own rows only: a message typed `toString` or `__proto__` must not reach Object.prototype.
  const fn = typeof msg.type === 'string' && Object.hasOwn(TRANSLATORS, msg.type) ? TRANSLATORS[msg.type] : undefined;
  if (!fn) return [];
  const fields = fn(msg, state);
  if (!fields) return [];
  const ch = asChannel(msg.channel);
  if (ch && msg.type === 'ChannelDestroyed') forget(state, ch);
  const timestamp = amiTimestampOf(msg.timestamp, fields, state);
  return [timestamp === null ? fields : { ...fields, timestamp }];
}

/** A channel of channels.list, as the tracker's resync wants it. */
export function snapshotChannel(ch: AriChannel, bridgeId: string | undefined, state: TranslateState): SnapshotChannel {
  const f = channelFields('', ch, state);
  return {
    channel: ch.name,
    uniqueid: ch.id,
    linkedid: f.linkedid ?? ch.id,
    context: f.context,
    exten: f.exten,
    calleridnum: f.calleridnum,
    calleridname: f.calleridname,
    channelstatedesc: f.channelstatedesc,
    ...(bridgeId ? { bridgeid: bridgeId } : {}),
  };
}

/** The Linkedid a snapshot carries in its channel variables, or null. */
export function linkedidVar(ch: AriChannel): string | null {
  const v = ch.channelvars?.[LINKEDID_VAR];
  return typeof v === 'string' && v !== '' ? v : null;
}

// ---- helpers -----------------------------------------------------------------------------------

function channelEvent(event: string, msg: AriMessage, state: TranslateState, extra: Record<string, string> = {}): Record<string, string> | null {
  const ch = asChannel(msg.channel);
  if (!ch) return null;
  return { event, ...channelFields('', ch, state), ...extra };
}

/**
 * AMI's channel headers with a prefix (ast_manager_build_channel_state_string_prefix). Every value
 * a string, as AMI's are: the normalizer calls string methods on them, and a JSON number or
 * object where Asterisk sends a string must not throw there.
 */
function channelFields(prefix: string, ch: AriChannel, state: TranslateState): Record<string, string> {
  const stateDesc = ch.state === undefined || ch.state === null ? 'Unknown' : str(ch.state);
  return {
    [`${prefix}channel`]: ch.name,
    [`${prefix}channelstate`]: CHANNEL_STATE.get(stateDesc) ?? '10',
    [`${prefix}channelstatedesc`]: stateDesc,
    [`${prefix}calleridnum`]: str(ch.caller?.number),
    [`${prefix}calleridname`]: str(ch.caller?.name),
    [`${prefix}connectedlinenum`]: str(ch.connected?.number),
    [`${prefix}connectedlinename`]: str(ch.connected?.name),
    [`${prefix}language`]: str(ch.language),
    [`${prefix}accountcode`]: str(ch.accountcode),
    [`${prefix}context`]: str(ch.dialplan?.context),
    [`${prefix}exten`]: str(ch.dialplan?.exten),
    [`${prefix}priority`]: str(ch.dialplan?.priority),
    [`${prefix}uniqueid`]: ch.id,
    [`${prefix}linkedid`]: linkedidOf(ch, state),
  };
}

function bridgeFields(prefix: string, b: AriBridge | null): Record<string, string> {
  if (!b) return {};
  return {
    [`${prefix}bridgeuniqueid`]: b.id,
    [`${prefix}bridgetype`]: str(b.bridge_type),
    [`${prefix}bridgetechnology`]: str(b.technology),
    [`${prefix}bridgecreator`]: str(b.creator),
    [`${prefix}bridgename`]: str(b.name),
    [`${prefix}bridgenumchannels`]: String(Array.isArray(b.channels) ? b.channels.length : 0),
  };
}

/**
 * The variable, else what the caller learnt, else the Local partner's, else the channel's own id.
 * With the variable nothing is kept, so no state can outlive a channel (events for a channel can
 * arrive after its ChannelDestroyed).
 */
function linkedidOf(ch: AriChannel, state: TranslateState): string {
  const fromVar = linkedidVar(ch);
  if (fromVar !== null) return fromVar;
  state.byName.set(ch.name, ch.id);
  const known = state.linkedids.get(ch.id);
  if (known !== undefined) return known;
  state.missingLinkedidVar++;
  const partner = localPartner(ch.name);
  const partnerId = partner ? state.byName.get(partner) : undefined;
  const derived = (partnerId ? state.linkedids.get(partnerId) : undefined) ?? ch.id;
  state.linkedids.set(ch.id, derived);
  return derived;
}

function forget(state: TranslateState, ch: AriChannel): void {
  state.linkedids.delete(ch.id);
  if (state.byName.get(ch.name) === ch.id) state.byName.delete(ch.name);
}

/** Largest step back in time (µs) that is taken for delivery order and clamped. */
const MAX_CLAMP_MICROS = 1_000_000;
/** How many seconds of handed-out timestamps are remembered. */
const STAMP_MEMORY_SECONDS = 10;

/** ARI's ISO time -> AMI's `epoch.micro`, unique per (event, channel) and never a small step back. */
function amiTimestampOf(iso: string | undefined, fields: Record<string, string>, state: TranslateState): string | null {
  const parsed = iso ? parseAriTime(iso) : null;
  if (parsed === null) return null;
  let micros = parsed;
  if (micros < state.lastMicros && state.lastMicros - micros <= MAX_CLAMP_MICROS) micros = state.lastMicros;
  const who = `${fields.event}|${fields.uniqueid ?? fields.destuniqueid ?? ''}`;
  for (;;) {
    const second = Math.floor(micros / 1e6);
    let keys = state.stamped.get(second);
    if (!keys) {
      keys = new Set();
      state.stamped.set(second, keys);
      for (const s of state.stamped.keys()) if (s < second - STAMP_MEMORY_SECONDS) state.stamped.delete(s);
    }
    const key = `${who}|${micros}`;
    if (!keys.has(key)) {
      keys.add(key);
      break;
    }
    micros++;
  }
  state.lastMicros = Math.max(state.lastMicros, micros);
  const second = Math.floor(micros / 1e6);
  return `${second}.${String(micros - second * 1e6).padStart(6, '0')}`;
}

/** `2026-11-23T11:19:07.134+0000` (Asterisk's ast_json_timeval) -> microseconds since the epoch. */
export function parseAriTime(iso: string): number | null {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:?\d\d)?$/.exec(iso);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  let offsetMin = 0;
  if (zone !== 'Z') {
    const z = /^([+-])(\d\d):?(\d\d)$/.exec(zone);
    if (!z) return null;
    offsetMin = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3]));
  }
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetMin * 60_000;
  if (!Number.isFinite(ms)) return null;
  return ms * 1000 + Number(frac.padEnd(6, '0'));
}

function asChannel(v: unknown): AriChannel | null {
  if (v === null || typeof v !== 'object') return null;
  const c = v as Partial<AriChannel>;
  return typeof c.id === 'string' && typeof c.name === 'string' ? (c as AriChannel) : null;
}

function asBridge(v: unknown): AriBridge | null {
  if (v === null || typeof v !== 'object') return null;
  const b = v as Partial<AriBridge>;
  return typeof b.id === 'string' ? (b as AriBridge) : null;
}

function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : String(v);
}
