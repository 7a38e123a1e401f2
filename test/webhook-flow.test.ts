// The webhook call flow (src/sinks/webhook/flow.ts) as a pure function: what is sent for each
// event of a call, and what is remembered, for the hold, answer-once and new-call transfer rules.
import t from 'tap';
import { plan, type CallState, type FlowOptions } from '../dist/sinks/webhook/flow.js';
import type { CallEvent } from '../dist/events/types.js';
import { agent201, agent202, agent203, answered, blindToAgent, hangup, queued, ringing, started } from './helpers/sample-events.js';

const ZAMMAD: FlowOptions = { hold: true, transfers: 'same-call', firstPerCall: new Set(['call.answered']) };
const SIPGATE: FlowOptions = { ...ZAMMAD, transfers: 'new-call' };

/** The types the zammad and sipgate presets send: the sink's filter refuses the others. */
const SENT = new Set(['call.started', 'call.answered', 'call.missed', 'call.hangup']);

/** Runs `events` through plan, remembering as the sink does; the requests as `as callId`, plus the last state. */
function run(o: FlowOptions, events: object[], accepts: (as: string) => boolean = () => true) {
  let state: CallState | null = null;
  const sent: Array<{ line: string; set: Record<string, string | null>; agent: string | null | undefined }> = [];
  for (const e of events as CallEvent[]) {
    const p = plan(o, state, e, (as) => SENT.has(as) && accepts(as));
    state = p.state;
    for (const r of p.out) sent.push({ line: `${r.as} ${r.set.callId} (${r.id === e.id ? 'own id' : r.id === (events[0] as CallEvent).id ? 'started id' : 'derived id'})`, set: r.set, agent: 'agentId' in r.set ? r.set.agentId : r.event.agent?.id });
  }
  return { lines: sent.map((s) => s.line), sent, state };
}

const id = (e: object, over: Record<string, unknown>) => ({ ...e, ...over });
const callId = started.callId;

t.test('given hold, then call.started waits for the next event and goes out with its queue, under its own id', async (t) => {
  const r = run(ZAMMAD, [started, queued]);
  t.same(r.lines, [`call.started ${callId} (started id)`], 'then call.queued releases the newCall');
  t.equal(r.sent[0]?.set.queue, 'sales');
  t.same(run(ZAMMAD, [started]).lines, [], 'then nothing goes out for call.started alone');
});

t.test('given hold and an inbound call that rings an agent first, then that agent is the called user', async (t) => {
  const r = run(ZAMMAD, [started, id(ringing, { queue: null })]);
  t.same(r.sent[0]?.set.agentId, agent201.id);
});

t.test('given a second call.answered in the call, then it is not sent; an answer the filters refuse does not count', async (t) => {
  const second = id(answered, { id: 'answer-2', seq: 9, agent: agent202 });
  t.same(run(ZAMMAD, [started, answered, second]).lines.filter((l) => l.startsWith('call.answered')), [`call.answered ${callId} (own id)`]);
  let refuse = true;
  const r = run(ZAMMAD, [started, answered, second], (as) => {
    if (as !== 'call.answered') return true;
    const ok = !refuse;
    refuse = false;
    return ok;
  });
  t.same(r.sent.filter((x) => x.line.startsWith('call.answered')).map((x) => x.agent), [agent202.id], 'then the first accepted answer is sent');
});

t.test('given new-call transfers, then the transfer is a newCall of its own and the first call hangs up before it', async (t) => {
  const transfer = id(blindToAgent, { seq: 6 });
  const targetAnswer = id(answered, { id: 'answer-203', seq: 7, agent: agent203 });
  const end = id(hangup, { seq: 8 });
  const r = run(SIPGATE, [started, queued, answered, transfer, targetAnswer, end]);
  const next = `${callId}-6`;
  t.same(r.lines, [
    `call.started ${callId} (started id)`,
    `call.answered ${callId} (own id)`,
    `call.started ${next} (own id)`,
    `call.answered ${next} (own id)`,
    `call.hangup ${callId} (derived id)`,
    `call.hangup ${next} (own id)`,
  ]);
  t.equal(r.sent[2]?.set.origCallId, callId, 'then the new call links to the first');
  t.equal(r.sent[4]?.set.agentId, agent201.id, 'then the first call ends answered by the transferring agent');
  t.equal(r.state, null, 'then nothing is remembered after call.hangup');
  t.same(run(ZAMMAD, [started, queued, answered, transfer, targetAnswer, end]).lines, [
    `call.started ${callId} (started id)`,
    `call.answered ${callId} (own id)`,
    `call.hangup ${callId} (own id)`,
  ], 'then same-call transfers stay one call, answered once');
});
