// The wallboard's figures (src/supervisor/floor.ts, store.ts) from event streams recorded on the
// lab's real Asterisk (lab/recordings), played through the real AMI reader and normalizer.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { DayClock } from '../dist/supervisor/clock.js';
import { Floor, sameNumber, type FloorOptions } from '../dist/supervisor/floor.js';
import { FloorStore } from '../dist/supervisor/store.js';
import { replayTrace } from './helpers/replay.js';

const recorded = new Map<string, BridgeEvent[]>();
async function events(name: string): Promise<BridgeEvent[]> {
  if (!recorded.has(name)) recorded.set(name, (await replayTrace(readFileSync(new URL(`../lab/recordings/${name}`, import.meta.url)))).events);
  return recorded.get(name)!;
}

const options = (over: Partial<FloorOptions> = {}): FloorOptions => ({ timeZone: 'Europe/Berlin', serviceLevelSeconds: { default: 20, queues: {} }, ...over });

/** The events moved in time so that the first one happens at `startMs` (gaps kept). */
function shifted(list: readonly BridgeEvent[], startMs: number): BridgeEvent[] {
  const first = Date.parse(list[0]!.time);
  return list.map((e) => ({ ...e, time: new Date(Date.parse(e.time) - first + startMs).toISOString() }));
}

const sales = (f: Floor) => f.snapshot(0).queues.find((q) => q.name === 'sales')!;

t.test('given a recorded queue call answered and one abandoned, then the queue counts one of each', async (t) => {
  const answered = await events('queue-answered.ami');
  const abandoned = await events('queue-abandoned.ami');
  const wait = answered.find((e) => e.type === 'call.answered')!;
  const waited = wait.type === 'call.answered' ? wait.queue!.waitSeconds! : NaN;
  const hangup = answered.find((e) => e.type === 'call.hangup');
  const talk = hangup?.type === 'call.hangup' ? hangup.durations.talkSeconds! : NaN;

  const f = new Floor(options());
  for (const e of [...answered, ...abandoned]) f.apply(e);
  const q = sales(f);
  t.equal(q.answered, 1);
  t.equal(q.abandoned, 1);
  t.equal(q.missed.abandoned, 1);
  t.equal(q.abandonRate, 0.5, 'abandoned / (answered + missed)');
  t.equal(q.serviceLevel.answeredWithin, waited <= 20 ? 1 : 0);
  t.equal(q.serviceLevel.ratio, waited <= 20 ? 0.5 : 0, 'answered within N / offered');
  t.equal(q.averageWaitSeconds, Math.round(waited * 10) / 10, 'ASA: the wait of the answered call');
  t.equal(q.averageTalkSeconds, Math.round(talk * 10) / 10);
  t.equal(q.waiting, 0, 'nobody waits once both calls ended');
  t.same(f.snapshot(0).calls, [], 'no call in progress');
  const agent = f.snapshot(0).agents.find((a) => a.id === '201')!;
  t.equal(agent.callsToday, 1, 'the agent who answered');
  const missed = f.snapshot(0).missed;
  t.equal(missed.length, 1);
  t.equal(missed[0]!.reason, 'abandoned');
  t.equal(missed[0]!.caller.number, '+4915112345678');
  const slot = new DayClock('Europe/Berlin').at(Date.parse(abandoned.at(-1)!.time)).index;
  const chart = f.snapshot(0).chart;
  t.equal(chart[slot]!.missed.abandoned, 1, 'the chart counts the miss in its quarter hour');
  t.equal(chart.reduce((n, s) => n + s.answered, 0), 1);
});

t.test('given a service level of 1 s per queue, then an answer after a longer wait is outside it', async (t) => {
  const answered = await events('queue-answered.ami');
  const ev = answered.find((e) => e.type === 'call.answered');
  const waited = ev?.type === 'call.answered' ? ev.queue!.waitSeconds! : NaN;
  t.ok(waited > 1, `the recorded caller waited ${waited} s`);
  const f = new Floor(options({ serviceLevelSeconds: { default: 20, queues: { sales: 1 } } }));
  for (const e of answered) f.apply(e);
  t.equal(sales(f).serviceLevel.seconds, 1);
  t.equal(sales(f).serviceLevel.answeredWithin, 0);
  t.equal(sales(f).serviceLevel.ratio, 0);
});

t.test('while a recorded call waits and rings, then it is a caller waiting and the agents ring', async (t) => {
  const answered = await events('queue-answered.ami');
  const f = new Floor(options());
  const upTo = answered.findIndex((e) => e.type === 'call.answered');
  for (const e of answered.slice(0, upTo)) f.apply(e);
  const s = f.snapshot(0);
  t.equal(sales(f).waiting, 1);
  t.equal(sales(f).longestWaitSince, answered.find((e) => e.type === 'call.queued')!.time);
  t.equal(s.calls[0]!.state, 'queued');
  t.equal(s.agents.find((a) => a.id === '201')!.state, 'ringing', 'ringing wins over the busy device state of a Local channel');
  f.apply(answered[upTo]!);
  const after = f.snapshot(0);
  t.equal(after.calls[0]!.state, 'talking');
  t.equal(after.calls[0]!.agent?.id, '201');
  t.equal(after.agents.find((a) => a.id === '201')!.state, 'on_call');
  t.equal(after.agents.find((a) => a.id === '201')!.call?.queue, 'sales');
  t.equal(sales(f).waiting, 0);
});

t.test('given a recorded login, pause with a reason, unpause and logout, then the agent follows', async (t) => {
  const session = await events('agent-session.ami');
  const f = new Floor(options());
  const states: Array<[string, string | null, number, number]> = [];
  for (const e of session) {
    f.apply(e);
    const a = f.snapshot(0).agents.find((x) => x.id === '203')!;
    const q = f.snapshot(0).queues.find((x) => x.name === 'support')!;
    states.push([a.state, a.pausedReason, q.agents.loggedIn, q.agents.paused]);
  }
  t.same(session.map((e) => e.type), ['agent.login', 'agent.paused', 'agent.unpaused', 'agent.logout']);
  t.same(states, [
    ['available', null, 1, 0],
    ['paused', 'lunch', 1, 1],
    ['available', null, 1, 0],
    ['logged_out', null, 0, 0],
  ]);
});

t.test('given a missed caller, then an answered call to that number marks it called back', async (t) => {
  const abandoned = await events('queue-abandoned.ami');
  const outbound = await events('outbound.ami');
  const f = new Floor(options());
  for (const e of abandoned) f.apply(e);
  // The recorded outbound call, as if agent 201 had dialled the missed caller (0049… for +49…).
  const missedNumber = '004915112345678';
  const later = shifted(outbound, Date.parse(abandoned.at(-1)!.time) + 60_000).map((e) => ('called' in e ? { ...e, called: { ...e.called, number: missedNumber } } : e));
  for (const e of later.filter((e) => e.type !== 'call.answered')) f.apply(e);
  t.equal(f.snapshot(0).missed[0]!.calledBack, null, 'an unanswered call back changes nothing');
  const f2 = new Floor(options());
  for (const e of [...abandoned, ...later]) f2.apply(e);
  const m = f2.snapshot(0).missed[0]!;
  t.equal(m.calledBack?.how, 'called_back');
  t.equal(m.calledBack?.agent, '201', 'by the agent who dialled');
  t.equal(m.calledBack?.callId, (later.find((e) => e.type === 'call.started') as { callId: string }).callId);
});

t.test('numbers match by their digits, a national or international prefix aside', async (t) => {
  t.ok(sameNumber('+4915112345678', '004915112345678'));
  t.ok(sameNumber('+49 151 1234-5678', '015112345678'));
  t.notOk(sameNumber('+4915112345678', '+4915112345679'));
  t.notOk(sameNumber('12345', '912345'), 'fewer than 6 digits must match whole');
  t.notOk(sameNumber(null, '123456'));
});

t.test('given calls either side of midnight in the time zone, then the counters start again at midnight', async (t) => {
  const answered = await events('queue-answered.ami');
  const abandoned = await events('queue-abandoned.ami');
  // 2026-03-28 23:59:00 in Berlin is 22:59:00Z (CET, +01:00); the next day is a DST day.
  const before = shifted(answered, Date.parse('2026-03-28T22:59:00Z'));
  const after = shifted(abandoned, Date.parse('2026-03-28T23:00:30Z'));
  const f = new Floor(options());
  for (const e of before) f.apply(e);
  t.equal(f.today, '2026-03-28');
  t.equal(sales(f).answered, 1);
  t.not(f.takePatch(0), 'snapshot');
  for (const e of after) f.apply(e);
  t.equal(f.today, '2026-03-29');
  t.equal(sales(f).answered, 0, "yesterday's answer is not today's");
  t.equal(sales(f).abandoned, 1);
  t.equal(f.takePatch(0), 'snapshot', 'a new day is pushed as a whole snapshot');
  const chart = f.snapshot(0).chart;
  t.equal(chart[0]!.missed.abandoned, 1, "in today's first quarter hour");
  t.equal(chart[0]!.label, '00:00');
  t.equal(f.snapshot(0).agents.find((a) => a.id === '201')!.callsToday, 0);

  const late = shifted(answered, Date.parse('2026-03-28T22:50:00Z'));
  for (const e of late) f.apply(e);
  t.equal(sales(f).answered, 0, "a late call of yesterday (a backlog caught up) counts in neither day's figures");
  t.equal(f.snapshot(0).chart.reduce((n, s) => n + s.answered, 0), 0);

  const idle = new Floor(options({ timeZone: 'America/New_York' }));
  for (const e of shifted(answered, Date.parse('2026-07-01T12:00:00Z'))) idle.apply(e);
  t.equal(idle.today, '2026-07-01');
  t.notOk(idle.tick(Date.parse('2026-07-02T03:59:00Z')), 'New York is at 23:59: still the same day');
  t.ok(idle.tick(Date.parse('2026-07-02T04:00:00Z')), "midnight in New York (EDT) with no call: the day turns");
  t.equal(idle.today, '2026-07-02');
  t.equal(sales(idle).answered, 0);
});

t.test("given a restart, then today's counters and missed calls come back from SQLite", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'floor-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const all = [...(await events('queue-answered.ami')), ...(await events('queue-abandoned.ami'))];
  const first = new Floor(options());
  const store = new FloorStore(join(dir, 'wallboard.db'));
  for (const e of all) {
    first.apply(e);
    const w = first.takeWrites();
    if (w) store.write(w.counters, w.missed);
  }
  await store.close();
  const again = new FloorStore(join(dir, 'wallboard.db'));
  t.teardown(() => again.close());
  const saved = again.load(first.today);
  const second = new Floor(options());
  second.restore(first.today, saved.counters, saved.missed);
  const a = first.snapshot(0);
  const b = second.snapshot(0);
  t.same(b.queues.map((q) => ({ ...q, agents: null })), a.queues.map((q) => ({ ...q, agents: null })), 'the same queue figures (who is logged in comes from the PBX again)');
  t.same(b.chart, a.chart);
  t.same(b.missed, a.missed);
  t.equal(b.agents.find((x) => x.id === '201')!.callsToday, 1);
  t.equal(again.prune('2099-01-01') > 0, true, 'older days are pruned');
  t.same(again.load(first.today).counters, []);
});

t.test('patches carry only what changed', async (t) => {
  const answered = await events('queue-answered.ami');
  const f = new Floor(options());
  for (const e of answered.slice(0, 2)) f.apply(e);
  f.takePatch(0);
  t.equal(f.takePatch(0), null, 'nothing changed: nothing to push');
  const hangupIdx = answered.findIndex((e) => e.type === 'call.hangup');
  for (const e of answered.slice(2, hangupIdx + 1)) f.apply(e);
  const p = f.takePatch(0);
  t.not(p, null);
  if (p && p !== 'snapshot') {
    t.same(p.callsEnded, [(answered.find((e) => e.type === 'call.started') as { callId: string }).callId]);
    t.same(p.queues?.map((q) => q.name), ['sales']);
    t.ok(p.chart?.length === 1, 'one chart slot changed');
    t.same(p.calls ?? [], [], 'an ended call is not also sent as changed');
  }
});
