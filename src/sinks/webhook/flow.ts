// How a webhook tells a receiver about a call, when the receiver's idea of a call is not the
// contract's (Zammad's and sipgate's CTI: newCall, answer, hangup). Pure: from an event and what
// the sink remembers of its call, the requests to send and what to remember next — the sink
// keeps that memory in the outbox's SQLite file (call-state.ts), so a restart changes nothing.
//
//   hold       call.started is held until the call's next event, and sent then as the receiver's
//              "new call" with what that event knows: the queue (call.queued comes right after
//              call.started, while call.started itself never has one) and, for a call that
//              rings an agent first, that agent as the called user.
//   firstPerCall  those types are sent for their first occurrence in a call (per told call) only:
//              a transfer target's second call.answered would restart the receiver's talk time.
//   transfers  'new-call' (sipgate): a transfer starts a new call for the receiver, with its own
//              callId and origCallId = the first call's, and the target's answer in it; at the
//              end every told call hangs up, the earlier ones first (sipgate's FAQ sequence).
import type { Agent, CallEvent, EventType } from '../../events/types.js';

export interface FlowOptions {
  hold: boolean;
  transfers: 'same-call' | 'new-call';
  firstPerCall: ReadonlySet<string>;
}

/** One call as the receiver knows it: the first is the contract's call, later ones start at a transfer. */
export interface ToldCall {
  callId: string;
  /** Who hands this call on at its end (the transferring agent), for its hangup; null for the last. */
  closer: Agent | null;
  /** Variables every request of this call carries: a transferred call's number and diversion. */
  vars: Record<string, string | null>;
}

export interface CallState {
  /** The call.started not sent yet (hold). */
  held: CallEvent | null;
  /** The calls told to the receiver, the current one last. */
  told: ToldCall[];
  /** Per told callId: the firstPerCall types already sent. */
  sent: Record<string, string[]>;
  /** The latest call.answered: an attended transfer's target answered before the transfer. */
  lastAnswer: CallEvent | null;
}

/**
 * A request to send: the template variables of `event`, with `event` set to `as` and the
 * variables in `set` replaced (callId of a told call, queue, the called user…). `set` may carry
 * variables the templates do not know (origCallId, diversion): a preset's extra parameters read them.
 */
export interface Outgoing {
  /** The webhook-id and outbox event id: the event's id, suffixed for a second request from one event. */
  id: string;
  as: EventType;
  event: CallEvent;
  set: Record<string, string | null>;
}

export interface Plan {
  out: Outgoing[];
  /** What to remember of the call; null: nothing (the call is over, or nothing to remember). */
  state: CallState | null;
}

export function needsState(o: FlowOptions): boolean {
  return o.hold || o.transfers === 'new-call' || o.firstPerCall.size > 0;
}

const agentVars = (a: Agent | null | undefined): Record<string, string | null> => ({ agentId: a?.id ?? null, agentExtension: a?.extension ?? null, agentName: a?.name ?? null });

/** Whether the sink's filters let a request through; a firstPerCall type counts as sent only then. */
export type Accepts = (as: EventType, event: CallEvent, set: Record<string, string | null>) => boolean;

export function plan(o: FlowOptions, previous: CallState | null, e: CallEvent, accepts: Accepts = () => true): Plan {
  const s: CallState = previous ?? { held: null, told: [{ callId: e.callId, closer: null, vars: {} }], sent: {}, lastAnswer: null };
  const out: Outgoing[] = [];
  const first = s.told[0]?.callId ?? e.callId;
  const current = (): ToldCall => s.told[s.told.length - 1] ?? { callId: e.callId, closer: null, vars: {} };
  const push = (id: string, as: EventType, event: CallEvent, set: Record<string, string | null> = {}, told = current()) => {
    const vars = { origCallId: first, ...told.vars, ...set, callId: told.callId };
    if (!accepts(as, event, vars)) return;
    if (o.firstPerCall.has(as)) {
      const sent = (s.sent[told.callId] ??= []);
      if (sent.includes(as)) return;
      sent.push(as);
    }
    out.push({ id, as, event, set: vars });
  };

  if (e.type === 'call.started' && o.hold) return { out, state: { ...s, held: e } };
  if (s.held) {
    const held = s.held;
    s.held = null;
    // Outbound, call.started names the calling agent; inbound, the first agent rung is the called one.
    const agent = held.agent ?? (e.type === 'call.ringing' ? e.agent : null);
    push(held.id, 'call.started', held, { queue: e.queue?.name ?? null, ...agentVars(agent) });
  }
  if (e.type === 'call.answered') s.lastAnswer = e;

  if (e.type === 'call.transferred' && o.transfers === 'new-call') {
    const to = e.transfer.to;
    current().closer = e.transfer.from ?? e.agent;
    // The receiver's new call: to the target, diverted from the transferring agent's number.
    const told: ToldCall = {
      callId: `${e.callId}-${e.seq}`,
      closer: null,
      vars: { calledNumber: to.number ?? to.agent?.extension ?? e.called.number, diversion: e.transfer.from?.extension ?? null },
    };
    s.told.push(told);
    push(e.id, 'call.started', e, { queue: null, ...agentVars(to.agent) });
    // An attended transfer's target answered the consultation before the transfer: it is
    // connected from the start of its call.
    const answer = s.lastAnswer;
    if (answer && to.agent && answer.agent?.id === to.agent.id) push(`${e.id}-a`, 'call.answered', answer);
  } else if (e.type === 'call.hangup' && s.told.length > 1) {
    // The calls a transfer handed on end first, each answered by its transferring agent (no
    // talk time of their own: the cause is normalClearing, not forwarded).
    s.told.slice(0, -1).forEach((told, i) => push(`${e.id}-${i + 1}`, 'call.hangup', e, { talkSeconds: null, ...agentVars(told.closer) }, told));
    push(e.id, e.type, e);
  } else if (e.type !== 'call.started' || !o.hold) {
    push(e.id, e.type, e);
  }
  return { out, state: e.type === 'call.hangup' ? null : s };
}
