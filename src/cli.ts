// crm-bridge: the command line. Exit codes follow sysexits: 64 usage, 66 missing input,
// 78 bad configuration; 1 anything else.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { notAmiReason, startReplayServer, unfinishedTail } from './sources/ami/replay-server.js';
import { Bridge, outboxPath } from './bridge.js';
import { VERSION } from './util/version.js';
import { mintToken, parseTtl } from './http/tokens.js';
import { Outbox } from './outbox/index.js';
import { ConfigError, EXIT_CONFIG, configWarnings, defaultConfig, describeConfig, findConfigPath, loadConfig, type BridgeConfig, type LoadOptions } from './config/load.js';
import { validateEvent } from './events/validator.js';
import { isCallEvent, type BridgeEvent } from './events/types.js';
import { createLogger } from './util/logger.js';
import type { Sink } from './sinks/sink.js';
import { systemdNotifier } from './ops/systemd.js';

export const EXIT_USAGE = 64;
export const EXIT_DATAERR = 65;
export const EXIT_NOINPUT = 66;

const HELP = `crm-bridge — Asterisk to CRM bridge

Usage:
  crm-bridge run [--config FILE]            run the daemon (default config: ./config.yaml,
                                            then /etc/crm-bridge/config.yaml)
  crm-bridge replay TRACE [--config FILE]   play a recorded AMI byte stream through the same
                                            parser and normalizer as live mode; prints one JSON
                                            event per line on stdout, then a summary (calls,
                                            events, warnings) on stderr. No config needed; a
                                            config's pbx.ami / pbx.ari may be left out. Exits 65
                                            if TRACE is not AMI, 66 if it cannot be read, 0 when
                                            stdout closes early (| head)
  crm-bridge check-config [FILE]            validate a config file and exit (0 ok, 78 invalid)
  crm-bridge outbox list [--sink S] [--dead] [--limit N] [--config FILE]
                                            events waiting for delivery (or dead letters), NDJSON
  crm-bridge outbox retry [--sink S] [EVENT-ID...] [--config FILE]
                                            move dead letters back for delivery (all, or these ids)
  crm-bridge outbox purge --yes [--sink S] [--dead] [--config FILE]
                                            delete waiting events (or dead letters) for good
  crm-bridge token AGENT-ID [--ttl 8h] [--supervisor] [--config FILE]
                                            mint a signed, expiring token for the agent page and
                                            event stream (needs http.tokenSecret)
  crm-bridge --help | --version

Environment:
  CRM_BRIDGE_CONFIG_<PATH>   override any config key, e.g. CRM_BRIDGE_CONFIG_PBX_AMI_HOST
  LOG_LEVEL                  log level of replay (default warn; run uses log.level)

Docs: README.md (quick start, configuration, event contract, dialplan guide, operations).
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        sink: { type: 'string' },
        dead: { type: 'boolean' },
        limit: { type: 'string' },
        yes: { type: 'boolean' },
        ttl: { type: 'string' },
        supervisor: { type: 'boolean' },
      },
    });
  } catch (err) {
    process.stderr.write(`crm-bridge: ${(err as Error).message}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  switch (command) {
    case 'run':
      return run(values.config);
    case 'replay':
      if (!rest[0]) return usage('replay needs a trace file');
      return replay(rest[0], values.config);
    case 'check-config':
      return checkConfig(rest[0] ?? values.config);
    case 'outbox':
      return outboxCommand(rest, values);
    case 'token':
      if (!rest[0]) return usage('token needs an agent id (or a name, with --supervisor)');
      return tokenCommand(rest[0], values);
    case undefined:
      process.stdout.write(HELP);
      return EXIT_USAGE;
    default:
      return usage(`unknown command '${command}'`);
  }
}

function usage(message: string): number {
  process.stderr.write(`crm-bridge: ${message}\n\n${HELP}`);
  return EXIT_USAGE;
}

/** Loads the config or prints every problem and returns the exit code. */
function load(path: string | undefined, opts: LoadOptions = {}): BridgeConfig | number {
  const file = findConfigPath(path);
  if (!file) {
    process.stderr.write('crm-bridge: no config file: pass --config FILE, or create ./config.yaml or /etc/crm-bridge/config.yaml\n');
    return EXIT_CONFIG;
  }
  try {
    return loadConfig(file, process.env, opts);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`crm-bridge: ${file} is not valid:\n${err.errors.map((e) => `  - ${e}`).join('\n')}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
}

function checkConfig(path: string | undefined): number {
  const config = load(path);
  if (typeof config === 'number') return config;
  for (const w of configWarnings(config)) process.stderr.write(`crm-bridge: warning: ${w}\n`);
  process.stdout.write(`${findConfigPath(path)}: ok (pbx ${config.pbx.name}, ${config.sinks.length} sink(s), ${config.agents.length} agent(s))\n`);
  return 0;
}

/** Daemon logs go to stderr: stdout belongs to the event stream of a stdout log sink. */
function daemonLogger(level: string): Logger {
  return createLogger(level, pino.destination({ fd: 2, sync: false }));
}

async function run(path: string | undefined): Promise<number> {
  const config = load(path);
  if (typeof config === 'number') return config;
  const file = findConfigPath(path)!;
  const log = daemonLogger(config.log.level);
  log.info({ version: VERSION, config: describeConfig(config) }, 'crm-bridge starting');
  for (const w of configWarnings(config)) log.warn(`config: ${w}`);
  const systemd = systemdNotifier(log);
  const bridge = new Bridge({ config, log });
  let stopping: Promise<void> | null = null;
  let stopped!: (code: number) => void;
  const finished = new Promise<number>((r) => (stopped = r));

  // SIGTERM / SIGINT: stop reading AMI, drain, close; a second signal exits at once.
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      log.flush();
      process.exit(1);
    }
    const timeoutMs = config.shutdown.timeoutMs;
    log.info({ signal, timeoutMs }, 'shutting down: draining deliveries and closing streams');
    systemd.stopping('stopping: draining deliveries');
    const deadline = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown deadline reached: exiting with work unfinished (undelivered events stay in the outbox for the next start)');
      log.flush();
      process.exit(0);
    }, timeoutMs);
    deadline.unref();
    stopping = bridge.stop().finally(() => {
      clearTimeout(deadline);
      log.info('stopped');
      stopped(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // SIGHUP: reload the config file; an invalid one is refused and the running config kept.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      if (stopping) return;
      systemd.reloading();
      let next: BridgeConfig;
      try {
        next = loadConfig(file);
      } catch (err) {
        bridge.metrics.reload('refused');
        const problems = err instanceof ConfigError ? err.errors : [(err as Error).message];
        log.error({ file, problems }, 'SIGHUP: the new config is not valid; kept the running one');
        systemd.ready('running (config reload refused: see the log)');
        return;
      }
      for (const w of configWarnings(next)) log.warn(`config: ${w}`);
      try {
        const { applied, needsRestart } = await bridge.reload(next);
        bridge.metrics.reload('applied');
        if (needsRestart.length) log.warn({ needsRestart }, 'SIGHUP: these settings changed but only take effect after a restart');
        log.info({ file, applied }, applied.length ? 'SIGHUP: config reloaded' : 'SIGHUP: config reloaded; nothing to change');
      } catch (err) {
        bridge.metrics.reload('refused');
        log.error({ err }, 'SIGHUP: applying the new config failed; kept the running sinks');
      }
      systemd.ready('running');
    });
  });

  try {
    await bridge.start();
  } catch (err) {
    log.fatal({ err }, 'could not start');
    await bridge.stop();
    log.flush();
    return 1;
  }
  // No source: a signal came while starting (during the warm-up), and the bridge is stopping.
  const source = bridge.source;
  if (source) {
    const where = source.describe();
    systemd.status(`connecting to ${where}`);
    // READY=1 once the sinks run (start() above) and the event source is logged in.
    void source.loggedIn.then(() => {
      if (stopping) return;
      systemd.ready(`connected to ${where}`);
      const every = systemd.startWatchdog();
      if (every) log.info({ everyMs: every }, 'systemd watchdog: pinging');
    });
  }
  const code = await finished;
  systemd.close();
  await new Promise<void>((r) => log.flush(() => r()));
  return code;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory, not an AMI recording',
  EACCES: 'cannot read it (permission denied)',
};

/**
 * Reads a trace and checks that it is an AMI recording, or prints one line saying what is wrong
 * and returns the exit code: 66 when the file cannot be read, 65 (EX_DATAERR) when it is not AMI.
 */
function readTrace(path: string): Buffer | number {
  let trace: Buffer;
  try {
    trace = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = (code && READ_ERRORS[code]) ?? `cannot read it (${code ?? (err as Error).message})`;
    process.stderr.write(`crm-bridge: ${path}: ${why}\n`);
    return EXIT_NOINPUT;
  }
  const notAmi = notAmiReason(trace);
  if (notAmi) {
    process.stderr.write(`crm-bridge: ${path}: not an AMI recording: ${notAmi}\n`);
    return EXIT_DATAERR;
  }
  return trace;
}

async function replay(tracePath: string, configPath: string | undefined): Promise<number> {
  const level = process.env.LOG_LEVEL || 'warn';
  if (!(level in pino.levels.values) && level !== 'silent') {
    process.stderr.write(`crm-bridge: LOG_LEVEL must be one of ${Object.keys(pino.levels.values).join(', ')} or silent (is '${level}')\n`);
    return EXIT_USAGE;
  }
  const trace = readTrace(tracePath);
  if (typeof trace === 'number') return trace;
  let config: BridgeConfig;
  if (configPath) {
    // Replay never connects to the PBX: a config without pbx.ami or pbx.ari is fine.
    const loaded = load(configPath, { offline: true });
    if (typeof loaded === 'number') return loaded;
    // Only what shapes the events is used (pbx.name, calls, agents): no delivery-node source,
    // HTTP server or API; the events go to stdout whatever the sinks say.
    const { source: _source, http: _http, api: _api, ...shaping } = loaded;
    config = shaping;
  } else {
    config = defaultConfig();
  }
  const problems = new ProblemCounter(level);
  const log = createLogger(problems.loggerLevel, problems);
  const server = await startReplayServer(trace);
  const out = new StdoutEvents(log.child({ module: 'replay' }));
  const bridge = new Bridge({
    config,
    log,
    replay: { host: server.host, port: server.port },
    sinks: [out],
  });
  await bridge.start();
  await Promise.race([bridge.done, out.closed]);
  await bridge.stop();
  await server.close();
  if (out.writeError) {
    // EPIPE: the reader has what it wanted (`crm-bridge replay t.ami | head`); like a tool
    // ended by SIGPIPE, stop quietly, but with 0, so `set -o pipefail` scripts do not fail.
    if (out.writeError === 'EPIPE') return 0;
    process.stderr.write(`crm-bridge: cannot write events to standard output (${out.writeError})\n`);
    return 1;
  }
  const tail = unfinishedTail(trace);
  process.stderr.write(replaySummary({ calls: out.calls.size, events: out.events, logged: problems.byModule, loggedShown: problems.showsWarnings, openCalls: [...out.openCalls], tailBytes: tail }));
  return 0;
}

/**
 * The replay's stdout: one JSON event per line. Also counts calls and events, notes calls
 * without their call.hangup, checks every event against the contract's schema (the replay is
 * how a dialplan author finds out what the CRM will get), and notices when stdout goes away.
 */
class StdoutEvents implements Sink {
  readonly name = 'replay:stdout';
  events = 0;
  readonly calls = new Set<string>();
  readonly openCalls = new Set<string>();
  /** The error code when stdout failed (EPIPE: the reader went away). */
  writeError: string | null = null;
  /** Resolves when stdout fails: nothing more can be shown, so the replay stops. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly log: Logger) {
    this.closed = new Promise<void>((r) => (this.resolveClosed = r));
  }

  async start(): Promise<void> {
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      this.writeError ??= err.code ?? err.message;
      this.resolveClosed();
    });
  }

  deliver(event: BridgeEvent): void {
    if (this.writeError) return;
    this.events++;
    if (isCallEvent(event)) {
      this.calls.add(event.callId);
      if (event.type === 'call.hangup') this.openCalls.delete(event.callId);
      else this.openCalls.add(event.callId);
    }
    const invalid = validateEvent(event);
    if (invalid.length > 0) this.log.warn({ eventId: event.id, type: event.type, problems: invalid }, 'event does not match the event schema (schema/events.v1.json)');
    process.stdout.write(`${JSON.stringify(event)}\n`);
  }

  async stop(): Promise<void> {
    const out = process.stdout;
    // stdout may be a pipe: wait until what was written has been handed to the OS.
    if (!this.writeError && out.writableNeedDrain) await new Promise<void>((r) => out.once('drain', r));
  }
}

const WARN = pino.levels.values.warn ?? 40;

/**
 * The replay's logger destination: writes the records at the level asked for to stderr, and
 * counts every warning or error by module for the summary, even when the level hides them.
 */
class ProblemCounter implements pino.DestinationStream {
  readonly byModule = new Map<string, number>();
  /** The logger must produce warnings even at LOG_LEVEL=error, to count them. */
  readonly loggerLevel: string;
  /** Whether warnings reach stderr (not at LOG_LEVEL=error, fatal or silent). */
  readonly showsWarnings: boolean;
  private readonly shown: number;

  constructor(level: string) {
    this.shown = level === 'silent' ? Infinity : (pino.levels.values[level] ?? WARN);
    this.loggerLevel = this.shown < WARN ? level : 'warn';
    this.showsWarnings = this.shown <= WARN;
  }

  write(line: string): void {
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
    if (level >= WARN) {
      let module = 'other';
      try {
        module = String((JSON.parse(line) as { module?: unknown }).module ?? 'other');
      } catch {
        // not JSON: counted as other
      }
      this.byModule.set(module, (this.byModule.get(module) ?? 0) + 1);
    }
    // Synchronous, so the records come before the summary.
    if (level >= this.shown) process.stderr.write(line);
  }
}

interface ReplayTally {
  calls: number;
  events: number;
  /** Warnings and errors logged, by module. */
  logged: ReadonlyMap<string, number>;
  /** Whether those were written to stderr (LOG_LEVEL may hide them). */
  loggedShown: boolean;
  /** Calls with no call.hangup when the trace ended. */
  openCalls: string[];
  /** Bytes after the last complete frame. */
  tailBytes: number;
}

/** `crm-bridge replay: 3 calls, 27 events, 1 warning` and, with warnings, a line saying which. */
function replaySummary(t: ReplayTally): string {
  const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  const parts: string[] = [];
  const logged = (module: string) => t.logged.get(module) ?? 0;
  const described = ['ami', 'normalizer', 'replay'];
  if (logged('ami')) parts.push(n(logged('ami'), 'malformed frame', 'malformed frames'));
  if (logged('normalizer')) parts.push(n(logged('normalizer'), 'AMI event the normalizer could not handle', 'AMI events the normalizer could not handle'));
  if (logged('replay')) parts.push(n(logged('replay'), 'event not valid against the event schema', 'events not valid against the event schema'));
  const others = [...t.logged].filter(([m]) => !described.includes(m)).reduce((sum, [, c]) => sum + c, 0);
  if (others) parts.push(n(others, 'other problem', 'other problems'));
  const loggedTotal = [...t.logged.values()].reduce((a, b) => a + b, 0);
  if (loggedTotal > 0) parts[parts.length - 1] += t.loggedShown ? ' (logged above)' : ' (LOG_LEVEL=warn shows them)';
  if (t.openCalls.length > 0) {
    const ids = t.openCalls.slice(0, 3).join(', ') + (t.openCalls.length > 3 ? ', …' : '');
    parts.push(`${n(t.openCalls.length, 'call', 'calls')} still open at the end of the trace (${ids})`);
  }
  if (t.tailBytes > 0) parts.push(`the trace ends inside a frame (its last ${n(t.tailBytes, 'byte', 'bytes')} never became an event)`);
  const warnings = loggedTotal + t.openCalls.length + (t.tailBytes > 0 ? 1 : 0);
  const head = `crm-bridge replay: ${n(t.calls, 'call', 'calls')}, ${n(t.events, 'event', 'events')}, ${n(warnings, 'warning', 'warnings')}\n`;
  return parts.length > 0 ? `${head}  ${parts.join('; ')}\n` : head;
}

async function outboxCommand(args: string[], opts: { config?: string; sink?: string; dead?: boolean; limit?: string; yes?: boolean }): Promise<number> {
  const [action, ...ids] = args;
  if (action !== 'list' && action !== 'retry' && action !== 'purge') return usage('outbox needs list, retry or purge');
  if (action === 'purge' && !opts.yes) return usage('outbox purge deletes undelivered events for good: add --yes to confirm');
  const config = load(opts.config);
  if (typeof config === 'number') return config;
  const path = outboxPath(config);
  if (!existsSync(path)) {
    process.stderr.write(`crm-bridge: no outbox at ${path} (nothing was ever queued there)\n`);
    return EXIT_NOINPUT;
  }
  const outbox = Outbox.open(path);
  try {
    if (action === 'list') {
      const limit = opts.limit ? Number(opts.limit) : 100;
      if (!Number.isInteger(limit) || limit < 1) return usage('--limit must be a positive whole number');
      for (const item of outbox.list({ sink: opts.sink, dead: opts.dead ?? false, limit })) process.stdout.write(`${JSON.stringify(item)}\n`);
    } else if (action === 'retry') {
      const n = outbox.retry({ sink: opts.sink, eventIds: ids.length > 0 ? ids : undefined });
      process.stdout.write(`${n} dead letter(s) queued for delivery again\n`);
    } else {
      const n = outbox.purge({ sink: opts.sink, dead: opts.dead ?? false });
      process.stdout.write(`${n} ${opts.dead ? 'dead letter(s)' : 'waiting event(s)'} deleted\n`);
    }
  } finally {
    outbox.close();
  }
  return 0;
}

function tokenCommand(subject: string, opts: { config?: string; ttl?: string; supervisor?: boolean }): number {
  const ttl = parseTtl(opts.ttl ?? '12h');
  if (ttl === null) return usage(`--ttl must look like 3600, 30m, 8h or 7d (is '${opts.ttl}')`);
  const config = load(opts.config);
  if (typeof config === 'number') return config;
  const secret = config.http?.tokenSecret;
  if (!secret) {
    process.stderr.write('crm-bridge: http.tokenSecret is not set: signed tokens need it (32+ random bytes, e.g. { file: /etc/crm-bridge/token.key })\n');
    return EXIT_CONFIG;
  }
  const who = opts.supervisor ? { kind: 'supervisor' as const, name: subject } : { kind: 'agent' as const, agentId: subject };
  process.stdout.write(`${mintToken(secret, who, ttl)}\n`);
  return 0;
}
