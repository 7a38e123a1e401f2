// `npm run demo`: the whole product on one machine. A PBX (a real Asterisk 22 when this machine
// can run one, else a loop of calls recorded from one, labelled as such), the real daemon
// (`crm-bridge run`) with a generated config, a sample CRM receiving its webhooks and serving
// the page its screen pop opens, and calls placed continuously until Ctrl-C.
//
// Start order: PBX, sample CRM, bridge, calls. Ctrl-C stops them in reverse, each once.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { BridgeEvent } from '../dist/events/types.js';
import { VERSION } from '../dist/util/version.js';
import { AmiDriver } from '../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, startAsterisk, type AsteriskInstance } from '../lab/asterisk.js';
import { scenarios, type ScenarioName } from '../lab/scenarios.js';
import { startSampleCrm, type SampleCrm } from './crm.js';
import { loadRecording, startReplayLoop, type ReplayLoop } from './replay-loop.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOTFS = process.env.ASTERISK_ROOT ?? path.join(REPO, '.cache/asterisk-root');
const BIN = path.join(REPO, 'bin/crm-bridge.js');
const FIXTURES = path.join(REPO, 'lab/recordings');
/** Building the rootfs downloads ~500 MB; this bounds a hung mirror, not a slow one. */
const ROOTFS_BUILD_TIMEOUT_MS = 20 * 60_000;

/** A path as the user should read it: relative inside the repository, else absolute. */
const shown = (p: string) => (path.relative(REPO, p).startsWith('..') ? p : path.relative(REPO, p));

const HELP = `npm run demo [-- OPTIONS]: Asterisk, the bridge, a sample CRM and calls, on 127.0.0.1.

  --replay             replay calls recorded from a real Asterisk instead of running one
  --bridge-port PORT   the bridge's agent page and widget (default 8090; 0 or taken: any free)
  --crm-port PORT      the sample CRM (default 8091; 0 or taken: any free)
  --every SECONDS      a new call this often (default 15)

Without --replay the demo runs a real Asterisk 22 in a Debian sid chroot (root needed; built
once into .cache/asterisk-root, a few minutes) and falls back to the replay if it cannot.
`;

/** The calls, round and round: every other one rings 201 with the IVR's CRM variables. */
const PLAYLIST: ScenarioName[] = ['queue-answered', 'queue-abandoned', 'queue-answered', 'blind-transfer', 'queue-answered', 'direct-noanswer', 'queue-answered', 'outbound'];
const WHAT: Partial<Record<ScenarioName, string>> = {
  'queue-answered': '+4915112345678 "Acme & Sons" calls the sales line, types customer 12345 and plan 7 in the IVR, waits in queue sales; 201 and 202 ring, 201 answers',
  'queue-abandoned': 'a caller waits in queue sales; nobody answers; the caller hangs up (missed: abandoned)',
  'blind-transfer': 'a direct call to 201, who answers and blind-transfers the caller to 202',
  'direct-noanswer': 'a direct call to 201, who does not answer (missed: no_answer)',
  outbound: 'agent 201 calls 5551234',
};

// ------------------------------------------------------------------------------------------------
// Output

const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const style = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = style('1');
const dim = style('2');
const warnColour = style('1;33');
const okColour = style('1;32');
const say = (s = '') => process.stdout.write(`${s}\n`);
const warn = (s: string) => process.stderr.write(`${warnColour('demo:')} ${s}\n`);
/** Set once stopping begins: the bridge's complaints about the PBX going away are expected then. */
let shuttingDown = false;

/** Calls whose CRM variables were already printed: once per call is enough to read. */
const varsShown = new Set<string>();

function describeEvent(e: BridgeEvent): string {
  const parts: string[] = [];
  if ('agent' in e && e.agent) parts.push(`agent ${e.agent.id}`);
  if ('caller' in e && e.caller.number) parts.push(`${e.caller.number}${e.caller.name ? ` "${e.caller.name}"` : ''}`);
  if (e.type === 'call.started' && e.called.number) parts.push(`calls ${e.called.number}`);
  if ('queue' in e && e.queue) parts.push(`queue ${e.queue.name}`);
  if ('reason' in e && e.reason) parts.push(e.reason);
  if (e.type === 'call.transferred') parts.push(`to ${e.transfer.to.agent?.id ?? e.transfer.to.number ?? '?'}`);
  if (e.type === 'call.hangup') parts.push(`${e.disposition}, by ${e.hangupBy}`);
  if ('vars' in e && !varsShown.has(e.callId)) {
    const vars = Object.entries(e.vars).map(([k, v]) => `${k}=${v}`);
    if (vars.length) {
      parts.push(`CRM vars: ${vars.join(' ')}`);
      varsShown.add(e.callId);
    }
  }
  if (e.type === 'call.hangup') varsShown.delete(e.callId);
  return parts.join(' · ');
}

// ------------------------------------------------------------------------------------------------
// The PBX: a real Asterisk, or the replay of recorded calls

interface LivePbx {
  kind: 'live';
  asterisk: AsteriskInstance;
  version: string;
  ami: { port: number; username: string; secret: string };
}
interface ReplayPbx {
  kind: 'replay';
  loop: ReplayLoop;
  why: string;
  ami: { port: number; username: string; secret: string };
}

/** Builds the Debian sid root filesystem (once), saying so, with progress while it runs. */
async function buildRootfs(signal: AbortSignal): Promise<void> {
  const logFile = path.join(REPO, '.cache/asterisk-rootfs-build.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  say(`${bold('Building the real Asterisk')} (first run only): a Debian sid root filesystem with Asterisk 22`);
  say(`into ${shown(ROOTFS)}, ~500 MB from deb.debian.org. This takes a few minutes; it is cached`);
  say(`afterwards. Log: ${shown(logFile)}. Or press Ctrl-C and run: npm run demo -- --replay`);
  const log = fs.createWriteStream(logFile);
  // Its own process group, so stopping the demo stops debootstrap too (flock would not pass it on).
  const child = spawn('flock', [`${ROOTFS}.lock`, 'bash', path.join(REPO, 'lab/rootfs.sh')], {
    env: { ...process.env, ASTERISK_ROOT: ROOTFS },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let packages = 0;
  const count = (chunk: Buffer) => {
    log.write(chunk);
    packages += chunk.toString().match(/^I: Retrieving \S+ [\d.:~+a-z-]+$/gm)?.length ?? 0;
  };
  child.stdout!.on('data', count);
  child.stderr!.on('data', count);
  const started = Date.now();
  const ticker = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    say(dim(`  … still building (${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s${packages ? `, ${packages} packages fetched` : ''})`));
  }, 20_000);
  const onAbort = () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
  };
  signal.addEventListener('abort', onAbort);
  const deadline = setTimeout(onAbort, ROOTFS_BUILD_TIMEOUT_MS);
  try {
    const code = await new Promise<number | string>((resolve) => {
      child.once('exit', (c, sig) => resolve(sig ?? c ?? 'unknown'));
      child.once('error', (err) => resolve(err.message));
    });
    if (code !== 0) throw new Error(`building the Asterisk root filesystem failed (${code}); see ${shown(logFile)}`);
  } finally {
    clearTimeout(deadline);
    clearInterval(ticker);
    signal.removeEventListener('abort', onAbort);
    log.end();
  }
  say(`${okColour('Built')} in ${Math.round((Date.now() - started) / 1000)} s.`);
}

async function startLivePbx(signal: AbortSignal): Promise<LivePbx> {
  if (process.getuid?.() !== 0) throw new Error('not running as root (Asterisk runs in a chroot)');
  if (!fs.existsSync(path.join(ROOTFS, 'usr/sbin/asterisk'))) await buildRootfs(signal);
  signal.throwIfAborted();
  say(dim('Starting Asterisk…'));
  const asterisk = await startAsterisk({ name: 'demo' });
  // "Asterisk 22.10.1+dfsg+~cs6…-1 built by …": the upstream version is enough.
  const version = /Asterisk (\d+(?:\.\d+)*)/.exec(await asterisk.cli('core show version').catch(() => ''))?.[1] ?? '22';
  return { kind: 'live', asterisk, version, ami: { port: asterisk.amiPort, username: BRIDGE_AMI_USER, secret: BRIDGE_AMI_SECRET } };
}

async function startReplayPbx(why: string, everyMs: number, onCall: (name: ScenarioName, n: number) => void): Promise<ReplayPbx> {
  const recordings = new Map([...new Set(PLAYLIST)].map((name) => [name, loadRecording(name, path.join(FIXTURES, `${name}.ami`))]));
  const credentials = { username: 'demo', secret: randomBytes(12).toString('hex') };
  const loop = await startReplayLoop({
    playlist: PLAYLIST.map((name) => recordings.get(name)!),
    everyMs,
    credentials,
    onCall: (r, n) => onCall(r.name as ScenarioName, n),
  });
  return { kind: 'replay', loop, why, ami: { port: loop.port, ...credentials } };
}

// ------------------------------------------------------------------------------------------------
// Live calls: the test scenarios, placed through AMI one after the other

function startLiveCalls(amiPort: number, everyMs: number, onCall: (name: ScenarioName, n: number) => void): { stop(): Promise<void> } {
  const stop = new AbortController();
  let driver: AmiDriver | null = null;
  const loop = (async () => {
    for (let n = 0; !stop.signal.aborted; n++) {
      const name = PLAYLIST[n % PLAYLIST.length]!;
      const started = Date.now();
      onCall(name, n + 1);
      try {
        // A connection per call: the driver keeps every event it sees, and a call's end is
        // "every channel this connection saw has hung up".
        driver = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
        await scenarios[name](driver);
      } catch (err) {
        if (!stop.signal.aborted) warn(`call ${n + 1} (${name}) went wrong: ${(err as Error).message.split('\n')[0]}`);
      } finally {
        await driver?.close();
        driver = null;
      }
      await pause(started + everyMs - Date.now(), stop.signal);
    }
  })();
  return {
    async stop() {
      stop.abort();
      await driver?.close();
      await loop;
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. Pacing only, never synchronization. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

// ------------------------------------------------------------------------------------------------
// The bridge: the real daemon as a child process

interface BridgeProcess {
  pid: number;
  httpPort: number;
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

async function startBridge(configFile: string, env: Record<string, string>, logFile: string, onEvent: (e: BridgeEvent) => void): Promise<BridgeProcess> {
  const argv = [process.execPath, BIN, 'run', '--config', configFile];
  const options = {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches the demo only, which then stops the
    // bridge exactly once (a second signal makes the daemon exit without draining).
    detached: true,
  };
  // --pdeathsig: if the demo dies without stopping it, the kernel sends the bridge SIGTERM.
  const child: ChildProcess = fs.existsSync('/usr/bin/setpriv')
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'TERM', ...argv], options)
    : spawn(argv[0]!, argv.slice(1), options);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code ?? 'unknown'));
    child.once('error', (err) => resolve(err.message));
  });
  const log = fs.createWriteStream(logFile);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      onEvent(JSON.parse(line) as BridgeEvent);
    } catch {
      warn(`the bridge printed a line that is not an event: ${line.slice(0, 200)}`);
    }
  });
  let httpPort: number | null = null;
  let amiUp = false;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.write(`${line}\n`);
    let entry: { level?: number; msg?: string; port?: number; err?: { message?: string } };
    try {
      entry = JSON.parse(line);
    } catch {
      return void warn(`bridge: ${line}`);
    }
    if (entry.msg === 'HTTP server listening' && typeof entry.port === 'number') httpPort = entry.port;
    if (entry.msg === 'AMI connected and logged in') amiUp = true;
    if ((entry.level ?? 0) >= 50 && !shuttingDown) warn(`bridge: ${entry.msg}${entry.err?.message ? `: ${entry.err.message}` : ''}`);
    if (httpPort !== null && amiUp) onReady();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    await new Promise<void>((r) => log.end(() => r()));
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      exited.then((how) => Promise.reject(new Error(`the bridge exited during start-up (${how})`))),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the bridge did not start within 30 s')), 30_000))),
    ]);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- its log, ${logFile} ---\n${tail(logFile, 15)}`);
  } finally {
    clearTimeout(timer);
  }
  return { pid: child.pid!, httpPort: httpPort!, exited, stop };
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** `preferred` if it is free on 127.0.0.1, else 0 (the bridge then takes any free port). */
function portOrAny(preferred: number): Promise<number> {
  if (preferred === 0) return Promise.resolve(0);
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(0));
    probe.listen(preferred, '127.0.0.1', () => probe.close(() => resolve(preferred)));
  });
}

/** The bridge's config: AMI, both agents with tokens, a supervisor, the log and webhook sinks, the screen pop, the API. */
function bridgeConfig(o: { ami: { port: number; username: string }; httpPort: number; crm: SampleCrm; dir: string }): string {
  const agent = (id: string) => ({ id, extension: id, name: `Agent ${id}`, token: { env: `DEMO_TOKEN_${id}` }, interfaces: [`Local/${id}@agents`] });
  const popUrl =
    `${o.crm.url}/contact?phone={callerNumber}&name={callerName}&call={callId}&agent={agentId}` +
    '&Omlcrmcustomerid={Omlcrmcustomerid}&Omlcrmcustomerplan={Omlcrmcustomerplan}';
  return stringify({
    pbx: {
      name: 'demo-pbx',
      ami: {
        host: '127.0.0.1',
        port: o.ami.port,
        username: o.ami.username,
        secret: { env: 'DEMO_AMI_SECRET' },
        reconnect: { initialDelayMs: 200, maxDelayMs: 2000, factor: 2, jitter: 0.1 },
      },
    },
    // The demo PBX's agents' phones are Local channels in [agents] (and [phones] for outbound).
    calls: { agentContexts: ['agents', 'phones'] },
    agents: [agent('201'), agent('202')],
    sinks: [
      { type: 'log' },
      {
        type: 'webhook',
        name: 'sample-crm',
        url: `${o.crm.url}/webhooks`,
        format: 'json',
        secret: { env: 'DEMO_WEBHOOK_SECRET' },
        retry: { initialDelayMs: 500, maxDelayMs: 5000, factor: 2, jitter: 0.2 },
      },
    ],
    http: { listen: `127.0.0.1:${o.httpPort}`, allowedOrigins: [o.crm.url], supervisors: [{ name: 'floor', token: { env: 'DEMO_SUPERVISOR_TOKEN' } }] },
    // The wallboard's call-back button places its calls through the API (as a supervisor).
    api: { tokens: [], clickToCall: { agentChannel: 'Local/{extension}@phones', context: 'from-internal' } },
    supervisor: { path: path.join(o.dir, 'wallboard.db') },
    screenpop: [{ id: 'sample-crm', events: ['call.ringing'], url: popUrl, target: 'embedded' }],
    outbox: { path: path.join(o.dir, 'outbox.db') },
    log: { level: 'info' },
  });
}

// ------------------------------------------------------------------------------------------------

interface Options {
  replay: boolean;
  bridgePort: number;
  crmPort: number;
  everyMs: number;
}

function options(argv: string[]): Options | string {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        replay: { type: 'boolean' },
        'bridge-port': { type: 'string' },
        'crm-port': { type: 'string' },
        every: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return (err as Error).message;
  }
  if (v.help) return '';
  const port = (name: string, s: string | undefined, dflt: number) => {
    const n = s === undefined ? dflt : Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number, 0..65535 (is '${s}')`);
    return n;
  };
  try {
    const every = v.every === undefined ? 15 : Number(v.every);
    if (!(every >= 1 && every <= 3600)) return `--every must be 1..3600 seconds (is '${v.every}')`;
    return { replay: v.replay ?? false, bridgePort: port('bridge-port', v['bridge-port'], 8090), crmPort: port('crm-port', v['crm-port'], 8091), everyMs: every * 1000 };
  } catch (err) {
    return (err as Error).message;
  }
}

/** Things started, stopped in reverse order, each once, each in its own try/catch. */
class Started {
  private readonly items: Array<{ what: string; stop: () => Promise<void> }> = [];
  add(what: string, stop: () => Promise<void>): void {
    this.items.push({ what, stop });
  }
  async stopAll(): Promise<void> {
    for (const { what, stop } of this.items.reverse()) {
      try {
        await stop();
        say(dim(`  stopped ${what}`));
      } catch (err) {
        warn(`stopping ${what} failed: ${(err as Error).message}`);
      }
    }
    this.items.length = 0;
  }
}

async function main(argv: string[]): Promise<number> {
  const opts = options(argv);
  if (typeof opts === 'string') {
    if (opts) process.stderr.write(`demo: ${opts}\n\n`);
    process.stdout.write(HELP);
    return opts ? 64 : 0;
  }
  const stopping = new AbortController();
  let forced = false;
  const onSignal = (signal: string) => {
    if (stopping.signal.aborted) {
      if (forced) return;
      forced = true;
      warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    say(`\n${bold(`${signal}: stopping`)} (again to exit at once)…`);
    shuttingDown = true;
    stopping.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  // Nobody reads any more (`npm run demo | head`): stop as for Ctrl-C rather than crash and
  // leave the bridge and Asterisk to the kernel's parent-death signal.
  process.stdout.on('error', () => {
    shuttingDown = true;
    stopping.abort();
  });

  const started = new Started();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crm-bridge-demo-'));
  let code = 0;
  try {
    code = await run(opts, stopping.signal, started, dir);
  } catch (err) {
    if (!stopping.signal.aborted) {
      warn((err as Error).message);
      code = 1;
    }
  }
  await started.stopAll();
  if (code === 0) fs.rmSync(dir, { recursive: true, force: true });
  else warn(`config and bridge log kept in ${dir}`);
  say(code === 0 ? 'Demo stopped.' : 'Demo stopped after an error.');
  return code;
}

async function run(opts: Options, signal: AbortSignal, started: Started, dir: string): Promise<number> {
  say(bold(`asterisk-crm-bridge ${VERSION} — demo`));
  let callsStarted = false;
  const onCall = (name: ScenarioName, n: number) => {
    callsStarted = true;
    say(`${tag} ${bold(`── call ${n}: ${name}`)} ${dim(WHAT[name] ?? '')}`);
  };

  // 1. The PBX.
  let pbx: LivePbx | ReplayPbx;
  if (opts.replay) {
    pbx = await startReplayPbx('--replay was given', opts.everyMs, onCall);
  } else {
    try {
      pbx = await startLivePbx(signal);
    } catch (err) {
      signal.throwIfAborted();
      const why = (err as Error).message.split('\n')[0]!;
      warn(`no real Asterisk: ${why}`);
      pbx = await startReplayPbx(`no real Asterisk here: ${why}`, opts.everyMs, onCall);
    }
  }
  const live = pbx.kind === 'live';
  const tag = live ? okColour('[live]  ') : warnColour('[replay]');
  if (pbx.kind === 'live') {
    const asterisk = pbx.asterisk;
    started.add(`Asterisk (pid ${asterisk.pid})`, () => asterisk.stop());
  } else {
    const loop = pbx.loop;
    started.add('the replay of recorded calls', () => loop.close());
  }
  signal.throwIfAborted();

  const source = live
    ? `LIVE PBX: Asterisk ${pbx.kind === 'live' ? pbx.version : ''} on this machine; the demo places a call every ${opts.everyMs / 1000} s`
    : 'REPLAY of calls recorded from a real Asterisk 22 (lab/recordings/*.ami), looped with fresh ids and times. Not a live PBX.';

  // 2. The sample CRM.
  const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const crm = await startSampleCrm({ port: opts.crmPort, secret: webhookSecret, source, live });
  started.add(`the sample CRM (${crm.url})`, () => crm.close());

  // 3. The bridge.
  const tokens = { '201': randomBytes(32).toString('hex'), '202': randomBytes(32).toString('hex'), supervisor: randomBytes(32).toString('hex') };
  const configFile = path.join(dir, 'config.yaml');
  const logFile = path.join(dir, 'bridge.log');
  fs.writeFileSync(configFile, bridgeConfig({ ami: pbx.ami, httpPort: await portOrAny(opts.bridgePort), crm, dir }));
  const env = { DEMO_AMI_SECRET: pbx.ami.secret, DEMO_WEBHOOK_SECRET: webhookSecret, DEMO_TOKEN_201: tokens['201'], DEMO_TOKEN_202: tokens['202'], DEMO_SUPERVISOR_TOKEN: tokens.supervisor };
  const bridge = await startBridge(configFile, env, logFile, (e) => {
    // Events caused by stopping (Asterisk hanging up what rings) are noise on the way out.
    if (e.type === 'agent.status' || !callsStarted || shuttingDown) return;
    const time = new Date(e.time).toTimeString().slice(0, 8);
    say(`${tag} ${dim(time)} ${e.type.padEnd(17)} ${describeEvent(e)}`);
  });
  started.add(`the bridge (pid ${bridge.pid})`, () => bridge.stop());
  const bridgeUrl = `http://127.0.0.1:${bridge.httpPort}`;
  crm.setWidget(bridgeUrl, tokens['201']);
  signal.throwIfAborted();

  // 4. What to open.
  say();
  if (pbx.kind === 'live') {
    say(`${okColour('PBX       LIVE')}: Asterisk ${pbx.version} (Debian sid chroot in ${shown(ROOTFS)}), AMI on 127.0.0.1:${pbx.ami.port}.`);
    say(`          The demo places real calls through it: a simulated caller, IVR and agents 201/202 (Local channels, no phones).`);
  } else {
    say(`${warnColour('PBX       REPLAY — NOT A LIVE PBX.')} Calls recorded from a real Asterisk 22 (lab/recordings/*.ami), replayed`);
    say(`          in a loop with fresh ids and times over a real AMI socket. Why a replay: ${pbx.why}.`);
  }
  say(`Bridge    crm-bridge run (pid ${bridge.pid}) on ${bridgeUrl}; config ${configFile}, log ${logFile}`);
  say(`Sample CRM ${crm.url} (webhooks: ${crm.url}/webhooks, signed)`);
  say();
  say(bold('Open in a browser on this machine:'));
  say();
  say(`  Agent page, agent 201:  ${bold(`${bridgeUrl}/agent?token=${tokens['201']}`)}`);
  say(`    When a call rings 201, the call card shows the caller (+4915112345678 "Acme & Sons"), queue sales and`);
  say(`    the CRM data typed in the IVR (customer 12345, plan 7), and the caller's contact page from the sample CRM`);
  say(`    opens inside the page. 201 answers: Talking, then Ended.`);
  say(`  Agent page, agent 202:  ${bridgeUrl}/agent?token=${tokens['202']}`);
  say(`    Rung by the same queue calls; the card then says "Answered elsewhere".`);
  say(`  Supervisor wallboard:   ${bold(`${bridgeUrl}/supervisor?token=${tokens.supervisor}`)}`);
  say(`    Queue sales live: callers waiting, agents 201/202 ringing and talking, today's answered and abandoned`);
  say(`    calls, the chart, and the missed callers with a Call back button (it rings 201 or 202, then dials).`);
  say(`  Sample CRM:             ${bold(`${crm.url}/`)}`);
  say(`    Every webhook the bridge posts, live, and agent 201's events as the widget (/widget.js) hands them to the page.`);
  say();
  say(`A new call every ${opts.everyMs / 1000} s; its events are listed below${live ? '' : ` (${warnColour('[replay]')}: recorded, not live)`}. ${bold('Ctrl-C stops everything.')}`);
  say();

  // 5. Calls, until Ctrl-C (or the bridge dies).
  if (pbx.kind === 'live') {
    const calls = startLiveCalls(pbx.ami.port, opts.everyMs, onCall);
    started.add('the calls', () => calls.stop());
  } else {
    const loop = pbx.loop;
    loop.startCalls();
    started.add('the calls', () => loop.stopCalls());
  }
  const outcome = await Promise.race([
    new Promise<'stop'>((resolve) => (signal.aborted ? resolve('stop') : signal.addEventListener('abort', () => resolve('stop')))),
    bridge.exited.then((how) => how),
  ]);
  if (outcome === 'stop') return 0;
  warn(`the bridge exited on its own (${outcome}); its log: ${logFile}\n${tail(logFile, 15)}`);
  return 1;
}

// Exit explicitly: everything started has been stopped, and a stray timer must not keep a
// stopped demo alive.
process.exit(await main(process.argv.slice(2)));
