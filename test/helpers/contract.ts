// Checks the ordering guarantees of the event contract on a whole event stream. Every test
// that produces events (fixtures, replay, real Asterisk) runs its output through this.
import type { BridgeEvent, CallEvent } from '../../dist/events/types.js';

export function byCall(events: readonly BridgeEvent[]): Map<string, CallEvent[]> {
  const calls = new Map<string, CallEvent[]>();
  for (const e of events) {
    if (!e.type.startsWith('call.')) continue;
    const c = e as CallEvent;
    const list = calls.get(c.callId) ?? [];
    list.push(c);
    calls.set(c.callId, list);
  }
  return calls;
}

/** Returns every broken guarantee (empty = all hold). */
export function contractViolations(events: readonly BridgeEvent[]): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const e of events) {
    if (ids.has(e.id)) problems.push(`duplicate event id ${e.id} (${e.type})`);
    ids.add(e.id);
  }
  for (const [callId, list] of byCall(events)) {
    const types = list.map((e) => e.type);
    const where = `call ${callId} [${types.join(', ')}]`;
    list.forEach((e, i) => {
      if (e.seq !== i + 1) problems.push(`${where}: event ${i + 1} has seq ${e.seq}`);
    });
    if (types[0] !== 'call.started') problems.push(`${where}: does not start with call.started`);
    if (types.filter((t) => t === 'call.started').length !== 1) problems.push(`${where}: call.started not exactly once`);
    const hangups = types.filter((t) => t === 'call.hangup').length;
    if (hangups !== 1) problems.push(`${where}: call.hangup ${hangups} times`);
    else if (types[types.length - 1] !== 'call.hangup') problems.push(`${where}: call.hangup is not last`);
    const answered = types.includes('call.answered');
    const missed = types.filter((t) => t === 'call.missed').length;
    const hangup = list[list.length - 1];
    // A call whose channels went on in another call (the picker's own call in a pickup, a
    // transfer's consult call) may end answered with nobody answering in it: its parties were
    // not missed. The events say so only by that hang-up: answered, by agent, no call.missed.
    const handedOver = !answered && missed === 0 && hangup?.type === 'call.hangup' && hangup.disposition === 'answered' && hangup.hangupBy === 'agent';
    if (answered && missed > 0) problems.push(`${where}: answered and missed`);
    if (!answered && !handedOver && missed !== 1) problems.push(`${where}: unanswered but call.missed ${missed} times`);
    if (missed === 1 && types[types.length - 2] !== 'call.missed') problems.push(`${where}: call.missed not just before call.hangup`);
    if (hangup?.type === 'call.hangup' && hangup.disposition !== (answered || handedOver ? 'answered' : 'missed')) {
      problems.push(`${where}: disposition ${hangup.disposition}`);
    }
    // Every ring ends exactly once: answered by that party, or ring_stopped for that party. A
    // party is its agent, or, for a device that is not an agent's, its channel.
    const party = (e: CallEvent): string | null => (e.agent ? `agent ${e.agent.id}` : e.channel ? `channel ${e.channel.uniqueid} (${e.channel.name})` : null);
    const ringing = new Map<string, number>();
    for (const e of list) {
      if (e.type !== 'call.ringing' && e.type !== 'call.answered' && e.type !== 'call.ring_stopped') continue;
      const who = party(e);
      if (!who) {
        problems.push(`${where}: ${e.type} seq ${e.seq} names neither an agent nor a channel`);
      } else if (e.type === 'call.ringing') {
        if (ringing.get(who)) problems.push(`${where}: ${who} rings twice without stopping`);
        ringing.set(who, 1);
      } else if (ringing.get(who)) {
        ringing.set(who, 0);
      } else if (e.type === 'call.ring_stopped') {
        problems.push(`${where}: ring_stopped for ${who}, which was not ringing`);
      }
    }
    for (const [who, open] of ringing) if (open) problems.push(`${where}: ${who} still ringing at hangup`);
    // Times never go backwards within a call.
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.time < list[i - 1]!.time) problems.push(`${where}: time goes backwards at seq ${i + 1}`);
    }
  }
  return problems;
}

/** A compact, readable form of a call's events for exact-sequence assertions. */
export function summarize(e: BridgeEvent): string {
  const parts: string[] = [e.type];
  if ('agent' in e && e.agent && e.type !== 'call.started' && e.type !== 'call.hangup' && e.type !== 'call.transferred') parts.push(e.agent.id);
  // A party that is not an agent is named by its device (`PJSIP/trunk-0000001e` -> `PJSIP/trunk`).
  else if ((e.type === 'call.ringing' || e.type === 'call.answered' || e.type === 'call.ring_stopped') && !e.agent) {
    parts.push(e.channel.name.replace(/;[12]$/, '').replace(/-[0-9a-f]+$/i, ''));
  }
  if ('reason' in e && e.reason) parts.push(String(e.reason));
  if (e.type === 'call.hangup') parts.push(e.disposition, `by:${e.hangupBy}`);
  if (e.type === 'call.transferred') parts.push(e.transfer.kind, `${e.transfer.from?.id ?? '-'}>${e.transfer.to.agent?.id ?? e.transfer.to.number ?? '-'}`);
  if (e.type === 'agent.status') parts.push(e.status);
  if (e.type === 'call.queued') parts.push(e.queue.name);
  return parts.join(' ');
}
