// The agent page in a real browser (Debian's chromium, driven by playwright-core) while a real
// call rings in a real Asterisk: every pop target opens the CRM with the caller's number and
// the dialplan's variables; with pop-ups blocked, the one-click fallback appears; the page's
// modules all load, under the CSP, with a clean console. Screenshots are kept in
// .cache/e2e-artifacts/.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import t from 'tap';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';
import { scenarios } from '../../lab/scenarios.js';

const CHROMIUM = '/usr/bin/chromium';
// Tokens as check-config wants them: 128 bits or more, all different (URL-safe: they travel in ?token=).
const TOKEN_201 = 'browser-agent-201-3f8e1c60d29a4b75';
const TOKEN_202 = 'browser-agent-202-a61d09e4c7f35b28';
const ARTIFACTS = new URL('../../.cache/e2e-artifacts/', import.meta.url).pathname;
// Flags for a sandboxed CI machine without network (see the machine notes): no sandbox as root,
// no background requests to the outside.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A stand-in CRM: pages that show what they were opened with; /noframe refuses to be framed. */
async function startCrm() {
  const hits: string[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    for (const w of [...waiters]) w();
    const headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8' };
    if (req.url?.startsWith('/noframe')) headers['x-frame-options'] = 'DENY';
    if (req.url?.startsWith('/host')) {
      // A CRM page embedding the widget; it records what the widget hands it.
      const bridgeUrl = new URL(req.url, 'http://x').searchParams.get('bridge') ?? '';
      res.writeHead(200, headers);
      res.end(`<!doctype html><title>CRM host</title><script>window.got = []; window.details = []; window.addEventListener('crm-bridge', (e) => { window.got.push(e.detail.event); window.details.push(e.detail); });</script><script src="${bridgeUrl.replace(/[^A-Za-z0-9:/._-]/g, '')}/widget.js" data-token="${TOKEN_201}"></script>`);
      return;
    }
    res.writeHead(200, headers);
    res.end(`<!doctype html><title>CRM</title><h1 id="crm">CRM record</h1><p id="q"></p><script>document.getElementById('q').textContent = location.href</script>`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const waitForHit = (pred: (url: string) => boolean, what: string, timeoutMs = 15_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = hits.find(pred);
        if (hit === undefined) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; CRM saw ${JSON.stringify(hits)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, waitForHit, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}


t.test('given an agent page open in chromium and a real call ringing agent 201', async (t) => {
  t.ok(existsSync(CHROMIUM), 'chromium is installed (CI installs it; this test never skips)');
  mkdirSync(ARTIFACTS, { recursive: true });
  const asterisk = await startAsterisk({ name: 'browser' });
  t.teardown(() => asterisk.stop());
  const crm = await startCrm();
  t.teardown(() => crm.close());
  const stranger = await startCrm();
  t.teardown(() => stranger.close());
  const port = await freePort();
  const extra = `http:
  listen: 127.0.0.1:${port}
  keepAliveSeconds: 5
  allowedOrigins: [${crm.url}]
agents:
  - { id: "201", extension: "201", name: Agent 201, token: ${TOKEN_201}, interfaces: [Local/201@agents] }
  - { id: "202", extension: "202", name: Agent 202, token: ${TOKEN_202}, interfaces: [Local/202@agents] }
api:
  tokens: [{ name: crm, token: browser-test-api-token-0123456789abcdef }]
  clickToCall: { context: from-internal }
  presence: { mode: synchronized }
screenpop:
  - id: tab
    events: [call.ringing]
    url: "${crm.url}/contact?phone={callerNumber}&id={Omlcrmcustomerid}&plan={Omlcrmcustomerplan}"
    target: new-tab
  - id: named
    events: [call.ringing]
    url: "${crm.url}/named?phone={callerNumber}"
    target: named-tab
    name: crmwindow
  - id: frame
    events: [call.ringing]
    url: "${crm.url}/embedded?phone={callerNumber}&id={Omlcrmcustomerid}"
    target: embedded
  - id: deny
    events: [call.ringing]
    url: "${crm.url}/noframe?phone={callerNumber}"
    target: embedded
  - id: tencent
    events: [call.ringing, call.answered]
    url: "${crm.url}/desk#?mobile={callerNumber}&status={status}"
    target: hash
  - id: beacon
    events: [call.answered]
    url: "${crm.url}/log?event={event}&agent={agentId}&id={Omlcrmcustomerid}"
    target: background
  - id: copy
    events: [call.answered]
    text: "{callerName} {callerNumber} #{Omlcrmcustomerid}"
    target: clipboard
`;
  const daemon = startDaemon(writeConfig(e2eConfig(asterisk.amiPort, extra)), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'HTTP server listening', 'the HTTP server');
  await daemon.waitForLog((l) => l.msg === 'AMI state resynchronized', 'AMI login');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const bridge = `http://127.0.0.1:${port}`;

  async function openAgentPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ permissions: ['clipboard-read', 'clipboard-write', 'notifications'] });
    await context.grantPermissions(['clipboard-read', 'clipboard-write', 'notifications'], { origin: bridge });
    const page = await context.newPage();
    await page.goto(`${bridge}/agent?token=${TOKEN_201}`);
    await page.getByTestId('conn-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
    return { context, page };
  }

  t.test('when the agent page loads, then the browser gets every module of web/agent as JavaScript under the CSP, and the console stays clean', async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    t.teardown(() => browser.close());
    const page = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    // Except the 404 of the browser's own /favicon.ico request: the bridge has none, and the page never asks.
    const mine = (url: string) => !url.endsWith('/favicon.ico');
    page.on('console', (m) => {
      if (m.type() === 'error' && mine(m.location().url)) problems.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => {
      problems.push(`uncaught: ${e.message}`);
    });
    const scripts = new Map<string, Response>();
    page.on('response', (r) => {
      if (r.request().resourceType() === 'script') scripts.set(new URL(r.url()).pathname, r);
    });
    // 'load' waits for the whole module graph (module scripts are deferred): each module is in
    // `scripts` by then, or the page failed.
    await page.goto(`${bridge}/agent?token=${TOKEN_201}`, { waitUntil: 'load' });
    const modules = readdirSync(new URL('../../web/agent/', import.meta.url)).filter((f) => f.endsWith('.js'));
    t.same([...scripts.keys()].sort(), modules.map((f) => `/agent/assets/${f}`).sort(), 'then the browser loaded each module of web/agent');
    for (const [path, res] of scripts) {
      const headers = await res.allHeaders();
      t.equal(res.status(), 200, `${path}: 200`);
      t.match(headers['content-type'] ?? '', /^text\/javascript\b/, `${path}: a JavaScript content type`);
      t.match(headers['content-security-policy'] ?? '', /script-src 'self';/, `${path}: the CSP`);
    }
    const live = await page.getByTestId('conn-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 }).then(() => true, () => false);
    t.same(problems, [], 'then nothing went wrong in the console, from loading to live');
    t.ok(live, 'then the page went live');
  });

  t.test('when pop-ups are allowed, then every target pops the CRM with the caller and the CRM variables', async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    t.teardown(() => browser.close());
    const { context, page } = await openAgentPage(browser);
    t.notOk(new URL(page.url()).searchParams.has('token'), 'then the token is removed from the address bar');
    const popups: Page[] = [];
    context.on('page', (p) => popups.push(p));
    const newTab = context.waitForEvent('page', { predicate: (p) => p.url().includes('/contact'), timeout: 60_000 });
    const scenario = scenarios['queue-answered'](driver);
    const tab = await newTab;
    const q = new URL(tab.url()).searchParams;
    t.equal(q.get('phone'), '+4915112345678', 'new-tab: the caller number');
    t.equal(q.get('id'), '12345', 'new-tab: the Omlcrm variable the caller typed');
    t.equal(q.get('plan'), '7');
    await t.resolves(page.waitForFunction(() => true), 'the agent page is still there');
    await scenario;
    const named = popups.find((p) => p.url().includes('/named'));
    t.ok(named, 'named-tab: a window was opened for the named rule');
    const embedded = page.getByTestId('embedded-tab');
    await embedded.first().waitFor({ timeout: 10_000 });
    const urls = await embedded.evaluateAll((els) => els.map((e) => e.getAttribute('data-url') ?? ''));
    t.ok(urls.some((u) => u.includes('/embedded?phone=%2B4915112345678&id=12345')), 'embedded: a tab inside the page with the record');
    const refused = page.getByTestId('frame-refused');
    await refused.first().waitFor({ timeout: 15_000 });
    t.match((await refused.first().textContent()) ?? '', /cannot be shown inside this page/, 'embedded: the CRM page that forbids framing is explained, not left blank');
    const hash = await page.getByTestId('hash-frame').getAttribute('src');
    t.match(hash ?? '', /\/desk#\?mobile=%2B4915112345678&status=(100|200)/, 'hash: the always-open frame got the caller in its hash');
    const beacon = await crm.waitForHit((h) => h.startsWith('/log?'), 'the background request');
    t.equal(beacon, '/log?event=call.answered&agent=201&id=12345', 'background: an invisible request reached the CRM');
    const clip = await page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
    const fallback = await page.getByTestId('clipboard-text').textContent().catch(() => null);
    t.ok(clip === 'Acme & Sons +4915112345678 #12345' || fallback?.includes('Acme & Sons +4915112345678 #12345'), 'clipboard: the text was copied (or offered with a Copy button)');
    await page.screenshot({ path: `${ARTIFACTS}agent-page.png`, fullPage: true });
  });

  t.test('when the browser blocks pop-ups, then the one-click fallback is shown', async (t) => {
    // Chromium driven over CDP never blocks pop-ups (with or without --disable-popup-blocking,
    // whatever the profile says: checked on 156). A browser tells a page it blocked a pop-up by
    // window.open returning null, so that is what this browser answers to scripts, except when
    // the agent clicks (a user gesture is what browsers let through).
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    t.teardown(() => browser.close());
    const context = await browser.newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
    await context.addInitScript(() => {
      // (navigator.userActivation cannot be used: Playwright leaves it active.)
      let clicking = false;
      window.addEventListener('click', () => {
        clicking = true;
        setTimeout(() => (clicking = false), 0);
      }, true);
      const open = window.open.bind(window);
      window.open = (...args: Parameters<typeof window.open>) => (clicking ? open(...args) : null);
    });
    const page = await context.newPage();
    await page.goto(`${bridge}/agent?token=${TOKEN_201}`);
    await page.getByTestId('conn-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
    const scenario = scenarios['direct-answered'](driver);
    const blocked = page.getByTestId('popup-blocked');
    await blocked.waitFor({ state: 'visible', timeout: 60_000 });
    t.match((await blocked.textContent()) ?? '', /\+4915112345678/, 'then the fallback names the caller');
    await page.screenshot({ path: `${ARTIFACTS}agent-page-popup-blocked.png`, fullPage: true });
    const opened = page.context().waitForEvent('page', { timeout: 10_000 });
    await page.getByTestId('open-blocked').first().click();
    t.match((await opened).url(), /\/contact\?phone=%2B4915112345678/, 'then one click opens the record');
    await scenario;
  });

  t.test('when a CRM page embeds the widget, then it receives the events, and a page of another origin does not', async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    t.teardown(() => browser.close());
    const context = await browser.newContext();
    const host = await context.newPage();
    await host.goto(`${crm.url}/host?bridge=${encodeURIComponent(bridge)}`);
    const other = await context.newPage();
    await other.goto(`${stranger.url}/host?bridge=${encodeURIComponent(bridge)}`);
    const scenario = scenarios['direct-answered'](driver);
    await host.waitForFunction(() => (window as unknown as { got: string[] }).got.includes('call.hangup'), undefined, { timeout: 60_000 });
    await scenario;
    const got = await host.evaluate(() => (window as unknown as { got: string[] }).got);
    t.ok(got.includes('call.ringing') && got.includes('call.answered'), `then the allowed CRM page got the call (${got.join(', ')})`);
    const leaked = await other.evaluate(() => (window as unknown as { got: string[] }).got);
    t.same(leaked, [], 'then a page of an origin not in http.allowedOrigins got nothing');
  });

  t.test("when the CRM page calls out and sets presence through the widget, then the PBX acts, and the PBX's own pause reaches the page", async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    t.teardown(() => browser.close());
    const host = await (await browser.newContext()).newPage();
    await host.goto(`${crm.url}/host?bridge=${encodeURIComponent(bridge)}`);
    await host.waitForFunction(() => (window as unknown as { got: string[] }).got.includes('ready'), undefined, { timeout: 15_000 });
    type Widget = { callOut(n: string): Promise<Record<string, any>>; setPresence(s: string, r?: string): Promise<Record<string, any>> };
    const widget = () => (window as unknown as { CrmBridge: Widget }).CrmBridge;

    // Click-to-call (Tencent's callOut): agent 201's device (Local/201@agents) answers after 1 s.
    await driver.action({ Action: 'Setvar', Variable: 'AGENT_201_MODE', Value: 'answer' });
    const from = daemon.events.length;
    const out = await host.evaluate(`(${widget.toString()})().callOut('555 0101')`) as Record<string, any>;
    t.match(out, { ok: true, action: 'callOut', status: 202, body: { agent: '201', number: '5550101', status: 'originating' } }, JSON.stringify(out));
    const id = out['body']['id'] as string;
    const events = await daemon.waitForEvents((all) => {
      const mine = all.slice(from).filter((e) => 'callId' in e && e.callId === id);
      return mine.some((e) => e.type === 'call.hangup') ? mine : undefined;
    }, 'the events of the widget\'s call');
    t.same(events.map((e) => e.type), ['call.started', 'call.ringing', 'call.answered', 'call.hangup'], 'then a real call was placed (the number rings and answers, agent null)');
    t.ok(events.every((e) => 'origin' in e && e.origin === 'click-to-call'), 'then its events say click-to-call');
    t.match(events[0], { agent: { id: '201' }, called: { number: '5550101' } });

    // Presence from the CRM page: the agent's queues pause.
    const set = await host.evaluate(`(${widget.toString()})().setPresence('not_ready', 'lunch')`) as Record<string, any>;
    t.match(set, { ok: true, action: 'presence', status: 200, body: { agent: '201', pbx: 'not_ready', changed: ['sales'] } }, JSON.stringify(set));
    const paused = await daemon.waitForEvents((all) => all.slice(from).find((e) => e.type === 'agent.paused' && e.agent.id === '201'), "201's agent.paused");
    t.match(paused, { reason: 'lunch', origin: 'api' });
    t.match(await asterisk.cli('queue show sales'), /Local\/201@agents.*paused:lunch/i, 'then Asterisk has 201 paused');

    // The PBX side: a supervisor unpauses 201; the page is asked to set the CRM presence to ready.
    await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: 'Local/201@agents', Paused: 'false' });
    await host.waitForFunction(() => (window as unknown as { got: string[] }).got.includes('presenceSync'), undefined, { timeout: 15_000 });
    const details = (await host.evaluate(() => (window as unknown as { details: Array<{ event: string; data: Record<string, unknown> }> }).details)).filter((d) => d.event === 'presenceSync');
    t.equal(details.length, 1, 'then exactly one presenceSync: the CRM\'s own change did not come back');
    t.match(details[0]?.data, { agent: '201', state: 'ready', reason: null });
  });
});
