// Tokens the bridge accepts must be hard to guess and all different: `crm-bridge check-config`
// (the built command line, spawned) refuses weak and shared ones, naming each offending key and
// never the token; a secret file other users can read gets a warning.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MIN_TOKEN_BITS, tokenBits, tokenWeakness } from '../dist/config/validate.js';
import { cli as spawnCli } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'crm-bridge-tokens-'));

// `run` with a config it should have refused would go on running: the deadline ends it.
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnCli(args, env, { timeoutMs: 20_000 });

const HEAD = ['pbx:', '  name: pbx1', '  ami:', '    username: bridge', '    secret: ami-password', ''];
const STRONG = {
  agent201: '3f8e1c60d29a4b75a61d09e4c7f35b28',
  agent202: 'Zk7#qW2!mR9@xV4$bN6%',
  supervisor: 'supervisor-floor-0b7e3f91c4a2d658',
  api: 'crm-api-9d41a6c0e2f87b35e6f0b3a9',
  metrics: 'metrics-5c2e8a17f0b94d6371d3b8e0',
  secret: '4a9c1e7b02f6d835a2e0c7d91b36f48e',
};

function config(tokens: { agent201: string; agent202: string; supervisor: string; api: string; metrics: string; secret: string }): string {
  return [
    ...HEAD,
    'agents:',
    `  - { id: "201", extension: "201", token: "${tokens.agent201}" }`,
    `  - { id: "202", extension: "202", token: "${tokens.agent202}" }`,
    'http:',
    '  listen: 127.0.0.1:8090',
    `  tokenSecret: "${tokens.secret}"`,
    `  metricsToken: "${tokens.metrics}"`,
    `  supervisors: [{ name: floor, token: "${tokens.supervisor}" }]`,
    'api:',
    `  tokens: [{ name: crm, token: "${tokens.api}" }]`,
    '',
  ].join('\n');
}

t.test('the estimate', async (t) => {
  t.equal(tokenBits('0123456789abcdef'.repeat(2)), 64, 'a repeated phrase counts once');
  t.equal(tokenBits('3f8e1c60d29a4b75a61d09e4c7f35b28'), 128, '32 hex characters: 128 bits');
  for (const weak of ['1', 'password', 'a'.repeat(64), '0123456789abcdef0123456789abcdef', 'password1password1password1password1', '3f8e1c60d29a4b75a61d09e4c7f35b2', 'abababababababababababababababababababac']) {
    t.match(tokenWeakness(weak), /^is too weak/, `'${weak.slice(0, 40)}' is refused`);
  }
  for (const strong of Object.values(STRONG)) t.equal(tokenWeakness(strong), null, `'${strong}' passes`);
  t.equal(MIN_TOKEN_BITS, 128);
});

t.test('given a config whose tokens are strong and all different, when checked, then it passes', async (t) => {
  const file = join(tmp, 'strong.yaml');
  writeFileSync(file, config(STRONG));
  const r = await cli(['check-config', file]);
  t.equal(r.code, 0, r.stderr);
});

t.test('given weak tokens, when checked, then it exits 78 naming each key, never a token', async (t) => {
  const file = join(tmp, 'weak.yaml');
  const weak = { ...STRONG, agent201: '1', supervisor: 'password', secret: 'k'.repeat(40), api: 'crm-api-token' };
  writeFileSync(file, config(weak));
  const r = await cli(['check-config', file]);
  t.equal(r.code, 78);
  for (const key of ['agents[0].token', 'http.supervisors[0].token', 'http.tokenSecret', 'api.tokens[0].token']) t.match(r.stderr, `${key}: is too weak`, `${key} is named`);
  t.notMatch(r.stderr, 'agents[1].token', 'a strong token is not');
  t.match(r.stderr, 'openssl rand -hex 32', 'then it says how to make a good one');
  for (const token of ['password', 'kkkk', 'crm-api-token']) t.notMatch(r.stderr + r.stdout, token, `${token} is not shown`);
});

t.test("given an agent whose token is the supervisor's, when checked, then it exits 78 naming both keys", async (t) => {
  const file = join(tmp, 'shared.yaml');
  writeFileSync(file, config({ ...STRONG, agent202: STRONG.supervisor, metrics: STRONG.api }));
  const r = await cli(['check-config', file]);
  t.equal(r.code, 78);
  t.match(r.stderr, 'http.supervisors[0].token: is the same token as agents[1].token');
  t.match(r.stderr, 'api.tokens[0].token: is the same token as http.metricsToken');
  t.notMatch(r.stderr + r.stdout, STRONG.supervisor);
  t.notMatch(r.stderr + r.stdout, STRONG.api);
});

t.test('given the same weak token from the environment and a file, when the daemon starts, then it refuses to', async (t) => {
  const file = join(tmp, 'run-weak.yaml');
  writeFileSync(file, [...HEAD, 'agents:', '  - { id: "201", token: { env: AGENT_TOKEN } }', 'http:', '  listen: 127.0.0.1:0', '  supervisors: [{ name: floor, token: { env: SUP_TOKEN } }]', ''].join('\n'));
  const r = await cli(['run', '--config', file], { AGENT_TOKEN: '1', SUP_TOKEN: '1' });
  t.equal(r.code, 78);
  t.match(r.stderr, 'agents[0].token: is too weak');
  t.match(r.stderr, 'http.supervisors[0].token: is the same token as agents[0].token');
});

t.test('given a secret file readable by others, when checked, then it passes with a warning; once chmod 600, without', async (t) => {
  const key = join(tmp, 'token.key');
  writeFileSync(key, `${STRONG.secret}\n`);
  chmodSync(key, 0o644);
  const file = join(tmp, 'file-secret.yaml');
  writeFileSync(file, [...HEAD, 'http:', '  listen: 127.0.0.1:8090', `  tokenSecret: { file: ${key} }`, ''].join('\n'));
  const loose = await cli(['check-config', file]);
  t.equal(loose.code, 0, loose.stderr);
  t.match(loose.stderr, `warning: http.tokenSecret: secret file ${key} is readable by its group and every user (mode 0644): chmod 600`);
  t.notMatch(loose.stderr, STRONG.secret);
  chmodSync(key, 0o600);
  const tight = await cli(['check-config', file]);
  t.equal(tight.code, 0);
  t.notMatch(tight.stderr, 'warning');
});

t.test('given the shipped config.yaml, when checked, then it still passes', async (t) => {
  const r = await cli(['check-config', new URL('../config.yaml', import.meta.url).pathname], { CRM_BRIDGE_CONFIG_PBX_AMI_SECRET: 'x' });
  t.equal(r.code, 0, r.stderr);
});
