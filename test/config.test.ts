import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import {
  ConfigError,
  EXIT_CONFIG,
  SYSTEM_CONFIG_PATH,
  configEnvVars,
  configSchema,
  defaultConfig,
  describeConfig,
  findConfigPath,
  loadConfig,
  type BridgeConfig,
} from '../src/config/load.js';
import { schemaKeys } from '../src/config/walk.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const fixture = (name: string): string => join(here, 'fixtures', 'config', name);
const NO_ENV = {};

/** The ConfigError lines of loading `path`; fails the test if it loads. */
function errorsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

t.test('given a minimal config, when loaded, then every default is filled', async (t) => {
  const config = loadConfig(fixture('minimal.yaml'), NO_ENV);
  t.same(config, {
    pbx: {
      name: 'pbx1',
      ami: {
        host: '127.0.0.1',
        port: 5038,
        username: 'bridge',
        secret: 'inline-secret-for-tests',
        reconnect: { initialDelayMs: 500, maxDelayMs: 30000, factor: 2, jitter: 0.2 },
        actionTimeoutMs: 10000,
        resync: true,
        reconcileIntervalSeconds: 60,
        maxFrameBytes: 65536,
        maxHeaders: 512,
        maxLineBytes: 8192,
      },
    },
    calls: {
      inboundContexts: ['from-pstn', 'from-trunk', 'from-external', 'from-did-direct', 'ext-did'],
      agentContexts: ['agents', 'from-queue'],
      extensionPattern: '^[0-9]{2,6}$',
      agentsFromPbx: true,
      maxInProgress: 50000,
      maxAgents: 10000,
    },
    agents: [],
    sinks: [{ type: 'log' }],
    outbox: { synchronous: 'normal', stalledAfterMs: 600000, deliveryThread: true, deliveriesPerSecondWhilePopping: 1000 },
    screenpop: [],
    supervisor: { enabled: true, serviceLevelSeconds: 20, queues: [], retentionDays: 31, pushIntervalMs: 250 },
    log: { level: 'info' },
    startup: { warmUp: true },
    shutdown: { timeoutMs: 15000 },
  } satisfies BridgeConfig);
});

t.test('given a config setting every key, when loaded, then its values are kept and agent interfaces default to []', async (t) => {
  const config = loadConfig(fixture('full.yaml'), NO_ENV);
  t.equal(config.pbx.name, 'pbx-paris.1');
  t.same(config.pbx.ami.reconnect, { initialDelayMs: 250, maxDelayMs: 5000, factor: 1.5, jitter: 0 });
  t.equal(config.pbx.ami.resync, false);
  t.equal(config.pbx.ami.reconcileIntervalSeconds, 0);
  t.same(config.calls.inboundContexts, ['from-sip-trunk']);
  t.equal(config.calls.agentsFromPbx, false);
  t.same(config.agents[1], { id: 'u-2', interfaces: [] });
  t.same(config.sinks[0], { type: 'log', name: 'file', path: '/var/log/crm-bridge/events.ndjson', events: ['call.answered'] });
  t.equal(config.log.level, 'debug');
});

t.test('given a config with three errors, when loaded, then all three are reported with paths and values', async (t) => {
  const errors = errorsOf(() => loadConfig(fixture('three-errors.yaml'), NO_ENV));
  t.same(errors, [
    `pbx.name: must match pattern "^[A-Za-z0-9_.-]+$" (is 'pbx 1')`,
    'pbx.ami.port: must be <= 65535 (is 70000)',
    "log.level: must be one of fatal, error, warn, info, debug, trace, silent (is 'verbose')",
  ]);
});

t.test('given an invalid config, when loaded, then the ConfigError message names the file and lists each problem', async (t) => {
  const path = fixture('three-errors.yaml');
  try {
    loadConfig(path, NO_ENV);
    t.fail('loaded');
  } catch (err) {
    t.type(err, ConfigError);
    const e = err as ConfigError;
    t.equal(e.source, path);
    t.match(e.message, `${path}: configuration is not valid (3 problems):\n  - pbx.name:`);
  }
  t.equal(EXIT_CONFIG, 78);
});

t.test('given a PBX with neither ami nor ari, when loaded, then it says the bridge needs one', async (t) => {
  t.same(errorsOf(() => loadConfig(fixture('no-pbx-access.yaml'), NO_ENV)), ['pbx: needs ami (the manager interface) or ari (the REST interface), or both']);
  const ari = loadConfig(fixture('ari-only.yaml'), NO_ENV);
  t.same(ari.pbx, {
    name: 'pbx1',
    ari: { url: 'http://127.0.0.1:8088', username: 'crm-bridge', password: 's3cret', app: 'crm-bridge', reconnect: { initialDelayMs: 500, maxDelayMs: 30000, factor: 2, jitter: 0.2 }, actionTimeoutMs: 10000, resync: true },
  }, 'then ARI alone is a valid PBX, defaults filled');
  t.equal(describeConfig(ari).pbx.ari?.password, '[redacted]', 'and its password is redacted when the config is logged');
});

t.test('given a YAML syntax error, when loaded, then it is reported as file:line:col', async (t) => {
  const path = fixture('syntax-error.yaml');
  t.same(errorsOf(() => loadConfig(path, NO_ENV)), [`${path}:5:11: Nested mappings are not allowed in compact mappings`]);
});

t.test('given a file that does not exist, when loaded, then the error names it', async (t) => {
  const path = fixture('no-such-config.yaml');
  t.same(errorsOf(() => loadConfig(path, NO_ENV)), [`${path}: cannot read the config file (no such file)`]);
});

t.test('given an empty file, when loaded, then the required keys are reported', async (t) => {
  const dir = t.testdir({ 'config.yaml': '# nothing yet\n' });
  t.same(errorsOf(() => loadConfig(join(dir, 'config.yaml'), NO_ENV)), ['pbx: is required (or source, for a delivery node reading a NATS stream)']);
});

t.test('given a misspelt key, when loaded, then it is rejected as unknown with a suggestion', async (t) => {
  t.same(errorsOf(() => loadConfig(fixture('unknown-key.yaml'), NO_ENV)), ["pbx.ami.hots: unknown key (did you mean 'host'?)"]);
});

t.test('given an unknown sink type and a bad sink key, when loaded, then each gets one precise message', async (t) => {
  t.same(errorsOf(() => loadConfig(fixture('unknown-sink-type.yaml'), NO_ENV)), [
    "sinks[0].type: must be one of log, webhook, nats (is 'lgo')",
    "sinks[1].paht: unknown key (did you mean 'path'?)",
  ]);
});

t.test('given a sink without a type, when loaded, then its type is reported as required', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'pbx: { name: p, ami: { username: u, secret: s } }\nsinks: [{ path: /tmp/x }]\n' });
  t.same(errorsOf(() => loadConfig(join(dir, 'config.yaml'), NO_ENV)), ['sinks[0].type: is required']);
});

t.test('given an extensionPattern that is not a valid RegExp, when loaded, then the reason is reported', async (t) => {
  t.same(errorsOf(() => loadConfig(fixture('bad-regex.yaml'), NO_ENV)), [
    "calls.extensionPattern: must be a valid JavaScript regular expression: Unterminated character class (is '^[0-9{2,6}$')",
  ]);
});

t.test('given duplicate agent ids and interfaces, when loaded, then each repeat is reported at its path with the first one', async (t) => {
  t.same(errorsOf(() => loadConfig(fixture('duplicate-agents.yaml'), NO_ENV)), [
    "agents[2].id: duplicates agents[0].id (is '201')",
    "agents[2].interfaces[0]: duplicates agents[1].interfaces[0] (is 'pjsip/202')",
  ]);
});

t.test('given a duplicate inbound context, when loaded, then the repeat is reported', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'pbx: { name: p, ami: { username: u, secret: s } }\ncalls: { inboundContexts: [a, b, a] }\n' });
  t.same(errorsOf(() => loadConfig(join(dir, 'config.yaml'), NO_ENV)), ["calls.inboundContexts[2]: duplicates calls.inboundContexts[0] (is 'a')"]);
});

t.test('env overrides', async (t) => {
  t.test('given a nested scalar and a list in the environment, when loaded, then they override the file, coerced to the schema types', async (t) => {
    const config = loadConfig(fixture('full.yaml'), {
      CRM_BRIDGE_CONFIG_PBX_AMI_HOST: 'pbx.example.net',
      CRM_BRIDGE_CONFIG_PBX_AMI_RECONNECT_MAX_DELAY_MS: '60000',
      CRM_BRIDGE_CONFIG_PBX_AMI_RECONNECT_JITTER: '0.5',
      CRM_BRIDGE_CONFIG_PBX_AMI_RESYNC: 'true',
      CRM_BRIDGE_CONFIG_CALLS_INBOUND_CONTEXTS: 'from-pstn, from-sip',
      CRM_BRIDGE_CONFIG_CALLS_AGENT_CONTEXTS: '["agents","team-b"]',
      CRM_BRIDGE_CONFIG_LOG_LEVEL: 'warn',
    });
    t.equal(config.pbx.ami.host, 'pbx.example.net');
    t.equal(config.pbx.ami.reconnect.maxDelayMs, 60000);
    t.equal(config.pbx.ami.reconnect.jitter, 0.5);
    t.equal(config.pbx.ami.reconnect.initialDelayMs, 250, 'siblings keep the file value');
    t.equal(config.pbx.ami.resync, true);
    t.same(config.calls.inboundContexts, ['from-pstn', 'from-sip']);
    t.same(config.calls.agentContexts, ['agents', 'team-b']);
    t.equal(config.log.level, 'warn');
  });

  t.test('given an override of a key the file does not have, when loaded, then the section is created', async (t) => {
    const config = loadConfig(fixture('minimal.yaml'), { CRM_BRIDGE_CONFIG_CALLS_EXTENSION_PATTERN: '^2[0-9]{2}$' });
    t.equal(config.calls.extensionPattern, '^2[0-9]{2}$');
    t.same(config.calls.agentContexts, ['agents', 'from-queue'], 'the rest of the section gets its defaults');
  });

  t.test('given an empty variable, when loaded, then it counts as unset', async (t) => {
    t.equal(loadConfig(fixture('full.yaml'), { CRM_BRIDGE_CONFIG_PBX_AMI_PORT: '' }).pbx.ami.port, 5039);
  });

  t.test('given bad override values, when loaded, then each is a validation error naming its variable', async (t) => {
    t.same(
      errorsOf(() =>
        loadConfig(fixture('minimal.yaml'), {
          CRM_BRIDGE_CONFIG_PBX_AMI_PORT: 'abc',
          CRM_BRIDGE_CONFIG_PBX_AMI_RESYNC: 'yes',
          CRM_BRIDGE_CONFIG_CALLS_AGENT_CONTEXTS: '["agents"',
        }),
      ),
      [
        `calls.agentContexts: must be a JSON array (["a","b"]) or a comma-separated list (is '[\\"agents\\"', from CRM_BRIDGE_CONFIG_CALLS_AGENT_CONTEXTS)`,
        "pbx.ami.port: must be integer (is 'abc', from CRM_BRIDGE_CONFIG_PBX_AMI_PORT)",
        "pbx.ami.resync: must be boolean (is 'yes', from CRM_BRIDGE_CONFIG_PBX_AMI_RESYNC)",
      ],
    );
  });

  t.test('given an unknown CRM_BRIDGE_CONFIG_ variable, when loaded, then it is an error with a suggestion', async (t) => {
    t.same(errorsOf(() => loadConfig(fixture('minimal.yaml'), { CRM_BRIDGE_CONFIG_PBX_AMI_HOTS: '10.0.0.1', CRM_BRIDGE_CONFIG_NOPE: 'x' })), [
      'CRM_BRIDGE_CONFIG_NOPE: unknown setting (see config.yaml for the keys that can be set)',
      'CRM_BRIDGE_CONFIG_PBX_AMI_HOTS: unknown setting (did you mean CRM_BRIDGE_CONFIG_PBX_AMI_HOST?)',
    ]);
  });

  t.test('given the schema, when the variables are derived, then every scalar and string-list leaf outside lists has one', async (t) => {
    t.same(
      configEnvVars().map((v) => `${v.name}=${v.key}`),
      [
        'CRM_BRIDGE_CONFIG_PBX_NAME=pbx.name',
        'CRM_BRIDGE_CONFIG_PBX_AMI_HOST=pbx.ami.host',
        'CRM_BRIDGE_CONFIG_PBX_AMI_PORT=pbx.ami.port',
        'CRM_BRIDGE_CONFIG_PBX_AMI_USERNAME=pbx.ami.username',
        'CRM_BRIDGE_CONFIG_PBX_AMI_SECRET=pbx.ami.secret',
        'CRM_BRIDGE_CONFIG_PBX_AMI_RECONNECT_INITIAL_DELAY_MS=pbx.ami.reconnect.initialDelayMs',
        'CRM_BRIDGE_CONFIG_PBX_AMI_RECONNECT_MAX_DELAY_MS=pbx.ami.reconnect.maxDelayMs',
        'CRM_BRIDGE_CONFIG_PBX_AMI_RECONNECT_FACTOR=pbx.ami.reconnect.factor',
        'CRM_BRIDGE_CONFIG_PBX_AMI_RECONNECT_JITTER=pbx.ami.reconnect.jitter',
        'CRM_BRIDGE_CONFIG_PBX_AMI_ACTION_TIMEOUT_MS=pbx.ami.actionTimeoutMs',
        'CRM_BRIDGE_CONFIG_PBX_AMI_RESYNC=pbx.ami.resync',
        'CRM_BRIDGE_CONFIG_PBX_AMI_RECONCILE_INTERVAL_SECONDS=pbx.ami.reconcileIntervalSeconds',
        'CRM_BRIDGE_CONFIG_PBX_AMI_MAX_FRAME_BYTES=pbx.ami.maxFrameBytes',
        'CRM_BRIDGE_CONFIG_PBX_AMI_MAX_HEADERS=pbx.ami.maxHeaders',
        'CRM_BRIDGE_CONFIG_PBX_AMI_MAX_LINE_BYTES=pbx.ami.maxLineBytes',
        'CRM_BRIDGE_CONFIG_PBX_ARI_URL=pbx.ari.url',
        'CRM_BRIDGE_CONFIG_PBX_ARI_USERNAME=pbx.ari.username',
        'CRM_BRIDGE_CONFIG_PBX_ARI_PASSWORD=pbx.ari.password',
        'CRM_BRIDGE_CONFIG_PBX_ARI_APP=pbx.ari.app',
        'CRM_BRIDGE_CONFIG_PBX_ARI_RECONNECT_INITIAL_DELAY_MS=pbx.ari.reconnect.initialDelayMs',
        'CRM_BRIDGE_CONFIG_PBX_ARI_RECONNECT_MAX_DELAY_MS=pbx.ari.reconnect.maxDelayMs',
        'CRM_BRIDGE_CONFIG_PBX_ARI_RECONNECT_FACTOR=pbx.ari.reconnect.factor',
        'CRM_BRIDGE_CONFIG_PBX_ARI_RECONNECT_JITTER=pbx.ari.reconnect.jitter',
        'CRM_BRIDGE_CONFIG_PBX_ARI_ACTION_TIMEOUT_MS=pbx.ari.actionTimeoutMs',
        'CRM_BRIDGE_CONFIG_PBX_ARI_RESYNC=pbx.ari.resync',
        'CRM_BRIDGE_CONFIG_SOURCE_NAME=source.name',
        'CRM_BRIDGE_CONFIG_SOURCE_SERVERS=source.servers',
        'CRM_BRIDGE_CONFIG_SOURCE_STREAM=source.stream',
        'CRM_BRIDGE_CONFIG_SOURCE_CONSUMER=source.consumer',
        'CRM_BRIDGE_CONFIG_SOURCE_SUBJECT_PREFIX=source.subjectPrefix',
        'CRM_BRIDGE_CONFIG_SOURCE_PARTITIONS=source.partitions',
        'CRM_BRIDGE_CONFIG_SOURCE_PBX=source.pbx',
        'CRM_BRIDGE_CONFIG_SOURCE_REPLAY_SECONDS=source.replaySeconds',
        'CRM_BRIDGE_CONFIG_SOURCE_ACK_WAIT_SECONDS=source.ackWaitSeconds',
        'CRM_BRIDGE_CONFIG_SOURCE_LEASE_SECONDS=source.leaseSeconds',
        'CRM_BRIDGE_CONFIG_SOURCE_AUTH_TOKEN=source.auth.token',
        'CRM_BRIDGE_CONFIG_SOURCE_AUTH_USER=source.auth.user',
        'CRM_BRIDGE_CONFIG_SOURCE_AUTH_PASSWORD=source.auth.password',
        'CRM_BRIDGE_CONFIG_CALLS_INBOUND_CONTEXTS=calls.inboundContexts',
        'CRM_BRIDGE_CONFIG_CALLS_AGENT_CONTEXTS=calls.agentContexts',
        'CRM_BRIDGE_CONFIG_CALLS_EXTENSION_PATTERN=calls.extensionPattern',
        'CRM_BRIDGE_CONFIG_CALLS_AGENTS_FROM_PBX=calls.agentsFromPbx',
        'CRM_BRIDGE_CONFIG_CALLS_MAX_IN_PROGRESS=calls.maxInProgress',
        'CRM_BRIDGE_CONFIG_CALLS_MAX_AGENTS=calls.maxAgents',
        'CRM_BRIDGE_CONFIG_OUTBOX_PATH=outbox.path',
        'CRM_BRIDGE_CONFIG_OUTBOX_SYNCHRONOUS=outbox.synchronous',
        'CRM_BRIDGE_CONFIG_OUTBOX_STALLED_AFTER_MS=outbox.stalledAfterMs',
        'CRM_BRIDGE_CONFIG_OUTBOX_DELIVERY_THREAD=outbox.deliveryThread',
        'CRM_BRIDGE_CONFIG_OUTBOX_DELIVERIES_PER_SECOND_WHILE_POPPING=outbox.deliveriesPerSecondWhilePopping',
        'CRM_BRIDGE_CONFIG_HTTP_LISTEN=http.listen',
        'CRM_BRIDGE_CONFIG_HTTP_ALLOWED_ORIGINS=http.allowedOrigins',
        'CRM_BRIDGE_CONFIG_HTTP_KEEP_ALIVE_SECONDS=http.keepAliveSeconds',
        'CRM_BRIDGE_CONFIG_HTTP_RETRY_MS=http.retryMs',
        'CRM_BRIDGE_CONFIG_HTTP_BUFFER_PER_AGENT=http.bufferPerAgent',
        'CRM_BRIDGE_CONFIG_HTTP_TOKEN_SECRET=http.tokenSecret',
        'CRM_BRIDGE_CONFIG_HTTP_METRICS_TOKEN=http.metricsToken',
        'CRM_BRIDGE_CONFIG_HTTP_AUTH_THROTTLE_MAX_FAILURES=http.authThrottle.maxFailures',
        'CRM_BRIDGE_CONFIG_HTTP_AUTH_THROTTLE_WINDOW_SECONDS=http.authThrottle.windowSeconds',
        'CRM_BRIDGE_CONFIG_HTTP_STREAMS_PER_TOKEN=http.streams.perToken',
        'CRM_BRIDGE_CONFIG_HTTP_STREAMS_PER_ADDRESS=http.streams.perAddress',
        'CRM_BRIDGE_CONFIG_HTTP_TRUSTED_PROXIES=http.trustedProxies',
        'CRM_BRIDGE_CONFIG_API_RATE_LIMIT_PER_MINUTE=api.rateLimit.perMinute',
        'CRM_BRIDGE_CONFIG_API_RATE_LIMIT_BURST=api.rateLimit.burst',
        'CRM_BRIDGE_CONFIG_API_CLICK_TO_CALL_AGENT_CHANNEL=api.clickToCall.agentChannel',
        'CRM_BRIDGE_CONFIG_API_CLICK_TO_CALL_CONTEXT=api.clickToCall.context',
        'CRM_BRIDGE_CONFIG_API_CLICK_TO_CALL_NUMBER_PATTERN=api.clickToCall.numberPattern',
        'CRM_BRIDGE_CONFIG_API_CLICK_TO_CALL_CALLER_ID=api.clickToCall.callerId',
        'CRM_BRIDGE_CONFIG_API_CLICK_TO_CALL_RING_TIMEOUT_SECONDS=api.clickToCall.ringTimeoutSeconds',
        'CRM_BRIDGE_CONFIG_API_PRESENCE_MODE=api.presence.mode',
        'CRM_BRIDGE_CONFIG_API_PRESENCE_DEFAULT_REASON=api.presence.defaultReason',
        'CRM_BRIDGE_CONFIG_API_PRESENCE_CRM_READY_REASON=api.presence.crmReadyReason',
        'CRM_BRIDGE_CONFIG_SUPERVISOR_ENABLED=supervisor.enabled',
        'CRM_BRIDGE_CONFIG_SUPERVISOR_TIME_ZONE=supervisor.timeZone',
        'CRM_BRIDGE_CONFIG_SUPERVISOR_SERVICE_LEVEL_SECONDS=supervisor.serviceLevelSeconds',
        'CRM_BRIDGE_CONFIG_SUPERVISOR_PATH=supervisor.path',
        'CRM_BRIDGE_CONFIG_SUPERVISOR_RETENTION_DAYS=supervisor.retentionDays',
        'CRM_BRIDGE_CONFIG_SUPERVISOR_PUSH_INTERVAL_MS=supervisor.pushIntervalMs',
        'CRM_BRIDGE_CONFIG_LOG_LEVEL=log.level',
        'CRM_BRIDGE_CONFIG_STARTUP_WARM_UP=startup.warmUp',
        'CRM_BRIDGE_CONFIG_SHUTDOWN_TIMEOUT_MS=shutdown.timeoutMs',
      ],
    );
  });
});

t.test('secrets', async (t) => {
  t.test('given a secret from an environment variable, when loaded, then it is resolved', async (t) => {
    t.equal(loadConfig(fixture('secret-env.yaml'), { TEST_AMI_SECRET: 'from-env' }).pbx.ami.secret, 'from-env');
  });

  t.test('given a secret environment variable that is not set, when loaded, then the error names the variable', async (t) => {
    t.same(errorsOf(() => loadConfig(fixture('secret-env.yaml'), NO_ENV)), ['pbx.ami.secret: environment variable TEST_AMI_SECRET is not set']);
  });

  t.test('given a secret file relative to the config, when loaded, then its content without the trailing newline is the secret', async (t) => {
    t.equal(loadConfig(fixture('secret-file.yaml'), NO_ENV).pbx.ami.secret, 'file-secret-value');
  });

  t.test('given a missing secret file, when loaded, then the error names the file', async (t) => {
    t.same(errorsOf(() => loadConfig(fixture('secret-missing-file.yaml'), NO_ENV)), [
      'pbx.ami.secret: cannot read secret file /nonexistent/crm-bridge/ami.secret (no such file)',
    ]);
  });

  t.test('given an empty secret file and other errors, when loaded, then all are reported at once', async (t) => {
    const dir = t.testdir({
      'ami.secret': '\n',
      'config.yaml': 'pbx: { name: p, ami: { port: 0, username: u, secret: { file: ami.secret } } }\n',
    });
    t.same(errorsOf(() => loadConfig(join(dir, 'config.yaml'), NO_ENV)), [
      'pbx.ami.port: must be >= 1 (is 0)',
      `pbx.ami.secret: secret file ${join(dir, 'ami.secret')} is empty`,
    ]);
  });

  t.test('given the secret override variable, when loaded, then it replaces the reference in the file', async (t) => {
    t.equal(loadConfig(fixture('secret-missing-file.yaml'), { CRM_BRIDGE_CONFIG_PBX_AMI_SECRET: 'from-override' }).pbx.ami.secret, 'from-override');
  });

  t.test('given a secret of the wrong shape, when loaded, then the message does not echo it', async (t) => {
    t.same(errorsOf(() => loadConfig(fixture('bad-secret.yaml'), NO_ENV)), ['pbx.ami.secret: must be a string or {env}/{file} reference']);
    const dir = t.testdir({ 'config.yaml': 'pbx: { name: p, ami: { username: u, secret: { value: Leaky-Secret-1 } } }\n' });
    t.same(errorsOf(() => loadConfig(join(dir, 'config.yaml'), NO_ENV)), ['pbx.ami.secret: must be a string or {env}/{file} reference']);
  });

  t.test('given secrets in a file, in the environment and on a broken line, when errors are reported, then no secret appears in them', async (t) => {
    const secrets = ['Unterminated-Secret-Value', 'inline-secret-for-tests', 'Env-Secret-42', '98765432', 'Leaky-Secret-1'];
    const dir = t.testdir({
      'inline.yaml': 'pbx: { name: "bad name", ami: { port: x, username: u, secret: inline-secret-for-tests } }\nlog: { level: loud }\n',
      'typo.yaml': 'pbx: { name: p, ami: { username: u, secert: Leaky-Secret-1 } }\n',
    });
    const messages = [
      ...errorsOf(() => loadConfig(fixture('syntax-error-in-secret.yaml'), NO_ENV)),
      ...errorsOf(() => loadConfig(join(dir, 'inline.yaml'), NO_ENV)),
      ...errorsOf(() => loadConfig(join(dir, 'typo.yaml'), NO_ENV)),
      ...errorsOf(() => loadConfig(fixture('bad-secret.yaml'), NO_ENV)),
      ...errorsOf(() => loadConfig(fixture('minimal.yaml'), { CRM_BRIDGE_CONFIG_PBX_AMI_SECRET: 'Env-Secret-42', CRM_BRIDGE_CONFIG_PBX_AMI_PORT: 'x' })),
    ].join('\n');
    t.ok(messages.length > 0);
    for (const s of secrets) t.notOk(messages.includes(s), `error text does not contain ${s}`);
    t.match(messages, "pbx.ami.secert: unknown key (did you mean 'secret'?)");
  });

  t.test('given a loaded config, when described, then every secret is redacted and the config is untouched', async (t) => {
    const config = loadConfig(fixture('secret-env.yaml'), { TEST_AMI_SECRET: 'Described-Secret-7' });
    const described = describeConfig(config);
    t.equal(described.pbx.ami.secret, '[redacted]');
    t.notOk(JSON.stringify(described).includes('Described-Secret-7'));
    t.equal(config.pbx.ami.secret, 'Described-Secret-7');
    t.same({ ...described, pbx: { ...described.pbx, ami: { ...described.pbx.ami, secret: config.pbx.ami.secret } } }, config);
  });
});

t.test('defaultConfig', async (t) => {
  t.test('given no overrides, when built, then it is a valid config with empty AMI credentials and a stdout log sink', async (t) => {
    const config = defaultConfig();
    t.equal(config.pbx.name, 'pbx1');
    t.equal(config.pbx.ami.username, '');
    t.equal(config.pbx.ami.secret, '');
    t.equal(config.pbx.ami.port, 5038);
    t.same(config.sinks, [{ type: 'log' }]);
    t.same(config.agents, []);
    t.same(config.calls, loadConfig(fixture('minimal.yaml'), NO_ENV).calls);
  });

  t.test('given overrides, when built, then nested keys merge and lists replace', async (t) => {
    const config = defaultConfig({ pbx: { ami: { port: 15038 } }, calls: { inboundContexts: ['trunk'] }, agents: [{ id: '7', interfaces: ['PJSIP/7'] }] });
    t.equal(config.pbx.ami.port, 15038);
    t.equal(config.pbx.ami.host, '127.0.0.1');
    t.same(config.calls.inboundContexts, ['trunk']);
    t.same(config.agents, [{ id: '7', interfaces: ['PJSIP/7'] }]);
  });

  t.test('given a bad override, when built, then it throws a ConfigError', async (t) => {
    t.same(errorsOf(() => defaultConfig({ pbx: { ami: { port: -1 } } })), ['pbx.ami.port: must be >= 1 (is -1)']);
  });

  t.test('given an empty username in a file, when loaded, then it is refused: only defaultConfig allows it', async (t) => {
    const dir = t.testdir({ 'config.yaml': 'pbx: { name: p, ami: { username: "", secret: "" } }\n' });
    t.same(errorsOf(() => loadConfig(join(dir, 'config.yaml'), NO_ENV)), [
      "pbx.ami.username: must not be empty (is '')",
      'pbx.ami.secret: must be a string or {env}/{file} reference',
    ]);
  });
});

t.test('the reference config.yaml', async (t) => {
  const path = join(root, 'config.yaml');

  t.test('given the secret in the environment, when loaded, then it validates and its values are the defaults', async (t) => {
    const config = loadConfig(path, { CRM_BRIDGE_CONFIG_PBX_AMI_SECRET: 'x' });
    const defaults = defaultConfig();
    t.same({ ...config, pbx: { ...config.pbx, ami: { ...config.pbx.ami, username: '', secret: '' } } }, defaults);
  });

  t.test('given the schema, when the file is read, then every key is set or shown commented out', async (t) => {
    const text = readFileSync(path, 'utf8');
    const doc = parse(text) as unknown;
    const present = (keyPath: string): boolean => {
      // `sinks[type=log].path` / `agents[].id`: present in any item (of that type).
      let nodes: unknown[] = [doc];
      for (const part of keyPath.split('.')) {
        const m = /^([^[]+)(\[(?:type=([^\]]+))?\])?$/.exec(part);
        const [key, list, type] = [m?.[1] ?? part, m?.[2], m?.[3]];
        nodes = nodes.flatMap((n) => (n && typeof n === 'object' && key in n ? [(n as Record<string, unknown>)[key]] : []));
        if (list) nodes = nodes.flatMap((n) => (Array.isArray(n) ? n : [])).filter((n) => !type || (n as { type?: unknown })?.type === type);
      }
      return nodes.length > 0;
    };
    for (const keyPath of schemaKeys(configSchema())) {
      const key = keyPath.split('.').pop()?.replace(/\[.*$/, '') ?? keyPath;
      const commented = new RegExp(`^\\s*#\\s*(- )?${key}:`, 'm').test(text);
      t.ok(present(keyPath) || commented, `${keyPath} is documented`);
    }
  });
});

t.test('findConfigPath', async (t) => {
  t.test('given an explicit path, when searched, then it is returned resolved even if it does not exist', async (t) => {
    const dir = t.testdir({ 'config.yaml': '' });
    t.equal(findConfigPath('missing.yaml', dir), join(dir, 'missing.yaml'));
    t.equal(findConfigPath('/abs/elsewhere.yaml', dir), '/abs/elsewhere.yaml');
  });

  t.test('given ./config.yaml exists, when searched without a path, then it wins over /etc', async (t) => {
    const dir = t.testdir({ 'config.yaml': '' });
    t.equal(findConfigPath(undefined, dir), join(dir, 'config.yaml'));
  });

  t.test('given no ./config.yaml, when searched, then /etc/crm-bridge/config.yaml if it exists, else null', async (t) => {
    const dir = t.testdir({});
    t.equal(findConfigPath(undefined, dir), existsSync(SYSTEM_CONFIG_PATH) ? SYSTEM_CONFIG_PATH : null);
  });
});
