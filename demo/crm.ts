// The demo's sample CRM: a small web server (node:http, no framework) standing where a real CRM
// would. It receives the bridge's webhooks (checking their Standard Webhooks signature), shows
// them live on its home page, embeds agent 201's widget there, and serves the contact page the
// screen pop opens. Everything a caller or the dialplan controls is HTML-escaped (server side)
// or set as textContent (in the page).
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the CRM keeps of one webhook request. */
export interface ReceivedWebhook {
  /** The `webhook-id` header: the event id, the same on a re-delivery. */
  id: string;
  receivedAt: string;
  /** The parsed JSON body: the normalized event. */
  event: Record<string, unknown>;
}

export interface SampleCrmOptions {
  /** Preferred port; when taken, any free one. 0: any free one. */
  port: number;
  /** The webhook sink's signing secret, `whsec_<base64>`. */
  secret: string;
  /** One line saying where the calls come from (a live PBX or a replay), shown on every page. */
  source: string;
  live: boolean;
}

export interface SampleCrm {
  readonly url: string;
  readonly port: number;
  /** Every distinct webhook received, oldest first (the last KEEP). */
  received(): ReceivedWebhook[];
  /** Embeds the bridge's widget for this agent token in the home page. */
  setWidget(bridgeUrl: string, token: string): void;
  close(): Promise<void>;
}

const KEEP = 500;
const MAX_BODY = 1 << 20;
/** Standard Webhooks: reject a timestamp this far from now (replays). */
const TOLERANCE_S = 300;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The Standard Webhooks check, as README "Signatures" shows it. */
export function verifySignature(secret: string, headers: http.IncomingHttpHeaders, rawBody: string): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigs !== 'string') return false;
  if (!(Math.abs(Date.now() / 1000 - Number(ts)) <= TOLERANCE_S)) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const want = createHmac('sha256', key).update(`${id}.${ts}.${rawBody}`).digest();
  return sigs.split(' ').some((sig) => {
    const [v, b64] = sig.split(',');
    const got = Buffer.from(b64 ?? '', 'base64');
    return v === 'v1' && got.length === want.length && timingSafeEqual(got, want);
  });
}

export async function startSampleCrm(opts: SampleCrmOptions): Promise<SampleCrm> {
  const received: ReceivedWebhook[] = [];
  const seen = new Set<string>();
  const streams = new Set<http.ServerResponse>();
  let widget: { bridgeUrl: string; token: string } | null = null;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://crm');
    const route = `${req.method} ${url.pathname}`;
    if (route === 'POST /webhooks') return void webhook(req, res);
    if (route === 'GET /') return page(res, 200, home(), homeCsp());
    if (route === 'GET /app.js') return send(res, 200, 'text/javascript; charset=utf-8', APP_JS);
    if (route === 'GET /style.css') return send(res, 200, 'text/css; charset=utf-8', STYLE);
    if (route === 'GET /events') return events(req, res);
    if (route === 'GET /api/webhooks') return send(res, 200, 'application/json', JSON.stringify(received));
    // HEAD too: the bridge asks whether the contact page may be framed in the agent page.
    if (route === 'GET /contact' || route === 'HEAD /contact') return page(res, 200, contact(url.searchParams), "default-src 'none'; style-src 'self'");
    if (route === 'GET /favicon.ico') return void res.writeHead(204).end();
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  });

  function send(res: http.ServerResponse, status: number, type: string, body: string, extra: http.OutgoingHttpHeaders = {}): void {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
    res.end(body);
  }

  function page(res: http.ServerResponse, status: number, html: string, csp: string): void {
    send(res, status, 'text/html; charset=utf-8', html, { 'content-security-policy': csp });
  }

  function webhook(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, 413, 'text/plain', 'too large\n');
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (!verifySignature(opts.secret, req.headers, raw)) return send(res, 401, 'text/plain', 'bad signature\n');
      let event: unknown;
      try {
        event = JSON.parse(raw);
      } catch {
        return send(res, 400, 'text/plain', 'not JSON\n');
      }
      if (typeof event !== 'object' || event === null || Array.isArray(event)) return send(res, 422, 'text/plain', 'not an event\n');
      const id = String(req.headers['webhook-id']);
      // Delivery is at least once: a re-delivery (same webhook-id) is acknowledged, not shown twice.
      if (!seen.has(id)) {
        seen.add(id);
        const item: ReceivedWebhook = { id, receivedAt: new Date().toISOString(), event: event as Record<string, unknown> };
        received.push(item);
        if (received.length > KEEP) seen.delete(received.shift()!.id);
        for (const s of streams) s.write(`data: ${JSON.stringify(item)}\n\n`);
      }
      res.writeHead(204).end();
    });
  }

  /** The home page's live feed: what was received so far, then each new webhook (SSE). */
  function events(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    for (const item of received) res.write(`data: ${JSON.stringify(item)}\n\n`);
    streams.add(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(keepAlive);
      streams.delete(res);
    });
  }

  function homeCsp(): string {
    const bridge = widget ? ` ${new URL(widget.bridgeUrl).origin}` : '';
    return `default-src 'self'; script-src 'self'${bridge}; frame-src${bridge || " 'none'"}; style-src 'self'`;
  }

  function home(): string {
    const widgetTag = widget
      ? `<script src="${escapeHtml(`${widget.bridgeUrl}/widget.js`)}" data-token="${escapeHtml(widget.token)}"></script>`
      : '';
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sample CRM — crm-bridge demo</title>
<link rel="stylesheet" href="/style.css"></head>
<body>
<header><h1>Sample CRM</h1><p class="source ${opts.live ? 'live' : 'replay'}">${escapeHtml(opts.source)}</p></header>
<main>
<section><h2>Webhooks received <small id="count">0</small></h2>
<p class="hint">Every event the bridge's webhook sink POSTs to <code>/webhooks</code> (JSON, signature checked), newest first. Click a row for the JSON.</p>
<label><input type="checkbox" id="hide-status" checked> hide <code>agent.status</code></label>
<ol id="webhooks" class="feed"></ol></section>
<section><h2>Agent 201's widget</h2>
<p class="hint">The same events as agent 201's browser gets them: <code>&lt;script src=".../widget.js" data-token="…"&gt;</code> in this page.</p>
<p>Widget: <b id="widget-state">${widget ? 'connecting' : 'not configured'}</b></p>
<ol id="widget" class="feed"></ol></section>
</main>
<script src="/app.js"></script>
${widgetTag}
</body></html>
`;
  }

  function contact(q: URLSearchParams): string {
    const get = (k: string) => q.get(k) ?? '';
    const callId = get('call');
    const vars = [...q.entries()].filter(([k]) => k.startsWith('Omlcrm'));
    const rows = vars.length
      ? vars.map(([k, v]) => `<tr><th><code>${escapeHtml(k)}</code></th><td>${v ? escapeHtml(v) : '<i>(none)</i>'}</td></tr>`).join('')
      : '<tr><td>(none)</td></tr>';
    const history = received
      .filter((r) => callId !== '' && r.event.callId === callId)
      .map((r) => `<li><code>${escapeHtml(String(r.event.type))}</code> ${escapeHtml(String(r.event.time ?? ''))}</li>`)
      .join('');
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contact ${escapeHtml(get('phone'))} — Sample CRM</title>
<link rel="stylesheet" href="/style.css"></head>
<body class="contact">
<header><h1>${escapeHtml(get('name') || 'Unknown caller')}</h1><p class="phone">${escapeHtml(get('phone') || 'number withheld')}</p>
<p class="source ${opts.live ? 'live' : 'replay'}">${escapeHtml(opts.source)}</p></header>
<p class="hint">The sample CRM's contact page, opened by the bridge's screen pop when the call rang agent ${escapeHtml(get('agent'))}. A real CRM would look the customer up by these values.</p>
<h2>From the dialplan (<code>Omlcrm…</code> variables)</h2>
<table>${rows}</table>
<h2>This call</h2>
<p>Call id <code>${escapeHtml(callId || '?')}</code>. Webhooks received for it so far:</p>
<ol>${history || '<li>(none yet)</li>'}</ol>
</body></html>
`;
  }

  const port = await listen(server, opts.port);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    received: () => [...received],
    setWidget(bridgeUrl, token) {
      widget = { bridgeUrl, token };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Listens on 127.0.0.1:port, or on a free port if that one is taken. */
async function listen(server: http.Server, port: number): Promise<number> {
  const attempt = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await attempt(port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
    await attempt(0);
  }
  return (server.address() as AddressInfo).port;
}

const STYLE = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #233; color: #fff; padding: .6rem 1.2rem; }
header h1 { margin: 0; font-size: 1.3rem; }
.source { margin: .2rem 0 0; font-weight: 600; }
.source.replay { color: #ffcf70; }
.source.live { color: #8ef0a6; }
main { display: grid; grid-template-columns: 3fr 2fr; gap: 1rem; padding: 1rem; }
section { background: #fff; border-radius: 6px; padding: .6rem 1rem; box-shadow: 0 1px 2px #0002; min-width: 0; }
h2 { font-size: 1.05rem; }
.hint { color: #667; font-size: .9rem; }
.feed { list-style: none; padding: 0; margin: 0; font-size: .9rem; }
.feed li { border-top: 1px solid #eee; padding: .3rem 0; cursor: pointer; }
.feed li.status { color: #889; }
.feed li pre { white-space: pre-wrap; word-break: break-all; background: #f3f3f6; padding: .4rem; cursor: auto; }
.feed .type { font-family: monospace; font-weight: 600; margin-right: .5rem; }
.feed .time { color: #889; font-family: monospace; margin-right: .5rem; }
body.contact { padding-bottom: 1rem; }
body.contact > *:not(header) { margin-left: 1.2rem; margin-right: 1.2rem; }
.phone { font-size: 1.6rem; margin: .1rem 0; font-family: monospace; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .2rem .8rem .2rem 0; }
`;

// The home page's script. Every value from an event is set with textContent: never parsed as HTML.
const APP_JS = `
const list = document.getElementById('webhooks');
const count = document.getElementById('count');
const hideStatus = document.getElementById('hide-status');
let n = 0;
function summary(e) {
  const parts = [];
  if (e.agent && e.agent.id) parts.push('agent ' + e.agent.id);
  if (e.caller && e.caller.number) parts.push(e.caller.number + (e.caller.name ? ' "' + e.caller.name + '"' : ''));
  if (e.queue && e.queue.name) parts.push('queue ' + e.queue.name);
  if (e.reason) parts.push(e.reason);
  if (e.disposition) parts.push(e.disposition);
  if (e.status) parts.push(e.status);
  const vars = Object.entries(e.vars || {}).map(([k, v]) => k + '=' + v);
  if (vars.length) parts.push(vars.join(' '));
  return parts.join(' · ');
}
function row(e, when) {
  const li = document.createElement('li');
  if (e.type === 'agent.status') li.className = 'status';
  const time = document.createElement('span'); time.className = 'time'; time.textContent = (when || e.time || '').slice(11, 19);
  const type = document.createElement('span'); type.className = 'type'; type.textContent = e.type;
  const text = document.createElement('span'); text.textContent = summary(e);
  li.append(time, type, text);
  li.addEventListener('click', (ev) => {
    if (ev.target.tagName === 'PRE') return;
    const open = li.querySelector('pre');
    if (open) { open.remove(); return; }
    const pre = document.createElement('pre'); pre.textContent = JSON.stringify(e, null, 2); li.append(pre);
  });
  return li;
}
function filter() { for (const li of list.children) li.hidden = hideStatus.checked && li.className === 'status'; }
hideStatus.addEventListener('change', filter);
new EventSource('/events').onmessage = (m) => {
  const item = JSON.parse(m.data);
  const li = row(item.event, item.receivedAt);
  li.hidden = hideStatus.checked && li.className === 'status';
  list.prepend(li);
  while (list.children.length > 500) list.lastElementChild.remove();
  count.textContent = String(++n);
};
const widgetList = document.getElementById('widget');
const widgetState = document.getElementById('widget-state');
window.addEventListener('crm-bridge', (ev) => {
  const { event, data } = ev.detail;
  if (event === 'connection') { widgetState.textContent = data.state; return; }
  if (event === 'ready') { widgetState.textContent = 'live (agent ' + (data.agent ? data.agent.id : '?') + ')'; return; }
  if (event === 'error') { widgetState.textContent = 'error: ' + data.message; return; }
  if (!data || !data.type || data.type === 'agent.status') return;
  widgetList.prepend(row(data));
  while (widgetList.children.length > 100) widgetList.lastElementChild.remove();
});
`;
