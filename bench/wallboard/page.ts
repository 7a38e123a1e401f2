// bench/wallboard.ts's browser: Debian's chromium (playwright-core, the e2e tests' launch
// arguments) with wallboard pages open, each watching its calls' rows with a MutationObserver
// (installed before the page's own scripts) and noting Date.now() when a call's row first shows a
// state, disappears, or its missed-call row appears; and the chromium processes, for their CPU.
import fs from 'node:fs';
import http from 'node:http';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Runs in the page before its scripts. Keys `<callId>|<state>` (ringing, queued, talking),
 * `<callId>|ended` (row removed), `<callId>|missed` (missed-call row added) -> Date.now() of the
 * first time; the observer's callback runs right after the page's render changed the DOM.
 */
const OBSERVE = `(() => {
  const seen = new Map();
  window.__wb = seen;
  const note = (key, at) => { if (!seen.has(key)) seen.set(key, at); };
  const start = () => {
    const calls = document.getElementById('call-rows');
    const missed = document.getElementById('missed-rows');
    if (!calls || !missed) return;
    new MutationObserver((ms) => {
      const at = Date.now();
      for (const m of ms) {
        if (m.type === 'attributes') {
          const row = m.target;
          if (row.dataset.call && row.dataset.state) note(row.dataset.call + '|' + row.dataset.state, at);
          continue;
        }
        for (const row of m.addedNodes) if (row.dataset && row.dataset.call && row.dataset.state) note(row.dataset.call + '|' + row.dataset.state, at);
        for (const row of m.removedNodes) if (row.dataset && row.dataset.call && !row.isConnected) note(row.dataset.call + '|ended', at);
      }
    }).observe(calls, { childList: true, attributes: true, attributeFilter: ['data-state'], subtree: true });
    new MutationObserver((ms) => {
      const at = Date.now();
      for (const m of ms) for (const row of m.addedNodes) if (row.dataset && row.dataset.call) note(row.dataset.call + '|missed', at);
    }).observe(missed, { childList: true });
  };
  document.addEventListener('DOMContentLoaded', start);
  // Responsiveness: how late a 50-ms timer fires (the main thread busy rendering, parsing, GC).
  const lag = [];
  window.__lag = lag;
  let due = performance.now() + 50;
  const tick = () => {
    const now = performance.now();
    lag.push(Math.round(now - due));
    due = now + 50;
    setTimeout(tick, 50);
  };
  setTimeout(tick, 50);
})();`;

export interface Board {
  browser: Browser;
  pages: Page[];
  errors: string[];
  /** Chromium's processes now: renderers (--type=renderer) and the rest (browser, GPU, utility). */
  processes(): { renderers: number[]; others: number[] };
  /** Every page's notes: [callId|state, ms]. */
  collect(): Promise<Array<Array<[string, number]>>>;
  /** Every page's 50-ms timer lateness since `from` (an index into its list), ms. */
  lag(from: number[]): Promise<number[][]>;
  /** Rows and tiles each page shows now. */
  counts(): Promise<Array<{ queues: number; agents: number; calls: number; missed: number }>>;
  /** Page 0's renderer counters (DevTools Performance.getMetrics): task, script, style and layout time (s) and counts. */
  metrics(): Promise<Record<string, number>>;
  /** Starts V8's CPU profiler in page 0 (DevTools protocol); stop() returns the .cpuprofile JSON. */
  profile(): Promise<{ stop(): Promise<string> }>;
  close(): Promise<void>;
}

function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = kids.get(ppid) ?? [];
      list.push(Number(d));
      kids.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of kids.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** Opens `n` wallboard pages at `url` (the token in the address, as a supervisor's bookmark). */
export async function openBoards(url: string, n: number, viewport: { width: number; height: number }, injectCss = ''): Promise<Board> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (Debian package chromium)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const errors: string[] = [];
  const pages: Page[] = [];
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage({ viewport });
    page.on('pageerror', (e) => errors.push(`page ${i}: ${String(e)}`));
    // The browser's own lines for refused requests (no favicon) are not the page's errors.
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(`page ${i}: ${m.text()}`));
    await page.addInitScript({ content: OBSERVE });
    await page.goto(url);
    await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 30_000 });
    // Diagnostic (--inject-css): try a style change on the real page without editing web/.
    if (injectCss) await page.addStyleTag({ content: injectCss });
    pages.push(page);
  }
  let metricsCdp: CDPSession | null = null;
  return {
    browser,
    pages,
    errors,
    processes: () => {
      // playwright-core spawns chromium from this process: its processes are our descendants
      // whose command is chromium's (the daemon is a child too).
      const all = descendants(process.pid).filter((p) => {
        try {
          return /chromium/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] ?? '');
        } catch {
          return false;
        }
      });
      const renderers: number[] = [];
      const others: number[] = [];
      for (const p of all) {
        let cmd = '';
        try {
          cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        (cmd.includes('--type=renderer') ? renderers : others).push(p);
      }
      return { renderers, others };
    },
    // Expressions, not functions: bench/ is type-checked without the DOM library.
    collect: () => Promise.all(pages.map((p) => p.evaluate<Array<[string, number]>>('[...window.__wb.entries()]'))),
    lag: (from) => Promise.all(pages.map((p, i) => p.evaluate<number[]>(`window.__lag.slice(${from[i] ?? 0})`))),
    counts: () =>
      Promise.all(
        pages.map((p) =>
          p.evaluate<{ queues: number; agents: number; calls: number; missed: number }>(
            `(() => { const n = (sel) => document.querySelectorAll(sel).length; return { queues: n('[data-testid="queue-row"]'), agents: n('[data-testid="agent-tile"]'), calls: n('[data-testid="call-row"]'), missed: n('[data-testid="missed-row"]') }; })()`,
          ),
        ),
      ),
    metrics: async () => {
      metricsCdp ??= await (pages[0] as Page).context().newCDPSession(pages[0] as Page);
      await metricsCdp.send('Performance.enable');
      const { metrics } = await metricsCdp.send('Performance.getMetrics');
      return Object.fromEntries(metrics.filter((m) => /Duration$|Count$|^JSHeapUsedSize$|^Nodes$/.test(m.name)).map((m) => [m.name, m.value]));
    },
    profile: async () => {
      const cdp = await (pages[0] as Page).context().newCDPSession(pages[0] as Page);
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
      await cdp.send('Profiler.start');
      return { stop: async () => JSON.stringify((await cdp.send('Profiler.stop')).profile) };
    },
    close: () => browser.close(),
  };
}

/** The floor's first snapshot on /supervisor/events (then the stream is closed): what the board would show. */
export function readSnapshot(port: number, token: string, timeoutMs = 30_000): Promise<{ queues: number; agents: number; calls: number; missed: number; answered: number; abandoned: number; agentStates: Record<string, number>; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/supervisor/events?token=${encodeURIComponent(token)}` }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`/supervisor/events: HTTP ${res.statusCode}`));
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        const m = /event: snapshot\ndata: (.*)\n\n/.exec(buf);
        if (!m) return;
        req.destroy();
        const s = JSON.parse(m[1] as string) as { queues: Array<{ answered: number; abandoned: number }>; agents: Array<{ state: string }>; calls: unknown[]; missed: unknown[] };
        const agentStates: Record<string, number> = {};
        for (const a of s.agents) agentStates[a.state] = (agentStates[a.state] ?? 0) + 1;
        resolve({ queues: s.queues.length, agents: s.agents.length, calls: s.calls.length, missed: s.missed.length, answered: s.queues.reduce((a, q) => a + q.answered, 0), abandoned: s.queues.reduce((a, q) => a + q.abandoned, 0), agentStates, bytes: (m[1] as string).length });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('/supervisor/events: no snapshot in time')));
    req.on('error', reject);
  });
}
