// The built daemon with ARI, against a real Asterisk 22, two daemons side by side watching the
// same calls:
// - "ari": `pbx.ari` only (a site where AMI is not allowed): the contract's events for the same
//   scenarios as the AMI tests, minus ARI's documented queue gaps (test/helpers/ari-expected.ts);
// - "both": `pbx.ami` and `pbx.ari`: exactly the AMI sequences — ARI's events are not fed to the
//   normalizer, so nothing is emitted twice — while ARI stays connected to read variables.
// Also: in ARI-only mode click-to-call goes through ARI; presence (AMI QueuePause) says 503.
import t from 'tap';
import { validateEvent } from '../../dist/events/validator.js';
import type { BridgeEvent } from '../../dist/events/types.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { ariExpectation } from '../helpers/ari-expected.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { byCall, contractViolations, summarize } from '../helpers/contract.js';
import { canonical, EXPECTED } from '../helpers/expected.js';
import { e2eConfig, startDaemon, writeConfig, type Daemon } from '../helpers/daemon.js';
import { scenarios } from '../../lab/scenarios.js';

const ARI_USER = 'bridge';
const ARI_PASSWORD = 'bridge-secret';
const API_TOKEN = 'e2e-ari-api-token-0123456789abcdef0123';
const SCENARIOS = ['queue-answered', 'queue-abandoned', 'direct-noanswer', 'blind-transfer', 'outbound'] as const;

function ariBlock(httpPort: number, app: string): string {
  return `  ari:
    url: http://127.0.0.1:${httpPort}
    username: ${ARI_USER}
    password: { env: E2E_ARI_PASSWORD }
    app: ${app}
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 }
`;
}

/** The daemon's events for the calls of one scenario, once every call has hung up. */
function callsOf(daemon: Daemon, from: number, want: number, what: string): Promise<BridgeEvent[][]> {
  return daemon.waitForEvents((all) => {
    const calls = [...byCall(all.slice(from)).values()];
    return calls.length >= want && calls.every((l) => l.some((e) => e.type === 'call.hangup')) ? calls : undefined;
  }, what);
}

t.test('given two daemons on one real Asterisk: one on ARI alone, one on AMI and ARI', async (t) => {
  const asterisk = await startAsterisk({ name: 'ari-daemon' });
  t.teardown(() => asterisk.stop());
  const env = { E2E_AMI_SECRET: BRIDGE_AMI_SECRET, E2E_ARI_PASSWORD: ARI_PASSWORD, E2E_API_TOKEN: API_TOKEN };

  // ARI alone: the e2e config without its ami block.
  const apiPort = await freePort();
  const ariOnlyConfig = e2eConfig(asterisk.amiPort).replace(/  ami:\n(    .*\n)+/, ariBlock(asterisk.httpPort, 'crm-bridge-ari-only')) +
    `agents:\n  - { id: \"201\", name: Ana, extension: \"201\" }\nhttp:\n  listen: 127.0.0.1:${apiPort}\napi:\n  tokens: [{ name: crm, token: { env: E2E_API_TOKEN } }]\n  clickToCall: { agentChannel: "Local/{extension}@phones", context: from-internal }\n`;
  t.notMatch(ariOnlyConfig, /ami:/, 'given a config without AMI');
  const ari = startDaemon(writeConfig(ariOnlyConfig), env);
  t.teardown(() => ari.stop());
  // AMI and ARI: the ari block under pbx, beside ami.
  const both = startDaemon(writeConfig(e2eConfig(asterisk.amiPort).replace('calls:\n', `${ariBlock(asterisk.httpPort, 'crm-bridge-both')}calls:\n`)), env);
  t.teardown(() => both.stop());
  await ari.waitForLog((l) => l['msg'] === 'ARI state resynchronized', 'the ARI-only daemon to connect');
  await both.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'the AMI+ARI daemon to log in to AMI');
  await both.waitForLog((l) => l['msg'] === 'ARI connected', 'the AMI+ARI daemon to connect to ARI');
  t.notOk(JSON.stringify([...ari.logs, ...both.logs]).includes(ARI_PASSWORD), 'the ARI password appears in no log line');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());

  for (const name of SCENARIOS) {
    t.test(`when the ${name} scenario runs`, async (t) => {
      const fromAri = ari.events.length;
      const fromBoth = both.events.length;
      await scenarios[name](driver);
      const amiWant = EXPECTED[name]!;
      const ariWant = ariExpectation(name);
      const want = amiWant.calls?.length ?? 1;
      const [ariCalls, bothCalls] = await Promise.all([
        callsOf(ari, fromAri, want, `the ARI-only daemon's events of ${name}`),
        callsOf(both, fromBoth, want, `the AMI+ARI daemon's events of ${name}`),
      ]);
      for (const [label, calls, expected] of [
        ['ARI alone', ariCalls, ariWant],
        ['AMI and ARI', bothCalls, amiWant],
      ] as const) {
        const all = calls.flat();
        t.same(all.flatMap((e) => validateEvent(e)), [], `${label}: every event is schema-valid`);
        t.same(contractViolations(all), [], `${label}: every contract guarantee holds`);
        t.equal(calls.length, expected.calls?.length, `${label}: the expected calls`);
        calls.forEach((list, i) => t.same(canonical(list.map(summarize), expected.unordered), expected.calls?.[i], `${label}: call ${i + 1} is the exact sequence`));
        t.equal(new Set(all.map((e) => e.id)).size, all.length, `${label}: no event twice`);
      }
      // Same calls, seen by both: ARI gives the same callIds (Linkedids) as AMI.
      t.same(ariCalls.map((l) => l[0] && 'callId' in l[0] ? l[0].callId : null), bothCalls.map((l) => l[0] && 'callId' in l[0] ? l[0].callId : null), 'then both daemons name the calls alike');
      if (ariWant.varsFromRinging) {
        for (const list of ariCalls) {
          const at = list.findIndex((e) => e.type === 'call.ringing');
          for (const e of list.slice(at)) if ('vars' in e) t.same(e.vars, ariWant.varsFromRinging, `ARI alone: ${e.type} carries the CRM variables`);
        }
      }
    });
  }

  t.test('when the CRM asks an ARI-only bridge for a call, then ARI places it, tagged click-to-call', async (t) => {
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent: '201', number: '555 4321', vars: { Omlcrmcustomerid: '777', Omlcrmnote: 'Acme, Inc. (VIP) & "co"' } }),
    });
    const body = (await res.json()) as Record<string, string>;
    t.equal(res.status, 202, JSON.stringify(body));
    const id = body['id']!;
    const events = await ari.waitForEvents((all) => {
      const mine = all.filter((e) => 'callId' in e && e.callId === id);
      return mine.some((e) => e.type === 'call.hangup') ? mine : undefined;
    }, 'the events of the ARI click-to-call');
    t.same(events.map((e) => e.type), ['call.started', 'call.ringing', 'call.answered', 'call.hangup'], 'then a real call: the agent answered, then the number rang and answered');
    for (const e of events) {
      t.same(validateEvent(e), []);
      t.match(e, { origin: 'click-to-call', vars: { Omlcrmcustomerid: '777', Omlcrmnote: 'Acme, Inc. (VIP) & "co"' } }, `${e.type} is tagged and carries the variables verbatim`);
    }
    t.match(events[0], { direction: 'outbound', agent: { id: '201' }, called: { number: '5554321' } });
    t.ok(ari.logs.some((l) => l['msg'] === 'click-to-call: ringing the agent, then the number' && l['via'] === 'ARI'), 'then it went through ARI');
  });

  t.test('when the CRM asks an ARI-only bridge for presence, then it gets a clear 503', async (t) => {
    const base = `http://127.0.0.1:${apiPort}/api/v1`;
    const headers = { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' };
    const presence = await fetch(`${base}/agents/201/presence`, { method: 'PUT', headers, body: JSON.stringify({ state: 'ready' }) });
    t.equal(presence.status, 503);
    t.match(await presence.json(), { error: /presence needs the AMI source/ });
    const ready = await fetch(`http://127.0.0.1:${apiPort}/readyz`);
    t.same(await ready.json(), { status: 'ready', checks: { ari: 'ok', outbox: 'ok (not used: no durable sink)' } }, 'then /readyz checks the ARI connection');
  });
});
