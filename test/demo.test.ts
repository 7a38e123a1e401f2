// `npm run demo`, end to end, as a user runs it: the demo program (demo/run.ts) with the built
// daemon, once replaying the recorded calls and once with a real Asterisk. What the user is told
// to open must work: agent 201's event stream delivers the pop of a ringing call, the sample
// CRM has received schema-valid webhooks and serves the popped contact page, escaped. Ctrl-C
// (SIGINT) stops everything and exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { validateEvent } from '../dist/events/validator.js';
import type { BridgeEvent, CallRinging } from '../dist/events/types.js';
import { connectSse, type SseClient } from './helpers/sse.js';

const REPO = new URL('..', import.meta.url).pathname;
// A first run on a fresh machine builds the Asterisk root filesystem (minutes) before the live
// demo starts; the usual per-file limit is too short for that.
t.setTimeout(20 * 60_000);

interface Demo {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line (seen or to come) matching `re`. */
  line(re: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal) once the demo has exited. */
  exited: Promise<number | string>;
}

function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, ['--import', '@tapjs/typescript/import', 'demo/run.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let exitedWith: number | string | undefined;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedWith = signal ?? code ?? 'unknown';
      resolve(exitedWith);
      for (const w of [...waiters]) w();
    }),
  );
  const onLine = (line: string) => {
    lines.push(line);
    for (const w of [...waiters]) w();
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', (l) => onLine(`stderr: ${l}`));
  const line = (re: RegExp, what: string, timeoutMs = 120_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        for (const l of lines) {
          const m = re.exec(l);
          if (m) return done(() => resolve(m));
        }
        if (exitedWith !== undefined) done(() => reject(new Error(`the demo exited (${exitedWith}) before ${what}\n${lines.slice(-20).join('\n')}`)));
      };
      const done = (then: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        then();
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${lines.slice(-20).join('\n')}`))), timeoutMs);
      waiters.add(check);
      check();
    });
  return { child, lines, line, exited };
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

const parse = (data: string) => JSON.parse(data) as BridgeEvent;

async function checkDemo(t: Test, demo: Demo, opts: { live: boolean; calls: number }): Promise<void> {
  const agentUrl = new URL((await demo.line(/Agent page, agent 201:\s+(http\S+)/, 'the agent page URL'))[1]!);
  const crmUrl = (await demo.line(/Sample CRM:\s+(http\S+?)\/?$/, 'the sample CRM URL'))[1]!;
  const bridgePid = Number((await demo.line(/crm-bridge run \(pid (\d+)\)/, 'the bridge pid'))[1]);
  const token = agentUrl.searchParams.get('token')!;
  t.equal(agentUrl.hostname, '127.0.0.1', 'the agent page is on 127.0.0.1');
  t.ok(token, 'the agent page URL carries the token');
  if (opts.live) {
    t.ok(demo.lines.some((l) => /^PBX\s+LIVE/.test(l)), 'the output says the PBX is a live Asterisk');
    t.notOk(demo.lines.some((l) => /REPLAY/.test(l)), 'and never calls it a replay');
  } else {
    t.ok(demo.lines.some((l) => /^PBX\s+REPLAY — NOT A LIVE PBX/.test(l)), 'the output says the calls are a replay, not a live PBX');
  }

  // Agent 201's stream, as the agent page reads it.
  const stream = await connectSse(`${agentUrl.origin}/agent/events?token=${encodeURIComponent(token)}`);
  t.teardown(() => stream.cut());
  t.equal(stream.status, 200, 'the agent page token opens the event stream');
  const ringing201 = (c: SseClient) =>
    c.messages.map((m) => parse(m.data)).find((e): e is CallRinging => e.type === 'call.ringing' && e.agent.id === '201' && e.vars.Omlcrmcustomerid === '12345');
  await stream.waitFor((c) => ringing201(c) !== undefined, 'a call with CRM variables ringing agent 201', 120_000);
  const ring = ringing201(stream)!;
  t.same(validateEvent(ring), [], 'the streamed call.ringing is schema-valid');

  // The pop the agent page asks for: the sample CRM's contact page for this caller.
  const popsRes = await fetch(`${agentUrl.origin}/agent/pops/${ring.id}`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(popsRes.status, 200, 'the bridge renders the pop');
  const pops = (await popsRes.json()) as Array<{ target: string; url: string | null; callId: string | null }>;
  t.equal(pops.length, 1, 'one pop rule matched');
  const pop = pops[0]!;
  t.equal(pop.target, 'embedded');
  t.equal(pop.callId, ring.callId);
  const popUrl = new URL(pop.url!);
  t.equal(popUrl.origin + popUrl.pathname, `${crmUrl}/contact`, 'the pop opens the sample CRM contact page');
  t.equal(popUrl.searchParams.get('phone'), '+4915112345678');
  t.equal(popUrl.searchParams.get('Omlcrmcustomerid'), '12345');
  t.equal(popUrl.searchParams.get('Omlcrmcustomerplan'), '7');
  const contact = await fetch(popUrl);
  t.equal(contact.status, 200);
  const html = await contact.text();
  t.ok(html.includes('Acme &#38; Sons'), 'the contact page shows the caller name, escaped');
  t.notOk(html.includes('Acme & Sons'), 'and never the raw "&"');
  t.ok(html.includes('+4915112345678') && html.includes('12345'), 'with the number and the customer id');

  // The webhooks, as the sample CRM's page receives them live.
  const feed = await connectSse(`${crmUrl}/events`);
  t.teardown(() => feed.cut());
  const received = (c: SseClient) => c.messages.map((m) => (JSON.parse(m.data) as { event: BridgeEvent }).event);
  const hangups = (c: SseClient) => received(c).filter((e) => e.type === 'call.hangup');
  await feed.waitFor((c) => hangups(c).some((e) => 'callId' in e && e.callId === ring.callId), "the ringing call's call.hangup at the CRM", 120_000);
  await feed.waitFor((c) => hangups(c).length >= opts.calls, `${opts.calls} calls over at the CRM`, 120_000);
  const all = (await (await fetch(`${crmUrl}/api/webhooks`)).json()) as Array<{ id: string; event: BridgeEvent }>;
  const invalid = all.map((w) => ({ type: w.event.type, problems: validateEvent(w.event) })).filter((x) => x.problems.length > 0);
  t.same(invalid, [], `all ${all.length} webhooks the CRM received are schema-valid`);
  t.ok(all.every((w) => w.id === w.event.id), 'each carries its event id as webhook-id');
  const ofCall = all.filter((w) => 'callId' in w.event && w.event.callId === ring.callId).map((w) => w.event.type);
  t.same(ofCall, ['call.started', 'call.queued', 'call.ringing', 'call.ringing', 'call.answered', 'call.ring_stopped', 'call.hangup'], "the ringing call's webhooks, in order");
  const ended = all.map((w) => w.event).filter((e) => e.type === 'call.hangup');
  t.ok(ended.length >= opts.calls);
  t.equal(new Set(ended.map((e) => e.callId)).size, ended.length, 'every call has its own callId, and ends once');

  // The supervisor's wallboard: the demo's queue, with the calls the CRM saw counted.
  const boardUrl = new URL((await demo.line(/Supervisor wallboard:\s+(http\S+)/, 'the wallboard URL'))[1]!);
  const supervisorToken = boardUrl.searchParams.get('token') ?? '';
  t.equal((await fetch(boardUrl)).status, 200, 'the printed wallboard URL opens the page');
  t.equal((await fetch(`${boardUrl.origin}/supervisor?token=${encodeURIComponent(token)}`)).status, 403, "agent 201's token may not open it");
  const live = await connectSse(`${boardUrl.origin}/supervisor/events?token=${encodeURIComponent(supervisorToken)}`);
  t.teardown(() => live.cut());
  await live.waitFor((c) => c.messages.some((m) => m.event === 'snapshot'), 'the wallboard snapshot');
  const snapshot = JSON.parse(live.messages.find((m) => m.event === 'snapshot')!.data) as { queues: Array<{ name: string; answered: number; missed: Record<string, number> }> };
  const sales = snapshot.queues.find((q) => q.name === 'sales');
  t.ok(sales, 'the wallboard shows queue sales');
  const counted = (sales?.answered ?? 0) + Object.values(sales?.missed ?? {}).reduce((n, x) => n + x, 0);
  const queueCalls = new Set(all.map((w) => w.event).filter((e) => e.type === 'call.queued').map((e) => ('callId' in e ? e.callId : ''))).size;
  t.ok(queueCalls >= 1 && counted >= 1, `its counters count the queue calls (${counted} answered or missed; ${queueCalls} queued at the CRM)`);

  // Ctrl-C.
  demo.child.kill('SIGINT');
  t.equal(await demo.exited, 0, 'SIGINT: the demo exits 0');
  t.ok(demo.lines.includes('Demo stopped.'), 'after saying it stopped');
  t.notOk(isAlive(bridgePid), 'the bridge is gone');
  if (opts.live) {
    const pid = Number(demo.lines.map((l) => /stopped Asterisk \(pid (\d+)\)/.exec(l)?.[1]).find(Boolean));
    t.ok(pid, 'Asterisk was stopped');
    t.notOk(isAlive(pid), 'and is gone');
  }
}

t.test('given `npm run demo -- --replay` with its preferred ports taken', async (t) => {
  // Both preferred ports are one that is in use: each server must fall back to a free one.
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => squatter.close(() => r())));
  const taken = (squatter.address() as net.AddressInfo).port;
  const demo = startDemo(['--replay', '--bridge-port', String(taken), '--crm-port', String(taken), '--every', '1']);
  t.teardown(() => void (demo.child.exitCode === null && demo.child.kill('SIGKILL')));
  const agent = new URL((await demo.line(/Agent page, agent 201:\s+(http\S+)/, 'the agent page URL'))[1]!);
  const crm = new URL((await demo.line(/Sample CRM:\s+(http\S+)/, 'the sample CRM URL'))[1]!);
  t.not(Number(agent.port), taken, 'the bridge fell back to a free port');
  t.not(Number(crm.port), taken, 'the sample CRM fell back to a free port');
  t.not(agent.port, crm.port);
  // Back to back (--every 1): two recorded calls, replayed with fresh ids, reach the CRM.
  await checkDemo(t, demo, { live: false, calls: 2 });
});

t.test('given `npm run demo` on a machine that can run Asterisk (CI: root, debootstrap)', async (t) => {
  const demo = startDemo(['--bridge-port', '0', '--crm-port', '0']);
  t.teardown(() => void (demo.child.exitCode === null && demo.child.kill('SIGKILL')));
  await checkDemo(t, demo, { live: true, calls: 1 });
});
