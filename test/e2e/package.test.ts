// The package as a newcomer installs it (README, "Install as a service"): `npm pack` in a checkout,
// then `npm install -g` of the tarball into a fresh prefix, then the installed command. It needs the
// npm registry (or npm's cache) for the dependencies, and builds better-sqlite3 from source where no
// prebuilt binary can be fetched: minutes, hence this layer.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { installGlobally, pack, run } from '../helpers/packed.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// npm builds better-sqlite3 from source here (no prebuilt binary can be fetched): minutes on a busy machine.
t.setTimeout(20 * 60_000);

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; main: string };

t.test('given a packed checkout, when it is installed globally into a fresh prefix, then crm-bridge runs from it', async (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'crm-bridge-pack-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const { tarball, files } = await pack(tmp);
  t.ok(files.includes(pkg.main), `the package holds its main (${pkg.main})`);
  for (const must of ['bin/crm-bridge.js', 'schema/events.v1.json', 'config.yaml', 'systemd/crm-bridge.service', 'web/agent/index.html', 'web/agent/agent.js', 'web/supervisor/index.html', 'web/supervisor/supervisor.js', 'dialplan/oml_extensions_custom.conf', 'lab/recordings/ten-calls.ami']) {
    t.ok(files.includes(must), `the package holds ${must}`);
  }
  // One recording of the lab is the start-up warm-up's (src/warm-up.ts), and npm packs the README
  // of every folder it packs from; the rest of lab/ stays out.
  const shipped = new Set(['lab/recordings/ten-calls.ami', 'lab/README.md']);
  t.same(files.filter((f) => /^(test|lab|bench|demo|src)\//.test(f) && !shipped.has(f)), [], 'no tests, lab, benchmarks, demo or TypeScript sources');

  const { bin, installed } = await installGlobally(tarball, path.join(tmp, 'prefix'));
  t.ok(existsSync(bin), 'npm linked the crm-bridge command');

  const help = await run(bin, ['--help'], { env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } });
  t.match(help.stdout, /Usage:/);
  const version = await run(bin, ['--version'], { env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } });
  t.equal(version.stdout.trim(), pkg.version);
  // The shipped reference config is valid as it is (a newcomer's first check-config).
  const check = await run(bin, ['check-config', path.join(installed, 'config.yaml')], { env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } });
  t.match(check.stdout, /: ok \(/);
  // The library entry loads from the installed package (its native SQLite addon included).
  const lib = await run(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(path.join(installed, pkg.main))}); console.log(typeof m.Bridge, Object.keys(m.SINKS).join(','))`]);
  t.equal(lib.stdout.trim(), 'function log,webhook,nats,screenpop,wallboard');
  // The start-up warm-up finds its recording in the installed package.
  const warm = await run(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(path.join(installed, 'dist/warm-up.js'))}); const { readFileSync } = await import('node:fs'); console.log(readFileSync(m.WARM_UP_TRACE).includes('Event: QueueCallerJoin'))`]);
  t.equal(warm.stdout.trim(), 'true', 'the warm-up recording is where dist/warm-up.js looks for it');
});
