// What a newcomer meets first, kept true: the shipped config.yaml checks out as it is, the README
// and config.yaml name the same AMI user, the README's test command is what CI runs, and the
// Node versions the README promises are the ones package.json claims.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { cli } from './helpers/cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');

t.test('given a fresh checkout, when check-config reads the shipped config.yaml, then it is valid as it is', async (t) => {
  const run = await cli(['check-config', path.join(ROOT, 'config.yaml')]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /config\.yaml: ok \(/);
});

t.test('given the README and config.yaml, then they name the same AMI user', (t) => {
  const config = parse(read('config.yaml')) as { pbx: { ami: { username: string } } };
  const readme = read('README.md');
  const users = [...readme.matchAll(/^\s*username: (\S+)/gm)].map((m) => m[1]);
  const sections = [...readme.matchAll(/^\[([a-z-]+)\]\n(?:secret|type)/gm)].map((m) => m[1]);
  t.ok(users.length > 0 && sections.length > 0);
  for (const u of [...users.filter((u) => u !== 'crm'), ...sections]) t.equal(u, config.pbx.ami.username);
  t.end();
});

t.test("given the README's test command, then .ci/run runs exactly it", (t) => {
  t.match(read('README.md'), /```sh\nnpm test\n```/);
  t.match(read('.ci/run'), /^npm test 2>&1 \| tee "\$log"$/m);
  t.end();
});

t.test('given package.json engines, then the README states the same Node versions', (t) => {
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  const floors = [...engines.matchAll(/(\d+\.\d+)\.0/g)].map((m) => `${m[1]}+`);
  t.same(floors, ['20.19+', '22.12+']);
  for (const f of floors) t.ok(read('README.md').includes(`Node.js ${f}`) || read('README.md').includes(` ${f} `) || read('README.md').includes(`${f} and`), `README says ${f}`);
  t.end();
});
