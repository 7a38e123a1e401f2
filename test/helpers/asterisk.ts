// Starts a real Asterisk 22 for a test: its own config dir and run dir inside the cached Debian
// sid root filesystem (scripts/asterisk-rootfs.sh), its own AMI and HTTP ports on 127.0.0.1.
//
// Readiness is event-driven: the control socket appearing (inotify), then `core waitfullybooted`
// (blocks inside Asterisk until boot ends), then an AMI login that receives `FullyBooted`.
// Must run as root (chroot).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiDriver, withTimeout } from './ami-driver.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROOT = process.env.ASTERISK_ROOT ?? path.join(REPO, '.cache/asterisk-root');
const ASTERISK = '/usr/sbin/asterisk';
const CONFIG_SOURCE = path.join(REPO, 'test/asterisk/etc');
const CUSTOM_DIALPLAN = path.join(REPO, 'dialplan/oml_extensions_custom.conf');
const LOG_DIR = path.join(REPO, '.cache/asterisk-logs');
/** Building the rootfs downloads ~500 MB; this bounds a hung mirror, not a slow one. */
const ROOTFS_BUILD_TIMEOUT_MS = 20 * 60_000;
const START_TIMEOUT_MS = 30_000;
const CLI_TIMEOUT_MS = 15_000;

export const AMI_USER = 'driver';
export const AMI_SECRET = 'driver-secret';
/** The user the bridge (and the fixture recorder) logs in as. */
export const BRIDGE_AMI_USER = 'bridge';
export const BRIDGE_AMI_SECRET = 'bridge-secret';

export interface AsteriskInstance {
  readonly amiPort: number;
  readonly httpPort: number;
  /** Host path of the root filesystem Asterisk runs in. */
  readonly root: string;
  /** Config dir as Asterisk sees it (inside the chroot), e.g. `/etc/cb-test-40123`. */
  readonly etcDir: string;
  /** Host path of the file holding Asterisk's stdout/stderr. */
  readonly logFile: string;
  /** Process id of Asterisk (chroot and setpriv exec it, so it is the spawned child). */
  readonly pid: number;
  /** Runs one CLI command (`asterisk -rx`) and returns its output. */
  cli(command: string): Promise<string>;
  /** `core stop now`, then SIGKILL if it is still alive; resolves once the process has exited. */
  stop(): Promise<void>;
}

export interface StartOptions {
  amiPort?: number;
  httpPort?: number;
  /** Part of the config dir name; lets a post-mortem tell instances apart. */
  name?: string;
}

export async function startAsterisk(opts: StartOptions = {}): Promise<AsteriskInstance> {
  if (process.getuid?.() !== 0) {
    throw new Error('the real-Asterisk tests must run as root: they chroot into the Asterisk rootfs');
  }
  await ensureRootfs();
  const amiPort = opts.amiPort ?? (await freePort());
  const httpPort = opts.httpPort ?? (await freePort());
  const id = `cb-${opts.name ?? 'test'}-${amiPort}`;
  const etcDir = `/etc/${id}`;
  const runDir = `/run/${id}`;
  const hostEtc = path.join(ROOT, etcDir);
  const hostRun = path.join(ROOT, runDir);
  writeConfig(hostEtc, { AMI_PORT: String(amiPort), HTTP_PORT: String(httpPort), ETC: etcDir, RUN: runDir });
  fs.rmSync(hostRun, { recursive: true, force: true });
  // Asterisk exits at once if its database directory is missing; it creates nothing itself.
  for (const sub of ['db', 'log', 'spool']) fs.mkdirSync(path.join(hostRun, sub), { recursive: true });

  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${id}.log`);
  const logFd = fs.openSync(logFile, 'w');
  const conf = `${etcDir}/asterisk.conf`;
  // -f: stay in the foreground (our child); -n: no colour codes in the log.
  const argv = ['chroot', ROOT, ASTERISK, '-f', '-n', '-C', conf];
  // setpriv --pdeathsig: the kernel kills Asterisk if the test process dies without stop()
  // (a crash, or tap's SIGKILL after a timeout), so no run can leak an Asterisk.
  const child = fs.existsSync('/usr/bin/setpriv')
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', ...argv], { stdio: ['ignore', logFd, logFd] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);

  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code ?? 'unknown'));
    child.once('error', (err) => resolve(err.message));
  });
  const cli = (command: string): Promise<string> => runCli(conf, command);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= stopProcess(child, exited, cli, [hostEtc, hostRun]));

  const abandon = new AbortController();
  try {
    await withTimeout(
      Promise.race([
        waitUntilBooted(hostRun, cli, amiPort, etcDir, abandon.signal),
        exited.then((how) => Promise.reject(new Error(`Asterisk exited during start-up (${how})`))),
      ]),
      START_TIMEOUT_MS,
      `Asterisk (${etcDir}) to boot and accept an AMI login on 127.0.0.1:${amiPort}`,
    );
  } catch (err) {
    abandon.abort();
    const stopped = await stop().then(
      () => '',
      (stopErr: Error) => `\nand stopping it failed too: ${stopErr.message}`,
    );
    throw new Error(`${(err as Error).message}${stopped}\n--- tail of ${logFile} ---\n${tail(logFile, 40)}`);
  }

  return { amiPort, httpPort, root: ROOT, etcDir, logFile, pid: child.pid!, cli, stop };
}

/** Builds the Debian sid rootfs if it is missing. Two test files may race here, hence flock. */
async function ensureRootfs(): Promise<void> {
  if (fs.existsSync(path.join(ROOT, ASTERISK))) return;
  fs.mkdirSync(path.dirname(ROOT), { recursive: true });
  const script = path.join(REPO, 'scripts/asterisk-rootfs.sh');
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(
        'flock',
        [`${ROOT}.lock`, 'bash', script],
        { env: { ...process.env, ASTERISK_ROOT: ROOT }, timeout: ROOTFS_BUILD_TIMEOUT_MS, maxBuffer: 64 << 20 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`${err.message}\n${`${stdout}${stderr}`.slice(-4000)}`));
          else resolve();
        },
      );
    });
  } catch (err) {
    throw new Error(
      `cannot build the Asterisk root filesystem at ${ROOT} with ${script} ` +
        `(needs root and Debian's package mirror): ${(err as Error).message}`,
    );
  }
  if (!fs.existsSync(path.join(ROOT, ASTERISK))) {
    throw new Error(`${script} finished but ${path.join(ROOT, ASTERISK)} does not exist`);
  }
}

/** A port on 127.0.0.1 that was free a moment ago (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Copies test/asterisk/etc and the product's custom dialplan, filling @PLACEHOLDERS@. */
function writeConfig(hostEtc: string, values: Record<string, string>): void {
  fs.rmSync(hostEtc, { recursive: true, force: true });
  fs.mkdirSync(hostEtc, { recursive: true });
  for (const file of fs.readdirSync(CONFIG_SOURCE)) {
    if (!file.endsWith('.conf')) continue;
    const text = fs.readFileSync(path.join(CONFIG_SOURCE, file), 'utf8');
    const filled = text.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
      const value = values[key];
      if (value === undefined) throw new Error(`${file}: unknown placeholder ${whole}`);
      return value;
    });
    fs.writeFileSync(path.join(hostEtc, file), filled);
  }
  fs.copyFileSync(CUSTOM_DIALPLAN, path.join(hostEtc, 'oml_extensions_custom.conf'));
}

async function waitUntilBooted(
  hostRun: string,
  cli: (c: string) => Promise<string>,
  amiPort: number,
  etcDir: string,
  signal: AbortSignal,
): Promise<void> {
  await waitForFile(hostRun, 'asterisk.ctl', signal);
  signal.throwIfAborted();
  await cli('core waitfullybooted');
  signal.throwIfAborted();
  const ami = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
  try {
    // Sent to every session that logs in after boot.
    await ami.waitFor((f) => f.event === 'FullyBooted', 10_000, 'the FullyBooted event');
    // A picked port was free a moment before Asterisk tried to bind it, but another process
    // may have taken it since (a given port may simply be in use): Asterisk then runs without
    // AMI and this login reached someone else's. HARNESS_ETC says whose Asterisk answered.
    const owner = await ami.action({ Action: 'Getvar', Variable: 'HARNESS_ETC' });
    if (owner.get('Value') !== etcDir) {
      throw new Error(
        `AMI on 127.0.0.1:${amiPort} answers for another Asterisk ` +
          `(HARNESS_ETC=${owner.get('Value') || 'unset'}): something else holds that port`,
      );
    }
  } finally {
    await ami.close();
  }
}

/** Resolves once `dir/name` exists, woken by inotify rather than polling. */
async function waitForFile(dir: string, name: string, signal: AbortSignal): Promise<void> {
  let watcher: fs.FSWatcher | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      watcher = fs.watch(dir, { signal }, (_, file) => {
        if (file === name) resolve();
      });
      watcher.on('error', reject);
      // Created before the watch began?
      if (fs.existsSync(path.join(dir, name))) resolve();
    });
  } finally {
    watcher?.close();
  }
}

function runCli(conf: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'chroot',
      [ROOT, ASTERISK, '-C', conf, '-rx', command],
      { timeout: CLI_TIMEOUT_MS },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`asterisk -rx '${command}' failed: ${err.message}${stderr ? `\n${stderr}` : ''}`));
        else resolve(stdout);
      },
    );
  });
}

async function stopProcess(
  child: ChildProcess,
  exited: Promise<number | string>,
  cli: (c: string) => Promise<string>,
  dirs: string[],
): Promise<void> {
  const hasExited = (ms: number): Promise<boolean> =>
    withTimeout(exited, ms, 'Asterisk to exit').then(
      () => true,
      () => false,
    );
  if (child.exitCode === null && child.signalCode === null) {
    // `core stop now` can fail if Asterisk is wedged or never opened its socket; the kill covers it.
    await cli('core stop now').catch(() => undefined);
    if (!(await hasExited(10_000))) {
      child.kill('SIGKILL');
      if (!(await hasExited(10_000))) throw new Error(`Asterisk (pid ${child.pid}) survived SIGKILL`);
    }
  }
  // The console log under .cache/asterisk-logs stays for post-mortems; config and run dirs go.
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read: ${(err as Error).message})`;
  }
}
