// AMI handlers for a channel's own events: created (Newchannel), caller id learnt
// (NewCallerid), a variable set (VarSet: CRM variables, the call's origin, Dial's and Queue's
// outcome), its state (Newstate). Resync (src/normalizer/resync.ts) feeds the channels and
// variables it finds through onNewchannel and onVarSet.
import type { AmiEvent } from './ami-event.js';
import { CRM_VAR_PREFIX, EXPORT_LIST, exportedNames, isCrmVarName, ORIGIN_VARIABLE, uninherited } from '../events/crm-vars.js';
import { cidOrNull, isUp } from './ami-fields.js';
import { channelEvent, createCall, maybeAnnounce } from './calls.js';
import { addChannel } from './model.js';
import type { TrackerState } from './state.js';

export function onNewchannel(s: TrackerState, ev: AmiEvent): void {
  const uid = ev.uniqueid;
  const name = ev.channel;
  if (!uid || !name || s.channelCall.has(uid)) return;
  const linkedid = ev.linkedid || uid;
  let call = s.calls.get(linkedid);
  if (!call) {
    call = createCall(s, linkedid, ev);
    s.calls.set(linkedid, call);
  }
  addChannel(s, call, uid, name);
  maybeAnnounce(s, call);
}

export function onNewCallerid(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const { call, ch } = hit;
  if (ch.side === 'origin' && call.caller.number === null) {
    call.caller = { number: cidOrNull(ev.calleridnum), name: cidOrNull(ev.calleridname) };
  }
  maybeAnnounce(s, call);
}

export function onVarSet(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  const { call, ch } = hit;
  const name = uninherited(ev.variable ?? '');
  const value = ev.value ?? '';
  if (name === EXPORT_LIST) {
    for (const n of exportedNames(value, s.dropVariable)) (call.exportNames ??= new Set()).add(n);
  } else if (name.startsWith(CRM_VAR_PREFIX)) {
    // A name the contract's `vars` cannot carry is never kept: listed or not, it is not exported.
    if (isCrmVarName(name)) (call.omlValues ??= new Map()).set(name, value);
    else s.dropVariable(name);
  } else if (name === ORIGIN_VARIABLE) {
    // The first value wins.
    if (value !== '') call.origin ??= value;
  } else if (ch.side === 'origin' && value !== '') {
    if (name === 'QUEUESTATUS') call.queueStatus = value;
    else if (name === 'DIALSTATUS' && value !== 'ANSWER') call.dialStatus = value;
  }
}

export function onNewstate(s: TrackerState, ev: AmiEvent): void {
  const hit = channelEvent(s, ev);
  if (!hit) return;
  if (isUp(ev)) hit.ch.up = true;
}
