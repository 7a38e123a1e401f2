// Runs the built daemon (`crm-bridge run`) as a child process and reads what it says: events on
// stdout (the default log sink), pino logs on stderr. Waiting is event-driven: a waiter is
// resolved by the line that satisfies it, with a deadline that names what was awaited.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { BridgeEvent } from '../../dist/events/types.js';

const BIN = new URL('../../bin/crm-bridge.js', import.meta.url).pathname;

type Line = Record<string, unknown>;
interface Waiter<T> {
  check: () => T | undefined;
  resolve: (v: T) => void;
}

export interface Daemon {
  readonly events: BridgeEvent[];
  readonly logs: Line[];
  readonly child: ChildProcess;
  /** Resolves with the first log line that satisfies `pred` (including lines already seen after `since`). */
  waitForLog(pred: (l: Line) => boolean, what: string, timeoutMs?: number, since?: number): Promise<Line>;
  /** Resolves once `check(events)` returns a value. */
  waitForEvents<T>(check: (events: BridgeEvent[]) => T | undefined, what: string, timeoutMs?: number): Promise<T>;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
  /** Resolves with the exit code once the daemon has exited. */
  readonly exit: Promise<number | null>;
}

export function writeConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-e2e-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, yaml);
  return file;
}

export function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): Daemon {
  const child = spawn(process.execPath, [BIN, 'run', '--config', configFile], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: BridgeEvent[] = [];
  const logs: Line[] = [];
  const waiters = new Set<Waiter<unknown>>();
  const poke = () => {
    for (const w of [...waiters]) {
      const v = w.check();
      if (v !== undefined) {
        waiters.delete(w);
        w.resolve(v);
      }
    }
  };
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exited = code;
      resolve(code);
      poke();
    }),
  );
  createInterface({ input: child.stdout! }).on('line', (line) => {
    events.push(JSON.parse(line) as BridgeEvent);
    poke();
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Line);
    } catch {
      logs.push({ msg: line, raw: true });
    }
    poke();
  });

  function wait<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w as Waiter<unknown>);
        const tail = logs.slice(-8).map((l) => JSON.stringify(l)).join('\n');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${exited !== undefined ? ` (daemon exited ${exited})` : ''}\nlast logs:\n${tail}`));
      }, timeoutMs);
      const w: Waiter<T> = {
        check: () => {
          if (exited !== undefined) {
            const v = check();
            if (v === undefined) {
              clearTimeout(timer);
              reject(new Error(`daemon exited (${exited}) before ${what}`));
              return undefined;
            }
          }
          return check();
        },
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      };
      const now = w.check();
      if (now !== undefined) return w.resolve(now);
      waiters.add(w as Waiter<unknown>);
    });
  }

  return {
    events,
    logs,
    child,
    waitForLog: (pred, what, timeoutMs = 20_000, since = 0) => wait(() => logs.slice(since).find(pred), what, timeoutMs),
    waitForEvents: (check, what, timeoutMs = 60_000) => wait(() => check(events), what, timeoutMs),
    exit,
    stop: () => {
      if (exited === undefined) child.kill('SIGTERM');
      return exit;
    },
  };
}

/** The config the end-to-end tests run the daemon with. */
export function e2eConfig(amiPort: number, extra = ''): string {
  return `pbx:
  name: pbx1
  ami:
    host: 127.0.0.1
    port: ${amiPort}
    username: bridge
    secret: { env: E2E_AMI_SECRET }
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.1 }
calls:
  agentContexts: [agents, phones]
sinks:
  - type: log
outbox:
  path: ${join(mkdtempSync(join(tmpdir(), 'crm-bridge-e2e-outbox-')), 'outbox.db')}
log:
  level: debug
${extra}`;
}
