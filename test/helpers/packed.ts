// The package as users get it: `npm pack` of this checkout, then `npm install -g` of the tarball
// into a prefix of its own (test/e2e/package.test.ts, test/e2e/node22.test.ts).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIG = { maxBuffer: 256 << 20 };

/** Packs the checkout into `dir`. dist/ is built by `npm test` before any test runs: --ignore-scripts keeps pack from rebuilding it under the other tests' feet. */
export async function pack(dir: string): Promise<{ tarball: string; files: string[] }> {
  const out = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, ...BIG });
  const [info] = JSON.parse(out.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: path.join(dir, info!.filename), files: info!.files.map((f) => f.path) };
}

/** Installs a tarball globally into `prefix` (with `env`'s node and npm settings): the command and the installed package. */
export async function installGlobally(tarball: string, prefix: string, env?: NodeJS.ProcessEnv): Promise<{ bin: string; installed: string }> {
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: path.dirname(tarball), ...(env ? { env } : {}), ...BIG });
  return { bin: path.join(prefix, 'bin', 'crm-bridge'), installed: path.join(prefix, 'lib', 'node_modules', 'asterisk-crm-bridge') };
}
