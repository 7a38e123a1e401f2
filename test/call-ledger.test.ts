// The call ledger (src/outbox/call-ledger.ts) across a restart, without Asterisk: a tracker
// fed hand-built frames writes through a real SQLite outbox; a second tracker, as a restarted
// bridge, loads the ledger and goes on. The stream both produce together must read as one run
// (test/e2e/restart.test.ts does the same with a real Asterisk and kill -9).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { type BridgeEvent, type CallEvent, isCallEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { createTracker } from '../dist/normalizer/index.js';
import type { CallTracker, SnapshotChannel } from '../dist/normalizer/tracker.js';
import { type CallRecord, recordEvent } from '../dist/normalizer/call-record.js';
import { CallLedger } from '../dist/outbox/call-ledger.js';
import { Outbox } from '../dist/outbox/index.js';
import { contractViolations, summarize } from './helpers/contract.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

type Frame = Record<string, string>;
const ts = (s: number) => (1795400000 + s).toFixed(6);
const chan = (event: string, s: number, channel: string, uniqueid: string, extra: Frame = {}): Frame => ({ event, timestamp: ts(s), channel, uniqueid, linkedid: 'A.1', ...extra });

const CALLER = { channel: 'PJSIP/trunk-00000001', uniqueid: 'A.1', linkedid: 'A.1', context: 'from-pstn', exten: '41004100', calleridnum: '+4915112345678' };
const AGENT = { channel: 'PJSIP/201-00000002', uniqueid: 'A.2', linkedid: 'A.1', context: 'from-internal', exten: '' };
const ringing: Frame[] = [
  chan('Newchannel', 1, CALLER.channel, 'A.1', { context: CALLER.context, exten: CALLER.exten, calleridnum: CALLER.calleridnum, calleridname: 'Acme' }),
  { event: 'QueueCallerJoin', timestamp: ts(1.5), channel: CALLER.channel, uniqueid: 'A.1', linkedid: 'A.1', queue: 'sales', position: '1', count: '1' },
  chan('Newchannel', 2, AGENT.channel, 'A.2', { context: AGENT.context, exten: '' }),
  chan('DialBegin', 2, CALLER.channel, 'A.1', { destchannel: AGENT.channel, destuniqueid: 'A.2' }),
];
const answer: Frame[] = [chan('DialEnd', 4, CALLER.channel, 'A.1', { destchannel: AGENT.channel, destuniqueid: 'A.2', dialstatus: 'ANSWER' })];
const hangup: Frame[] = [
  chan('HangupRequest', 9, CALLER.channel, 'A.1', { cause: '16' }),
  chan('Hangup', 9, CALLER.channel, 'A.1', { cause: '16', 'cause-txt': 'Normal Clearing' }),
  chan('Hangup', 9.1, AGENT.channel, 'A.2', { cause: '16', 'cause-txt': 'Normal Clearing' }),
];
const login: Frame = { event: 'QueueMemberAdded', timestamp: ts(0.5), queue: 'sales', interface: 'PJSIP/201', membername: 'Agent 201', stateinterface: 'PJSIP/201' };

/** One run of the bridge: a tracker whose every event goes through the ledger into the outbox. */
function run(path: string): { tracker: CallTracker; ledger: CallLedger; outbox: Outbox; events: BridgeEvent[]; feed: (out: BridgeEvent[]) => void } {
  const outbox = Outbox.open(path);
  const ledger = CallLedger.open(outbox.database, { maxCalls: 100, maxAgents: 100 });
  const tracker = createTracker(TEST_NORMALIZER);
  const saved = ledger.load();
  tracker.restore(saved.calls, saved.agents);
  const events: BridgeEvent[] = [];
  const feed = (out: BridgeEvent[]) => {
    for (const e of out) ledger.accept(e, () => {
      outbox.enqueue('crm', 'p', e.id, JSON.stringify(e));
      events.push(e);
    });
  };
  return { tracker, ledger, outbox, events, feed };
}

/** A run fed `frames` that dies (nothing more is written), and the run that restarts on its outbox, about to resync. */
function restartAfter(frames: Frame[]): { path: string; a: ReturnType<typeof run>; b: ReturnType<typeof run> } {
  const path = join(mkdtempSync(join(tmpdir(), 'crm-bridge-ledger-')), 'outbox.db');
  const a = run(path);
  for (const f of frames) a.feed(a.tracker.handle(f, 0));
  a.outbox.close();
  const b = run(path);
  b.tracker.markResync();
  return { path, a, b };
}

const snapshot = (bridged: boolean): SnapshotChannel[] => [
  { ...CALLER, ...(bridged ? { bridgeid: 'b1' } : {}) },
  { ...AGENT, ...(bridged ? { bridgeid: 'b1' } : {}) },
];

function check(t: Test, events: BridgeEvent[]): void {
  for (const e of events) t.same(validateEvent(e), [], `${e.type} seq ${(e as CallEvent).seq} is schema-valid`);
  t.same(contractViolations(events), [], 'then the two runs together keep every contract guarantee (one call.started, seq without gaps, one call.hangup)');
}

t.test('given an answered call when the bridge restarts and the call ends afterwards, then the restarted bridge goes on with it', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'crm-bridge-ledger-')), 'outbox.db');
  const a = run(path);
  for (const f of [login, ...ringing, ...answer]) a.feed(a.tracker.handle(f, 0));
  t.same(a.ledger.size, { calls: 1, agents: 1 }, 'then the ledger holds the call and the agent');
  a.outbox.close(); // the process dies here: nothing else is written

  const b = run(path);
  t.equal(b.tracker.pendingRestored, 1, 'then the restarted bridge knows the call from the ledger');
  b.tracker.markResync();
  b.feed(b.tracker.resync(snapshot(true), (1795400000 + 5) * 1000));
  t.same(b.events, [], 'then the resync announces nothing again (no call.started, no call.answered)');
  b.feed(b.tracker.handle({ ...login, event: 'QueueMemberRemoved', timestamp: ts(8) }, 0));
  for (const f of hangup) b.feed(b.tracker.handle(f, 0));
  const all = [...a.events, ...b.events];
  t.same(all.filter((e) => 'callId' in e).map(summarize), ['call.started', 'call.queued sales', 'call.ringing 201', 'call.answered 201', 'call.hangup answered by:caller'], 'then the call reads as one');
  t.same(all.filter((e) => !('callId' in e)).map((e) => `${e.type} ${e.seq}`), ['agent.login 1', 'agent.logout 2'], "then the agent's seq continues too");
  const last = all.at(-1) as CallEvent;
  t.match(last, { type: 'call.hangup', agent: { id: '201' }, queue: { name: 'sales' } }, 'then the hang-up knows who answered and the queue');
  t.same((last as Extract<CallEvent, { type: 'call.hangup' }>).durations, { ringSeconds: 2, talkSeconds: 5.1, totalSeconds: 8.1 }, 'then talk time counts from the answer before the restart');
  check(t, all);
  t.same(b.ledger.size.calls, 0, 'then the ended call left the ledger');
  b.outbox.close();
});

t.test('given an answered call when it ends while no bridge runs, then the restart sends its one call.hangup', async (t) => {
  const { path, a, b } = restartAfter([...ringing, ...answer]);
  b.feed(b.tracker.resync([], (1795400000 + 20) * 1000));
  const all = [...a.events, ...b.events];
  t.same(b.events.map(summarize), ['call.hangup answered by:system'], 'then the resync ends it, by the system');
  t.equal(b.events[0]?.seq, 5, 'then its seq follows the last one sent');
  check(t, all);
  b.outbox.close();
  const c = run(path);
  t.equal(c.tracker.pendingRestored, 0, 'then a later restart has nothing left to end');
  c.outbox.close();
});

t.test('given a call still ringing when the bridge restarts and it ends while no bridge runs, then its ring is closed and it is missed once', async (t) => {
  const { a, b } = restartAfter(ringing);
  b.feed(b.tracker.resync([], (1795400000 + 20) * 1000));
  t.same(b.events.map(summarize).map((s) => s.split(' ')[0]), ['call.ring_stopped', 'call.missed', 'call.hangup'], 'then ring_stopped, missed, hangup');
  check(t, [...a.events, ...b.events]);
  b.outbox.close();
});

t.test('given a call still ringing when the bridge restarts, when it is answered after the restart, then call.answered continues the seq', async (t) => {
  const { a, b } = restartAfter(ringing);
  b.feed(b.tracker.resync(snapshot(false), (1795400000 + 3) * 1000));
  t.same(b.events, [], 'then the resync announces nothing again');
  for (const f of [...answer, ...hangup]) b.feed(b.tracker.handle(f, 0));
  const all = [...a.events, ...b.events];
  t.same(all.map(summarize), ['call.started', 'call.queued sales', 'call.ringing 201', 'call.answered 201', 'call.hangup answered by:caller'], 'then the call reads as one');
  check(t, all);
  b.outbox.close();
});

t.test('given a ledger with more entries than the cap, when loaded, then only the most recent are kept', async (t) => {
  const outbox = Outbox.open(':memory:');
  const ledger = CallLedger.open(outbox.database, { maxCalls: 2, maxAgents: 2 });
  const tracker = createTracker(TEST_NORMALIZER);
  let n = 0;
  for (const id of ['X.1', 'X.2', 'X.3']) {
    for (const e of tracker.handle({ event: 'Newchannel', timestamp: ts(n), channel: `PJSIP/trunk-${id}`, uniqueid: id, linkedid: id, context: 'from-pstn', exten: '1', calleridnum: '1' }, 0)) ledger.accept(e, () => undefined, ++n);
  }
  t.same(ledger.load().calls.map((c) => c.callId), ['X.2', 'X.3'], 'then the least recently updated entry is dropped');
  outbox.close();
});

/** `db` with every read of a prepared statement (get, all, iterate) counted. */
function countingReads(db: Database.Database): { db: Database.Database; reads: () => number } {
  let reads = 0;
  const counted = <T extends object>(target: T, onCall: (prop: string | symbol) => void, wrap: (prop: string | symbol, value: unknown) => unknown = (_p, v) => v): T =>
    new Proxy(target, {
      get(obj, prop) {
        const v: unknown = Reflect.get(obj, prop, obj);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          onCall(prop);
          return wrap(prop, (v as (...a: unknown[]) => unknown).apply(obj, args));
        };
      },
    });
  const statement = (s: object) => counted(s, (prop) => (prop === 'get' || prop === 'all' || prop === 'iterate') && reads++);
  return { db: counted(db, () => undefined, (prop, v) => (prop === 'prepare' ? statement(v as object) : v)), reads: () => reads };
}

t.test('given a loaded ledger, when a call\'s events are recorded, then nothing is read from the file, and the file has what each event said', async (t) => {
  const outbox = Outbox.open(':memory:');
  t.teardown(() => outbox.close());
  const spy = countingReads(outbox.database);
  const ledger = CallLedger.open(spy.db, { maxCalls: 100, maxAgents: 100 });
  const tracker = createTracker(TEST_NORMALIZER);
  ledger.load();
  const before = spy.reads();
  const events: BridgeEvent[] = [];
  for (const f of [login, ...ringing, ...answer]) {
    const out = tracker.handle(f, 0);
    ledger.acceptBatch(out, () => undefined);
    events.push(...out);
  }
  t.equal(events.length, 5, 'agent.login and four events of the call');
  t.equal(spy.reads() - before, 0, 'then no read before a write');
  let expected: CallRecord | null = null;
  for (const e of events) if (isCallEvent(e)) expected = recordEvent(expected, e);
  const fresh = CallLedger.open(outbox.database, { maxCalls: 100, maxAgents: 100 }).load();
  t.same(fresh.calls, [expected], 'then the file holds the record of every event, as a restart reads it');
  t.same(fresh.agents, [{ id: '201', seq: 1 }]);
});

t.test('given an event whose transaction fails, then neither the file nor the ledger\'s memory keeps it, and the next event is recorded as if it never came', async (t) => {
  const outbox = Outbox.open(':memory:');
  t.teardown(() => outbox.close());
  const ledger = CallLedger.open(outbox.database, { maxCalls: 100, maxAgents: 100 });
  ledger.load();
  const tracker = createTracker(TEST_NORMALIZER);
  const [first, ...rest] = ringing.flatMap((f) => tracker.handle(f, 0));
  t.equal(first?.type, 'call.started');
  // A sink that throws inside the transaction rolls it back: in the batch, then alone.
  ledger.acceptBatch([first!], () => {
    throw new Error('disk full');
  });
  const row = () => outbox.database.prepare<[], { record: string }>("SELECT record FROM call_ledger WHERE call_id = 'A.1'").get();
  t.equal(row(), undefined, 'then the file does not have it');
  ledger.acceptBatch(rest, () => undefined);
  let expected: CallRecord | null = null;
  for (const e of rest) if (isCallEvent(e)) expected = recordEvent(expected, e);
  t.same(JSON.parse(row()!.record), expected, 'then the next events start the record afresh (its start time is theirs, not call.started\'s)');
  t.not((JSON.parse(row()!.record) as CallRecord).startTime, recordEvent(null, first as CallEvent)!.startTime);
});
