// The wallboard page (web/supervisor/) in a real browser (Debian's chromium, playwright-core)
// against a FAKE server (test/helpers/fake-floor.ts) that streams made-up snapshots and patches of
// the daemon's own shapes: rendering, escaping, keyed updates, the filter, call-back requests,
// reconnects and size (100 queues, 1,000 agents). The daemon's real routes, real Asterisk and real
// calls are test/e2e/supervisor.test.ts.
import { existsSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import t from 'tap';
import { agentFigures, bigFloor, emptyChart, missedCall, queueFigures, startFakeFloor } from '../helpers/fake-floor.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SUP = 'fake-supervisor-token-5b1c9e07d2a4f836';
const AGENT = 'fake-agent-token-0c7d2e9b4a1f6358';
const HOSTILE = '<img src=x onerror="window.__pwned=1">Eve</b>';

const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();

t.test('given the wallboard page on a fake floor server', async (t) => {
  t.ok(existsSync(CHROMIUM), 'chromium is installed (CI installs it; this test never skips)');
  const snapshot = {
    ...bigFloor(0, 0),
    timeZone: 'Europe/Berlin',
    queues: [queueFigures('sales', { waiting: 1, longestWaitSince: ago(30), answered: 4, abandoned: 1, abandonRate: 0.2, serviceLevel: { seconds: 15, answeredWithin: 3, ratio: 0.6 }, averageWaitSeconds: 9, averageTalkSeconds: 125 })],
    agents: [
      agentFigures('201', { name: 'Ana', extension: '201', state: 'on_call', since: ago(65), queues: ['sales'], call: { callId: 'c-1', caller: { number: '555', name: HOSTILE }, queue: 'sales', since: ago(65) }, callsToday: 3 }),
      agentFigures('202', { name: 'Bo', extension: '202', state: 'paused', since: ago(10), pausedReason: 'lunch', queues: ['sales'] }),
      agentFigures('203', { name: 'Cy', extension: '203', state: 'available', queues: ['sales'] }),
    ],
    calls: [{ callId: 'c-1', direction: 'inbound' as const, caller: { number: '555', name: HOSTILE }, called: { number: '100' }, queue: 'sales', agent: { id: '201', name: 'Ana' }, state: 'talking' as const, started: ago(80), stateSince: ago(65) }],
    missed: [missedCall('m-1', { time: ago(300), caller: { number: '+4930123', name: HOSTILE } })],
  };
  const floor = await startFakeFloor({ supervisorToken: SUP, agentToken: AGENT, snapshot });
  t.teardown(() => floor.close());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Refused requests (the 422 asked for, the cut stream, no favicon) are the browser's own lines.
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
  await page.goto(`${floor.url}/supervisor?token=${SUP}`);
  await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 10_000 });

  t.test('when the snapshot arrives, then every region shows it, escaped, and the token is gone from the address bar', async (t) => {
    t.notMatch(page.url(), /token/, 'then ?token= is removed');
    t.equal(await page.evaluate(() => sessionStorage.length), 1, 'then the token is in sessionStorage');
    const row = page.locator('[data-testid="queue-row"][data-queue="sales"]');
    const cell = (c: string) => row.locator(`[data-col="${c}"]`).textContent();
    t.equal(await cell('answered'), '4');
    t.equal(await cell('abandoned'), '1');
    t.equal(await cell('abandonRate'), '20 %');
    t.equal(await cell('serviceLevel'), '60 % ≤15 s');
    t.equal(await cell('averageTalk'), '2:05');
    t.match(await cell('longestWait'), /^0:(29|3\d)$/);
    const ana = page.locator('[data-testid="agent-tile"][data-agent="201"]');
    t.equal(await ana.getAttribute('data-state'), 'on_call');
    t.match(await ana.innerText(), /Ana[\s\S]*ext\. 201[\s\S]*On a call 1:0\d[\s\S]*555\)? · sales 1:0\d[\s\S]*3 calls today/);
    const bo = page.locator('[data-testid="agent-tile"][data-agent="202"]');
    t.equal(await bo.getAttribute('data-state'), 'paused');
    t.match(await bo.innerText(), /Paused[\s\S]*Reason: lunch/);
    t.equal(await page.locator('[data-testid="call-row"][data-call="c-1"] [data-col="caller"]').textContent(), `${HOSTILE} (555)`, 'then the hostile name is text');
    t.equal(await page.locator('[data-testid="missed-row"]').count(), 1);
    t.equal(await page.evaluate(() => document.querySelectorAll('main img, main script').length), 0, 'then no element came from a caller name');
    t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned ?? 0), 0);
    t.equal(await page.locator('[data-testid="chart-slot"]').count(), 96, 'then the chart has 96 slots');
    t.match(await page.getByTestId('chart-summary').textContent(), /^Today: 0 answered, 0 missed\./);
  });

  t.test('when a second passes, then durations count up without a push', async (t) => {
    const before = await page.locator('[data-testid="agent-tile"][data-agent="201"] .state-time').textContent();
    await page.waitForFunction((b) => document.querySelector('[data-testid="agent-tile"][data-agent="201"] .state-time')?.textContent !== b, before, { timeout: 5000 });
    t.pass(`then "${before}" moved on`);
  });

  t.test('when a patch names one agent, one queue and a chart slot, then only those nodes change', async (t) => {
    await page.evaluate(() => {
      const w = window as unknown as { __mut: string[]; __row: Element | null };
      w.__mut = [];
      w.__row = document.querySelector('[data-testid="queue-row"]');
      new MutationObserver((ms) => {
        for (const m of ms) {
          const tile = (m.target instanceof Element ? m.target : m.target.parentElement)?.closest('[data-testid="agent-tile"]');
          // Ticking durations are the timer's, not the patch's.
          if (tile && !(m.target.parentElement?.matches('[data-since]') || (m.target instanceof Element && m.target.matches('[data-since]')))) w.__mut.push(tile.getAttribute('data-agent') ?? '');
        }
      }).observe(document.getElementById('agent-tiles')!, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const slot = { index: 40, label: '10:00', answered: 3, missed: { abandoned: 2, no_answer: 1, busy: 0, unavailable: 0, timeout: 0 } };
    floor.patch({ agents: [agentFigures('203', { name: 'Cy', extension: '203', state: 'ringing', queues: ['sales'] })], queues: [queueFigures('sales', { answered: 5 })], chart: [slot] });
    await page.locator('[data-testid="agent-tile"][data-agent="203"][data-state="ringing"]').waitFor({ timeout: 5000 });
    await page.locator('[data-testid="queue-row"] [data-col="answered"]', { hasText: '5' }).waitFor({ timeout: 5000 });
    const { mut, same } = await page.evaluate(() => {
      const w = window as unknown as { __mut: string[]; __row: Element | null };
      return { mut: [...new Set(w.__mut)], same: w.__row === document.querySelector('[data-testid="queue-row"]') };
    });
    t.same(mut, ['203'], 'then no other tile was touched');
    t.ok(same, 'then the queue row is the same node, updated in place');
    const g = page.locator('[data-testid="chart-slot"][data-index="40"]');
    t.equal(await g.getAttribute('data-answered'), '3');
    t.equal(await g.getAttribute('data-missed'), '3');
    t.match(await page.getByTestId('chart-summary').textContent(), /^Today: 3 answered, 3 missed \(2 abandoned, 1 no answer\)\. Busiest quarter hour: 10:00 with 6 calls\./);
  });

  t.test('when a call ends and a new one starts, then its row goes and the new one comes, oldest first', async (t) => {
    floor.patch({ callsEnded: ['c-1'], calls: [{ callId: 'c-2', direction: 'inbound', caller: { number: '777' }, called: { number: '100' }, queue: 'sales', agent: null, state: 'queued', started: ago(5), stateSince: ago(4) }] });
    await page.locator('[data-testid="call-row"][data-call="c-2"]').waitFor({ timeout: 5000 });
    t.equal(await page.locator('[data-testid="call-row"]').count(), 1);
    t.match(await page.locator('[data-testid="call-row"][data-call="c-2"] [data-col="state"]').textContent(), /^Waiting in queue 0:0\d$/);
  });

  t.test("when an agent places a call, then the tile shows whom it calls, not the agent (an outbound call's caller)", async (t) => {
    // The call comes in a later patch than the agent: the tile is refreshed by the call's change.
    floor.patch({ agents: [agentFigures('201', { name: 'Ana', extension: '201', state: 'on_call', since: ago(2), queues: ['sales'], call: { callId: 'c-3', caller: { number: '201', name: 'Ana' }, queue: null, since: ago(1) }, callsToday: 3 })] });
    await page.locator('[data-testid="agent-tile"][data-agent="201"] .call-who', { hasText: /^Ana \(201\)$/ }).waitFor({ timeout: 5000 });
    floor.patch({ calls: [{ callId: 'c-3', direction: 'outbound', caller: { number: '201', name: 'Ana' }, called: { number: '+4930999' }, queue: null, agent: { id: '201', name: 'Ana' }, state: 'talking', started: ago(3), stateSince: ago(1) }] });
    await page.locator('[data-testid="agent-tile"][data-agent="201"] .call-who', { hasText: /^\+4930999$/ }).waitFor({ timeout: 5000 });
    t.match(await page.locator('[data-testid="call-row"][data-call="c-3"]').innerText(), /\+4930999[\s\S]*Ana[\s\S]*Talking \(outbound\)/, 'then the call row names the number called too');
    floor.patch({ callsEnded: ['c-3'], agents: [agentFigures('201', { name: 'Ana', extension: '201', state: 'available', queues: ['sales'], callsToday: 4 })] });
    await page.locator('[data-testid="call-row"][data-call="c-3"]').waitFor({ state: 'detached', timeout: 5000 });
  });

  t.test('when a call-back is asked without an agent, then nothing is sent and the page says why', async (t) => {
    const row = page.locator('[data-testid="missed-row"][data-call="m-1"]');
    await row.getByTestId('call-back').click();
    t.equal(await row.locator('.cb-result').textContent(), 'Choose the agent who calls back.');
    t.equal(floor.callBacks.length, 0);
  });

  t.test('when the API refuses the call-back, then the problem detail shows', async (t) => {
    floor.callBackAnswer = { status: 422, body: { type: 'about:blank', title: 'Unprocessable Content', status: 422, detail: "number: '+4930123' is not allowed" } };
    const row = page.locator('[data-testid="missed-row"][data-call="m-1"]');
    const select = row.locator('select');
    await select.focus();
    const options = await select.locator('option').allTextContents();
    // Available agents first (Ana), then the others by name.
    t.same(options, ['Choose an agent…', 'Ana (201) — Available', 'Bo (202) — Paused', 'Cy (203) — Ringing'], 'then the options are filled when the select is used, available agents first');
    await select.selectOption('203');
    await row.getByTestId('call-back').click();
    await row.locator('.cb-result[data-kind="error"]').waitFor({ timeout: 5000 });
    t.equal(await row.locator('.cb-result').textContent(), "Not placed: number: '+4930123' is not allowed (HTTP 422)");
    t.same(floor.callBacks.at(-1), { authorization: `Bearer ${SUP}`, body: { agent: '203', number: '+4930123' } }, "then it was the supervisor's token and the caller's number");
  });

  t.test('when the API places the call-back and the call is answered, then the row says called back, with no button', async (t) => {
    floor.callBackAnswer = { status: 202, body: { id: 'cb-9', agent: '203', number: '+4930123', status: 'originating' } };
    const row = page.locator('[data-testid="missed-row"][data-call="m-1"]');
    await row.getByTestId('call-back').click();
    await row.locator('.cb-result[data-kind="ok"]').waitFor({ timeout: 5000 });
    t.match(await row.locator('.cb-result').textContent(), /Cy's phone rings first, then \+4930123 \(originating\)/);
    const at = new Date();
    floor.patch({ missed: [missedCall('m-1', { time: ago(300), caller: { number: '+4930123', name: HOSTILE }, calledBack: { time: at.toISOString(), callId: 'cb-9', agent: '203', how: 'called_back' } })] });
    await page.locator('[data-testid="missed-row"][data-call="m-1"][data-called-back="true"]').waitFor({ timeout: 5000 });
    const hhmm = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'Europe/Berlin' }).format(at);
    t.equal(await row.locator('.cb-done').textContent(), `called back at ${hhmm} by Cy`);
    t.notOk(await row.getByTestId('call-back').isVisible(), 'then no button');
  });

  t.test('when newer missed calls arrive, then they come first', async (t) => {
    floor.patch({ missed: [missedCall('m-2', { time: ago(60), reason: 'no_answer' }), missedCall('m-0', { time: ago(900), reason: 'timeout' })] });
    await page.locator('[data-testid="missed-row"][data-call="m-0"]').waitFor({ timeout: 5000 });
    t.same(await page.getByTestId('missed-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-call'))), ['m-2', 'm-1', 'm-0']);
    t.equal(await page.locator('[data-testid="missed-row"][data-call="m-0"] [data-col="reason"]').textContent(), 'Queue timeout');
  });

  t.test('when the bridge says it lost the PBX, then the badge says so in the warning colour, and live again when it is back', async (t) => {
    const badge = page.getByTestId('conn-state');
    const liveColour = await badge.evaluate((e) => getComputedStyle(e).color);
    floor.status({ source: 'ami', state: 'disconnected', since: new Date().toISOString() });
    await page.locator('[data-testid="conn-state"][data-pbx="down"]').waitFor({ timeout: 5000 });
    t.equal(await badge.textContent(), 'connected — PBX unreachable');
    t.not(await badge.evaluate((e) => getComputedStyle(e).color), liveColour, 'then not in the live colour');
    t.match(await page.locator('#conn-detail').textContent(), /lost the phone system/);
    floor.status({ source: 'ami', state: 'connected', since: new Date().toISOString() });
    await page.locator('[data-testid="conn-state"][data-pbx="up"]').waitFor({ timeout: 5000 });
    t.equal(await badge.textContent(), 'live');
  });

  t.test('when the stream drops, then the page says reconnecting, then live on a new snapshot that replaces everything', async (t) => {
    floor.snapshot = { ...floor.snapshot, agents: [agentFigures('301', { name: 'Dee' })], calls: [], missed: [] };
    floor.cut();
    await page.locator('[data-testid="conn-state"][data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="agent-tile"][data-agent="301"]').waitFor({ timeout: 5000 });
    t.equal(await page.getByTestId('agent-tile').count(), 1, 'then the old agents are gone');
    t.equal(await page.getByTestId('missed-row').count(), 0);
    t.equal(await page.getByTestId('call-row').count(), 0);
  });

  t.test('when the floor is 100 queues and 1,000 agents, then the page renders them, filters them, and a patch of 50 agents renders within a frame or two', async (t) => {
    floor.resend(bigFloor(100, 1000));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="agent-tile"]').length === 1000, null, { timeout: 15_000 });
    t.equal(await page.getByTestId('queue-row').count(), 100);
    t.equal(await page.locator('#agent-counts [data-state="paused"] .chip-count').textContent(), String(Math.ceil((1000 - 2) / 7)), 'then the paused count is every seventh agent');
    await page.getByTestId('agent-filter').fill('agent 1099');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="agent-tile"]:not([hidden])').length === 1, null, { timeout: 5000 });
    t.equal(await page.locator('#agents-shown').textContent(), '1 of 1000 shown');
    await page.getByTestId('agent-filter').fill('');
    await page.locator('#agent-counts [data-state="paused"]').click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="agent-tile"]:not([hidden])')].every((e) => e.getAttribute('data-state') === 'paused'), null, { timeout: 5000 });
    await page.locator('#agent-counts [data-state=""]').click();
    // The time from a patch reaching the page to its rows being painted.
    const changed = Array.from({ length: 50 }, (_, i) => agentFigures(String(1000 + i * 20), { name: `Agent ${1000 + i * 20}`, state: 'ringing', queues: ['q000'] }));
    const t0 = await page.evaluate(() => performance.now());
    floor.patch({ agents: changed });
    const ids = changed.map((a) => a.id);
    const done = await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`[data-testid="agent-tile"][data-agent="${id}"]`)?.getAttribute('data-state') === 'ringing') && performance.now(), ids, { timeout: 5000 });
    const ms = ((await done.jsonValue()) as number) - t0;
    t.ok(ms < 2000, `then 50 changed tiles of 1,000 show within 2 s of the push (${Math.round(ms)} ms here, including the network)`);
  });

  t.test('when an agent token opens the page, then it is refused (403) and the login form says why', async (t) => {
    const p = await browser.newPage();
    const res = await p.goto(`${floor.url}/supervisor?token=${AGENT}`);
    t.equal(res?.status(), 403, 'then the server refuses the page itself');
    await p.goto(`${floor.url}/supervisor`);
    await p.getByTestId('token').fill(AGENT);
    await p.getByTestId('token').press('Enter');
    await p.locator('#login-error', { hasText: /not a supervisor's/ }).waitFor({ timeout: 5000 });
    t.ok(await p.getByTestId('login').isVisible());
    await p.close();
  });

  t.test('then the page logged no error', async (t) => {
    t.same(errors, []);
  });
});
