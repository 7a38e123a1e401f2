// Hostile AMI (and ARI) values, one at a time: each made the normalizer emit an event outside
// schema/events.v1.json, throw, or lose a call's call.started (issue 15). Every event that comes
// out must be schema-valid, and the call must still be told whole.
import t from 'tap';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import { translate, createTranslateState } from '../dist/sources/ari/translate.js';
import { validateEvent } from '../dist/events/validator.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { createTracker, type NormalizerOptions } from '../dist/normalizer/index.js';

const OPTS: NormalizerOptions = { server: 'pbx1', inboundContexts: ['from-pstn'], agentContexts: ['agents'], extensionPattern: '^[0-9]{2,6}$', agents: [] };
/** When the frames "arrive" (ms): what an event is dated with when its Timestamp cannot be believed. */
const RECEIVED_AT = Date.UTC(2026, 10, 23, 8, 50, 5, 100);
const TS = String(RECEIVED_AT / 1000 - 60);
const PROTOTYPE_NAMES = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

interface Run {
  events: BridgeEvent[];
  errors: unknown[];
  dropped: string[];
  invalid: string[];
}

function run(frames: AmiEvent[], opts: Partial<NormalizerOptions> = {}): Run {
  const dropped: string[] = [];
  const tracker = createTracker({ ...OPTS, ...opts, onDroppedVariable: (name) => dropped.push(name) });
  const events: BridgeEvent[] = [];
  const errors: unknown[] = [];
  for (const f of frames) {
    try {
      events.push(...tracker.handle(f, RECEIVED_AT));
    } catch (err) {
      errors.push(err);
    }
  }
  const invalid = events.flatMap((e) => validateEvent(e).map((p) => `${e.type}: ${p}`));
  return { events, errors, dropped, invalid };
}

const CALLER = { channel: 'PJSIP/trunk-00000001', uniqueid: '1.1', linkedid: '1.1' };
const AGENT = { channel: 'PJSIP/201-00000002', uniqueid: '1.2', linkedid: '1.1' };

interface CallParts {
  firstTimestamp?: string;
  vars?: Array<[string, string]>;
  dest?: string;
  dialStatus?: string;
  cause?: string;
  dial?: boolean;
}

/** An inbound call from the trunk to 201, answered (or ended with `dialStatus`), built from real header names. */
function call(p: CallParts = {}): AmiEvent[] {
  const dest = p.dest ?? AGENT.channel;
  const frames: AmiEvent[] = [
    { event: 'Newchannel', ...CALLER, context: 'from-pstn', exten: '5551000', calleridnum: '+34911234567', calleridname: 'Acme', timestamp: p.firstTimestamp ?? TS },
    ...(p.vars ?? []).map(([variable, value]) => ({ event: 'VarSet', ...CALLER, variable, value, timestamp: TS })),
  ];
  if (p.dial !== false) {
    frames.push(
      { event: 'DialBegin', ...CALLER, destchannel: dest, destuniqueid: AGENT.uniqueid, destlinkedid: '1.1', timestamp: TS },
      { event: 'Newchannel', ...AGENT, channel: dest, context: 'agents', exten: '201', timestamp: TS },
      { event: 'DialEnd', ...CALLER, destchannel: dest, destuniqueid: AGENT.uniqueid, dialstatus: p.dialStatus ?? 'ANSWER', timestamp: TS },
      { event: 'Hangup', ...AGENT, channel: dest, cause: '16', 'cause-txt': 'Normal Clearing', timestamp: TS },
    );
  }
  frames.push({ event: 'Hangup', ...CALLER, cause: p.cause ?? '16', 'cause-txt': 'Normal Clearing', timestamp: TS });
  return frames;
}

const types = (r: Run) => r.events.map((e) => e.type);

t.test('given a Timestamp no event can be dated with, when it is on the first frame of a call, then call.started comes out dated when it arrived', async (t) => {
  for (const ts of ['253402300800', '1e20', '1e308', '-5', '0', 'NaN', 'Infinity', 'abc']) {
    const r = run(call({ firstTimestamp: ts }));
    t.same(r.errors, [], `${ts}: then nothing throws`);
    t.same(r.invalid, [], `${ts}: then every event is schema-valid`);
    t.same(types(r), ['call.started', 'call.ringing', 'call.answered', 'call.hangup'], `${ts}: then the call is told whole, call.started first`);
    t.equal(r.events[0]?.time, new Date(RECEIVED_AT).toISOString(), `${ts}: then call.started carries the receive time`);
  }
  const last = run(call({ firstTimestamp: '253402300799' }));
  t.equal(last.events[0]?.time, '9999-12-31T23:59:59.000Z', 'then the last second of year 9999 is still believed');
});

t.test('given CRM variable names the contract cannot carry, then they are dropped, reported once each, and the good ones kept', async (t) => {
  const r = run(
    call({
      vars: [
        ['OMLCUSTOMDIALPLANVARS', 'Omlcrmid&Omlcrm x&Omlcrm-id&Omlcrmé&__Omlcrm x'],
        ['Omlcrmid', '42'],
        ['Omlcrm x', 'spaced'],
        ['__Omlcrm x', 'inherited'],
        ['Omlcrm-id', 'dashed'],
        ['Omlcrmé', 'accented'],
      ],
    }),
  );
  t.same(r.invalid, [], 'then every event is schema-valid');
  t.same(r.events.at(-1)?.type === 'call.hangup' ? (r.events.at(-1) as { vars: unknown }).vars : null, { Omlcrmid: '42' }, 'then only the valid name is exported');
  t.same(r.dropped, ['Omlcrm x', 'Omlcrm-id', 'Omlcrmé'], 'then each dropped name is reported once');
});

t.test('given a Cause that is no Q.850 cause, then cause.code is null and the text is kept', async (t) => {
  for (const cause of ['1.5', '-3', '99999999999', '128', '0x10', '1e1', ' 16', '']) {
    const r = run(call({ cause }));
    t.same(r.invalid, [], `${JSON.stringify(cause)}: then every event is schema-valid`);
    const hangup = r.events.find((e) => e.type === 'call.hangup');
    t.same(hangup && 'cause' in hangup ? hangup.cause : undefined, { code: null, text: 'Normal Clearing' }, `${JSON.stringify(cause)}: then the code is null`);
  }
  for (const [cause, code] of [['16', 16], ['0', 0], ['127', 127], ['017', 17]] as const) {
    const hangup = run(call({ cause })).events.find((e) => e.type === 'call.hangup');
    t.equal(hangup && 'cause' in hangup ? hangup.cause.code : undefined, code, `then a real cause ${cause} is ${code}`);
  }
});

t.test('given status words that are names of Object.prototype, then no lookup answers with the prototype', async (t) => {
  for (const word of PROTOTYPE_NAMES) {
    const queued = run(call({ vars: [['QUEUESTATUS', word]], dial: false }));
    t.same(queued.invalid, [], `QUEUESTATUS ${word}: then every event is schema-valid`);
    t.same(types(queued), ['call.started', 'call.missed', 'call.hangup']);
    const dialled = run(call({ vars: [['DIALSTATUS', word]], dialStatus: word }));
    t.same(dialled.invalid, [], `DIALSTATUS ${word}: then every event is schema-valid`);
    t.same(types(dialled), ['call.started', 'call.ringing', 'call.ring_stopped', 'call.missed', 'call.hangup']);
    const device = run([{ event: 'DeviceStateChange', device: 'PJSIP/201', state: word }]);
    t.same(device.events, [], `DeviceStateChange ${word}: then no agent.status (the state means nothing)`);
    const member = run([{ event: 'QueueMemberStatus', interface: 'PJSIP/201', queue: 'sales', status: word }]);
    t.same(member.events, [], `QueueMemberStatus ${word}: then no agent.status`);
    t.same([...queued.errors, ...dialled.errors, ...device.errors, ...member.errors], []);
  }
  const real = run([{ event: 'DeviceStateChange', device: 'PJSIP/201', state: 'INUSE' }]);
  t.same(real.events.map((e) => (e.type === 'agent.status' ? e.status : null)), ['busy'], 'then a real state still counts');
});

t.test('given a Local channel in an agent context with no extension, then it is no agent with an empty id', async (t) => {
  const r = run(call({ dest: 'Local/@agents-00000001;1', dialStatus: 'NOANSWER' }));
  t.same(r.invalid, [], 'then every event is schema-valid');
  const login = run([{ event: 'QueueMemberAdded', interface: 'Local/@agents', queue: 'sales', membername: 'Ghost' }]);
  t.same(login.invalid, [], 'then a queue member named so is valid too');
  t.equal(login.events[0]?.type === 'agent.login' ? login.events[0].agent.id : null, 'Local/@agents', 'then the member is known by its interface');
});

t.test('given an AgentCalled with an empty Interface, then the member is its DestChannel, never an agent with an empty id', async (t) => {
  const frames = call({ dial: false });
  const hangup = frames.pop()!;
  frames.push(
    { event: 'QueueCallerJoin', ...CALLER, queue: 'sales', position: '1', timestamp: TS },
    { event: 'AgentCalled', ...CALLER, destchannel: AGENT.channel, destuniqueid: AGENT.uniqueid, destlinkedid: '1.1', interface: '', membername: 'Zoe', queue: 'sales', timestamp: TS },
    hangup,
  );
  const r = run(frames);
  t.same(r.invalid, [], 'then every event is schema-valid');
  const ringing = r.events.find((e) => e.type === 'call.ringing');
  t.equal(ringing && 'agent' in ringing ? ringing.agent?.interface : undefined, 'PJSIP/201');
});

t.test('given a queue position beyond what a number holds exactly, then it is null', async (t) => {
  const r = run([
    { event: 'Newchannel', ...CALLER, context: 'from-pstn', exten: '5551000', calleridnum: '+34911234567', timestamp: TS },
    { event: 'QueueCallerJoin', ...CALLER, queue: 'sales', position: '99999999999999999999', timestamp: TS },
  ]);
  const queued = r.events.find((e) => e.type === 'call.queued');
  t.equal(queued && 'queue' in queued ? queued.queue?.position : undefined, null);
});

t.test('given a resync snapshot with a uniqueid of 60,000 digits, then ordering it takes no time', async (t) => {
  const tracker = createTracker(OPTS);
  const long = '1'.repeat(60_000);
  tracker.markResync();
  const start = process.hrtime.bigint();
  const out = tracker.resync(
    [
      { channel: 'PJSIP/trunk-00000001', uniqueid: long, linkedid: long, context: 'from-pstn', calleridnum: '555' },
      { channel: 'PJSIP/trunk-00000002', uniqueid: `${long}2`, linkedid: `${long}2`, context: 'from-pstn', calleridnum: '556' },
    ],
    RECEIVED_AT,
  );
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  // Quadratic backtracking took seconds here; linear work takes well under a millisecond.
  t.ok(ms < 500, `then it took ${ms.toFixed(1)} ms`);
  t.same(out.map((e) => e.type), ['call.started', 'call.started']);
});

t.test('given ARI messages with hostile types and values, then the translation stays inside AMI\'s shape', async (t) => {
  for (const type of PROTOTYPE_NAMES) {
    t.same(translate({ type, channel: { id: '1.1', name: 'PJSIP/201-00000001' } }, createTranslateState()), [], `then a message typed ${type} translates to nothing`);
  }
  const [ev] = translate(
    {
      type: 'ChannelStateChange',
      timestamp: '2026-11-23T08:50:05.236+0000',
      channel: { id: '1.1', name: 'PJSIP/201-00000001', state: 'toString', caller: { number: 201, name: null }, dialplan: { context: 7, exten: 's' }, channelvars: { 'CHANNEL(linkedid)': '1.1' } },
    } as never,
    createTranslateState(),
  );
  t.equal(ev?.channelstate, '10', 'then an unknown state is Unknown, not a prototype member');
  t.equal(ev?.calleridnum, '201', 'then a number where a string belongs becomes a string');
  t.equal(ev?.context, '7');
  t.ok(Object.values(ev ?? {}).every((v) => typeof v === 'string'), 'then every value is a string');
  const r = run(
    translate(
      { type: 'ChannelCreated', timestamp: '2026-11-23T08:50:05.236+0000', channel: { id: '1.1', name: 'PJSIP/trunk-1', caller: { number: 5551234 }, dialplan: { context: ['from-pstn'], exten: {} }, channelvars: { 'CHANNEL(linkedid)': '1.1' } } } as never,
      createTranslateState(),
    ),
  );
  t.same(r.errors, [], 'then the normalizer does not throw on what it makes of it');
  t.same(r.invalid, []);
});
