// The ARI source against a real Asterisk 22, side by side with the AMI source on the same PBX:
// every scenario of lab/scenarios.ts, driven over AMI by the test driver, must give on
// the ARI path the AMI path's call events minus ARI's documented gaps (test/helpers/
// ari-expected.ts: no call.queued, queue null, no queue-member names, no agent.login / logout /
// paused / unpaused) — same calls, same callIds, same agents, channels, reasons and times — every
// event schema-valid and every contract guarantee kept. Then: a dropped ARI connection (a
// fault-injecting TCP proxy) is retried with our backoff and resynchronized, a wrong password or
// an absent server is logged and retried without crashing, and an ari.conf without
// `channelvars = CHANNEL(linkedid)` still groups calls (one lookup per channel, and a warning).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import t from 'tap';
import { AmiSource } from '../../dist/sources/ami/source.js';
import { AriSource, type AriSourceOptions } from '../../dist/sources/ari/source.js';
import type { BridgeEvent, CallEvent } from '../../dist/events/types.js';
import { validateEvent } from '../../dist/events/validator.js';
import { createTracker, normalize, type NormalizerInput } from '../../dist/normalizer/index.js';
import type { Subject } from 'rxjs';
import { AmiDriver, type AmiFrame } from '../../lab/ami-driver.js';
import { ariExpectation, ARI_DIFFERENCES } from '../helpers/ari-expected.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, freePort, startAsterisk } from '../../lab/asterisk.js';
import { byCall, contractViolations, summarize } from '../helpers/contract.js';
import { canonical, EXPECTED } from '../helpers/expected.js';
import { TEST_NORMALIZER } from '../helpers/replay.js';
import { scenarioNames, scenarios } from '../../lab/scenarios.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const ARI_USER = 'bridge';
const ARI_PASSWORD = 'bridge-secret';
/**
 * ARI and AMI stamp the same Asterisk happening at different moments: an ARI event carries its
 * stasis message's creation time, while AMI's Timestamp header is ast_tvnow() when the manager's
 * subscriber formats the event (main/manager.c), which lags behind on a busy machine (108 ms seen
 * under the full test suite's load). A second still tells a wrong clock or a receive-time stamp.
 */
const TIME_TOLERANCE_MS = 1000;

type Line = Record<string, unknown>;

interface Pipeline {
  readonly events: BridgeEvent[];
  readonly logs: Line[];
  readonly errors: unknown[];
  /** Resolves with check()'s first defined value, re-checked after every event and log line. */
  until<T>(check: () => T | undefined, what: string, timeoutMs?: number): Promise<T>;
  logSince(since: number, msg: string, what: string, timeoutMs?: number): Promise<Line>;
}

/** A source, the normalizer, and everything they emit or log, in this process. */
function pipeline(make: (log: pino.Logger) => { input$: Subject<NormalizerInput>; start(): Promise<void> }): Pipeline & { source: ReturnType<typeof make> } {
  const events: BridgeEvent[] = [];
  const logs: Line[] = [];
  const errors: unknown[] = [];
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  const log = pino({ level: 'debug' }, { write: (line: string) => (logs.push(JSON.parse(line) as Line), poke()) });
  const source = make(log);
  const tracker = createTracker(TEST_NORMALIZER);
  source.input$.pipe(normalize({ tracker, onError: (err) => errors.push(err) })).subscribe((e) => (events.push(e), poke()));
  void source.start();
  const until = <T>(check: () => T | undefined, what: string, timeoutMs = 60_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        const tail = logs.slice(-6).map((l) => JSON.stringify(l)).join('\n');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nlast logs:\n${tail}`));
      }, timeoutMs);
      const w = () => {
        const v = check();
        if (v === undefined) return;
        waiters.delete(w);
        clearTimeout(timer);
        resolve(v);
      };
      waiters.add(w);
      w();
    });
  const logSince = (since: number, msg: string, what: string, timeoutMs?: number) => until(() => logs.slice(since).find((l) => l.msg === msg), what, timeoutMs);
  return { source, events, logs, errors, until, logSince };
}

function ariSource(url: string, log: pino.Logger, extra: Partial<AriSourceOptions> = {}): AriSource {
  return new AriSource({
    url,
    username: ARI_USER,
    password: ARI_PASSWORD,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 },
    actionTimeoutMs: 5000,
    resync: true,
    log,
    ...extra,
  });
}

/** Every call in `events` has ended, and there are at least `want` calls. */
function callsOver(events: BridgeEvent[], want: number): Map<string, CallEvent[]> | undefined {
  const calls = byCall(events);
  const over = [...calls.values()].every((l) => l.some((e) => e.type === 'call.hangup'));
  return calls.size >= want && over ? calls : undefined;
}

const msOf = (iso: string) => new Date(iso).getTime();

/**
 * A loopback proxy that can go silent: while stalled it forwards nothing in either direction and
 * closes nothing — a peer that died without a FIN (power loss, a dropped route).
 */
async function startStallingProxy(targetPort: number): Promise<{ port: number; stall(on: boolean): void; close(): Promise<void> }> {
  let stalled = false;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      open.add(from);
      from.on('data', (d) => {
        if (!stalled) to.write(d);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => (to.destroy(), open.delete(from)));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall: (on) => (stalled = on),
    close: () => new Promise<void>((resolve) => (open.forEach((s) => s.destroy()), server.close(() => resolve()))),
  };
}

t.test('given an ARI source and an AMI source on one real Asterisk', async (t) => {
  const asterisk = await startAsterisk({ name: 'ari' });
  t.teardown(() => asterisk.stop());
  const url = `http://127.0.0.1:${asterisk.httpPort}`;

  const ari = pipeline((log) => ariSource(url, log));
  t.teardown(() => ari.source.stop());
  const ami = pipeline(
    (log) =>
      new AmiSource({ host: '127.0.0.1', port: asterisk.amiPort, username: BRIDGE_AMI_USER, secret: BRIDGE_AMI_SECRET, reconnect: false, actionTimeoutMs: 5000, resync: true, log }),
  );
  t.teardown(() => ami.source.stop());
  await ari.logSince(0, 'ARI state resynchronized', 'the ARI source to connect and resync');
  await ami.logSince(0, 'AMI state resynchronized', 'the AMI source to log in and resync');
  await ari.source.loggedIn;
  t.equal(ari.source.status.state, 'connected');

  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());

  for (const name of scenarioNames) {
    t.test(`when the ${name} scenario runs, then ARI gives the AMI path's call events minus its documented gaps`, async (t) => {
      const fromAri = ari.events.length;
      const fromAmi = ami.events.length;
      // A scenario that fails midway must not leave its calls to the next one.
      await scenarios[name](driver).catch(async (err: unknown) => {
        await driver.waitForAllCallsOver(120_000).catch(() => undefined);
        throw err;
      });
      const want = name === 'ten-calls' ? 10 : (EXPECTED[name]?.calls?.length ?? 0);
      const ariCalls = await ari.until(() => callsOver(ari.events.slice(fromAri), want), `the ARI events of ${name}`);
      const amiCalls = await ami.until(
        () => (name === 'agent-session' ? (ami.events.slice(fromAmi).some((e) => e.type === 'agent.logout') ? byCall([]) : undefined) : callsOver(ami.events.slice(fromAmi), want)),
        `the AMI events of ${name}`,
      );
      const slice = ari.events.slice(fromAri);
      const amiSlice = ami.events.slice(fromAmi);

      for (const e of slice) {
        const problems = validateEvent(e);
        if (problems.length) t.fail(`${e.type} seq ${e.seq} is schema-valid: ${problems.join('; ')}`);
      }
      t.same(contractViolations(slice), [], 'then every contract guarantee holds');
      t.same(ari.errors, [], 'then the normalizer reports no error');

      const expected = ariExpectation(name);
      const diff = ARI_DIFFERENCES[name]!;
      const lists = [...ariCalls.values()];
      if (expected.calls) {
        t.equal(lists.length, expected.calls.length, 'then it sees the expected calls');
        lists.forEach((l, i) => t.same(canonical(l.map(summarize), expected.unordered), expected.calls?.[i], `then call ${i + 1} is the AMI sequence minus ARI's gaps`));
      }
      if (name === 'ten-calls') {
        t.equal(lists.length, 10, 'then ten calls');
        t.equal(new Set(lists.map((l) => l[0]?.caller.number)).size, 10, 'each with its own caller');
        for (const l of lists) t.ok(l.some((e) => e.type === 'call.answered'), `call ${l[0]?.callId} was answered`);
      }
      if (expected.varsFromRinging) {
        for (const l of lists) {
          const from = l.findIndex((e) => e.type === 'call.ringing');
          t.ok(from > 0, 'then the call rang');
          for (const e of l.slice(from)) t.same(e.vars, expected.varsFromRinging, `then ${e.type} carries the CRM variables`);
        }
      }
      for (const e of slice) if ('vars' in e) t.notOk('Omlcrmnotexported' in e.vars, 'then an unlisted Omlcrm variable never leaks');
      const agentLines = slice.filter((e) => e.type.startsWith('agent.') && e.type !== 'agent.status').map(summarize);
      t.same(agentLines, [], 'then ARI gives no agent.login / logout / paused / unpaused (no queue-member events)');
      if (diff.droppedAgentEvents) t.ok(amiSlice.some((e) => e.type === 'agent.login'), 'while AMI does');

      // Side by side with what the AMI source made of the very same calls.
      t.same([...ariCalls.keys()].sort(), [...amiCalls.keys()].sort(), 'then the same calls, with the same callIds');
      for (const [callId, ariList] of ariCalls) {
        const amiList = amiCalls.get(callId) ?? [];
        const amiComparable = amiList.filter((e) => !diff.droppedLines.includes(summarize(e)));
        const order = (l: CallEvent[]) => canonical(l.map(summarize), EXPECTED[name]?.unordered ?? []);
        t.same(order(ariList), order(amiComparable), `then call ${callId} has the AMI events minus ${JSON.stringify(diff.droppedLines)}`);
        const key = (e: CallEvent) => `${summarize(e)}`;
        const amiByKey = new Map(amiComparable.map((e) => [key(e), e]));
        for (const a of ariList) {
          const m = amiByKey.get(key(a));
          if (!m) continue;
          const what = `${a.type}${a.agent ? ` ${a.agent.id}` : ''}`;
          t.same(
            { caller: a.caller, called: a.called, direction: a.direction, agentId: a.agent?.id ?? null, channel: a.channel },
            { caller: m.caller, called: m.called, direction: m.direction, agentId: m.agent?.id ?? null, channel: m.channel },
            `then ${what} names the same parties and channel`,
          );
          t.ok(Math.abs(msOf(a.time) - msOf(m.time)) <= TIME_TOLERANCE_MS, `then ${what} happened at the same time (ARI ${a.time}, AMI ${m.time})`);
          t.same(a.queue, diff.queueUnknown ? null : m.queue, `then ${what}'s queue is ${diff.queueUnknown ? 'unknown on ARI' : 'the same'}`);
          if (a.agent && m.agent) {
            // Names come from queue members (AMI only) or the agents config (none here).
            t.same({ ...a.agent, name: null }, { ...m.agent, name: null }, `then ${what} names the same agent`);
            t.equal(a.agent.name, null, `then ${what}'s agent has no name on ARI`);
          }
          if (a.type === 'call.hangup' && m.type === 'call.hangup') {
            t.same([a.disposition, a.hangupBy, a.cause], [m.disposition, m.hangupBy, m.cause], 'then the same disposition, hangupBy and cause');
            t.ok(Math.abs(a.durations.totalSeconds - m.durations.totalSeconds) <= TIME_TOLERANCE_MS / 1000, 'then the same duration');
          }
          if (a.type === 'call.missed' && m.type === 'call.missed') t.equal(a.reason, m.reason, 'then the same missed reason');
          if (a.type === 'call.ring_stopped' && m.type === 'call.ring_stopped') t.equal(a.reason, m.reason, 'then the same ring-stop reason');
        }
      }
    });
  }

  t.test('when ari.conf has no channelvars, then each new channel\'s Linkedid is looked up and calls still group', async (t) => {
    const conf = path.join(asterisk.root, asterisk.etcDir, 'ari.conf');
    const original = fs.readFileSync(conf, 'utf8');
    t.teardown(async () => {
      fs.writeFileSync(conf, original);
      await asterisk.cli('module reload res_ari.so');
    });
    fs.writeFileSync(conf, original.replace(/^channelvars\s*=.*$/m, ''));
    await asterisk.cli('module reload res_ari.so');
    const plain = pipeline((log) => ariSource(url, log, { app: 'crm-bridge-novars' }));
    t.teardown(() => plain.source.stop());
    await plain.logSince(0, 'ARI state resynchronized', 'the second ARI source to connect');
    const from = plain.events.length;
    await scenarios['direct-answered'](driver);
    const calls = await plain.until(() => callsOver(plain.events.slice(from), 1), 'the call on the source without channelvars');
    t.same([...calls.values()].map((l) => l.map(summarize)), ariExpectation('direct-answered').calls, 'then the call is whole');
    t.ok(plain.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('channelvars = CHANNEL(linkedid)')), 'then the operator is told what to add');
  });

  t.test('then no log line shows the ARI password, and swagger-client\'s console output went to the debug log', async (t) => {
    t.notOk(JSON.stringify(ari.logs).includes(ARI_PASSWORD));
    t.ok(ari.logs.some((l) => l.msg === 'swagger-client message' && String(l.swagger).includes('deprecated version of Swagger')));
  });

  t.test('given calls in progress when the ARI connection drops', async (t) => {
    const proxy = await startTcpProxy(asterisk.httpPort);
    t.teardown(() => proxy.close());
    const random = () => 0.5; // no jitter: the delays are exactly the policy's
    const src = pipeline((log) =>
      ariSource(`http://127.0.0.1:${proxy.port}`, log, { app: 'crm-bridge-reconnect', reconnect: { initialDelayMs: 100, maxDelayMs: 400, factor: 2, jitter: 0.5 }, random }),
    );
    t.teardown(() => src.source.stop());
    await src.logSince(0, 'ARI state resynchronized', 'the first connection');
    await driver.setGlobals({
      AGENT_201_MODE: 'answer', AGENT_201_DELAY: 1, AGENT_201_TALK: 120,
      AGENT_202_MODE: 'answer', AGENT_202_DELAY: 1, AGENT_202_TALK: 120,
      AGENT_203_MODE: 'answer', AGENT_203_DELAY: 1, AGENT_203_TALK: 120,
    });
    const CALLER = '"Reconnect Test" <+4930111222>';
    const answeredCall = async (ext: string): Promise<string> => {
      const since = driver.mark();
      await driver.originate({ channel: `Local/4100420${ext.slice(-1)}@from-pstn`, context: 'caller', exten: 'wait', callerId: CALLER, variables: { CALLER_WAIT: '120' } });
      const answered: AmiFrame = await driver.waitFor(
        (f) => f.event === 'DialEnd' && (f.get('DestChannel') ?? '').startsWith(`Local/${ext}@agents-`) && f.get('DialStatus') === 'ANSWER',
        20_000,
        `agent ${ext} to answer`,
        since,
      );
      return answered.get('Linkedid') ?? '';
    };
    const callerChannel = (linkedid: string) => driver.channelsOf(linkedid).find((c) => !c.hungUp && c.channel.startsWith('Local/4100420'))?.channel ?? '';
    const saw = (linkedid: string, type: string) => src.until(() => src.events.find((e) => e.type === type && 'callId' in e && e.callId === linkedid), `${type} of ${linkedid}`, 20_000);

    const spanning = await answeredCall('203');
    await saw(spanning, 'call.answered');

    const callerId = driver.channelsOf(spanning).find((c) => c.channel === callerChannel(spanning))?.uniqueid ?? '';
    t.equal(await src.source.getVar(callerId, 'CALLER_WAIT'), '120', 'then getVar reads a channel variable');
    t.equal(await src.source.getVar(callerId, 'CHANNEL(linkedid)'), spanning, 'and a function');
    t.equal(await src.source.getVar(callerId, 'OMLCRM_NEVER_SET'), null, 'and null for a variable that is not set');
    await t.rejects(src.source.getVar('1.999999', 'CALLER_WAIT'), /channel was not found/, 'and rejects for a channel that does not exist');
    const endsWhileAway = await answeredCall('201');
    await saw(endsWhileAway, 'call.answered');

    const logsBefore = src.logs.length;
    proxy.cut();
    await src.logSince(logsBefore, 'ARI disconnected; reconnecting', 'the source to notice the drop', 10_000);
    // While the proxy refuses, attempts fail and the delays grow to the cap: 100, 200, 400, 400.
    const retries = await src.until(() => {
      const r = src.logs.slice(logsBefore).filter((l) => l.msg === 'ARI disconnected; reconnecting');
      return r.length >= 4 ? r : undefined;
    }, 'four failed attempts', 20_000);
    t.same(retries.slice(0, 4).map((l) => l.retryInMs), [100, 200, 400, 400], 'then it retries with capped exponential backoff');
    t.equal(src.source.status.state === 'connected', false, 'then it does not claim to be connected');

    await driver.action({ Action: 'Hangup', Channel: callerChannel(endsWhileAway) });
    await driver.waitForCallOver(endsWhileAway, 20_000);
    const beganWhileAway = await answeredCall('202');

    const logsAtResume = src.logs.length;
    proxy.resume();
    await src.logSince(logsAtResume, 'ARI state resynchronized', 'the resync after reconnecting', 20_000);
    await saw(endsWhileAway, 'call.hangup');
    await saw(beganWhileAway, 'call.answered');
    for (const id of [spanning, beganWhileAway]) {
      await driver.action({ Action: 'Hangup', Channel: callerChannel(id) });
      await driver.waitForCallOver(id, 20_000);
      await saw(id, 'call.hangup');
    }

    const calls = byCall(src.events);
    const lines = (id: string) => (calls.get(id) ?? []).map(summarize);
    t.same(lines(endsWhileAway), ['call.started', 'call.ringing 201', 'call.answered 201', 'call.hangup answered by:system'], 'then the call that ended while away ends exactly once');
    t.same(lines(beganWhileAway), ['call.started', 'call.answered 202', 'call.hangup answered by:caller'], 'then the call that began while away is picked up, answered by 202');
    t.same(lines(spanning), ['call.started', 'call.ringing 203', 'call.answered 203', 'call.hangup answered by:caller'], 'then the call spanning the outage is neither lost nor duplicated');
    t.same(contractViolations(src.events), [], 'then every contract guarantee holds');
    t.equal((calls.get(beganWhileAway)?.[0])?.caller.number, '+4930111222', 'then the picked-up call knows its caller');
    t.ok(src.source.status.logins >= 2, 'then it logged in again');
    t.notOk(JSON.stringify(src.logs).includes(ARI_PASSWORD), 'then no log line shows the password');
  });

  t.test('when the peer goes silent without closing, then the missing ping answer drops the connection and it reconnects', async (t) => {
    const proxy = await startStallingProxy(asterisk.httpPort);
    t.teardown(() => proxy.close());
    const src = pipeline((log) => ariSource(`http://127.0.0.1:${proxy.port}`, log, { app: 'crm-bridge-silent', pingIntervalMs: 200, actionTimeoutMs: 1000 }));
    t.teardown(() => src.source.stop());
    await src.logSince(0, 'ARI state resynchronized', 'the first connection');
    const before = src.logs.length;
    proxy.stall(true);
    const drop = await src.logSince(before, 'ARI disconnected; reconnecting', 'the silent connection to be dropped', 10_000);
    t.match(String(drop.reason), /no answer to a websocket ping/, 'then the reason is the missing pong');
    const resumed = src.logs.length;
    proxy.stall(false);
    await src.logSince(resumed, 'ARI state resynchronized', 'the resync once the peer answers again', 20_000);
    t.equal(src.source.status.state, 'connected');
  });

  t.test('when the password is wrong, then the rejection is logged and retried, and nothing crashes', async (t) => {
    const bad = pipeline((log) => ariSource(url, log, { password: 'not-the-secret', app: 'crm-bridge-badpw' }));
    t.teardown(() => bad.source.stop());
    await bad.until(() => (bad.source.status.failures >= 2 ? true : undefined), 'two failed attempts');
    t.ok(bad.logs.some((l) => l.msg === 'ARI login rejected (check the ARI username and password, and ari.conf)'), 'then the log says the login was rejected');
    t.equal(bad.source.status.lastError, 'login rejected (401)');
    t.notOk(JSON.stringify(bad.logs).includes('not-the-secret'), 'then the wrong password is not logged either');
  });
});

t.test('when nothing listens at the ARI address, then the error is logged and retried, and nothing crashes', async (t) => {
  const port = await freePort();
  const src = pipeline((log) => ariSource(`http://127.0.0.1:${port}`, log, { app: 'crm-bridge-nobody' }));
  t.teardown(() => src.source.stop());
  const first = await src.logSince(0, 'ARI disconnected; reconnecting', 'the first failure');
  t.match(String(first.reason), /ECONNREFUSED/, 'then the reason names the refused connection');
  await src.until(() => (src.source.status.failures >= 3 ? true : undefined), 'three failed attempts');
  t.equal(src.source.status.state === 'connected', false);
});
