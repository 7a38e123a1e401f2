// The built command line (bin/crm-bridge.js), spawned as users run it, with a clean environment
// (PATH and what the test gives) so no variable of the test run changes what it does.
import { spawn } from 'node:child_process';

export const BIN = new URL('../../bin/crm-bridge.js', import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Ends the process after this long (a `run` that should have refused its config goes on). */
  timeoutMs?: number;
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
