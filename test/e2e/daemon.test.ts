// The built daemon against a real Asterisk 22: every scenario, the exact normalized sequence,
// every event schema-valid; then the same AMI traffic, recorded meanwhile, replayed through
// `crm-bridge replay` gives the very same events.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { BridgeEvent, CallEvent } from '../../dist/events/types.js';
import { validateEvent } from '../../dist/events/validator.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, startAsterisk } from '../../lab/asterisk.js';
import { byCall, contractViolations, summarize } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';
import { canonical, EXPECTED } from '../helpers/expected.js';
import { recordAmi } from '../../lab/recorder.js';
import { scenarioNames, scenarios } from '../../lab/scenarios.js';

const BIN = new URL('../../bin/crm-bridge.js', import.meta.url).pathname;

t.test('given the daemon running against a real Asterisk', async (t) => {
  const asterisk = await startAsterisk({ name: 'daemon' });
  t.teardown(() => asterisk.stop());
  const configFile = writeConfig(e2eConfig(asterisk.amiPort));
  const daemon = startDaemon(configFile, { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'the daemon to log in and resync');
  t.notOk(JSON.stringify(daemon.logs).includes(BRIDGE_AMI_SECRET), 'the AMI secret appears in no log line');

  const recorder = await recordAmi(asterisk.amiPort, BRIDGE_AMI_USER, BRIDGE_AMI_SECRET);
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());

  for (const name of scenarioNames) {
    t.test(`when the ${name} scenario runs, then the daemon emits exactly its events`, async (t) => {
      const from = daemon.events.length;
      await scenarios[name](driver);
      const expected = EXPECTED[name];
      // Wait for the daemon to finish every call the scenario made (or its agent events).
      const slice = await daemon.waitForEvents((all) => {
        const mine = all.slice(from);
        const calls = byCall(mine);
        const allOver = [...calls.values()].every((l) => l.some((e) => e.type === 'call.hangup'));
        if (name === 'agent-session') return mine.some((e) => e.type === 'agent.logout') ? mine : undefined;
        const want = name === 'ten-calls' ? 10 : (expected?.calls?.length ?? 1);
        return calls.size >= want && allOver ? mine : undefined;
      }, `the events of ${name}`);

      for (const e of slice) {
        const problems = validateEvent(e);
        if (problems.length) t.fail(`${e.type} seq ${e.seq} is schema-valid: ${problems.join('; ')}`);
      }
      t.same(contractViolations(slice), [], 'then every contract guarantee holds');
      const calls = [...byCall(slice).values()];
      if (expected?.calls) {
        t.equal(calls.length, expected.calls.length, 'then it sees the expected calls');
        calls.forEach((list, i) => t.same(canonical(list.map(summarize), expected.unordered), expected.calls?.[i], `then call ${i + 1} is the exact sequence`));
      }
      if (expected?.agents) {
        t.same(slice.filter((e) => e.type.startsWith('agent.') && e.type !== 'agent.status').map(summarize), expected.agents);
      }
      if (expected?.varsFromQueued) {
        for (const list of calls) {
          for (const e of list.slice(list.findIndex((x) => x.type === 'call.queued'))) t.same(e.vars, expected.varsFromQueued, `${e.type} carries the CRM variables`);
        }
      }
      if (name === 'ten-calls') {
        t.equal(calls.length, 10, 'then ten calls');
        t.equal(new Set(calls.map((l) => (l[0] as CallEvent).caller.number)).size, 10, 'each with its own caller');
        for (const l of calls) t.ok(l.some((e) => e.type === 'call.answered'), `call ${l[0]?.callId} was answered`);
      }
      for (const e of slice) if ('vars' in e) t.notOk('Omlcrmnotexported' in e.vars, 'an unlisted Omlcrm variable never leaks');
    });
  }

  t.test('when the AMI traffic recorded meanwhile is replayed, then replay gives the same call events', async (t) => {
    // Everything Asterisk sent before the marker, the daemon's last Hangups included, is recorded
    // (a bare stop() under load cut the recording before them).
    const trace = await recorder.stopAfterUserEvent((f) => driver.action({ Action: 'UserEvent', ...f }));
    // Kept for post-mortems: the raw AMI of the whole session and what the daemon made of it.
    const dir = new URL('../../.cache/e2e-artifacts/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'daemon-session.ami');
    writeFileSync(file, trace);
    writeFileSync(join(dir, 'daemon-events.ndjson'), daemon.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'replay', file, '--config', configFile], { env: { PATH: process.env.PATH, E2E_AMI_SECRET: 'unused' }, stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      child.stdout.on('data', (d) => (s += d));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`replay exited ${code}`))));
    });
    const replayed = out.trim().split('\n').map((l) => JSON.parse(l) as BridgeEvent);
    const calls = (es: BridgeEvent[]) => es.filter((e) => e.type.startsWith('call.'));
    t.ok(calls(replayed).length > 50);
    t.same(calls(replayed), calls(daemon.events), 'then every call event is identical, ids included');
  });

  t.test('when the daemon gets SIGTERM, then it exits 0', async (t) => {
    t.equal(await daemon.stop(), 0);
  });
});
