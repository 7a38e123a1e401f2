// The AMI link drops and comes back while calls are in progress (a fault-injecting TCP proxy
// between the daemon and a real Asterisk). A call that ended while the bridge was away still
// gets its hang-up, a call that began meanwhile is picked up, and a call that spans the outage
// is neither lost nor duplicated.
import t from 'tap';
import type { CallEvent } from '../../dist/events/types.js';
import { validateEvent } from '../../dist/events/validator.js';
import { AmiDriver, type AmiFrame } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, startAsterisk } from '../../lab/asterisk.js';
import { byCall, summarize } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const CALLER = '"Reconnect Test" <+4930111222>';

t.test('given calls in progress when the AMI connection drops', async (t) => {
  const asterisk = await startAsterisk({ name: 'reconnect' });
  t.teardown(() => asterisk.stop());
  const proxy = await startTcpProxy(asterisk.amiPort);
  t.teardown(() => proxy.close());
  const daemon = startDaemon(writeConfig(e2eConfig(proxy.port)), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'the first login');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  await driver.setGlobals({
    AGENT_201_MODE: 'answer', AGENT_201_DELAY: 1, AGENT_201_TALK: 120,
    AGENT_202_MODE: 'answer', AGENT_202_DELAY: 1, AGENT_202_TALK: 120,
    AGENT_203_MODE: 'answer', AGENT_203_DELAY: 1, AGENT_203_TALK: 120,
  });

  /** Places a direct call to an agent and returns the Linkedid once the agent answered. */
  async function answeredCall(ext: string, vars: Record<string, string> = {}): Promise<string> {
    const since = driver.mark();
    await driver.originate({ channel: `Local/4100420${ext.slice(-1)}@from-pstn`, context: 'caller', exten: 'wait', callerId: CALLER, variables: { CALLER_WAIT: '120', ...vars } });
    const answered: AmiFrame = await driver.waitFor(
      (f) => f.event === 'DialEnd' && (f.get('DestChannel') ?? '').startsWith(`Local/${ext}@agents-`) && f.get('DialStatus') === 'ANSWER',
      20_000,
      `agent ${ext} to answer`,
      since,
    );
    return answered.get('Linkedid') ?? '';
  }
  const callerChannel = (linkedid: string) => driver.channelsOf(linkedid).find((c) => !c.hungUp && c.channel.startsWith('Local/4100420'))?.channel ?? '';
  const bridgeSaw = (linkedid: string, type: string) => daemon.waitForEvents((es) => es.find((e) => e.type === type && 'callId' in e && e.callId === linkedid), `${type} of ${linkedid}`, 20_000);

  const spanning = await answeredCall('203');
  await bridgeSaw(spanning, 'call.answered');
  const endsWhileAway = await answeredCall('201');
  await bridgeSaw(endsWhileAway, 'call.answered');

  const logsBefore = daemon.logs.length;
  proxy.cut();
  await daemon.waitForLog((l) => l.msg === 'AMI disconnected; reconnecting', 'the daemon to notice the drop', 10_000, logsBefore);

  // While the bridge is away: one call ends, another begins and is answered.
  await driver.action({ Action: 'Hangup', Channel: callerChannel(endsWhileAway) });
  await driver.waitForCallOver(endsWhileAway, 20_000);
  // Its CRM variables are set while the bridge is away: their VarSet events are never seen.
  const beganWhileAway = await answeredCall('202', { OMLCUSTOMDIALPLANVARS: 'Omlcrmcustomerid&Omlcrmnote', Omlcrmcustomerid: '4711', Omlcrmnote: 'a=b & c#d', Secretvar: 'x' });

  const logsAtResume = daemon.logs.length;
  proxy.resume();
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'the resync after reconnecting', 20_000, logsAtResume);
  await bridgeSaw(endsWhileAway, 'call.hangup');
  await bridgeSaw(beganWhileAway, 'call.answered');

  for (const id of [spanning, beganWhileAway]) {
    await driver.action({ Action: 'Hangup', Channel: callerChannel(id) });
    await driver.waitForCallOver(id, 20_000);
    await bridgeSaw(id, 'call.hangup');
  }

  const calls = byCall(daemon.events);
  const lines = (id: string) => (calls.get(id) ?? []).map(summarize);
  t.same(lines(endsWhileAway), ['call.started', 'call.ringing 201', 'call.answered 201', 'call.hangup answered by:system'], 'then the call that ended while away gets exactly one hang-up');
  t.same(lines(beganWhileAway), ['call.started', 'call.answered 202', 'call.hangup answered by:caller'], 'then the call that began while away is picked up, answered by 202');
  t.same(lines(spanning), ['call.started', 'call.ringing 203', 'call.answered 203', 'call.hangup answered by:caller'], 'then the call spanning the outage is neither lost nor duplicated');
  for (const e of daemon.events) t.same(validateEvent(e), [], `${e.type} is schema-valid`);
  const away = calls.get(beganWhileAway)?.[0] as CallEvent | undefined;
  t.equal(away?.caller.number, '+4930111222', 'then the picked-up call knows its caller');
  for (const e of calls.get(beganWhileAway) ?? []) {
    t.same((e as CallEvent).vars, { Omlcrmcustomerid: '4711', Omlcrmnote: 'a=b & c#d' }, `then ${e.type} of the picked-up call carries the CRM variables read at resync`);
  }
  const resynced = daemon.logs.filter((l) => l.msg === 'AMI state resynchronized').at(-1);
  t.ok(Number(resynced?.['variablesRead']) >= 3, 'then the resync read the variables it had missed');
  t.ok(proxy.connections >= 2, 'then the daemon reconnected');
});
