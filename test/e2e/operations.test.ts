// Operations against a real Asterisk 22, through the built daemon (`crm-bridge run`):
// - the systemd unit passes `systemd-analyze verify`;
// - under a notify socket (what systemd gives a Type=notify service) the daemon says READY=1
//   only after AMI logged in, pings WATCHDOG=1, says RELOADING=1 / READY=1 around SIGHUP, and
//   STOPPING=1 on SIGTERM;
// - SIGTERM drains: an in-flight webhook finishes before the exit (0); a second signal exits at
//   once and the event stays in the outbox; past shutdown.timeoutMs the daemon exits anyway;
// - SIGHUP reloads sinks, agents and tokens without a new AMI login and without losing events,
//   and refuses an invalid file, keeping the running config;
// - /healthz, /readyz (503 while AMI is away), /metrics (token, content).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { validateEvent } from '../../dist/events/validator.js';
import type { BridgeEvent } from '../../dist/events/types.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { byCall } from '../helpers/contract.js';
import { e2eConfig, startDaemon, writeConfig, type Daemon } from '../helpers/daemon.js';
import { startReceiver, type Received } from '../helpers/receivers.js';
import { connectSse } from '../helpers/sse.js';
import { scenarios } from '../../lab/scenarios.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const METRICS_TOKEN = 'e2e-metrics-token-0123456789abcdef0123';
const AGENT_TOKEN = 'e2e-ops-agent-201-token-0123456789abcd';
const NEW_AGENT_TOKEN = 'e2e-ops-agent-203-token-0123456789abcd';
const OLD_AGENT_TOKEN = 'e2e-ops-agent-209-token-0123456789abcd';

interface NotifySocket {
  path: string;
  messages: string[];
  waitFor(pred: (m: string) => boolean, what: string, from?: number, timeoutMs?: number): Promise<number>;
  close(): void;
}

/** What systemd does for a Type=notify service: a unix datagram socket the service writes to. */
function notifySocket(): NotifySocket {
  const unix = createRequire(import.meta.url)('unix-dgram') as {
    createSocket(type: string, listener: (buf: Buffer) => void): { bind(path: string): void; close(): void; on(e: string, f: (err: Error) => void): void };
  };
  const path = join(mkdtempSync(join(tmpdir(), 'crm-bridge-notify-')), 'notify.sock');
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  const socket = unix.createSocket('unix_dgram', (buf) => {
    messages.push(buf.toString('utf8'));
    for (const w of [...waiters]) w();
  });
  socket.on('error', () => undefined);
  socket.bind(path);
  return {
    path,
    messages,
    waitFor: (pred, what, from = 0, timeoutMs = 20_000) =>
      new Promise<number>((resolve, reject) => {
        const check = () => {
          const i = messages.findIndex((m, n) => n >= from && pred(m));
          if (i < 0) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(i);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => socket.close(),
  };
}

async function get(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, text: await res.text() };
}

/** One metric's value from the Prometheus text, or null. */
function metric(text: string, name: string, labels = ''): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null;
}

t.test('the systemd unit passes systemd-analyze verify', async (t) => {
  const unit = readFileSync(join(ROOT, 'systemd/crm-bridge.service'), 'utf8');
  t.match(unit, /^Type=notify$/m);
  t.match(unit, /^WatchdogSec=\d+s$/m);
  t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  // verify checks that ExecStart exists: point it at this checkout's executable.
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-unit-'));
  writeFileSync(join(dir, 'crm-bridge.service'), unit.replace('/usr/bin/crm-bridge', join(ROOT, 'bin/crm-bridge.js')));
  const { stdout, stderr } = await run('systemd-analyze', ['verify', join(dir, 'crm-bridge.service')]);
  t.equal(stderr, '', 'no warnings');
  t.equal(stdout, '');
  // The per-role template (a bridge, a webhook node, a pop node on one machine).
  const template = readFileSync(join(ROOT, 'systemd/crm-bridge@.service'), 'utf8');
  t.match(template, /^ExecStart=\/usr\/bin\/crm-bridge run --config \/etc\/crm-bridge\/%i\.yaml$/m);
  t.match(template, /^StateDirectory=crm-bridge\/%i$/m, 'one outbox per instance');
  writeFileSync(join(dir, 'crm-bridge@.service'), template.replace('/usr/bin/crm-bridge', join(ROOT, 'bin/crm-bridge.js')));
  for (const role of ['pbx1', 'webhooks', 'pops']) {
    const r = await run('systemd-analyze', ['verify', join(dir, `crm-bridge@${role}.service`)]);
    t.equal(r.stderr + r.stdout, '', `crm-bridge@${role} verifies`);
  }
});

t.test('given a real Asterisk', async (t) => {
  const asterisk = await startAsterisk({ name: 'ops' });
  t.teardown(() => asterisk.stop());
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());

  t.test('when run under a notify socket, then systemd hears READY after the AMI login, watchdog pings, reload and stopping', async (t) => {
    const notify = notifySocket();
    t.teardown(() => notify.close());
    // AMI first unreachable: nothing listens on this port yet.
    const amiPort = await freePort();
    const daemon = startDaemon(writeConfig(e2eConfig(amiPort)), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '400000' });
    t.teardown(() => daemon.stop());
    await daemon.waitForLog((l) => l['msg'] === 'AMI disconnected; reconnecting', 'a failed AMI connection');
    await notify.waitFor((m) => m.startsWith('STATUS=connecting to AMI'), 'STATUS connecting');
    t.notOk(notify.messages.some((m) => m.includes('READY=1')), 'then no READY while AMI is unreachable');
    // Asterisk "comes up": a proxy to it on the port the daemon keeps trying.
    const proxy = await startTcpProxyOn(amiPort, asterisk.amiPort);
    t.teardown(() => proxy.close());
    const ready = await notify.waitFor((m) => m.split('\n').includes('READY=1'), 'READY=1');
    t.match(notify.messages[ready], new RegExp(`MAINPID=${daemon.child.pid}`));
    t.match(notify.messages[ready], /STATUS=connected to AMI at 127\.0\.0\.1:\d+/, 'then READY says it is connected to AMI');
    // (the daemon's log lines are written asynchronously: the login line may trail the datagram)
    await daemon.waitForLog((l) => l['msg'] === 'AMI connected and logged in', 'the login the READY followed');
    const firstPing = await notify.waitFor((m) => m === 'WATCHDOG=1', 'a watchdog ping', ready);
    await notify.waitFor((m) => m === 'WATCHDOG=1', 'a second watchdog ping', firstPing + 1);

    const beforeHup = notify.messages.length;
    daemon.child.kill('SIGHUP');
    const reloading = await notify.waitFor((m) => m.startsWith('RELOADING=1\nMONOTONIC_USEC='), 'RELOADING=1', beforeHup);
    await notify.waitFor((m) => m.split('\n').includes('READY=1'), 'READY=1 after the reload', reloading + 1);
    const beforeTerm = notify.messages.length;
    const code = await daemon.stop();
    t.equal(code, 0);
    t.ok(notify.messages.slice(beforeTerm).some((m) => m.startsWith('STOPPING=1')), 'then STOPPING=1 on SIGTERM');
  });

  t.test('when stopped while a webhook is in flight', async (t) => {
    let release: () => void = () => undefined;
    let arrived: (r: Received) => void = () => undefined;
    const receiver = await startReceiver();
    t.teardown(() => receiver.close());
    const hold = () => {
      const got = new Promise<Received>((r) => (arrived = r));
      const gate = new Promise<void>((r) => (release = r));
      receiver.setRespond(async (req) => {
        arrived(req);
        await gate;
        return { status: 200, body: '{}' };
      });
      return got;
    };
    const config = (extra = '') =>
      writeConfig(
        e2eConfig(
          asterisk.amiPort,
          `${extra}
`,
        ).replace('sinks:\n  - type: log', `sinks:\n  - type: log\n  - { type: webhook, name: crm, url: "${receiver.url}/hook", events: [call.started], timeouts: { readMs: 60000 } }`),
      );

    t.test('then SIGTERM waits for it to finish and exits 0', async (t) => {
      const daemon = startDaemon(config(), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
      t.teardown(() => daemon.stop());
      await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'login');
      const got = hold();
      const call = scenarios['direct-answered'](driver);
      const req = await got;
      daemon.child.kill('SIGTERM');
      await daemon.waitForLog((l) => l['msg'] === 'shutting down: draining deliveries and closing streams', 'the shutdown to begin');
      t.equal(daemon.child.exitCode, null, 'then the daemon is still running while the delivery is in flight');
      release();
      t.equal(await daemon.exit, 0);
      const logs = daemon.logs.map((l) => l['msg']);
      t.ok(logs.includes('stopped'));
      t.notOk(logs.includes('shutdown deadline reached: exiting with work unfinished (undelivered events stay in the outbox for the next start)'));
      t.match(JSON.parse(req.body), { type: 'call.started' });
      await call;
    });

    t.test('then a second signal exits at once, and the event stays in the outbox', async (t) => {
      const file = config();
      const daemon = startDaemon(file, { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
      t.teardown(() => daemon.stop());
      await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'login');
      const got = hold();
      const call = scenarios['direct-answered'](driver);
      const req = await got;
      const id = (JSON.parse(req.body) as BridgeEvent).id;
      daemon.child.kill('SIGTERM');
      await daemon.waitForLog((l) => l['msg'] === 'shutting down: draining deliveries and closing streams', 'the shutdown to begin');
      daemon.child.kill('SIGTERM');
      t.equal(await daemon.exit, 1, 'then it exits at once (1: it did not finish)');
      t.ok(daemon.logs.some((l) => l['msg'] === 'second signal: exiting now'));
      const { stdout } = await run(process.execPath, [join(ROOT, 'bin/crm-bridge.js'), 'outbox', 'list', '--config', file], { env: { PATH: process.env.PATH, E2E_AMI_SECRET: BRIDGE_AMI_SECRET } });
      const waiting = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventId: string; sink: string });
      t.ok(waiting.some((w) => w.eventId === id && w.sink === 'crm'), 'then the event still waits in the outbox for the next start');
      release();
      await call;
    });

    t.test('then past shutdown.timeoutMs it exits anyway', async (t) => {
      const daemon = startDaemon(config('shutdown:\n  timeoutMs: 1000'), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
      t.teardown(() => daemon.stop());
      await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'login');
      const got = hold();
      const call = scenarios['direct-answered'](driver);
      await got;
      daemon.child.kill('SIGTERM');
      t.equal(await daemon.exit, 0);
      t.ok(daemon.logs.some((l) => l['msg'] === 'shutdown deadline reached: exiting with work unfinished (undelivered events stay in the outbox for the next start)'));
      release();
      await call;
    });
  });

  t.test('when the config is reloaded with SIGHUP', async (t) => {
    const a = await startReceiver();
    const b = await startReceiver();
    t.teardown(() => a.close());
    t.teardown(() => b.close());
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-reload-'));
    const file = join(dir, 'config.yaml');
    const base = e2eConfig(asterisk.amiPort);
    const write = (sinks: string, agents: string) =>
      writeFileSync(
        file,
        base.replace('sinks:\n  - type: log', `sinks:\n  - type: log\n${sinks}`) +
          `http:\n  listen: 127.0.0.1:${port}\n  metricsToken: ${METRICS_TOKEN}\nagents:\n${agents}`,
      );
    const sinkA = `  - { type: webhook, name: a, url: "${a.url}/a" }`;
    const sinkB = `  - { type: webhook, name: b, url: "${b.url}/b" }`;
    write(sinkA, `  - { id: "201", extension: "201", token: ${AGENT_TOKEN} }\n  - { id: "209", extension: "209", token: ${OLD_AGENT_TOKEN} }\n`);
    const daemon: Daemon = startDaemon(file, { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
    t.teardown(() => daemon.stop());
    await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'login');
    const http = `http://127.0.0.1:${port}`;
    t.equal((await get(`${http}/agent/me`, OLD_AGENT_TOKEN)).status, 200, 'given agent 209 can connect');

    // Calls run while the config changes under them.
    const from = daemon.events.length;
    const calls = scenarios['ten-calls'](driver);
    await daemon.waitForEvents((all) => (all.slice(from).filter((e) => e.type === 'call.started').length >= 3 ? true : undefined), 'the first calls');
    // Sink a holds a delivery, so stopping it for the swap takes a while (up to the sink's 5 s
    // drain deadline), and events come in meanwhile: they must be held for the new sinks, not
    // dropped. Agent 201's event stream (the screen-pop channel stays up during the swap) shows
    // when the daemon has taken in the pause made during the swap.
    const stream = await connectSse(`${http}/agent/events`, { authorization: `Bearer ${AGENT_TOKEN}` });
    t.teardown(() => stream.cut());
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let held: () => void = () => undefined;
    const holding = new Promise<void>((r) => (held = r));
    a.setRespond(async () => {
      held();
      await gate;
      return { status: 200, body: '{}' };
    });
    await holding;
    write(`${sinkA}\n${sinkB}`, `  - { id: "201", extension: "201", token: ${AGENT_TOKEN} }\n  - { id: "203", extension: "203", token: ${NEW_AGENT_TOKEN} }\n`);
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog((l) => l['msg'] === 'reload: swapping sinks; events meanwhile are held for the new ones', 'the sink swap to begin');
    await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: 'Local/201@agents', Paused: 'true', Reason: 'during-reload' });
    await stream.waitFor((c) => c.messages.some((m) => m.data.includes('during-reload')), "201's pause on its stream");
    const duringSwap = !daemon.logs.some((l) => l['msg'] === 'SIGHUP: config reloaded');
    a.setRespond(() => ({ status: 200, body: '{}' }));
    release();
    await daemon.waitForLog((l) => l['msg'] === 'SIGHUP: config reloaded', 'the reload');
    t.ok(duringSwap, 'given the pause arrived while sink a was still draining');
    const pauseId = (JSON.parse(stream.messages.find((m) => m.data.includes('during-reload'))!.data) as BridgeEvent).id;
    await a.waitFor((r) => r.some((q) => (JSON.parse(q.body) as BridgeEvent).id === pauseId), 'sink a to get the pause made during the swap');
    await b.waitFor((r) => r.some((q) => (JSON.parse(q.body) as BridgeEvent).id === pauseId), 'sink b (new) to get it too');
    t.pass('then the event that arrived during the swap reached the sinks');
    await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: 'Local/201@agents', Paused: 'false' });
    const reloaded = daemon.logs.find((l) => l['msg'] === 'SIGHUP: config reloaded')!;
    t.same(reloaded['applied'], ['agents', 'sinks', 'http (tokens, screen-pop rules, API)']);
    await calls;
    const events = await daemon.waitForEvents((all) => {
      const mine = [...byCall(all.slice(from)).values()];
      return mine.length === 10 && mine.every((c) => c.some((e) => e.type === 'call.hangup')) ? mine.flat() : undefined;
    }, 'all ten calls to end');
    t.same(events.flatMap((e) => validateEvent(e)), []);
    const ids = events.map((e) => e.id);
    await a.waitFor((r) => ids.every((id) => r.some((q) => (JSON.parse(q.body) as BridgeEvent).id === id)), 'sink a to get every event of the ten calls');
    t.pass('then the sink that stayed got every event, across the reload');
    const lateIds = ids.filter((id) => b.requests.some((q) => (JSON.parse(q.body) as BridgeEvent).id === id));
    t.ok(lateIds.length > 0, 'then the new sink gets events from the reload on');
    const logins = daemon.logs.filter((l) => l['msg'] === 'AMI connected and logged in').length;
    t.equal(logins, 1, 'then AMI was not reconnected');
    t.equal((await get(`${http}/agent/me`, OLD_AGENT_TOKEN)).status, 401, "then the removed agent's token no longer works");
    t.equal((await get(`${http}/agent/me`, NEW_AGENT_TOKEN)).status, 200, "then the new agent's token works");

    writeFileSync(file, 'pbx: [this is not a config\n');
    daemon.child.kill('SIGHUP');
    const refused = await daemon.waitForLog((l) => l['msg'] === 'SIGHUP: the new config is not valid; kept the running one', 'the refusal');
    t.ok(Array.isArray(refused['problems']) && (refused['problems'] as string[]).length > 0, 'then it says what is wrong');
    t.equal((await get(`${http}/agent/me`, NEW_AGENT_TOKEN)).status, 200, 'then the running config is kept');
    const more = daemon.events.length;
    await scenarios['direct-answered'](driver);
    await daemon.waitForEvents((all) => (all.slice(more).some((e) => e.type === 'call.hangup') ? true : undefined), 'a call after the refused reload');
    t.pass('then events still flow');
    const m = await get(`${http}/metrics`, METRICS_TOKEN);
    t.equal(metric(m.text, 'crm_bridge_config_reloads_total', 'result="applied"'), 1);
    t.equal(metric(m.text, 'crm_bridge_config_reloads_total', 'result="refused"'), 1);
  });

  t.test('then /healthz, /readyz and /metrics tell the operator what is going on', async (t) => {
    const proxy = await startTcpProxy(asterisk.amiPort);
    t.teardown(() => proxy.close());
    const receiver = await startReceiver();
    t.teardown(() => receiver.close());
    const port = await freePort();
    const config = e2eConfig(proxy.port)
      .replace('sinks:\n  - type: log', `sinks:\n  - type: log\n  - { type: webhook, name: crm, url: "${receiver.url}/hook" }`)
      .concat(`http:\n  listen: 127.0.0.1:${port}\n  metricsToken: ${METRICS_TOKEN}\nagents:\n  - { id: "201", extension: "201", token: ${AGENT_TOKEN} }\n`);
    const daemon = startDaemon(writeConfig(config), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
    t.teardown(() => daemon.stop());
    await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'login');
    const http = `http://127.0.0.1:${port}`;
    t.same(JSON.parse((await get(`${http}/healthz`)).text), { status: 'ok' });
    const ready = await get(`${http}/readyz`);
    t.equal(ready.status, 200);
    t.same(JSON.parse(ready.text), { status: 'ready', checks: { ami: 'ok', outbox: 'ok' } });

    const from = daemon.events.length;
    await scenarios['direct-answered'](driver);
    const call = await daemon.waitForEvents((all) => {
      const mine = all.slice(from);
      return mine.some((e) => e.type === 'call.hangup') ? mine : undefined;
    }, 'the call');
    await receiver.waitFor((r) => r.length >= call.length, 'every event delivered');

    t.equal((await get(`${http}/metrics`)).status, 401, 'then /metrics needs a token');
    t.equal((await get(`${http}/metrics`, AGENT_TOKEN)).status, 403, "then an agent's token is not enough");
    const m = await get(`${http}/metrics`, METRICS_TOKEN);
    t.equal(m.status, 200);
    t.equal(metric(m.text, 'crm_bridge_ami_connected'), 1);
    t.equal(metric(m.text, 'crm_bridge_ami_logins_total'), 1);
    t.ok((metric(m.text, 'crm_bridge_ami_events_received_total') ?? 0) > call.length, 'AMI events counted');
    t.equal(metric(m.text, 'crm_bridge_events_total', 'type="call.started"'), 1);
    t.equal(metric(m.text, 'crm_bridge_events_total', 'type="call.hangup"'), 1);
    t.equal(metric(m.text, 'crm_bridge_calls_in_progress'), 0);
    // Device-state events may trail the call's hang-up, so count against what the receiver got.
    const delivered = metric(m.text, 'crm_bridge_sink_deliveries_total', 'sink="crm",result="delivered"') ?? 0;
    t.ok(delivered >= call.length && delivered <= receiver.requests.length, `then every delivery is counted (${delivered}; the call had ${call.length} events, the receiver got ${receiver.requests.length})`);
    t.equal(metric(m.text, 'crm_bridge_outbox_depth', 'sink="crm"'), 0);
    t.equal(metric(m.text, 'crm_bridge_dead_letters', 'sink="crm"'), 0);
    t.equal(metric(m.text, 'crm_bridge_sse_clients'), 0);
    const byType = m.text.split('\n').filter((l) => l.startsWith('crm_bridge_events_total{')).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    t.equal(metric(m.text, 'crm_bridge_event_latency_seconds_count'), byType, 'then every event counted has its latency observed');
    t.equal(metric(m.text, 'crm_bridge_sink_delivery_latency_seconds_count', 'sink="crm"'), delivered, 'then every delivery has its latency observed');
    t.match(m.text, /^crm_bridge_process_resident_memory_bytes \d+/m, 'process metrics too');

    proxy.cut();
    await daemon.waitForLog((l) => l['msg'] === 'AMI disconnected; reconnecting', 'the AMI link to drop');
    const down = await get(`${http}/readyz`);
    t.equal(down.status, 503, 'then /readyz says not ready while AMI is away');
    t.match(JSON.parse(down.text), { status: 'not ready', checks: { ami: /^AMI (disconnected|connecting)/, outbox: 'ok' } });
    t.equal((await get(`${http}/healthz`)).status, 200, 'then /healthz still says the process is up');
    const m2 = await get(`${http}/metrics`, METRICS_TOKEN);
    t.equal(metric(m2.text, 'crm_bridge_ami_connected'), 0);
    proxy.resume();
    await daemon.waitForLog((l) => l['msg'] === 'AMI connected and logged in' && l['logins'] === 2, 'the second login');
    t.equal((await get(`${http}/readyz`)).status, 200, 'then ready again');
  });
});

/** A TCP proxy listening on a given port (the one the daemon keeps retrying). */
async function startTcpProxyOn(listenPort: number, targetPort: number) {
  const net = await import('node:net');
  const open = new Set<import('node:net').Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', () => r()));
  return {
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}
