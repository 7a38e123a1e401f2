// crm-bridge: the command line. Exit codes follow sysexits: 64 usage, 66 missing input,
// 78 bad configuration; 1 anything else.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { notAmiReason, startReplayServer } from './ami/replay-server.js';
import { Bridge, outboxPath } from './bridge.js';
import { USER_AGENT, VERSION } from './version.js';
import { mintToken, parseTtl } from './http/tokens.js';
import { Outbox } from './outbox/index.js';
import { ConfigError, EXIT_CONFIG, defaultConfig, describeConfig, findConfigPath, loadConfig, type BridgeConfig, type LoadOptions } from './config/load.js';
import { createLogger } from './log.js';
import { logSink } from './sinks/log.js';
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
                                            event per line on stdout. No config needed; a
                                            config's pbx.ami / pbx.ari may be left out. Exits 65
                                            if TRACE is not AMI, 66 if it cannot be read
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
  const { ami, ari } = config.pbx;
  const where = config.source ? `NATS stream ${config.source.stream}` : ami ? `AMI at ${ami.host}:${ami.port}` : `ARI at ${ari?.url ?? '?'}`;
  systemd.status(`connecting to ${where}`);
  // READY=1 once the sinks run (start() above) and the event source is logged in.
  void bridge.eventSource.loggedIn.then(() => {
    if (stopping) return;
    systemd.ready(`connected to ${where}`);
    const every = systemd.startWatchdog();
    if (every) log.info({ everyMs: every }, 'systemd watchdog: pinging');
  });
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
  const log = daemonLogger(process.env.LOG_LEVEL ?? 'warn');
  const server = await startReplayServer(trace);
  const stdout = logSink.create(
    { type: 'log' },
    {
      log: log.child({ module: 'sink' }),
      server: config.pbx.name,
      outbox: () => {
        throw new Error('replay delivers to stdout only');
      },
      userAgent: USER_AGENT,
    },
  );
  const bridge = new Bridge({
    config,
    log,
    source: { host: server.host, port: server.port, reconnect: false, resync: false },
    sinks: [stdout],
  });
  await bridge.start();
  await bridge.done;
  await bridge.stop();
  await server.close();
  await new Promise<void>((r) => log.flush(() => r()));
  return 0;
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
