// `crm-bridge check-config` and `run` (the built command line, spawned) on configs a newcomer
// writes: every problem in one pass — the schema's and the templates' together — and a webhook
// signing secret no Standard Webhooks library could verify refused with how to make one.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli as spawnCli } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'crm-bridge-check-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
// `run` with a config it should have refused would go on running: the deadline ends it.
const cli = (args: string[]) => spawnCli(args, {}, { timeoutMs: 20_000 });

const HEAD = ['pbx:', '  name: pbx1', '  ami:', '    username: bridge', '    secret: ami-password', ''];
function write(name: string, lines: string[]): string {
  const file = join(tmp, name);
  writeFileSync(file, [...HEAD, ...lines, ''].join('\n'));
  return file;
}
const webhook = (secret: string) => ['sinks:', '  - type: webhook', '    url: https://crm.example.com/hook', `    secret: "${secret}"`];

t.test('given a schema error and a template error in one file, when checked, then one run reports both', async (t) => {
  const file = write('both.yaml', [
    'calls:',
    '  agentContxts: [agents]',
    'sinks:',
    '  - type: webhook',
    '    url: "https://crm.example.com/{nosuchvar}"',
  ]);
  const r = await cli(['check-config', file]);
  t.equal(r.code, 78, 'then it exits with EX_CONFIG');
  t.match(r.stderr, "calls.agentContxts: unknown key (did you mean 'agentContexts'?)", 'then the schema error is reported');
  t.match(r.stderr, /sinks\[0\]\.url: .*nosuchvar/, 'then the template error is reported in the same run');
});

t.test('given a sink the schema refuses, when checked, then its broken values are reported once, by the schema', async (t) => {
  const file = write('one.yaml', ['sinks:', '  - type: webhook', '    url: 42', '    params: [{ from: callId }]']);
  const r = await cli(['check-config', file]);
  t.equal(r.code, 78);
  t.same(r.stderr.split('\n').filter((l) => /sinks\[0\]\.url/.test(l)).length, 1, 'then the url is named once');
  t.match(r.stderr, "sinks[0].params[0].as: is required");
  t.notMatch(r.stderr, /TypeError|is not a function|cannot be checked/, 'then no check trips over the wrong type');
});

for (const [what, secret] of [
  ['not base64 at all', 'whsec_my-webhook-secret!'],
  ['base64url, not base64', `whsec_${'-_'.repeat(16)}`],
  ['missing its padding', `whsec_${randomBytes(32).toString('base64').replace(/=+$/, '')}`],
  ['with a line break inside', `whsec_${randomBytes(16).toString('base64')}\\n${randomBytes(15).toString('base64')}`],
] as const) {
  t.test(`given a whsec_ secret ${what}, when checked or run, then it is refused with how to make one, never shown`, async (t) => {
    const file = write('secret.yaml', webhook(secret));
    for (const args of [['check-config', file], ['run', '--config', file]]) {
      const r = await cli(args);
      t.equal(r.code, 78, `then ${args[0]} exits with EX_CONFIG`);
      t.match(r.stderr, 'sinks[0].secret: must be whsec_ followed by standard base64', 'then the key is named');
      t.match(r.stderr, 'echo "whsec_$(openssl rand -base64 32)"', 'then it says how to make one');
      t.notMatch(r.stderr + r.stdout, secret.slice(6, 20), 'then the secret is not shown');
    }
  });
}

t.test('given a secret made the way the message says, when checked, then it passes', async (t) => {
  const file = write('good.yaml', webhook(`whsec_${randomBytes(32).toString('base64')}`));
  const r = await cli(['check-config', file]);
  t.equal(r.code, 0, r.stderr);
});
