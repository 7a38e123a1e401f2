// Behind a reverse proxy (docs/PBX.md): with http.trustedProxies, the per-address defences count
// each browser by the address the proxy forwarded for, not the proxy's own; without it, or from
// any other peer, X-Forwarded-For is ignored, so a client cannot pick the address it is counted as.
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { defaultConfig, loadConfig } from '../dist/config/load.js';
import { ConfigError } from '../dist/config/errors.js';
import { clientAddress, trustedProxies } from '../dist/http/client-address.js';
import { HttpServer } from '../dist/http/server.js';
import { TokenVerifier } from '../dist/http/tokens.js';
import { AgentDirectory } from '../dist/normalizer/agents.js';
import { ScreenPopSink } from '../dist/sinks/screenpop.js';

const TOKEN_201 = 'proxies-agent-201-7c3e9a1f5b0d2846';

async function startServer(t: Test, trusted: string[]) {
  const config = defaultConfig({ agents: [{ id: '201', extension: '201', interfaces: [], token: TOKEN_201 }], http: { listen: '127.0.0.1:0', trustedProxies: trusted } });
  const log = pino({ level: 'silent' });
  const screenpop = new ScreenPopSink({ log, keepAliveSeconds: 15, retryMs: 1000, bufferPerAgent: 10, agentQueues: new Map() });
  const server = new HttpServer({
    config: { ...config.http!, authThrottle: { maxFailures: 3, windowSeconds: 60 } },
    rules: [],
    screenpop,
    tokens: new TokenVerifier([{ token: TOKEN_201, who: { kind: 'agent', agentId: '201' } }], undefined),
    agents: new AgentDirectory({ agents: config.agents, agentContexts: [], extensionPattern: '^[0-9]+$' }),
    log,
  });
  await screenpop.start();
  await server.start();
  t.teardown(async () => {
    await screenpop.stop();
    await server.stop();
  });
  return server.address!.port;
}

/** GET /agent/me with a wrong token, from the proxy's address (127.0.0.1), forwarding for `forwardedFor`. */
function guess(port: number, forwardedFor: string | null, i: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer wrong-token-${i}-0123456789abcdef` };
    if (forwardedFor !== null) headers['x-forwarded-for'] = forwardedFor;
    http
      .get({ host: '127.0.0.1', port, path: '/agent/me', headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

t.test('given no trusted proxy, when a client sends X-Forwarded-For, then it is still counted by its own address', async (t) => {
  const port = await startServer(t, []);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push(await guess(port, `198.51.100.${i}`, i));
  t.same(statuses, [401, 401, 401, 429], 'rotating the header does not escape the throttle');
});

t.test('given the proxy is trusted, when browsers behind it guess wrong, then each is throttled by its own address', async (t) => {
  const port = await startServer(t, ['127.0.0.1']);
  const first: number[] = [];
  for (let i = 0; i < 4; i++) first.push(await guess(port, '203.0.113.5', i));
  t.same(first, [401, 401, 401, 429], 'the guesser behind the proxy is throttled');
  t.equal(await guess(port, '203.0.113.6', 9), 401, 'a colleague behind the same proxy is not');
  // What the client itself put in the header is left of the address the proxy appended.
  t.equal(await guess(port, '192.0.2.77, 203.0.113.5', 10), 429, 'a forged left-hand entry does not escape it');
});

t.test('given clientAddress, then it believes only trusted peers and the right-most untrusted hop', (t) => {
  const proxies = trustedProxies(['127.0.0.1', '10.0.0.0/8', '::1']);
  t.equal(clientAddress('192.0.2.1', '203.0.113.5', proxies), '192.0.2.1', 'an untrusted peer: the header is ignored');
  t.equal(clientAddress('127.0.0.1', '203.0.113.5', proxies), '203.0.113.5');
  t.equal(clientAddress('::ffff:127.0.0.1', '203.0.113.5', proxies), '203.0.113.5', 'IPv4-mapped peer');
  t.equal(clientAddress('127.0.0.1', '192.0.2.77, 203.0.113.5, 10.1.2.3', proxies), '203.0.113.5', 'proxies in a chain are skipped');
  t.equal(clientAddress('::1', ['203.0.113.5', '10.0.0.9'], proxies), '203.0.113.5', 'repeated headers are one list');
  t.equal(clientAddress('127.0.0.1', 'garbage, 203.0.113.5', proxies), '203.0.113.5');
  t.equal(clientAddress('127.0.0.1', '203.0.113.5, garbage', proxies), '127.0.0.1', 'an unreadable hop: nothing left of it is believed');
  t.equal(clientAddress('127.0.0.1', '10.0.0.1', proxies), '127.0.0.1', 'only proxies: the peer');
  t.equal(clientAddress('127.0.0.1', undefined, proxies), '127.0.0.1');
  t.equal(clientAddress('127.0.0.1', '203.0.113.5', null), '127.0.0.1', 'no trusted proxies');
  t.end();
});

t.test('given http.trustedProxies entries that are no address or subnet, then the config is refused, naming each', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'proxies-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, "pbx: { name: p, ami: { username: u, secret: s } }\nhttp:\n  listen: 127.0.0.1:0\n  trustedProxies: ['127.0.0.1', '10.0.0.0/33', '::1/129', 'fe80::1', '1.2.3', '10.0.0.0/8']\n");
  try {
    loadConfig(file, {});
    t.fail('accepted');
  } catch (err) {
    t.type(err, ConfigError);
    const text = String((err as Error).message) + JSON.stringify((err as ConfigError & { problems?: unknown }).problems ?? '');
    t.match(text, /http\.trustedProxies\[1\]: the prefix length must be 0-32/);
    t.match(text, /http\.trustedProxies\[2\]: the prefix length must be 0-128/);
    t.match(text, /http\.trustedProxies\[4\]: must be an IP address or a subnet/);
    t.notMatch(text, /trustedProxies\[(0|3|5)\]/);
  }
  t.end();
});
