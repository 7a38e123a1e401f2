// Starts a real Asterisk 22 for a test, the demo or a recording: its own config dir and run dir
// inside the cached Debian sid root filesystem (lab/rootfs.sh), its own AMI, HTTP and SIP ports
// on 127.0.0.1.
// Two configurations: the PBX (lab/pbx) and, for the SIP lab, a second instance that
// plays the agents' phones and the PSTN over PJSIP (lab/phones); startSipLab() starts
// both, each pointing its SIP at the other.
//
// Readiness is event-driven: the control socket appearing (inotify), then `core waitfullybooted`
// (blocks inside Asterisk until boot ends), then an AMI login that receives `FullyBooted`.
// Must run as root (chroot).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiDriver, withTimeout } from './ami-driver.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = process.env.ASTERISK_ROOT ?? path.join(REPO, '.cache/asterisk-root');
const ASTERISK = '/usr/sbin/asterisk';
const CONFIG_SOURCES = {
  pbx: path.join(REPO, 'lab/pbx'),
  phones: path.join(REPO, 'lab/phones'),
} as const;
export type AsteriskConfig = keyof typeof CONFIG_SOURCES;
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
  readonly config: AsteriskConfig;
  readonly amiPort: number;
  readonly httpPort: number;
  /** UDP port of its PJSIP transport on 127.0.0.1 (pjsip.conf). */
  readonly sipPort: number;
  /** Host path of the root filesystem Asterisk runs in. */
  readonly root: string;
  /** Config dir as Asterisk sees it (inside the chroot), e.g. `/etc/cb-test-40123`. */
  readonly etcDir: string;
  /** Run dir (spool, db, logs) as Asterisk sees it, e.g. `/run/cb-test-40123`. */
  readonly runDir: string;
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
  /** Which configuration: `pbx` (the default) or `phones` (the SIP lab's phones and PSTN). */
  config?: AsteriskConfig;
  amiPort?: number;
  httpPort?: number;
  sipPort?: number;
  /**
   * SIP port of the other instance of the lab, where this one sends its SIP (the PBX's trunk;
   * the phones' PBX). Without one, SIP goes to the discard port and fails at once.
   */
  peerSipPort?: number;
  /** Part of the config dir name; lets a post-mortem tell instances apart. */
  name?: string;
}

export async function startAsterisk(opts: StartOptions = {}): Promise<AsteriskInstance> {
  if (process.getuid?.() !== 0) {
    throw new Error('the real-Asterisk tests must run as root: they chroot into the Asterisk rootfs');
  }
  await ensureRootfs();
  const config = opts.config ?? 'pbx';
  const amiPort = opts.amiPort ?? (await freePort());
  const httpPort = opts.httpPort ?? (await freePort());
  const sipPort = opts.sipPort ?? (await freeUdpPort());
  const id = `cb-${opts.name ?? 'test'}-${amiPort}`;
  const etcDir = `/etc/${id}`;
  const runDir = `/run/${id}`;
  const hostEtc = path.join(ROOT, etcDir);
  const hostRun = path.join(ROOT, runDir);
  writeConfig(config, hostEtc, {
    AMI_PORT: String(amiPort),
    HTTP_PORT: String(httpPort),
    SIP_PORT: String(sipPort),
    PEER_SIP_PORT: String(opts.peerSipPort ?? DISCARD_PORT),
    ETC: etcDir,
    RUN: runDir,
  });
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

  return { config, amiPort, httpPort, sipPort, root: ROOT, etcDir, runDir, logFile, pid: child.pid!, cli, stop };
}

/** The UDP discard port: SIP sent there by an instance without a peer fails at once. */
const DISCARD_PORT = 9;
const LAB_PHONES = ['201', '202', '203'] as const;
/** ContactStatus values of a contact that is there (a registration raises `Created`). */
const REGISTERED = /^(Created|Updated|Reachable|NonQualified)$/;

export interface SipLab {
  /** The PBX the bridge watches: lab/pbx, with PJSIP phones 201-203 and a trunk. */
  readonly pbx: AsteriskInstance;
  /** The agents' phones and the PSTN: lab/phones, the PBX's SIP peer. */
  readonly phones: AsteriskInstance;
  /** Stops both. */
  stop(): Promise<void>;
}

/**
 * Starts the two instances of the SIP lab, each with the other's SIP port, and resolves once
 * every phone has registered with the PBX (its AOR has a contact): a call to a phone before that
 * would fail as unavailable.
 */
export async function startSipLab(opts: { name?: string } = {}): Promise<SipLab> {
  const name = opts.name ?? 'lab';
  const pbxSip = await freeUdpPort();
  const phonesSip = await freeUdpPort();
  const pbx = await startAsterisk({ name: `${name}-pbx`, config: 'pbx', sipPort: pbxSip, peerSipPort: phonesSip });
  for (const phone of LAB_PHONES) writeGreeting(pbx, phone);
  let phones: AsteriskInstance | undefined;
  try {
    // Logged in before the phones exist, so no registration can be missed.
    const ami = await AmiDriver.connect(pbx.amiPort, AMI_USER, AMI_SECRET);
    try {
      phones = await startAsterisk({ name: `${name}-phones`, config: 'phones', sipPort: phonesSip, peerSipPort: pbxSip });
      for (const phone of LAB_PHONES) {
        await ami.waitFor(
          (f) => f.event === 'ContactStatus' && f.get('AOR') === phone && REGISTERED.test(f.get('ContactStatus') ?? ''),
          START_TIMEOUT_MS,
          `phone ${phone} to register with the PBX`,
        );
      }
    } finally {
      await ami.close();
    }
  } catch (err) {
    await Promise.allSettled([pbx.stop(), phones?.stop()]);
    throw err;
  }
  const started = phones;
  return {
    pbx,
    phones: started,
    stop: async () => {
      const results = await Promise.allSettled([pbx.stop(), started.stop()]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/**
 * Gives a lab mailbox an "unavailable" greeting (half a second of silence). Without one,
 * VoiceMail announces the mailbox number with prompts the test rootfs plays only slowly.
 */
function writeGreeting(pbx: AsteriskInstance, mailbox: string): void {
  const dir = path.join(pbx.root, pbx.runDir, 'spool/voicemail/default', mailbox);
  fs.mkdirSync(dir, { recursive: true });
  const samples = 4000; // 0.5 s at 8 kHz, 16-bit mono PCM
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(8000, 24);
  wav.writeUInt32LE(16000, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(samples * 2, 40);
  fs.writeFileSync(path.join(dir, 'unavail.wav'), wav);
}

/** Builds the Debian sid rootfs if it is missing. Two test files may race here, hence flock. */
async function ensureRootfs(): Promise<void> {
  if (fs.existsSync(path.join(ROOT, ASTERISK))) return;
  fs.mkdirSync(path.dirname(ROOT), { recursive: true });
  const script = path.join(REPO, 'lab/rootfs.sh');
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

/** A UDP port on 127.0.0.1 that was free a moment ago (for a SIP transport). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/**
 * Copies the configuration (lab/pbx or lab/phones; the PBX also gets the
 * product's custom dialplan), filling @PLACEHOLDERS@.
 */
function writeConfig(config: AsteriskConfig, hostEtc: string, values: Record<string, string>): void {
  const source = CONFIG_SOURCES[config];
  fs.rmSync(hostEtc, { recursive: true, force: true });
  fs.mkdirSync(hostEtc, { recursive: true });
  for (const file of fs.readdirSync(source)) {
    if (!file.endsWith('.conf')) continue;
    const text = fs.readFileSync(path.join(source, file), 'utf8');
    const filled = text.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
      const value = values[key];
      if (value === undefined) throw new Error(`${file}: unknown placeholder ${whole}`);
      return value;
    });
    fs.writeFileSync(path.join(hostEtc, file), filled);
  }
  if (config === 'pbx') fs.copyFileSync(CUSTOM_DIALPLAN, path.join(hostEtc, 'oml_extensions_custom.conf'));
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
