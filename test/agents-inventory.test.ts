// Issue 14: agents recognised from what the PBX lists. Pure tests of the phone/trunk rule
// (src/sources/ami/inventory.ts, with rows shaped as Asterisk 22.10 sends them: recorded from the test
// PBX's pjsip_inventory.conf) and of the order of evidence in the AgentDirectory.
import t from 'tap';
import type { AmiEvent } from '../dist/normalizer/ami-event.js';
import { classifyPeers, classifyPjsip, queueMembers, readInventory, type ListAnswer } from '../dist/sources/ami/inventory.js';
import type { BridgeEvent, CallEvent } from '../dist/events/types.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { createTracker, step } from '../dist/normalizer/index.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

const PATTERN = '^[0-9]{2,6}$';

// What PJSIPShowEndpoints / PJSIPShowAors / PJSIPShowContacts / PJSIPShowRegistrationsOutbound
// answered (the fields the rule reads), after inv-alice registered once.
const endpoint = (name: string, aor: string, extra: AmiEvent = {}): AmiEvent => ({ event: 'EndpointList', objecttype: 'endpoint', objectname: name, aor, auths: '', outboundauths: '', ...extra });
const aor = (name: string, maxcontacts: string, contacts: string): AmiEvent => ({ event: 'AorList', objecttype: 'aor', objectname: name, maxcontacts, contacts });
const RECORDED = {
  endpoints: [
    endpoint('7001', '7001', { contacts: '7001/sip:7001@127.0.0.1:9,' }),
    endpoint('7002', '7002', { outboundauths: '7002-auth' }),
    endpoint('inv-alice', 'inv-alice'),
  ],
  aors: [aor('7001', '0', '7001/sip:7001@127.0.0.1:9'), aor('7002', '1', ''), aor('inv-alice', '1', 'inv-alice/sip:inv-alice@127.0.0.1:56217')],
  contacts: [{ event: 'ContactList', objectname: 'inv-alice;@e61fae8dbf3239ca023d10da7b4322b4', endpoint: 'inv-alice', uri: 'sip:inv-alice@127.0.0.1:56217', expirationtime: '1796562766' }],
  registrations: [{ event: 'OutboundRegistrationDetail', objecttype: 'registration', objectname: '7002', serveruri: 'sip:127.0.0.1:9', endpoint: '', line: 'false' }],
};

t.test('given PJSIP endpoints, when classified, then the rule decides phone or trunk', async (t) => {
  const kinds = (rows: Parameters<typeof classifyPjsip>[0]) => Object.fromEntries(classifyPjsip(rows).map((d) => [d.interface, `${d.kind}: ${d.why}`]));
  t.same(kinds(RECORDED), {
    'PJSIP/7001': 'trunk: static contact',
    'PJSIP/7002': 'trunk: outbound registration 7002',
    'PJSIP/inv-alice': 'phone: registered contact',
  }, 'then a static contact or an outbound registration makes a trunk, a registered contact a phone');

  t.same(kinds({ ...RECORDED, contacts: [], aors: [aor('7001', '0', '7001/sip:7001@127.0.0.1:9'), aor('7002', '1', ''), aor('inv-alice', '1', '')] })['PJSIP/inv-alice'],
    'phone: AOR accepts registrations', 'given nothing registered, then an AOR that accepts registrations still makes a phone');

  t.same(kinds({
    endpoints: [endpoint('gw', 'gw'), endpoint('desk', 'desk')],
    aors: [aor('gw', '1', 'gw/sip:gw@10.0.0.1'), aor('desk', '1', 'desk/sip:desk@10.0.0.2,desk/sip:desk@10.0.0.9:5062')],
    contacts: [{ event: 'ContactList', objectname: 'desk;@1234', endpoint: 'desk', uri: 'sip:desk@10.0.0.9:5062' }],
    registrations: [],
  }), { 'PJSIP/gw': 'trunk: static contact', 'PJSIP/desk': 'phone: registered contact' },
  'given an AOR with a static contact that also accepts registrations, then only a registered contact makes it a phone');

  t.same(kinds({
    endpoints: [endpoint('carrier', 'carrier-aor'), endpoint('inbound-only', ''), endpoint('dead', 'dead')],
    aors: [aor('carrier-aor', '1', ''), aor('dead', '0', '')],
    contacts: [],
    registrations: [{ event: 'OutboundRegistrationDetail', objectname: 'carrier-reg', endpoint: 'carrier', line: 'yes' }],
  }), { 'PJSIP/carrier': 'trunk: outbound registration carrier-reg' },
  "given a line registration naming its endpoint, then that endpoint is a trunk; an endpoint without AOR or contact gets no verdict (the patterns decide)");
});

t.test('given chan_sip and IAX2 peers, when classified, then dynamic hosts are phones and static hosts trunks', async (t) => {
  const peer = (objectname: string, dynamic: string, extra: AmiEvent = {}): AmiEvent => ({ event: 'PeerEntry', objectname, dynamic, ...extra });
  t.same(classifyPeers('SIP', [peer('301', 'yes'), peer('provider', 'no')]).map((d) => `${d.interface} ${d.kind}`), ['SIP/301 phone', 'SIP/provider trunk']);
  t.same(classifyPeers('IAX2', [peer('302', 'yes', { trunk: 'no' }), peer('branch', 'yes', { trunk: 'yes' }), peer('hq', 'no')]).map((d) => `${d.interface} ${d.kind}`), ['IAX2/302 phone', 'IAX2/branch trunk', 'IAX2/hq trunk']);
});

t.test('given a QueueStatus answer, then each member interface is listed once', async (t) => {
  const member = (queue: string, location: string, name: string, stateinterface = location): AmiEvent => ({ event: 'QueueMember', queue, name, location, stateinterface });
  t.same(queueMembers([{ event: 'QueueParams', queue: 'sales' }, member('sales', 'Local/201@agents/n', 'Ana', 'PJSIP/201'), member('support', 'Local/201@agents/n', 'Ana', 'PJSIP/201'), member('sales', 'PJSIP/alice', 'Alice')]), [
    { interface: 'Local/201@agents/n', stateInterface: 'PJSIP/201', name: 'Ana' },
    { interface: 'PJSIP/alice', stateInterface: 'PJSIP/alice', name: 'Alice' },
  ]);
});

t.test('given modules that are not loaded, when the inventory is read, then their error answers empty only their part', async (t) => {
  const asked: string[] = [];
  const answers: Record<string, ListAnswer> = {
    PJSIPShowEndpoints: { ok: true, rows: [...RECORDED.endpoints, { event: 'EndpointListComplete' }] },
    PJSIPShowAors: { ok: true, rows: [aor('7001', '0', '7001/sip:7001@127.0.0.1:9'), aor('7002', '1', ''), aor('inv-alice', '1', '')] },
    PJSIPShowContacts: { ok: false, message: 'No Contacts found' },
    PJSIPShowRegistrationsOutbound: { ok: true, rows: [...RECORDED.registrations, { event: 'AuthDetail', objectname: '7002-auth', password: 'never-logged' }] },
    SIPpeers: { ok: false, message: 'Invalid/unknown command: SIPpeers. Use Action: ListCommands to show available commands.' },
    IAXpeers: { ok: false, message: 'Invalid/unknown command: IAXpeers. Use Action: ListCommands to show available commands.' },
    QueueStatus: { ok: false, message: 'Invalid/unknown command: QueueStatus.' },
  };
  const inv = await readInventory(async (fields) => {
    asked.push(fields.action ?? '');
    const a = answers[fields.action ?? ''];
    if (!a) throw new Error(`unexpected ${fields.action}`);
    return a;
  });
  t.same(inv.devices.map((d) => `${d.interface} ${d.kind}`), ['PJSIP/7001 trunk', 'PJSIP/7002 trunk', 'PJSIP/inv-alice phone']);
  t.equal(inv.members, null, 'then without app_queue the members are unknown (not "none")');
  t.match(inv.sources, { PJSIP: '3 endpoints', SIP: /^not available \(Invalid\/unknown command/, IAX2: /^not available/, queues: /^not available/ });
  t.notMatch(JSON.stringify(inv), /never-logged/, 'then the outbound auth password Asterisk lists with the registrations is not kept');

  asked.length = 0;
  const noPjsip = await readInventory(async (fields) => (fields.action === 'QueueStatus' ? { ok: true, rows: [] } : { ok: false, message: 'Invalid/unknown command' }));
  t.same(noPjsip.devices, []);
  t.same(noPjsip.members, [], 'then app_queue without members says "no members"');

  await t.rejects(readInventory(async (fields) => {
    if (fields.action === 'QueueStatus') throw new Error('AMI action QueueStatus timed out after 10000 ms');
    return { ok: false, message: 'Invalid/unknown command' };
  }), /timed out/, 'given a query that times out, then the read fails (the previous inventory stays)');
});

t.test('given every kind of evidence, then the order is: agents config, queue members, PBX phones/trunks, patterns', async (t) => {
  const dir = new AgentDirectory({
    agents: [{ id: 'u-9', name: 'Nine', interfaces: ['PJSIP/7009'] }, { id: 'u-1', extension: '7005' }],
    agentContexts: ['agents'],
    extensionPattern: PATTERN,
  });
  const by = (device: string) => {
    const d = dir.describe(device);
    return d.agent ? `${d.by}: ${d.agent.id}` : `${d.by}: not an agent`;
  };
  t.same(['PJSIP/7001-00000001', 'PJSIP/alice-00000002', 'PJSIP/201-00000003'].map(by), ['pattern: 7001', 'none: not an agent', 'pattern: 201'], 'before any inventory: the patterns alone');

  step(createTrackerWith(dir), {
    kind: 'inventory',
    receivedAt: 0,
    inventory: {
      devices: [
        { interface: 'PJSIP/7001', kind: 'trunk' },
        { interface: 'PJSIP/7005', kind: 'trunk' },
        { interface: 'PJSIP/7009', kind: 'trunk' },
        { interface: 'PJSIP/7010', kind: 'trunk' },
        { interface: 'PJSIP/alice', kind: 'phone' },
        { interface: 'PJSIP/202', kind: 'phone' },
      ],
      members: [{ interface: 'PJSIP/7010', name: 'Desk 7010' }, { interface: 'Local/301@custom/n', stateInterface: 'PJSIP/301', name: 'Agent 301' }],
    },
  });
  t.same(
    ['PJSIP/7009-0000000a', 'PJSIP/7010-0000000b', 'PJSIP/alice-0000000c', 'PJSIP/202-0000000d', 'PJSIP/7001-0000000e', 'PJSIP/7005-0000000f', 'PJSIP/201-00000010', 'Local/301@custom-00000001;1', 'PJSIP/301-00000011', 'Local/401@agents-00000002;2', 'PJSIP/trunk-00000012'].map(by),
    [
      'config: u-9', // 1: agents[].interfaces, even on a device the PBX calls a trunk
      'queue-member: 7010', // 2: a queue member, even on a trunk
      'pbx-phone: PJSIP/alice', // 3: a phone whose name is no extension: its interface is its id
      'pbx-phone: 202',
      'pbx-trunk: not an agent', // 3: a trunk, although 7001 matches extensionPattern
      'pbx-trunk: not an agent', // agents[].extension names the agent behind a phone, not a trunk
      'pattern: 201', // 4: a device the PBX does not list
      'queue-member: 301', // a Local member in a context that is not in agentContexts
      'queue-member: 301', // its state interface (the phone) too
      'pattern: 401',
      'none: not an agent',
    ],
  );
  t.equal(dir.fromChannel('PJSIP/7010-00000001')?.name, 'Desk 7010', 'then a member is named by its MemberName');
  t.same(dir.learnt, { phones: 2, trunks: 4, members: 3 });

  dir.setInventory({ devices: [{ interface: 'PJSIP/7001', kind: 'trunk' }], members: null });
  t.equal(by('PJSIP/7010-00000001'), 'queue-member: 7010', 'given members: null (app_queue not loaded), then the members known so far stay');
  t.equal(by('PJSIP/alice-00000001'), 'none: not an agent', 'then a phone the PBX no longer lists is forgotten');
  dir.setInventory({ devices: [], members: [] });
  t.equal(by('PJSIP/7010-00000001'), 'pattern: 7010', 'given an empty member list, then the members are forgotten');

  dir.setInventory({ devices: [{ interface: 'PJSIP/7001', kind: 'trunk' }, { interface: 'PJSIP/alice', kind: 'phone' }], members: [{ interface: 'PJSIP/bob' }] });
  dir.reload({ agents: [], agentContexts: ['agents'], extensionPattern: PATTERN, fromPbx: false });
  t.same(['PJSIP/7001-00000001', 'PJSIP/alice-00000002', 'PJSIP/bob-00000003'].map(by), ['pattern: 7001', 'none: not an agent', 'none: not an agent'], 'given calls.agentsFromPbx false, then only the config and the patterns count');
  dir.reload({ agents: [], agentContexts: ['agents'], extensionPattern: PATTERN });
  t.equal(by('PJSIP/7001-00000001'), 'pbx-trunk: not an agent', 'then a reload of the config keeps what was learnt of the PBX');
});

t.test('given a replayed trace (no device list), then queue members seen in its events are agents from then on', async (t) => {
  const tracker = createTracker({ ...TEST_NORMALIZER, ids: idCounter() });
  const ts = (s: number) => (1795400000 + s).toFixed(6);
  const ev = (event: string, s: number, fields: AmiEvent): AmiEvent => ({ event, timestamp: ts(s), ...fields });
  const feed = (e: AmiEvent): BridgeEvent[] => step(tracker, { kind: 'event', event: e, receivedAt: 0 });
  t.equal(tracker.agents.fromChannel('PJSIP/alice-00000001'), null, 'before: alice matches no pattern');
  feed(ev('QueueMemberAdded', 0, { queue: 'sales', membername: 'Alice', interface: 'PJSIP/alice', stateinterface: 'PJSIP/alice', status: '1', paused: '0' }));
  const out = [
    ev('Newchannel', 1, { channel: 'Local/100@from-internal-00000001;1', uniqueid: 'L.1', linkedid: 'L.1', context: 'from-internal', exten: '100', calleridnum: '555', calleridname: 'Caller' }),
    ev('DialBegin', 1.1, { channel: 'Local/100@from-internal-00000001;1', uniqueid: 'L.1', linkedid: 'L.1', destchannel: 'PJSIP/alice-00000002', destuniqueid: 'L.2', destlinkedid: 'L.1' }),
  ].flatMap(feed);
  const ringing = out.find((e) => e.type === 'call.ringing') as CallEvent | undefined;
  t.same(ringing?.agent, { id: 'PJSIP/alice', extension: null, name: 'Alice', interface: 'PJSIP/alice' }, 'then a direct dial to the member rings that agent');
});

t.test('given a call whose Hangup never arrived, when a snapshot lacks its channels, then it ends with hangupBy system', async (t) => {
  const tracker = createTracker({ ...TEST_NORMALIZER, ids: idCounter() });
  const ts = (s: number) => (1795400000 + s).toFixed(6);
  const chan = (event: string, s: number, channel: string, uniqueid: string, extra: AmiEvent = {}): AmiEvent => ({ event, timestamp: ts(s), channel, uniqueid, linkedid: 'C.1', ...extra });
  const events = [
    chan('Newchannel', 0, 'Local/41004201@from-pstn-00000001;1', 'C.1', { context: 'from-pstn', exten: '41004201', calleridnum: '+4930111', calleridname: 'Caller' }),
    chan('DialBegin', 0.5, 'Local/41004201@from-pstn-00000001;1', 'C.1', { destchannel: 'Local/201@agents-00000002;1', destuniqueid: 'C.2' }),
    chan('DialEnd', 2, 'Local/41004201@from-pstn-00000001;1', 'C.1', { destchannel: 'Local/201@agents-00000002;1', destuniqueid: 'C.2', dialstatus: 'ANSWER' }),
  ].flatMap((e) => step(tracker, { kind: 'event', event: e, receivedAt: 0 }));
  t.same(events.map((e) => e.type), ['call.started', 'call.ringing', 'call.answered']);
  // 40 s after the start: a live call elsewhere is still listed, this one's channels are not.
  step(tracker, { kind: 'resync-begin', receivedAt: (1795400000 + 40) * 1000 });
  const other = { channel: 'PJSIP/9-00000009', uniqueid: 'O.1', linkedid: 'O.1', context: 'from-internal', exten: '5', calleridnum: '9' };
  const out = step(tracker, { kind: 'snapshot', channels: [other], receivedAt: (1795400000 + 40) * 1000, trigger: 'periodic' });
  const hangup = out.find((e) => e.type === 'call.hangup' && e.callId === 'C.1');
  t.match(hangup, { type: 'call.hangup', callId: 'C.1', disposition: 'answered', hangupBy: 'system', durations: { totalSeconds: 40 } }, 'then the call ends, open for 40 s');
  t.equal(out.filter((e) => e.type === 'call.hangup').length, 1, 'then only that call ends');
});

function createTrackerWith(agents: AgentDirectory) {
  // step() reaches the directory only through tracker.agents.
  return { agents } as unknown as Parameters<typeof step>[0];
}

function idCounter() {
  let n = 0;
  return () => `id-${++n}`;
}
