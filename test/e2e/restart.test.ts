// Restarts in the middle of a call, against a real Asterisk and a real webhook receiver:
// - the bridge killed with SIGKILL (a crash, an OOM kill, an upgrade) while a queue call is
//   answered, and started again on the same outbox: the call goes on (src/outbox/call-ledger.ts),
//   whether it ends after the restart or while no bridge was running;
// - Asterisk restarted under a running bridge: the call ends, and the next call works.
// What a CRM sees is checked at the receiver, each event counted once (a re-delivery after the
// kill carries the same id, and the contract lets receivers drop it).
import t, { type Test } from 'tap';
import type { CallEvent } from '../../dist/events/types.js';
import { validateEvent } from '../../dist/events/validator.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, startAsterisk } from '../../lab/asterisk.js';
import { contractViolations } from '../helpers/contract.js';
import { type Daemon, e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';
import { type Received, startReceiver } from '../helpers/receivers.js';

const CALLER = '"Restart Test" <+4930555666>';
const SALES_DID = '41004100';
const ENV = { E2E_AMI_SECRET: BRIDGE_AMI_SECRET };

/** The call events the CRM got, each id once, in the order they arrived. */
function received(requests: readonly Received[]): CallEvent[] {
  const seen = new Set<string>();
  const out: CallEvent[] = [];
  for (const r of requests) {
    const e = JSON.parse(r.body) as CallEvent;
    if (!e.type.startsWith('call.') || seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
  }
  return out;
}

const webhookConfig = (amiPort: number, url: string): string =>
  e2eConfig(amiPort).replace('sinks:\n  - type: log\n', `sinks:\n  - type: log\n  - type: webhook\n    name: crm\n    url: ${url}/events\n    retry: { initialDelayMs: 50, maxDelayMs: 500, factor: 2, jitter: 0 }\n`);

t.test('given a bridge with a webhook and an outbox, when it is killed with SIGKILL during an answered queue call and started again', async (t) => {
  const asterisk = await startAsterisk({ name: 'restart' });
  t.teardown(() => asterisk.stop());
  const crm = await startReceiver();
  t.teardown(() => crm.close());
  const config = writeConfig(webhookConfig(asterisk.amiPort, crm.url));
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  await driver.setGlobals({ AGENT_201_MODE: 'answer', AGENT_201_DELAY: 1, AGENT_201_TALK: 300, AGENT_202_MODE: 'noanswer', AGENT_203_MODE: 'noanswer' });

  const running: Daemon[] = [];
  t.teardown(() => Promise.all(running.map((d) => d.stop())));
  async function start(): Promise<Daemon> {
    const d = startDaemon(config, ENV);
    running.push(d);
    await d.waitForLog((l) => l.msg === 'AMI state resynchronized', 'the daemon to log in and resync');
    return d;
  }
  async function kill(d: Daemon): Promise<void> {
    d.child.kill('SIGKILL');
    t.equal(await d.exit, null, 'the daemon died by the signal');
  }
  const crmSaw = (callId: string, type: string) =>
    crm.waitFor((r) => received(r).some((e) => e.callId === callId && e.type === type), `the CRM to get ${type} of ${callId}`, 30_000);
  /** Places a queue call (IVR, then queue sales, where 201 answers) and returns its id once the CRM knows it was answered. */
  async function answeredQueueCall(): Promise<string> {
    const since = driver.mark();
    await driver.originate({ channel: `Local/${SALES_DID}@from-pstn`, context: 'caller', exten: 'ivr', callerId: CALLER, variables: { CALLER_WAIT: '300' } });
    const joined = await driver.waitFor((f) => f.event === 'QueueCallerJoin', 30_000, 'the caller to join the queue', since);
    const callId = joined.get('Linkedid') ?? '';
    await crmSaw(callId, 'call.answered');
    return callId;
  }
  async function hangUp(callId: string): Promise<void> {
    const caller = driver.channelsOf(callId).find((c) => !c.hungUp && c.channel.startsWith(`Local/${SALES_DID}@from-pstn`));
    await driver.action({ Action: 'Hangup', Channel: caller?.channel ?? '' });
    await driver.waitForCallOver(callId, 30_000);
  }
  function check(t: Test, callId: string, hangupBy: string): void {
    const events = received(crm.requests).filter((e) => e.callId === callId);
    const types = events.map((e) => e.type);
    t.equal(types.filter((x) => x === 'call.started').length, 1, `then the CRM got one call.started (got ${types.join(', ')})`);
    t.equal(types.filter((x) => x === 'call.answered').length, 1, 'then one call.answered');
    t.equal(types.filter((x) => x === 'call.hangup').length, 1, 'then one call.hangup');
    t.same(events.map((e) => e.seq), events.map((_, i) => i + 1), 'then seq runs 1, 2, 3… without a gap or a restart');
    t.same(contractViolations(events), [], 'then the ordering guarantees hold');
    const hangup = events.at(-1);
    t.match(hangup, { type: 'call.hangup', disposition: 'answered', hangupBy, agent: { id: '201' } }, `then the hang-up says answered, by ${hangupBy}, agent 201`);
    for (const e of events) t.same(validateEvent(e), [], `then ${e.type} (seq ${e.seq}) is schema-valid`);
  }

  t.test('when the call ends after the restart, then the CRM sees it once, seq continuing', async (t) => {
    const first = await start();
    const callId = await answeredQueueCall();
    await kill(first);
    const second = await start();
    t.ok(second.logs.some((l) => String(l.msg).startsWith('call ledger: calls in progress')), 'then the restarted bridge says it goes on with the call');
    await hangUp(callId);
    await crmSaw(callId, 'call.hangup');
    check(t, callId, 'caller');
    await second.stop();
  });

  t.test('when the call ends while no bridge runs, then it gets exactly one call.hangup after the restart', async (t) => {
    const first = await start();
    const callId = await answeredQueueCall();
    await kill(first);
    await hangUp(callId);
    const second = await start();
    await crmSaw(callId, 'call.hangup');
    check(t, callId, 'system');
    // Nothing more comes for it: the ledger entry went with the hang-up (a later resync has nothing to end).
    await second.stop();
    const third = await start();
    await third.stop();
    t.equal(received(crm.requests).filter((e) => e.callId === callId && e.type === 'call.hangup').length, 1, 'then another restart sends no second hang-up');
  });
});

t.test('given a running bridge, when Asterisk restarts mid-call, then the call ends correctly and the next call works', async (t) => {
  let asterisk = await startAsterisk({ name: 'ast-restart' });
  const amiPort = asterisk.amiPort;
  t.teardown(() => asterisk.stop());
  const crm = await startReceiver();
  t.teardown(() => crm.close());
  const daemon = startDaemon(writeConfig(webhookConfig(amiPort, crm.url)), ENV);
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'the first login');
  const crmSaw = (callId: string, type: string) =>
    crm.waitFor((r) => received(r).some((e) => e.callId === callId && e.type === type), `the CRM to get ${type} of ${callId}`, 30_000);

  async function directCall(driver: AmiDriver): Promise<string> {
    await driver.setGlobals({ AGENT_201_MODE: 'answer', AGENT_201_DELAY: 1, AGENT_201_TALK: 300 });
    const since = driver.mark();
    await driver.originate({ channel: 'Local/41004201@from-pstn', context: 'caller', exten: 'wait', callerId: CALLER, variables: { CALLER_WAIT: '300' } });
    const answered = await driver.waitFor((f) => f.event === 'DialEnd' && f.get('DialStatus') === 'ANSWER', 30_000, 'agent 201 to answer', since);
    const callId = answered.get('Linkedid') ?? '';
    await crmSaw(callId, 'call.answered');
    return callId;
  }

  let driver = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
  const lost = await directCall(driver);
  await driver.close();
  const logs = daemon.logs.length;
  await asterisk.stop();
  asterisk = await startAsterisk({ name: 'ast-restart', amiPort });
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'the resync after Asterisk came back', 30_000, logs);
  await crmSaw(lost, 'call.hangup');

  driver = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const next = await directCall(driver);
  const caller = driver.channelsOf(next).find((c) => !c.hungUp && c.channel.startsWith('Local/41004201@from-pstn'));
  await driver.action({ Action: 'Hangup', Channel: caller?.channel ?? '' });
  await driver.waitForCallOver(next, 30_000);
  await crmSaw(next, 'call.hangup');

  const events = received(crm.requests);
  const of = (id: string) => events.filter((e) => e.callId === id);
  // Asterisk hangs its channels up as it stops (core stop now): who hung up is whatever it reports.
  t.same(of(lost).map((e) => e.type), ['call.started', 'call.ringing', 'call.answered', 'call.hangup'], 'then the call cut by the restart ends once');
  t.match(of(lost).at(-1), { type: 'call.hangup', disposition: 'answered', agent: { id: '201' } }, 'then it ends answered, by agent 201');
  t.same(of(next).map((e) => e.type), ['call.started', 'call.ringing', 'call.answered', 'call.hangup'], 'then the next call is started, rings, is answered and hangs up');
  t.same(contractViolations(events), [], 'then the ordering guarantees hold for both calls');
  for (const e of events) t.same(validateEvent(e), [], `then ${e.type} is schema-valid`);
});
