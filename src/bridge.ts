// The controller: wires the AMI source through the normalizer to the sinks. The whole
// architecture in one sentence: a source emits AMI input, the normalizer turns it into
// contract events, and every configured sink receives every event. It also owns what the
// operator touches: readiness, metrics, and the SIGHUP reload.
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { map, Subject, tap, type Subscription } from 'rxjs';
import { amiTlsOptions } from './ami/connection.js';
import { AmiSource } from './ami/source.js';
import { AriSource } from './ari/source.js';
import { InvalidEvents } from './events/invalid.js';
import { validateEvent } from './events/schema.js';
import { NatsSource } from './sources/nats.js';
import type { BridgeConfig } from './config/load.js';
import type { BridgeEvent } from './events/types.js';
import { createTracker, normalize, type NormalizerInput, type SnapshotTrigger } from './normalizer/index.js';
import type { CallTracker, IdSource } from './normalizer/tracker.js';
import { AgentChannel } from './http/agent-channel.js';
import { HttpServer, type HttpServerContext } from './http/server.js';
import { TokenVerifier, type Principal } from './http/tokens.js';
import { Outbox } from './outbox/index.js';
import { CallLedger } from './outbox/call-ledger.js';
import type { Cap } from './normalizer/state.js';
import { PresenceSync } from './presence/sync.js';
import { BridgeMetrics } from './ops/metrics.js';
import { opsRoutes, tokenMatcher, type Readiness } from './ops/routes.js';
import { USER_AGENT } from './version.js';
import { SINKS } from './sinks/registry.js';
import type { Sink } from './sinks/types.js';

/** Where the outbox lives: config, else systemd's StateDirectory, else ./data. */
export function outboxPath(config: BridgeConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (config.outbox.path) return config.outbox.path;
  const state = env.STATE_DIRECTORY?.split(':')[0];
  return state ? join(state, 'outbox.db') : resolve('data', 'outbox.db');
}

export interface BridgeContext {
  config: BridgeConfig;
  log: Logger;
  /** Overrides for replay and tests; by default built from config.pbx.ami. */
  source?: { reconnect?: false; resync?: boolean; host?: string; port?: number; inventory?: boolean; reconcileIntervalMs?: number };
  /** Replaces the configured sinks (replay prints to stdout whatever the config says). */
  sinks?: Sink[];
  /** Replaces how event ids are made (tests: an id the contract refuses makes an invalid event). */
  ids?: IdSource;
}

/** Where invalid events are kept when there is no outbox: beside where the outbox would be. */
export function invalidEventsPath(config: BridgeConfig, env: NodeJS.ProcessEnv = process.env): string {
  return join(dirname(outboxPath(config, env)), 'invalid-events.jsonl');
}

export class Bridge {
  /** Every normalized event, after it was handed to the sinks (an invalid one is not: see deliver). */
  readonly events$ = new Subject<BridgeEvent>();
  /** The AMI source (events, actions), when pbx.ami is configured. */
  source: AmiSource | null = null;
  /** The ARI source, when pbx.ari is configured: the event source without AMI, else a variable reader. */
  ari: AriSource | null = null;
  /** The NATS source of a delivery node (config `source`). */
  nats: NatsSource | null = null;
  tracker: CallTracker | null = null;
  private sinks: Sink[] = [];
  private outbox: Outbox | null = null;
  /** What each call in progress has told, beside the outbox (only when a durable sink uses it). */
  private ledger: CallLedger | null = null;
  /** Caps hit and not yet back below 90 %: logged once per episode, counted every time. */
  private readonly capsLogged = new Set<Cap>();
  /** The HTTP server (screen pop, widget), when `http` is configured. */
  http: HttpServer | null = null;
  channel: AgentChannel | null = null;
  /** Presence sync between the CRM and the queues, when `api` is configured. */
  presence: PresenceSync | null = null;
  /** Prometheus metrics (served at /metrics when http is on). */
  readonly metrics: BridgeMetrics;
  /** The config in force (a reload replaces what it can). */
  private config: BridgeConfig;
  /** Names of the sinks that use the outbox (for outbox metrics). */
  private readonly durableSinks = new Set<string>();
  /** While sinks are being swapped (reload): events held for the new sinks. */
  private held: BridgeEvent[] | null = null;
  private stopping = false;
  /** Events that failed the contract: logged, counted, kept; never delivered. */
  private readonly invalid: InvalidEvents;
  private subscription: Subscription | null = null;
  private ended: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly ctx: BridgeContext) {
    this.log = ctx.log;
    this.config = ctx.config;
    this.metrics = new BridgeMetrics({
      callsInProgress: () => this.tracker?.activeCalls ?? 0,
      sseClients: () => this.channel?.streams ?? 0,
      outbox: () => (this.outbox ? { outbox: this.outbox, sinks: [...this.durableSinks] } : null),
      stalledAfterMs: () => this.config.outbox.stalledAfterMs,
    });
    this.invalid = new InvalidEvents({
      log: this.log.child({ module: 'contract' }),
      outbox: () => this.outbox,
      // Replay (its own sinks) writes nothing beside the config's outbox: the log line says it all.
      file: ctx.sinks ? null : invalidEventsPath(ctx.config),
      count: () => this.metrics.invalidEvent(),
    });
  }

  async start(): Promise<void> {
    const { config } = this;
    this.sinks = this.ctx.sinks ?? this.createSinks(config);
    if (config.http && !this.ctx.sinks) {
      this.channel = new AgentChannel({
        log: this.log.child({ module: 'screenpop' }),
        keepAliveSeconds: config.http.keepAliveSeconds,
        retryMs: config.http.retryMs,
        bufferPerAgent: config.http.bufferPerAgent,
        agentQueues: agentQueues(config),
      });
      this.sinks.push(this.channel);
    }
    for (const sink of this.sinks) {
      await sink.start();
      this.log.debug({ sink: sink.name }, 'sink started');
    }
    this.tracker = createTracker({
      server: config.pbx.name,
      inboundContexts: config.calls.inboundContexts,
      agentContexts: config.calls.agentContexts,
      extensionPattern: config.calls.extensionPattern,
      agentsFromPbx: config.calls.agentsFromPbx,
      agents: config.agents,
      ids: this.ctx.ids,
      onDroppedVariable: (name, last) =>
        this.log.child({ module: 'normalizer' }).warn(
          { variable: name.length > 100 ? `${name.slice(0, 100)}…` : name },
          `a CRM variable whose name the event contract cannot carry (^Omlcrm[A-Za-z0-9_]*$) was dropped; said once per name${last ? ' (the last name said: later ones are dropped silently)' : ''}`,
        ),
      maxCalls: config.calls.maxInProgress,
      maxAgents: config.calls.maxAgents,
      onCap: (cap, evicted) => this.onCap(cap, evicted),
    });
    if (this.outbox && !config.source) {
      // A restart goes on with the calls the previous run had announced (src/outbox/call-ledger.ts).
      this.ledger = CallLedger.open(this.outbox.database, { log: this.log.child({ module: 'call-ledger' }), maxCalls: config.calls.maxInProgress, maxAgents: config.calls.maxAgents });
      const saved = this.ledger.load();
      this.tracker.restore(saved.calls, saved.agents);
      if (saved.calls.length > 0) this.log.info({ calls: saved.calls.length, agents: saved.agents.length }, 'call ledger: calls in progress at the last stop continue (ended at the first resync if the PBX no longer has them)');
    }
    if (config.source) {
      // A delivery node: normalized events from the stream, straight to the sinks.
      this.nats = new NatsSource({
        config: config.source,
        log: this.log.child({ module: 'nats-source' }),
        deliver: (event) => {
          if (this.deliver(event)) this.metrics.event(event, null);
        },
        validate: (event) => validateEvent(event),
      });
    }
    const ami = config.pbx.ami;
    const ari = config.pbx.ari;
    const over = this.ctx.source;
    if (ami || over) {
      this.source = new AmiSource({
        host: over?.host ?? ami?.host ?? '127.0.0.1',
        port: over?.port ?? ami?.port ?? 5038,
        tls: over ? false : amiTlsOptions(ami?.tls),
        limits: ami ? { maxFrameBytes: ami.maxFrameBytes, maxHeaders: ami.maxHeaders, maxLineBytes: ami.maxLineBytes } : undefined,
        username: ami?.username ?? '',
        secret: ami?.secret ?? '',
        reconnect: over?.reconnect === false ? false : (ami?.reconnect ?? false),
        actionTimeoutMs: ami?.actionTimeoutMs ?? 10_000,
        resync: over?.resync ?? ami?.resync ?? true,
        reconcileIntervalMs: over ? (over.reconcileIntervalMs ?? 0) : (ami?.reconcileIntervalSeconds ?? 60) * 1000,
        // Read even with calls.agentsFromPbx off, so a reload can turn it on; a replay server
        // answers no action during playback: no inventory there unless asked for.
        inventory: over ? (over.inventory ?? false) : true,
        log: this.log.child({ module: 'ami' }),
        // With ARI on too, missed variables are read through it; AMI Getvar while it is away.
        readVar: async (ch, name) => (this.ari?.status.state === 'connected' ? this.ari.getVar(ch.uniqueid, name) : undefined),
      });
    }
    if (ari && !over) {
      // ARI alone: the event source. Next to AMI: only for reading variables — its events are not
      // fed to the normalizer, so every event is emitted once.
      this.ari = new AriSource({
        url: ari.url,
        username: ari.username,
        password: ari.password,
        app: ari.app,
        reconnect: ari.reconnect,
        actionTimeoutMs: ari.actionTimeoutMs,
        resync: this.source ? false : ari.resync,
        log: this.log.child({ module: 'ari' }),
      });
    }
    const normalizerLog = this.log.child({ module: 'normalizer' });
    let done!: () => void;
    this.ended = new Promise<void>((r) => (done = r));
    const source = this.source;
    const events = this.eventSource;
    if (events instanceof NatsSource) {
      events.status$.subscribe({ next: (s) => this.metrics.ami(s), complete: () => done() });
      await this.startHttp(config);
      await events.start();
      return;
    }
    if (config.api && source) {
      const presence = new PresenceSync({ config: config.api.presence, agents: this.tracker.agents, ami: source, log: this.log.child({ module: 'presence' }) });
      this.presence = presence;
      // After every login: which queues each agent is in, and paused or not.
      let logins = 0;
      source.status$.subscribe((s) => {
        if (s.state !== 'connected' || s.logins === logins) return;
        logins = s.logins;
        source.list({ action: 'QueueStatus' }, 'QueueStatusComplete').then(
          (rows) => presence.seedFrom(rows),
          (err: unknown) => this.log.warn({ err }, 'presence: QueueStatus failed; queue memberships are learnt from events until the next login'),
        );
      });
    }
    const presence = this.presence;
    const metrics = this.metrics;
    events.status$.subscribe((s) => metrics.ami(s));
    source?.dropped$.subscribe((d) => metrics.amiFrameDropped(d.reason));
    let receivedAt: number | null = null;
    // The input the normalizer is handling (the pipeline is synchronous), to tell which events
    // a snapshot produced.
    let current: NormalizerInput | null = null;
    this.subscription = events.input$
      .pipe(
        tap((input) => {
          receivedAt = input.receivedAt;
          current = input;
          if (input.kind === 'event') metrics.amiEvent();
          presence?.observe(input);
        }),
        normalize({ tracker: this.tracker, onError: (err, input) => this.onNormalizerError(normalizerLog, err, input) }),
        map((event) => (presence ? presence.annotate(event) : event)),
      )
      .subscribe({
        next: (event) => {
          if (!this.admit(event)) return;
          if (current?.kind === 'snapshot' && event.type === 'call.hangup') this.onReconciled(normalizerLog, event, current.trigger ?? 'reconnect');
          // The ledger records what the call has emitted in the same transaction as the outbox
          // takes the event, so a restart never repeats or forgets it.
          if (this.ledger) this.ledger.accept(event, () => this.send(event));
          else this.send(event);
          metrics.event(event, receivedAt);
        },
        complete: () => done(),
      });
    await this.startHttp(config);
    await this.ari?.start();
    await this.source?.start();
  }

  private async startHttp(config: BridgeConfig): Promise<void> {
    if (config.http && this.channel) {
      this.http = new HttpServer({ ...this.httpContext(config), channel: this.channel, log: this.log.child({ module: 'http' }), metrics: this.metrics });
      await this.http.start();
    } else if (config.api && !this.ctx.sinks) {
      this.log.warn('api is configured but http is not: the API needs the HTTP server (http.listen)');
    }
  }

  /** Where events come from: AMI, or ARI when AMI is not configured, or the NATS stream (delivery node). */
  get eventSource(): AmiSource | AriSource | NatsSource {
    const source = this.nats ?? this.source ?? this.ari;
    if (!source) throw new Error('no event source: the config has neither pbx.ami nor pbx.ari');
    return source;
  }

  /** What the HTTP server needs from a config (also what a reload replaces). */
  private httpContext(config: BridgeConfig): Omit<HttpServerContext, 'channel' | 'log'> {
    const http = config.http!;
    const statics: Array<{ token: string; who: Principal }> = [
      ...config.agents.filter((a) => a.token).map((a) => ({ token: a.token ?? '', who: { kind: 'agent' as const, agentId: a.id } })),
      ...http.supervisors.map((s) => ({ token: s.token, who: { kind: 'supervisor' as const, name: s.name } })),
    ];
    if (statics.length === 0 && !http.tokenSecret && !config.api?.tokens.length) {
      this.log.warn('http is on but no token is configured (agents[].token, http.supervisors, http.tokenSecret, api.tokens): nobody can connect');
    }
    const tokens = new TokenVerifier(statics, http.tokenSecret);
    const agents = this.tracker!.agents;
    const metricsToken = tokenMatcher(http.metricsToken);
    const apiTokenMatchers = (config.api?.tokens ?? []).map((t) => tokenMatcher(t.token));
    const apiTokens = (token: string) => apiTokenMatchers.some((m) => m(token));
    return {
      config: http,
      rules: config.screenpop,
      tokens,
      agents,
      // The API acts on the PBX through the same AMI connection the events come from.
      ...(config.api ? { api: { config: config.api, ami: this.source, ari: this.ari, presence: this.presence, agents, tokens, log: this.log.child({ module: 'api' }) } } : {}),
      extraRoutes: opsRoutes({
        readiness: () => this.readiness(),
        metrics: this.metrics,
        mayScrape: (token) => metricsToken(token) || tokens.verify(token)?.kind === 'supervisor',
        knows: (token) => tokens.verify(token) !== null || apiTokens(token),
      }),
    };
  }

  /** Ready = logged in to AMI, the outbox (if any sink uses it) usable, and no durable sink stalled. */
  readiness(): Readiness {
    const checks: Record<string, string> = {};
    const kind = this.nats ? 'nats' : this.source ? 'ami' : 'ari';
    const status = (this.nats ?? this.source ?? this.ari)?.status;
    checks[kind] = status?.state === 'connected' ? 'ok' : `${kind.toUpperCase()} ${status?.state ?? 'not started'}${status?.lastError ? ` (${status.lastError})` : ''}`;
    checks.outbox = this.outbox ? this.outbox.problem() ?? 'ok' : 'ok (not used: no durable sink)';
    // A sink that stopped delivering (outbox.stalledAfterMs): `sink:<name>` says why.
    const stalled = Object.entries(this.metrics.stalledSinks());
    for (const [sink, problem] of stalled) checks[`sink:${sink}`] = problem;
    if (this.stopping) checks.daemon = 'stopping';
    const ready = !this.stopping && checks[kind] === 'ok' && checks.outbox.startsWith('ok') && stalled.length === 0;
    return { ready, checks };
  }

  /**
   * Applies a new, already validated config without dropping the AMI connection or an event:
   * sinks, agents, tokens, screen-pop rules, API settings, log level. What cannot change without
   * a restart (pbx, outbox, http.listen, calls.inboundContexts, api on/off) is kept and named.
   */
  async reload(next: BridgeConfig): Promise<{ applied: string[]; needsRestart: string[] }> {
    const prev = this.config;
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const applied: string[] = [];
    const needsRestart: string[] = [];
    if (!same(prev.pbx, next.pbx)) needsRestart.push('pbx');
    if (!same(prev.source, next.source)) needsRestart.push('source');
    if (!same(prev.outbox, next.outbox)) needsRestart.push('outbox');
    if (!same(prev.calls.inboundContexts, next.calls.inboundContexts)) needsRestart.push('calls.inboundContexts');
    if (Boolean(prev.http) !== Boolean(next.http) || prev.http?.listen !== next.http?.listen) needsRestart.push('http.listen');
    if (Boolean(prev.api) !== Boolean(next.api)) needsRestart.push('api (on/off)');
    if (prev.log.level !== next.log.level) {
      this.log.level = next.log.level;
      applied.push('log.level');
    }
    if (!same(prev.agents, next.agents) || !same(prev.calls, next.calls)) {
      this.tracker?.agents.reload({ agents: next.agents, agentContexts: next.calls.agentContexts, extensionPattern: next.calls.extensionPattern, fromPbx: next.calls.agentsFromPbx });
      this.channel?.setAgentQueues(agentQueues(next));
      applied.push('agents');
    }
    if (!this.ctx.sinks && !same(prev.sinks, next.sinks)) {
      await this.swapSinks(next);
      applied.push('sinks');
    }
    if (next.api && this.presence && !same(prev.api?.presence, next.api.presence)) {
      this.presence.configure(next.api.presence);
      applied.push('api.presence');
    }
    const httpNow = { ...next, http: next.http ? { ...next.http, listen: prev.http?.listen ?? next.http.listen } : next.http };
    if (this.http && next.http && (!same(prev.http, httpNow.http) || !same(prev.screenpop, next.screenpop) || !same(prev.api, next.api) || !same(prev.agents, next.agents))) {
      this.http.reconfigure(this.httpContext({ ...httpNow, api: prev.api && next.api ? next.api : prev.api }));
      applied.push('http (tokens, screen-pop rules, API)');
    }
    this.config = {
      ...next,
      pbx: prev.pbx,
      ...(prev.source ? { source: prev.source } : {}),
      outbox: prev.outbox,
      calls: { ...next.calls, inboundContexts: prev.calls.inboundContexts },
      http: prev.http && next.http ? httpNow.http : prev.http,
      api: prev.api && next.api ? next.api : prev.api,
    };
    return { applied, needsRestart };
  }

  /**
   * Stops the configured sinks (they drain; the outbox keeps what they had not delivered), then
   * starts the new ones. Events that arrive meanwhile go to the screen-pop channel at once and
   * are held for the new sinks, so none is lost. If a new sink fails to start, the old ones
   * come back and the error is thrown.
   */
  private async swapSinks(next: BridgeConfig): Promise<void> {
    const old = this.sinks.filter((s) => s !== this.channel);
    const keep = this.channel ? [this.channel] : [];
    this.held = [];
    this.sinks = keep;
    this.log.info({ stopping: old.map((s) => s.name) }, 'reload: swapping sinks; events meanwhile are held for the new ones');
    let target = old;
    let failure: unknown = null;
    try {
      for (const sink of [...old].reverse()) {
        try {
          await sink.stop();
        } catch (err) {
          this.log.error({ err, sink: sink.name }, 'stopping a sink for the reload failed');
        }
      }
      const started: Sink[] = [];
      try {
        const fresh = this.createSinks(next);
        for (const sink of fresh) {
          await sink.start();
          started.push(sink);
        }
        target = fresh;
      } catch (err) {
        failure = err;
        for (const sink of started) await sink.stop().catch(() => undefined);
        for (const sink of old) await sink.start();
      }
    } finally {
      const held = this.held ?? [];
      this.held = null;
      this.sinks = [...target, ...keep];
      for (const event of held) this.deliverTo(target, event);
    }
    if (failure) throw failure;
  }

  /** Resolves when the source has ended (replay: the trace is over). */
  get done(): Promise<void> {
    return this.ended;
  }

  /** Stops taking AMI input, lets everything accepted reach the sinks, then stops the sinks. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const source of [this.nats, this.source, this.ari]) {
      try {
        await source?.stop();
      } catch (err) {
        this.log.error({ err }, 'stopping a PBX source failed');
      }
    }
    this.subscription?.unsubscribe();
    try {
      // No new streams or requests; open streams end when the screen-pop sink stops below.
      const closing = this.http?.stop();
      this.channel?.stop().catch(() => undefined);
      await closing;
    } catch (err) {
      this.log.error({ err }, 'stopping the HTTP server failed');
    }
    for (const sink of [...this.sinks].reverse()) {
      try {
        await sink.stop();
      } catch (err) {
        this.log.error({ err, sink: sink.name }, 'stopping a sink failed');
      }
    }
    this.ledger = null;
    try {
      this.outbox?.close();
    } catch (err) {
      this.log.error({ err }, 'closing the outbox failed');
    }
    this.outbox = null;
    this.events$.complete();
  }

  /** The durable outbox, opened when the first durable sink asks for it. */
  private openOutbox = (): Outbox => {
    this.outbox ??= Outbox.open(outboxPath(this.config), {
      log: this.log.child({ module: 'outbox' }),
      synchronous: this.config.outbox.synchronous,
    });
    return this.outbox;
  };

  private createSinks(config: BridgeConfig): Sink[] {
    return config.sinks.map((entry, i) => {
      const def = SINKS[entry.type];
      if (!def) throw new Error(`sinks[${i}].type: unknown sink type '${entry.type}'`);
      let sink: Sink | null = null;
      sink = def.create(entry, {
        log: this.log.child({ module: 'sink', sink: entry.name ?? `${entry.type}#${i}` }),
        server: config.pbx.name,
        outbox: () => {
          if (sink) this.durableSinks.add(sink.name);
          return this.openOutbox();
        },
        userAgent: USER_AGENT,
        onOutcome: (name, outcome) => this.metrics.outcome(name, outcome),
      });
      return sink;
    });
  }

  /**
   * Hands an event to every sink, if it matches the contract: the one gate every event passes,
   * from the normalizer or from the NATS stream. An event that does not goes to no sink (nor to
   * events$): it is logged, counted and kept (src/events/invalid.ts). Returns whether it went out.
   */
  private deliver(event: BridgeEvent): boolean {
    if (!this.admit(event)) return false;
    this.send(event);
    return true;
  }

  /** The contract gate alone: whether `event` may go to the sinks (if not, it is kept aside). */
  private admit(event: BridgeEvent): boolean {
    const problems = validateEvent(event);
    if (problems.length === 0) return true;
    this.invalid.keep(event, problems);
    return false;
  }

  /** Hands an admitted event to every sink and to events$. */
  private send(event: BridgeEvent): void {
    this.held?.push(event);
    this.deliverTo(this.sinks, event);
    this.events$.next(event);
  }

  private deliverTo(sinks: readonly Sink[], event: BridgeEvent): void {
    for (const sink of sinks) {
      try {
        sink.deliver(event);
      } catch (err) {
        // A sink must not throw; if one does, the others still get the event.
        this.log.error({ err, sink: sink.name, eventId: event.id }, 'sink threw while accepting an event');
      }
    }
  }

  /**
   * A call the live-channel snapshot ended: none of its channels is left, and its Hangup never
   * reached the bridge (it was disconnected, or an event was lost). After a reconnect that is
   * expected; the periodic reconciliation finding one means events went missing.
   */
  private onReconciled(log: Logger, event: BridgeEvent, trigger: SnapshotTrigger): void {
    if (!('callId' in event)) return;
    this.metrics.callReconciled(trigger);
    const openSeconds = event.type === 'call.hangup' ? event.durations.totalSeconds : null;
    log[trigger === 'periodic' ? 'warn' : 'info'](
      { callId: event.callId, openSeconds, trigger },
      trigger === 'periodic' ? 'reconciliation ended a call whose channels are gone (its Hangup never reached the bridge)' : 'resync ended a call that ended while the bridge was disconnected',
    );
  }

  /**
   * A bound was reached (calls.maxInProgress, calls.maxAgents): counted every time, logged once
   * until the count is back under 90 % of the bound (a flood must not become a flood of lines).
   */
  private onCap(cap: Cap, evicted: string): void {
    this.metrics.capHit(cap);
    if (this.capsLogged.has(cap)) return;
    this.capsLogged.add(cap);
    const max = cap === 'calls' ? this.config.calls.maxInProgress : this.config.calls.maxAgents;
    this.log.warn(
      { cap, max, evicted },
      cap === 'calls'
        ? 'cap of calls in progress reached (calls.maxInProgress): the oldest call was ended to make room; further evictions are counted in crm_bridge_caps_hit_total, not logged'
        : 'cap of agents learnt from AMI reached (calls.maxAgents): the least recently seen was forgotten; further evictions are counted in crm_bridge_caps_hit_total, not logged',
    );
    const rearm = setInterval(() => {
      const now = cap === 'calls' ? (this.tracker?.activeCalls ?? 0) : (this.tracker?.agents.learnt.members ?? 0);
      if (now < max * 0.9) {
        this.capsLogged.delete(cap);
        clearInterval(rearm);
      }
    }, 60_000);
    rearm.unref();
  }

  private onNormalizerError(log: Logger, err: unknown, input: NormalizerInput): void {
    const event = input.kind === 'event' ? input.event : undefined;
    this.metrics.normalizerError();
    log.error({ err, amiEvent: event?.event, uniqueid: event?.uniqueid, linkedid: event?.linkedid }, 'could not normalize an AMI event; skipped it and carried on');
  }
}

function agentQueues(config: BridgeConfig): Map<string, readonly string[]> {
  return new Map(config.agents.filter((a) => a.queues?.length).map((a) => [a.id, a.queues ?? []]));
}
