// Node.js 22 (the LTS after 20, whose end of life was April 2026): the packed package installed and
// run under a real Node 22. The machines here have Node 20 only, so the test takes Node 22's
// official Linux build from the npm registry (the node-linux-<arch> package, binaries and headers),
// installs the packed bridge with it (better-sqlite3 compiled against Node 22's headers) and runs
// the command line, a replay of a real recording and the SQLite outbox under it.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { installGlobally, pack, run } from '../helpers/packed.js';
import { validateEvent } from '../../dist/events/validator.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE_MAJOR = '22';

// Downloads (or takes from npm's cache) ~50 MB and compiles SQLite: minutes on a busy machine.
t.setTimeout(20 * 60_000);

t.test(`given Node ${NODE_MAJOR}, when the packed bridge is installed and run with it, then it works`, async (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'crm-bridge-node22-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const big = { maxBuffer: 256 << 20 };
  const nodePkg = JSON.parse((await run('npm', ['pack', `node-${process.platform}-${process.arch}@${NODE_MAJOR}`, '--json', '--pack-destination', tmp], { cwd: tmp, ...big })).stdout) as Array<{ filename: string }>;
  await run('tar', ['xzf', path.join(tmp, nodePkg[0]!.filename), '-C', tmp]);
  const nodeDir = path.join(tmp, 'package');
  const env = { PATH: `${path.join(nodeDir, 'bin')}:${process.env.PATH}`, HOME: process.env.HOME ?? tmp, npm_config_nodedir: nodeDir };
  const version = (await run('node', ['--version'], { env })).stdout.trim();
  t.match(version, new RegExp(`^v${NODE_MAJOR}\\.`), `running ${version}`);

  const { tarball } = await pack(tmp);
  const { bin, installed } = await installGlobally(tarball, path.join(tmp, 'prefix'), env);
  t.ok(existsSync(bin));

  t.match((await run(bin, ['--help'], { env })).stdout, /Usage:/);
  t.match((await run(bin, ['check-config', path.join(installed, 'config.yaml')], { env })).stdout, /: ok \(/);
  // A real recording through the parser, normalizer and contract check, under Node 22.
  const recording = path.join(ROOT, 'lab', 'recordings', 'queue-answered.ami');
  const replay = await run(bin, ['replay', recording], { env, ...big });
  const events = replay.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  t.ok(events.length > 5, `${events.length} events`);
  t.same(events.flatMap((e) => validateEvent(e)), [], 'every event matches the contract');
  // The native SQLite addon, built for Node 22: the outbox takes and gives back an event.
  const db = path.join(tmp, 'outbox.db');
  const script = `
    const { Outbox } = await import(${JSON.stringify(path.join(installed, 'dist/outbox/index.js'))});
    const pino = (await import(${JSON.stringify(path.join(installed, 'node_modules/pino/pino.js'))})).default;
    const outbox = Outbox.open(${JSON.stringify(db)}, { log: pino({ level: 'silent' }), synchronous: 'normal' });
    console.log(JSON.stringify({ abi: process.versions.modules, problem: outbox.problem() }));
    outbox.close();`;
  const checked = JSON.parse((await run('node', ['--input-type=module', '-e', script], { env })).stdout) as { abi: string; problem: string | null };
  t.equal(checked.problem, null, `the outbox opens under Node ${NODE_MAJOR} (ABI ${checked.abi})`);
  t.ok(readdirSync(tmp).includes('outbox.db'));
});
