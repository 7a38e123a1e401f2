// The supervisor's wallboard for real: the built daemon (http.supervisors, api) against a real
// Asterisk, the page (/supervisor) in a real browser (Debian's chromium, playwright-core). Queue
// calls answered and abandoned show up live with their counters, the chart and the missed list; a
// pause made on the PBX shows with its reason; the missed call's call-back places a real call that
// turns the row "called back"; agent tokens are refused. The page's screenshot is kept
// (test/artifacts/supervisor.png) and shown in the README (docs/images/supervisor.png).
// Each subtest continues where the previous one left the floor (the counters add up, in order).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import t from 'tap';
import type { CallEvent } from '../../dist/events/types.js';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, freePort, startAsterisk } from '../../lab/asterisk.js';
import { scenarios } from '../../lab/scenarios.js';
import { e2eConfig, startDaemon, writeConfig } from '../helpers/daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SUPERVISOR = 'wallboard-supervisor-floor-8d3f1a6c0e9b2754';
const AGENT_201 = 'wallboard-agent-201-4e7a0c9d2b5f8136';
const API_TOKEN = 'wallboard-api-token-c2d9e4f7a1b05368';
/** lab/scenarios.ts's caller from the PSTN. */
const CALLER = '+4915112345678';
const ARTIFACT = new URL('../artifacts/supervisor.png', import.meta.url).pathname;
const README_IMAGE = new URL('../../docs/images/supervisor.png', import.meta.url).pathname;

/** The figures of one queue's row, as the page shows them. */
const queueRow = (page: Page, queue: string) =>
  page.locator(`[data-testid="queue-row"][data-queue="${queue}"]`).evaluate((row) =>
    Object.fromEntries([...row.querySelectorAll('[data-col]')].map((td) => [td.getAttribute('data-col'), td.textContent ?? ''])),
  );

/** Resolves once the queue row's `col` cell reads `text`. */
const cellReads = (page: Page, queue: string, col: string, text: string, what: string) =>
  page
    .waitForFunction(
      ([q, c, x]) => document.querySelector(`[data-testid="queue-row"][data-queue="${q}"] [data-col="${c}"]`)?.textContent === x,
      [queue, col, text] as const,
      { timeout: 60_000 },
    )
    .catch((err: Error) => {
      throw new Error(`${what}: ${err.message}`);
    });

t.test('given the daemon with a supervisor and the API on a real Asterisk, and the wallboard open in chromium', async (t) => {
  t.ok(existsSync(CHROMIUM), 'chromium is installed (CI installs it; this test never skips)');
  const asterisk = await startAsterisk({ name: 'wallboard' });
  t.teardown(() => asterisk.stop());
  const port = await freePort();
  const extra = `http:
  listen: 127.0.0.1:${port}
  supervisors:
    - { name: floor, token: ${SUPERVISOR} }
agents:
  - { id: "201", extension: "201", name: Ana, token: ${AGENT_201}, interfaces: [Local/201@agents] }
  - { id: "202", extension: "202", name: Ben, interfaces: [Local/202@agents] }
api:
  tokens: [{ name: crm, token: ${API_TOKEN} }]
  clickToCall: { context: from-internal }
supervisor:
  timeZone: Europe/Berlin
`;
  const daemon = startDaemon(writeConfig(e2eConfig(asterisk.amiPort, extra)), { E2E_AMI_SECRET: BRIDGE_AMI_SECRET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l['msg'] === 'HTTP server listening', 'the HTTP server');
  await daemon.waitForLog((l) => l['msg'] === 'AMI state resynchronized', 'AMI login');
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const bridge = `http://127.0.0.1:${port}`;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${bridge}/supervisor?token=${SUPERVISOR}`);
  await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 15_000 });
  await page.locator('[data-testid="agent-tile"][data-agent="201"]').waitFor({ timeout: 15_000 });

  t.test('when an agent token or a wrong one asks for the wallboard, then 403 and 401, and the page shows the login form', async (t) => {
    t.equal((await fetch(`${bridge}/supervisor?token=${AGENT_201}`)).status, 403, 'then the page refuses an agent token in the address');
    t.equal((await fetch(`${bridge}/supervisor/events?token=${AGENT_201}`)).status, 403, 'then the stream refuses it');
    t.equal((await fetch(`${bridge}/supervisor/me`, { headers: { authorization: `Bearer ${AGENT_201}` } })).status, 403, 'then /supervisor/me refuses it');
    t.equal((await fetch(`${bridge}/supervisor/me`, { headers: { authorization: `Bearer ${API_TOKEN}` } })).status, 403, 'then an API token is refused too');
    t.equal((await fetch(`${bridge}/supervisor/events?token=not-a-token-at-all-0000`)).status, 401, 'then a wrong token is 401');
    const me = await fetch(`${bridge}/supervisor/me`, { headers: { authorization: `Bearer ${SUPERVISOR}` } });
    t.match(await me.json(), { name: 'floor', callBack: true }, "then the supervisor's token is the supervisor's");
    const p = await browser.newPage();
    await p.goto(`${bridge}/supervisor`);
    await p.getByTestId('token').fill(AGENT_201);
    await p.getByTestId('token').press('Enter');
    await p.locator('#login-error', { hasText: /not a supervisor's/ }).waitFor({ timeout: 10_000 });
    t.ok(await p.getByTestId('login').isVisible(), 'then the page stays on its login form');
    await p.close();
  });

  t.test('when a queue call is answered and another abandoned, then they show live: the call in progress, the counters, the chart, the missed caller', async (t) => {
    // The static members of sales (lab/pbx/queues.conf) are announced at the bridge's AMI login.
    await cellReads(page, 'sales', 'loggedIn', '2', 'sales with its two static members');
    t.match(await queueRow(page, 'sales'), { answered: '0', abandoned: '0', available: '2', abandonRate: '—' }, 'first: nothing answered or abandoned, both agents available');
    const answered = scenarios['queue-answered'](driver);
    const callRow = page.locator('[data-testid="call-row"]').filter({ hasText: 'sales' });
    await callRow.first().waitFor({ timeout: 30_000 });
    t.pass('then the call shows in progress while it lasts');
    await page.locator('[data-testid="agent-tile"][data-agent="201"][data-state="on_call"]').waitFor({ timeout: 30_000 });
    t.match(await page.locator('[data-testid="agent-tile"][data-agent="201"]').innerText(), /On a call[\s\S]*Acme & Sons[\s\S]*sales/, "then 201's tile shows the caller and the queue");
    await answered;
    await cellReads(page, 'sales', 'answered', '1', 'answered 1');
    await page.locator('[data-testid="call-row"]').first().waitFor({ state: 'detached', timeout: 30_000 });
    t.pass('then the ended call leaves the calls in progress');
    t.equal(await page.locator('[data-testid="agent-tile"][data-agent="201"] .tile-today').textContent(), '1 call today');
    // 201 and 202 are static members of sales (lab/pbx/queues.conf): logged in all along.
    t.equal(await page.locator('[data-testid="agent-tile"][data-agent="201"]').getAttribute('data-state'), 'available', 'then 201 is available again after its call');
    t.equal((await queueRow(page, 'sales'))['loggedIn'], '2');

    await scenarios['queue-abandoned'](driver);
    await cellReads(page, 'sales', 'abandoned', '1', 'abandoned 1');
    const row = await queueRow(page, 'sales');
    t.match(row, { answered: '1', abandoned: '1', abandonRate: '50 %', waiting: '0' }, 'then the row counts one of each; the abandon rate is 1 of 2');

    const missed = page.getByTestId('missed-row').filter({ hasText: CALLER });
    await missed.first().waitFor({ timeout: 30_000 });
    t.equal(await page.getByTestId('missed-row').count(), 1, 'then one missed call');
    t.equal(await missed.first().getAttribute('data-called-back'), 'false');
    t.equal(await missed.first().locator('[data-col="reason"]').textContent(), 'Abandoned');
    t.equal(await missed.first().locator('[data-col="queue"]').textContent(), 'sales');

    const slots = await page.getByTestId('chart-slot').evaluateAll((gs) =>
      gs.map((g) => ({ i: Number(g.getAttribute('data-index')), now: g.classList.contains('now'), answered: Number(g.getAttribute('data-answered')), missed: Number(g.getAttribute('data-missed')) })),
    );
    const now = slots.find((s) => s.now)?.i ?? -1;
    const used = slots.filter((s) => s.answered + s.missed > 0);
    t.same([used.reduce((n, s) => n + s.answered, 0), used.reduce((n, s) => n + s.missed, 0)], [1, 1], 'then the chart has one answered and one missed call');
    // Both calls took under a minute: they are in the current slot (or the one before, across a quarter hour).
    t.ok(used.every((s) => s.i === now || s.i === now - 1), `then in the current slot ${now} (${JSON.stringify(used)})`);
    t.match(await page.getByTestId('chart-summary').textContent(), /^Today: 1 answered, 1 missed \(1 abandoned\)\./);
  });

  let pausedSince = '';
  t.test('when 202 is paused on the PBX with the reason "lunch", then its tile says paused, with the reason', async (t) => {
    await driver.action({ Action: 'QueuePause', Queue: 'sales', Interface: 'Local/202@agents', Paused: 'true', Reason: 'lunch' });
    const tile = page.locator('[data-testid="agent-tile"][data-agent="202"][data-state="paused"]');
    await tile.waitFor({ timeout: 30_000 });
    t.match(await tile.innerText(), /Ben[\s\S]*Paused \d+:\d\d[\s\S]*Reason: lunch/);
    await cellReads(page, 'sales', 'paused', '1', 'one paused agent in sales');
    pausedSince = (await tile.locator('.state-time').getAttribute('data-since')) ?? '';
  });

  t.test('when the supervisor calls the abandoned caller back from 201, then a real call is placed, and once answered the row says called back', async (t) => {
    // 201's phone (its interface, Local/201@agents) answers after 1 s this time.
    await driver.setGlobals({ AGENT_201_MODE: 'answer', AGENT_201_DELAY: 1, AGENT_201_TALK: 10 });
    const since = driver.mark();
    const from = daemon.events.length;
    const row = page.getByTestId('missed-row').filter({ hasText: CALLER }).first();
    const select = row.locator('select');
    await select.focus();
    await select.selectOption('201');
    await row.getByTestId('call-back').click();
    await row.locator('.cb-result[data-kind="ok"]').waitFor({ timeout: 15_000 });
    t.match(await row.locator('.cb-result').textContent(), /^Ana's phone rings first/);
    // Ana on the call-back: her tile shows whom she calls (an outbound call's caller is Ana herself).
    await page.locator('[data-testid="agent-tile"][data-agent="201"][data-state="on_call"] .call-who', { hasText: new RegExp(`^\\${CALLER}$`) }).waitFor({ timeout: 30_000 });
    t.pass("then Ana's tile is on the call to the caller");

    // Asterisk's side: the agent's device first, then the number, in the same call.
    const agentLeg = await driver.waitFor((f) => f.event === 'Newchannel' && /^Local\/201@agents-/.test(f.get('Channel') ?? ''), 30_000, "the call-back's agent leg", since);
    const linkedid = agentLeg.get('Linkedid');
    await driver.waitFor((f) => f.event === 'Newchannel' && /^Local\/\+?4915112345678@pstn-out-/.test(f.get('Channel') ?? '') && f.get('Linkedid') === linkedid, 30_000, 'the number dialled out', since);
    // The daemon's side: the call is answered by the number.
    const answeredEv = await daemon.waitForEvents(
      (all) => all.slice(from).find((e): e is CallEvent => e.type === 'call.answered' && (e as CallEvent).callId === linkedid && e.origin === 'click-to-call'),
      "the call-back's call.answered",
    );
    t.ok(answeredEv, 'then the call-back is a click-to-call call, answered');

    const done = page.locator(`[data-testid="missed-row"][data-called-back="true"]`);
    await done.waitFor({ timeout: 30_000 });
    t.equal(await page.locator('[data-testid="agent-tile"][data-agent="202"] .state-time').getAttribute('data-since'), pausedSince, "then 202's time in state still counts from its pause (another agent's call changes nothing of it)");
    // The README's picture: the call-back is still talking (its row and Ana's tile show it).
    mkdirSync(dirname(ARTIFACT), { recursive: true });
    await page.screenshot({ path: ARTIFACT });
    t.match(await done.locator('.cb-done').textContent(), /^called back at \d\d:\d\d by Ana$/);
    t.notOk(await done.getByTestId('call-back').isVisible(), 'then no button any more');
    await driver.waitForCallOver(linkedid ?? '', 60_000);
  });

  t.test('then the screenshot is kept and copied for the README, and the page had no script error', async (t) => {
    t.ok(existsSync(ARTIFACT), ARTIFACT);
    mkdirSync(dirname(README_IMAGE), { recursive: true });
    copyFileSync(ARTIFACT, README_IMAGE);
    t.same(errors, []);
  });

  t.test('when the daemon gets SIGTERM with the wallboard still open, then it exits 0 without running into its shutdown deadline', async (t) => {
    t.equal(await daemon.stop(), 0);
    // The page reconnects at once when its stream closes: a stream accepted while shutting down
    // would hold the server open until the deadline.
    t.same(daemon.logs.filter((l) => l['msg'] === 'supervisor connected' && Number(l['time']) > Number(daemon.logs.find((x) => x['signal'] === 'SIGTERM')?.['time'] ?? Infinity)).length, 0, 'then no wallboard stream was accepted after SIGTERM');
    t.notOk(daemon.logs.some((l) => /shutdown deadline reached/.test(String(l['msg']))), 'then the shutdown finished its work');
  });
});
