// Someone else's PBX: every cacofonisk recording (test/fixtures/foreign/README.md) replayed through
// the built CLI with no config, as a user would replay their own trace. Every line must be a valid
// contract event, the stream must keep the contract's guarantees, and cacofonisk's own verdict on
// the recording (test/helpers/check-cacofonisk.js) must hold.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { validateEvent } from '../dist/events/validator.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { contractViolations } from './helpers/contract.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const traces = join(root, 'test/fixtures/foreign/cacofonisk/traces');
const judge = join(root, 'test/helpers/check-cacofonisk.js');
const cli = join(root, 'bin/crm-bridge.js');

const names = readdirSync(traces).filter((f) => f.endsWith('.ami')).sort();
const out = mkdtempSync(join(tmpdir(), 'crm-bridge-foreign-'));
t.teardown(() => rmSync(out, { recursive: true, force: true }));

interface Replay {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `crm-bridge replay TRACE` as a user would. */
function replay(name: string): Promise<Replay> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'replay', join(traces, name)], { cwd: root, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

// Each replay is a process start (about a second of module loading); four at a time keep the
// 28 of them well inside tap's per-file timeout on a busy machine. Subtests still report in order.
const POOL = 4;
const replays = new Map<string, Promise<Replay>>();
let next = 0;
function startNext(): void {
  const name = names[next++];
  if (name === undefined) return;
  const run = replay(name);
  replays.set(name, run);
  void run.then(startNext);
}
for (let i = 0; i < POOL; i++) startNext();

t.test('given the cacofonisk recordings, then there are all 28 of them', async (t) => {
  t.equal(names.length, 28);
});

for (const name of names) {
  t.test(`given the cacofonisk recording ${name}, when replayed with no config, then every line is a valid event and cacofonisk's verdict holds`, async (t) => {
    const run = await replays.get(name)!;
    t.equal(run.status, 0, `then the replay exits 0${run.status === 0 ? '' : `: ${run.stderr.trim().split('\n').pop() ?? ''}`}`);
    const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
    const invalid: string[] = [];
    const events: BridgeEvent[] = [];
    lines.forEach((line, i) => {
      let e: unknown;
      try {
        e = JSON.parse(line);
      } catch {
        invalid.push(`line ${i + 1} is not JSON: ${line.slice(0, 80)}`);
        return;
      }
      const problems = validateEvent(e);
      if (problems.length > 0) invalid.push(`line ${i + 1} (${String((e as { type?: unknown }).type)}): ${problems.join('; ')}`);
      else events.push(e as BridgeEvent);
    });
    t.same(invalid, [], 'then every line is valid against schema/events.v1.json');
    t.same(contractViolations(events), [], "then the contract's ordering guarantees hold");
    const file = join(out, `${name}.ndjson`);
    writeFileSync(file, run.stdout);
    const verdict = spawnSync(process.execPath, [judge, name, file], { encoding: 'utf8', timeout: 30_000 });
    const failed = verdict.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim());
    t.same(failed, [], "then cacofonisk's verdict holds (one line per failed expectation)");
    t.equal(verdict.status, 0, `then the judge exits 0${verdict.stderr ? `: ${verdict.stderr.trim()}` : ''}`);
  });
}
