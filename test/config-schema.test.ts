// The config schema for editors (schema/config.v1.json): equal to what the code's schema
// generates (`npm run schema:config`), standard JSON Schema that Ajv compiles in its default
// strict mode with no keyword of ours, referenced from config.yaml's first line, and in
// agreement with the daemon on the shipped config and on typical mistakes.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { CONFIG_SCHEMA_ID, editorSchema, editorSchemaText } from '../dist/config/editor-schema.js';

const FILE = new URL('../schema/config.v1.json', import.meta.url);
const shipped = readFileSync(FILE, 'utf8');

t.test('given the code schema, when regenerated in memory, then it equals schema/config.v1.json (else run npm run schema:config)', async (t) => {
  t.equal(shipped, editorSchemaText());
  t.equal(JSON.parse(shipped).$id, CONFIG_SCHEMA_ID);
  t.equal(CONFIG_SCHEMA_ID, 'https://asterisk-crm-bridge.dev/schema/config.v1.json');
});

t.test('given a standard validator (Ajv, default strict mode, no keyword or format added), then the file compiles', async (t) => {
  const text = JSON.stringify(editorSchema());
  for (const keyword of ['"secret":true', '"discriminator"', '"uniqueBy"', '"regexp":true']) t.notMatch(text, keyword, `then ${keyword} is not in it`);
  t.doesNotThrow(() => new Ajv().compile(JSON.parse(shipped)));
});

const validate = new Ajv({ allErrors: true }).compile(JSON.parse(shipped));
const head = { pbx: { name: 'pbx1', ami: { username: 'crm-bridge', secret: { file: '/etc/crm-bridge/ami.secret' } } } };

t.test('given config.yaml, then its first line points editors at the schema, and the schema accepts it', async (t) => {
  const text = readFileSync(new URL('../config.yaml', import.meta.url), 'utf8');
  t.equal(text.split('\n')[0], '# yaml-language-server: $schema=./schema/config.v1.json');
  t.ok(validate(parse(text)), JSON.stringify(validate.errors));
});

t.test('given typical mistakes, then the editor schema flags them as the daemon does', async (t) => {
  t.ok(validate(head), 'then a minimal config passes');
  t.ok(validate({ ...head, sinks: [{ type: 'webhook', url: 'https://crm/x', secret: { env: 'HOOK_SECRET' } }] }), 'then a secret by reference passes');
  const flagged = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.keyword}`));
  t.match(flagged({ ...head, calls: { agentContxts: ['agents'] } }), ['/calls additionalProperties'], 'then a typo is flagged');
  t.not(flagged({ ...head, pbx: { ...head.pbx, ami: { ...head.pbx.ami, secret: { env: 'x y' } } } }).length, 0, 'then a bad secret reference is flagged');
  t.not(flagged({ ...head, sinks: [{ type: 'webhok', url: 'https://crm/x' }] }).length, 0, 'then an unknown sink type is flagged');
  t.not(flagged({ ...head, sinks: [{ type: 'webhook' }] }).length, 0, 'then a webhook without url is flagged');
});
