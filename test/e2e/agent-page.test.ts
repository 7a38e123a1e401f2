// The agent page as agents live with it, in a real browser (Debian's chromium, driven by
// playwright-core) against the built daemon and a real Asterisk: two agents sharing one browser
// each get their pops; a closed pop never leaves another call's CRM record on screen; embedded
// tabs say whose call they are and do not pile up; an outbound call ends in the right words; no
// jargon; the badge tells when the bridge has lost the PBX; and GET / says what this is.
// Each subtest continues where the previous one left the page (the calls add up, in order).
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Page } from 'playwright-core';
import t from 'tap';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { scenarios } from '../../lab/scenarios.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN_201 = 'agentpage-agent-201-7c1e5a90b34d62f8';
const TOKEN_202 = 'agentpage-agent-202-e09b4f7a15c3d826';
const TOKEN_FLOOR = 'agentpage-supervisor-floor-3b8e1d6a0c9f4275';
const TOKEN_NIGHT = 'agentpage-supervisor-night-c47a2e9f1d05b386';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A stand-in CRM: every page shows the address it was opened with. */
async function startCrm() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>CRM</title><h1>CRM record</h1><p>${(req.url ?? '').replace(/[^A-Za-z0-9/?=&%._-]/g, '')}</p>`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** What the page shows of its embedded CRM tabs: label, call, ended, on screen. */
const tabsOf = (page: Page) =>
  page.getByTestId('embedded-tab').evaluateAll((els) =>
    els.map((e) => ({ label: e.querySelector('[role="tab"]')?.textContent ?? '', callId: e.getAttribute('data-call-id') ?? '', ended: e.hasAttribute('data-ended'), active: e.classList.contains('active') })),
  );

/** Resolves once the newest pop-log line is for a call other than `known` and has `status`. */
async function newestPop(page: Page, known: string[], status: RegExp, what: string): Promise<string> {
  const handle = await page.waitForFunction(
    ([known, source]) => {
      const li = document.querySelector('#pop-log li');
      const id = li?.getAttribute('data-call-id') ?? '';
      return li && id && !known.includes(id) && new RegExp(source).test(li.getAttribute('data-status') ?? '') ? id : null;
    },
    [known, status.source] as const,
    { timeout: 60_000 },
  ).catch((err: Error) => {
    throw new Error(`${what}: ${err.message}`);
  });
  return (await handle.jsonValue()) as string;
}

t.test('given agents 201 and 202 logged in to the agent page in two tabs of one browser', async (t) => {
  t.ok(existsSync(CHROMIUM), 'chromium is installed (CI installs it; this test never skips)');
  const asterisk = await startAsterisk({ name: 'agentpage' });
  t.teardown(() => asterisk.stop());
  const crm = await startCrm();
  t.teardown(() => crm.close());
  const port = await freePort();
  const extra = `http:
  listen: 127.0.0.1:${port}
  keepAliveSeconds: 5
  supervisors:
    - { name: floor, token: ${TOKEN_FLOOR} }
    - { name: night, token: ${TOKEN_NIGHT} }
agents:
  - { id: "201", extension: "201", name: Agent 201, token: ${TOKEN_201}, interfaces: [Local/201@agents] }
  - { id: "202", extension: "202", name: Agent 202, token: ${TOKEN_202}, interfaces: [Local/202@agents] }
api:
  tokens: [{ name: crm, token: agentpage-test-api-token-5e2d8c1f9a7b3046 }]
  clickToCall: { context: from-internal }
screenpop:
  - id: frame
    events: [call.ringing]
    url: "${crm.url}/contact?phone={callerNumber}"
    target: embedded
`;
  const daemon = startDaemon(writeConfig(e2eConfig(asterisk.amiPort, extra)), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'HTTP server listening', 'the HTTP server');
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'AMI login');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const bridge = `http://127.0.0.1:${port}`;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${bridge}/agent?token=${TOKEN_201}`);
  await page.getByTestId('conn-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
  const page202 = await context.newPage();
  await page202.goto(`${bridge}/agent?token=${TOKEN_202}`);
  await page202.getByTestId('conn-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
  const seen: string[] = [];

  t.test('when a queue call rings both, then each tab pops its own agent\'s record (one popping tab per agent, not per browser)', async (t) => {
    for (const [p, who] of [[page, '201'], [page202, '202']] as const) {
      const ok = await p.locator('[data-testid="leader"][data-role="leader"]').waitFor({ timeout: 10_000 }).then(() => true, () => false);
      t.ok(ok, `then ${who}'s tab says its pops open there`);
    }
    const scenario = scenarios['queue-answered'](driver);
    const call = await newestPop(page, seen, /./, "201's pop");
    const at202 = await newestPop(page202, seen, /./, "202's pop");
    t.equal(at202, call, 'then 202 got the pop of the same call, in its own tab');
    seen.push(call);
    await scenario;
    await page.locator(`[data-testid="call"][data-call-id="${call}"][data-state="ended"]`).waitFor({ timeout: 15_000 });
    t.equal(await page.locator('#call-note').textContent(), 'Call ended — you hung up', "then 201's card says 201 ended the call (hangupBy agent, inbound)");
  });

  t.test('when two supervisors open the page in the same browser, then each has its own popping tab', async (t) => {
    // Both open at once: with one lock for every supervisor, the second would wait for the first.
    const pages = [];
    for (const token of [TOKEN_FLOOR, TOKEN_NIGHT]) {
      const p = await context.newPage();
      await p.goto(`${bridge}/agent?token=${token}`);
      await p.getByTestId('conn-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
      pages.push(p);
    }
    for (const [i, p] of pages.entries()) {
      const leads = await p.locator('[data-testid="leader"][data-role="leader"]').waitFor({ timeout: 10_000 }).then(() => true, () => false);
      t.ok(leads, `then the ${i === 0 ? 'floor' : 'night'} supervisor's tab says its pops open there`);
    }
    for (const p of pages) await p.close();
  });

  t.test('when the page is read, then it speaks plainly: no "leader", no device interface', async (t) => {
    const header = (await page.locator('header').innerText()).replace(/\s+/g, ' ');
    t.match(header, /Agent 201 · ext\. 201/, 'then the agent is named with the extension');
    t.notMatch(header, /Local\/|@agents|leader|follower/i, `then the header has no jargon (${header})`);
    t.equal(await page.getByTestId('leader').textContent(), 'Pops open here');
  });

  t.test("when the next call's pop closes (not answered), then the earlier call's record does not come back under its card", async (t) => {
    const scenario = scenarios['direct-noanswer'](driver);
    const call = await newestPop(page, seen, /^closed$/, "the unanswered call's pop, closed at ring_stopped");
    seen.push(call);
    t.equal(await page.getByTestId('call').getAttribute('data-call-id'), call, 'then the card shows the unanswered call');
    const onScreen = (await tabsOf(page)).filter((x) => x.active);
    t.same(onScreen, [], "then no CRM record is on screen (before: the first call's, a different customer)");
    t.ok(await page.getByTestId('embedded-none').isVisible(), 'then the page says no record of this call is open');
    await scenario;
  });

  t.test('when two more calls of the same caller pop, then their tabs say when, and ended calls\' tabs do not pile up', async (t) => {
    const first = seen[0]!;
    for (const n of [3, 4]) {
      const scenario = scenarios['direct-answered'](driver);
      const call = await newestPop(page, seen, /^opened$/, `call ${n}'s pop`);
      seen.push(call);
      await scenario;
      await page.locator(`[data-testid="embedded-tab"][data-call-id="${call}"][data-ended]`).waitFor({ timeout: 15_000 });
    }
    const tabs = await tabsOf(page);
    const labels = tabs.map((x) => x.label);
    t.equal(new Set(labels).size, labels.length, `then every tab has its own label (${labels.join(' | ')})`);
    t.ok(labels.every((l) => /^\+4915112345678 · \d{1,2}:\d{2}/.test(l)), 'then each label is the caller and the time');
    t.same(tabs.map((x) => x.callId), [seen[2], seen[3]], "then only the last two calls' tabs are left: the first call's closed when a later call popped");
    t.notOk(tabs.some((x) => x.callId === first), 'then the first call is gone from the tabs');
    t.ok(tabs.every((x) => x.ended), 'then both are marked ended');
  });

  t.test('when an outbound call of 201 ends by the called party hanging up, then the card says the other side hung up', async (t) => {
    const from = daemon.events.length;
    await scenarios.outbound(driver);
    const hangup = await daemon.waitForEvents((all) => all.slice(from).find((e) => e.type === 'call.hangup'), 'the outbound hangup');
    t.match(hangup, { direction: 'outbound', hangupBy: 'caller' }, 'the contract: caller is the called party on an outbound call');
    const callId = 'callId' in hangup ? hangup.callId : '';
    await page.locator(`[data-testid="call"][data-call-id="${callId}"][data-state="ended"]`).waitFor({ timeout: 15_000 });
    t.equal(await page.locator('#call-note').textContent(), 'Call ended — the other side hung up', 'then not "caller hung up"');
  });

  t.test('when GET /, then a page says what this is and links the agent page, with the same headers as the agent page', async (t) => {
    const res = await fetch(`${bridge}/`);
    const agentRes = await fetch(`${bridge}/agent`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type') ?? '', /^text\/html/);
    for (const h of ['content-security-policy', 'x-content-type-options', 'referrer-policy', 'cache-control']) t.equal(res.headers.get(h), agentRes.headers.get(h), `then ${h} is the agent page's`);
    const landing = await context.newPage();
    await landing.goto(`${bridge}/`);
    t.ok(await landing.getByTestId('api-link').isVisible(), 'then the API document is linked (api is configured)');
    await landing.getByTestId('agent-link').click();
    await landing.waitForURL(`${bridge}/agent`);
    t.pass('then its first link opens the agent page');
    await landing.close();
  });

  t.test('when Asterisk goes away, then the badge says the bridge is connected but the PBX unreachable, in the warning colour', async (t) => {
    const badge = page.getByTestId('conn-state');
    t.equal(await badge.getAttribute('data-pbx'), 'up', 'first: the bridge has the PBX');
    const liveColour = await badge.evaluate((e) => getComputedStyle(e).color);
    await asterisk.stop();
    await page.locator('[data-testid="conn-state"][data-pbx="down"]').waitFor({ timeout: 15_000 });
    t.equal(await badge.textContent(), 'connected — PBX unreachable', 'then not "live"');
    t.not(await badge.evaluate((e) => getComputedStyle(e).color), liveColour, 'then not in the live colour');
    t.match((await page.locator('#conn-detail').textContent()) ?? '', /lost the phone system/);
  });
});
