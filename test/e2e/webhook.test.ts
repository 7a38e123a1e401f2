// Real calls in a real Asterisk reach local CRM receivers as the expected requests.
import t from 'tap';
import type { BridgeEvent, CallEvent } from '../../dist/events/types.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, startAsterisk } from '../../lab/asterisk.js';
import { byCall } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';
import { startReceiver, startSipgateReceiver, startZammadReceiver } from '../helpers/receivers.js';
import { scenarios } from '../../lab/scenarios.js';

t.test('given the daemon with Zammad, sipgate and JSON webhooks next to a real Asterisk', async (t) => {
  const asterisk = await startAsterisk({ name: 'webhook' });
  t.teardown(() => asterisk.stop());
  const zammad = await startZammadReceiver('t0k3n');
  const sipgate = await startSipgateReceiver();
  const json = await startReceiver();
  t.teardown(() => Promise.all([zammad.close(), sipgate.close(), json.close()]));
  const sinks = `  - type: webhook
    preset: zammad
    url: ${zammad.url}/api/v1/cti/t0k3n
  - type: webhook
    preset: sipgate
    url: ${sipgate.url}/sipgate
  - type: webhook
    name: crm-json
    url: "${json.url}/calls?caller=<%CALLERID%>&customer={Omlcrmcustomerid}&event={event}"
    events: [call.ringing, call.answered, call.hangup]
`;
  const config = e2eConfig(asterisk.amiPort).replace('sinks:\n  - type: log\n', `sinks:\n  - type: log\n${sinks}`);
  const daemon = startDaemon(writeConfig(config), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'login');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());

  for (const name of ['queue-answered', 'queue-abandoned', 'direct-busy'] as const) await scenarios[name](driver);
  const calls = await daemon.waitForEvents((es) => {
    const c = byCall(es);
    return c.size >= 3 && [...c.values()].every((l) => l.some((e) => e.type === 'call.hangup')) ? c : undefined;
  }, 'three finished calls');
  const ids = [...calls.keys()];
  await zammad.waitFor((r) => r.filter((x) => JSON.parse(x.body).event === 'hangup').length >= 3, 'three Zammad hangups');
  await sipgate.waitFor((r) => r.filter((x) => new URLSearchParams(x.body).get('event') === 'hangup').length >= 3, 'three sipgate hangups');

  t.same(zammad.violations, [], 'then Zammad saw no broken rule');
  t.same(sipgate.violations, [], 'then sipgate saw no broken rule');
  const zBodies = zammad.requests.map((r) => JSON.parse(r.body) as Record<string, string>);
  const zammadOf = (id: string) => zBodies.filter((b) => b.callId === id).map((b) => (b.event === 'hangup' ? `hangup:${b.cause}` : b.event));
  t.same(zammadOf(ids[0]!), ['newCall', 'answer', 'hangup:normalClearing'], 'then the answered queue call is newCall, answer, hangup');
  t.same(zammadOf(ids[1]!), ['newCall', 'hangup:cancel'], 'then the abandoned call is a cancel');
  t.same(zammadOf(ids[2]!), ['newCall', 'hangup:busy'], 'then the busy agent is a busy');
  const answer = zBodies.find((b) => b.event === 'answer');
  t.same({ from: answer?.from, to: answer?.to, direction: answer?.direction, user: answer?.user, answeringNumber: answer?.answeringNumber }, { from: '+4915112345678', to: '41004100', direction: 'in', user: 'Agent 201', answeringNumber: '201' });

  const expectedJson = [...calls.values()].flat().filter((e: BridgeEvent) => ['call.ringing', 'call.answered', 'call.hangup'].includes(e.type)) as CallEvent[];
  await json.waitFor((r) => r.length >= expectedJson.length, 'the JSON webhook');
  const got = json.requests.map((r) => JSON.parse(r.body) as CallEvent);
  t.same(new Set(got.map((e) => e.id)), new Set(expectedJson.map((e) => e.id)), 'then the JSON CRM got exactly the filtered events');
  for (const id of ids) t.same(got.filter((e) => e.callId === id).map((e) => e.seq), expectedJson.filter((e) => e.callId === id).map((e) => e.seq), `then call ${id} arrived in order`);
  t.equal(json.requests[0]?.query.get('customer'), '12345', 'then the dialplan variable reached the CRM URL');
});
