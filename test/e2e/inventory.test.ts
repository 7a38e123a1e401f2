// Issue 14 against a real Asterisk 22: the built daemon reads the PBX's device inventory
// (lab/pbx/pjsip_inventory.conf: a registering phone whose name is no extension, a
// trunk with a static contact whose name is one, a trunk with an outbound registration) and
// recognises agents by it; and the periodic reconciliation ends a call whose Hangup never reached
// the bridge (an AMI proxy between the two loses that call's events).
import dgram from 'node:dgram';
import t from 'tap';
import type { CallEvent } from '../../dist/events/types.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { startAmiFilterProxy } from '../helpers/ami-filter-proxy.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';

const METRICS_TOKEN = 'e2e-inventory-metrics-token-0123456789';
const EXTENSION_PATTERN = /^[0-9]{2,6}$/; // calls.extensionPattern's default

/**
 * Registers `user` with the PBX from a UDP socket of ours (a REGISTER without authentication:
 * the endpoint has no `auth`), and resolves once Asterisk answered 200. The socket stays open:
 * it is the phone's contact, so INVITEs to the phone arrive there (and go unanswered: it rings).
 */
async function registerPhone(sipPort: number, user: string): Promise<{ close(): void }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const port = socket.address().port;
  const callId = `inventory-${process.pid}-${port}@127.0.0.1`;
  const request = [
    `REGISTER sip:127.0.0.1:${sipPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${port}-1;rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@127.0.0.1>;tag=${port}`,
    `To: <sip:${user}@127.0.0.1>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:${user}@127.0.0.1:${port}>`,
    'Expires: 600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const answered = new Promise<string>((resolve) => {
    socket.on('message', (msg) => {
      const text = msg.toString('utf8');
      if (text.includes(`Call-ID: ${callId}`) && /^SIP\/2\.0 [2-6]\d\d/.test(text)) resolve(text.split('\r\n')[0] ?? '');
    });
  });
  socket.send(request, sipPort, '127.0.0.1');
  const status = await Promise.race([answered, new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`no answer to the REGISTER of ${user}`)), 5000).unref())]);
  if (!status.startsWith('SIP/2.0 200')) throw new Error(`REGISTER of ${user} refused: ${status}`);
  return { close: () => socket.close() };
}

t.test('given PJSIP phones and trunks on the PBX, with the bridge behind an AMI proxy that can lose events', async (t) => {
  const asterisk = await startAsterisk({ name: 'inventory' });
  t.teardown(() => asterisk.stop());
  const phone = await registerPhone(asterisk.sipPort, 'inv-alice');
  t.teardown(() => phone.close());
  const proxy = await startAmiFilterProxy(asterisk.amiPort);
  t.teardown(() => proxy.close());
  const httpPort = await freePort();
  const daemon = startDaemon(writeConfig(e2eConfig(proxy.port, `http:\n  listen: 127.0.0.1:${httpPort}\n  metricsToken: ${METRICS_TOKEN}\n`)), {
    E2E_AMI_SECRET: BRIDGE_AMI_SECRET,
    CRM_BRIDGE_CONFIG_PBX_AMI_RECONCILE_INTERVAL_SECONDS: '1',
  });
  t.teardown(() => daemon.stop());
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  await driver.setGlobals({
    AGENT_201_MODE: 'answer', AGENT_201_DELAY: 1, AGENT_201_TALK: 120,
    AGENT_202_MODE: 'answer', AGENT_202_DELAY: 1, AGENT_202_TALK: 120,
  });
  const hangupOf = (linkedid: string) =>
    daemon.waitForEvents((es) => es.find((e): e is CallEvent => e.type === 'call.hangup' && e.callId === linkedid), `call.hangup of ${linkedid}`, 30_000);

  await t.test('when the daemon logs in, then it reads the inventory: the phone is an agent, the trunks are not', async (t) => {
    const read = await daemon.waitForLog((l) => l.msg === 'PBX device inventory read', 'the device inventory');
    t.match(read, { sources: { PJSIP: /endpoints$/, SIP: /^not available/, IAX2: /^not available/, queues: /members$/ } }, 'then chan_sip and IAX2 (not loaded) are absent, not failures');
    const listed = await daemon.waitForLog((l) => l.msg === 'PBX device inventory', 'the inventory details');
    const phones = listed['phones'] as string[];
    const trunks = listed['trunks'] as string[];
    t.ok(phones.includes('PJSIP/inv-alice (registered contact)'), 'then the registered endpoint is a phone');
    t.ok(trunks.includes('PJSIP/7001 (static contact)'), 'then the endpoint with a static contact is a trunk');
    t.ok(trunks.includes('PJSIP/7002 (outbound registration 7002)'), 'then the endpoint with an outbound registration is a trunk');
    t.ok((listed['members'] as string[]).includes('Local/201@agents'), 'then the queue members are read too');
    t.ok(EXTENSION_PATTERN.test('7001') && !EXTENSION_PATTERN.test('inv-alice'), 'so by the pattern alone it would be the other way round');

    // One call that rings the phone and the trunk at once (Originate runs Dial on the first channel).
    const since = driver.mark();
    await driver.action({
      Action: 'Originate',
      Channel: 'Local/5550001@pstn-out',
      Application: 'Dial',
      Data: 'PJSIP/inv-alice&PJSIP/7001,30',
      Async: 'true',
      CallerID: '"Inventory Test" <+4930555000>',
      Variable: 'REMOTE_TALK=60',
    });
    const dialled = await driver.waitFor((f) => f.event === 'DialBegin' && (f.get('DestChannel') ?? '').startsWith('PJSIP/7001-'), 20_000, 'the dial of the trunk', since);
    const linkedid = dialled.get('Linkedid') ?? '';
    await driver.waitFor((f) => f.event === 'DialBegin' && (f.get('DestChannel') ?? '').startsWith('PJSIP/inv-alice-'), 20_000, 'the dial of the phone', since);
    const ringing = await daemon.waitForEvents(
      (es) => es.find((e): e is CallEvent => e.type === 'call.ringing' && e.callId === linkedid && e.agent?.interface === 'PJSIP/inv-alice'),
      'call.ringing for the phone',
      20_000,
    );
    t.same(ringing.agent, { id: 'PJSIP/inv-alice', extension: null, name: null, interface: 'PJSIP/inv-alice' }, 'then the phone rings as an agent, named by its interface');
    const caller = driver.channelsOf(linkedid).find((c) => !c.hungUp && c.channel.endsWith(';1'))?.channel ?? '';
    await driver.action({ Action: 'Hangup', Channel: caller });
    await driver.waitForCallOver(linkedid, 20_000);
    await hangupOf(linkedid);
    const ofCall = daemon.events.filter((e): e is CallEvent => 'callId' in e && e.callId === linkedid);
    t.same(ofCall.filter((e) => e.agent && e.agent.interface !== 'PJSIP/inv-alice').map((e) => `${e.type} ${e.agent?.id}`), [], 'then no event of the call names another agent: the trunk 7001 is not one');
  });

  await t.test('when a call ends and its Hangup never reaches the bridge, then the periodic reconciliation ends it', async (t) => {
    async function answeredCall(ext: '201' | '202'): Promise<string> {
      const since = driver.mark();
      await driver.originate({ channel: `Local/4100420${ext.slice(-1)}@from-pstn`, context: 'caller', exten: 'wait', callerId: '"Reconcile Test" <+4930555111>', variables: { CALLER_WAIT: '120' } });
      const answered = await driver.waitFor(
        (f) => f.event === 'DialEnd' && (f.get('DestChannel') ?? '').startsWith(`Local/${ext}@agents-`) && f.get('DialStatus') === 'ANSWER',
        20_000,
        `agent ${ext} to answer`,
        since,
      );
      const id = answered.get('Linkedid') ?? '';
      await daemon.waitForEvents((es) => es.find((e) => e.type === 'call.answered' && 'callId' in e && e.callId === id), `call.answered of ${id}`, 20_000);
      return id;
    }
    const callerChannel = (linkedid: string) => driver.channelsOf(linkedid).find((c) => !c.hungUp && c.channel.startsWith('Local/4100420'))?.channel ?? '';
    const periodicRuns = (since: number) => daemon.logs.slice(since).filter((l) => l.msg === 'AMI periodic reconciliation: live channels compared').length;

    const kept = await answeredCall('201');
    const lost = await answeredCall('202');
    // From now on the bridge gets none of the lost call's events (the list answers still pass).
    proxy.drop = (f) => f['linkedid'] === lost && f['actionid'] === undefined;
    const logsAtHangup = daemon.logs.length;
    await driver.action({ Action: 'Hangup', Channel: callerChannel(lost) });
    await driver.waitForCallOver(lost, 20_000);
    const hangup = await hangupOf(lost);
    t.ok(proxy.dropped.some((f) => f['event'] === 'Hangup'), 'then the Hangup events were really lost on the way');
    t.match(hangup, { disposition: 'answered', hangupBy: 'system' }, 'then the call ends, hung up by "system"');
    const warning = await daemon.waitForLog((l) => l.msg === 'reconciliation ended a call whose channels are gone (its Hangup never reached the bridge)', 'the warning', 5000, logsAtHangup);
    t.match(warning, { level: 40, callId: lost, trigger: 'periodic' }, 'then one warning names the call: the periodic reconciliation ended it');
    t.ok(Number(warning['openSeconds']) > 0, `then the warning says how long the call was open (${String(warning['openSeconds'])} s)`);

    // The other call spans more reconciliations and is left alone.
    const before = daemon.logs.length;
    await daemon.waitForLog((l) => periodicRuns(before) >= 2 && l.msg === 'AMI periodic reconciliation: live channels compared', 'two more reconciliations', 10_000, before);
    t.notOk(daemon.events.some((e) => e.type === 'call.hangup' && 'callId' in e && e.callId === kept), 'then a call whose channels are up is not ended');
    await driver.action({ Action: 'Hangup', Channel: callerChannel(kept) });
    t.match(await hangupOf(kept), { hangupBy: 'caller' }, 'then it ends normally, hung up by the caller');

    const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    const text = await res.text();
    t.match(text, /crm_bridge_calls_reconciled_total\{trigger="periodic"\} 1\n/, 'then the counter counts exactly that call');
    t.match(text, /crm_bridge_calls_reconciled_total\{trigger="reconnect"\} 0\n/);
    t.equal(daemon.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reconciliation ended a call')).length, 1, 'then there is one warning, for that call only');
  });
});
