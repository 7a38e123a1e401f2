// Click-to-call against a real Asterisk 22: the built daemon's API rings the agent's device first
// (Local/201@phones, which answers at once), then dials the number in from-internal (which sends
// it to Local/<number>@pstn-out: rings 1 s, answers, talks 3 s). The daemon's events for that
// call carry origin click-to-call and are schema-valid; bad requests get a clear 4xx and create
// no channel in Asterisk.
import { mkdirSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { validateEvent } from '../../dist/events/validator.js';
import type { BridgeEvent, CallEvent } from '../../dist/events/types.js';
import { AmiDriver, type AmiFrame } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { byCall, contractViolations } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';
import { scenarios } from '../../lab/scenarios.js';

const API_TOKEN = 'e2e-api-token-0123456789abcdef0123456789';
const AGENT_TOKEN = 'e2e-agent-201-token-0123456789abcdef';


const isNewchannel = (f: AmiFrame) => f.event === 'Newchannel';

t.test('given the daemon with the API on, running against a real Asterisk', async (t) => {
  const asterisk = await startAsterisk({ name: 'c2c' });
  t.teardown(() => asterisk.stop());
  const port = await freePort();
  const config = e2eConfig(
    asterisk.amiPort,
    `agents:
  - { id: u-201, name: Ana, extension: "201", token: ${AGENT_TOKEN} }
http:
  listen: 127.0.0.1:${port}
api:
  tokens:
    - { name: crm, token: { env: E2E_API_TOKEN } }
  clickToCall:
    agentChannel: "Local/{extension}@phones"
    context: from-internal
`,
  );
  const daemon = startDaemon(writeConfig(config), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET, E2E_API_TOKEN: API_TOKEN });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l['msg'] === 'HTTP server listening', 'the HTTP server to listen');
  await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'the daemon to log in and resync');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const base = `http://127.0.0.1:${port}`;
  const post = async (body: unknown, token: string | null = API_TOKEN) => {
    const res = await fetch(`${base}/api/v1/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  /** Every event of one call, once its call.hangup is in. */
  const eventsOf = (callId: string) =>
    daemon.waitForEvents((all) => {
      const mine = all.filter((e): e is CallEvent => e.type.startsWith('call.') && (e as CallEvent).callId === callId);
      return mine.some((e) => e.type === 'call.hangup') ? mine : undefined;
    }, `the events of call ${callId} up to its call.hangup`);
  const since = driver.mark();

  t.test('when bad requests arrive, then each gets a clear 4xx and no channel is created', async (t) => {
    const noToken = await post({ agent: 'u-201', number: '5551234' }, null);
    t.equal(noToken.status, 401);
    t.match(noToken.body.error, 'a token is required');
    const unknownAgent = await post({ agent: 'nobody', number: '5551234' });
    t.equal(unknownAgent.status, 422);
    t.match(unknownAgent.body.error, "agent: no agent 'nobody'");
    const forbidden = await post({ agent: 'u-201', number: '+1 (900) 555-0000-1234-99' });
    t.equal(forbidden.status, 422);
    t.match(forbidden.body.error, "number: '+19005550000123499' is not allowed (api.clickToCall.numberPattern");
    const notANumber = await post({ agent: 'u-201', number: '5551234,1&Local/666@pstn-out' });
    t.equal(notANumber.status, 422);
    t.match(notANumber.body.error, 'is not a phone number');
    const otherAgent = await post({ agent: '202', number: '5551234' }, AGENT_TOKEN);
    t.equal(otherAgent.status, 403);
    const invalid = await post({ agent: 'u-201', vars: { Secret: 'x' } });
    t.equal(invalid.status, 400);
    t.same(invalid.body.problems, ['number: is required', 'vars.Secret: not an allowed name (must match ^Omlcrm[A-Za-z0-9_]{1,64}$)']);
    const refusals = () => daemon.logs.filter((l) => l['msg'] === 'API request refused');
    await daemon.waitForLog(() => refusals().length >= 6, 'the daemon to log the six refusals');
    t.same(refusals().map((l) => l['status']), [401, 422, 422, 422, 403, 400], 'then the daemon logged each refusal');
    t.same(driver.events.slice(since).filter(isNewchannel), [], 'then Asterisk has created no channel so far');
  });

  let firstId = '';
  t.test('when the CRM asks for a call, then the agent rings first, then the number, and the events say click-to-call', async (t) => {
    const r = await post({ agent: 'u-201', number: '555 123-4', vars: { Omlcrmcustomerid: '12345', Omlcrmnote: 'Acme, Inc. (VIP)' } });
    t.equal(r.status, 202, JSON.stringify(r.body));
    t.match(r.body, { id: String, agent: 'u-201', number: '5551234', status: 'originating' });
    const id = (firstId = r.body['id'] as string);
    await driver.waitForCallOver(id, 60_000);

    // Asterisk's side: the first channel of the whole session is the agent's device, with the
    // id the API returned; the number's channel is created only after the agent answered.
    const frames = driver.events.slice(since);
    const newchannels = frames.filter(isNewchannel);
    t.equal(newchannels[0]?.get('Uniqueid'), id, "then the first channel Asterisk created is this call's, with the returned id");
    t.match(newchannels[0]?.get('Channel'), /^Local\/201@phones-[0-9a-f]+;1$/, "then it is the agent's device");
    const at = (pred: (f: AmiFrame) => boolean) => frames.findIndex(pred);
    const agentUp = at((f) => f.event === 'DialEnd' && /^Local\/201@phones-/.test(f.get('DestChannel') ?? '') && f.get('DialStatus') === 'ANSWER');
    const numberBorn = at((f) => isNewchannel(f) && /^Local\/5551234@pstn-out-[0-9a-f]+;1$/.test(f.get('Channel') ?? ''));
    t.ok(agentUp >= 0, 'then the agent answered');
    t.ok(numberBorn > agentUp, 'then the number was dialled only after the agent answered');
    t.equal(frames[numberBorn]?.get('Linkedid'), id, 'in the same call');

    // The daemon's side.
    const events = await eventsOf(id);
    // The number is a party that is not an agent: it rings and answers with agent null.
    t.same(events.map((e) => e.type), ['call.started', 'call.ringing', 'call.answered', 'call.hangup']);
    t.match(events[2], { type: 'call.answered', agent: null, channel: { name: /^Local\/5551234@pstn-out-/ } });
    for (const e of events) {
      t.same(validateEvent(e), [], `${e.type} is schema-valid`);
      t.equal(e.origin, 'click-to-call', `${e.type} says origin click-to-call`);
      t.same(e.vars, { Omlcrmcustomerid: '12345', Omlcrmnote: 'Acme, Inc. (VIP)' }, `${e.type} carries the CRM variables, commas and parentheses intact`);
    }
    t.same(contractViolations(events), []);
    t.match(events[0], { callId: id, direction: 'outbound', agent: { id: 'u-201', name: 'Ana' }, called: { number: '5551234' }, caller: { number: '201' } });
    t.match(events[3], { type: 'call.hangup', disposition: 'answered' });
  });

  t.test("when an agent uses its own token for itself, then the call is placed too", async (t) => {
    const r = await post({ agent: 'u-201', number: '(555) 9876' }, AGENT_TOKEN);
    t.equal(r.status, 202, JSON.stringify(r.body));
    const events = await eventsOf(r.body['id'] as string);
    t.ok(events.every((e) => e.origin === 'click-to-call' && validateEvent(e).length === 0), 'then its events say click-to-call');
    t.match(events[0], { agent: { id: 'u-201' }, called: { number: '5559876' } });
  });

  t.test('when an agent dials by other means, then its events have no origin', async (t) => {
    const from = daemon.events.length;
    await scenarios.outbound(driver);
    const events = await daemon.waitForEvents((all) => {
      const calls = [...byCall(all.slice(from)).values()];
      return calls.length === 1 && calls[0]!.some((e) => e.type === 'call.hangup') ? calls[0] : undefined;
    }, 'the events of the ordinary outbound call');
    t.ok(events.length >= 3);
    t.ok(events.every((e) => !('origin' in e)), 'then no event has an origin key');
  });

  t.test('then every channel Asterisk created belongs to one of the calls made on purpose', async (t) => {
    await driver.waitForAllCallsOver(60_000);
    const callIds = new Set(daemon.events.filter((e): e is CallEvent => e.type === 'call.started').map((e) => e.callId));
    const strays = driver.events.slice(since).filter((f) => isNewchannel(f) && !callIds.has(f.get('Linkedid') ?? ''));
    t.same(strays.map((f) => f.get('Channel')), []);
    t.ok(callIds.has(firstId));
    t.equal(callIds.size, 3, 'then three calls: two click-to-call, one ordinary');
  });

  t.test('then the daemon serves the OpenAPI document and never logged the API token', async (t) => {
    const res = await fetch(`${base}/api/v1/openapi.json`);
    t.equal(res.status, 200);
    t.ok(((await res.json()) as { paths: Record<string, unknown> }).paths['/api/v1/calls']);
    t.notOk(JSON.stringify(daemon.logs).includes(API_TOKEN));
    t.notOk(JSON.stringify(daemon.logs).includes(AGENT_TOKEN));
  });

  t.test('when the daemon gets SIGTERM, then it exits 0', async (t) => {
    t.equal(await daemon.stop(), 0);
    const all: BridgeEvent[] = daemon.events;
    t.same(contractViolations(all), [], 'and the whole session kept the contract');
    // Kept for post-mortems, like the other end-to-end tests' artifacts.
    const dir = new URL('../../.cache/e2e-artifacts/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}click-to-call-events.ndjson`, all.map((e) => JSON.stringify(e)).join('\n') + '\n');
  });
});
