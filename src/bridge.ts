// Why this file is long: it is the one place that wires the parts together (source, normalizer,
// contract gate, call ledger, sinks and the delivery thread, HTTP server, reload), and the
// hand-over of each AMI read's events (send, flush) belongs with that wiring.
//
// The controller. The whole architecture in one sentence: one source (src/sources/registry.ts)
// emits PBX input, the normalizer turns it into contract events, and every sink
// (src/sinks/registry.ts) receives every event that passes the contract. A delivery node's
// source emits events already normalized, which go straight to the sinks. The controller also
// owns what the operator touches: readiness, metrics, and the SIGHUP reload.
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { map, Subject, tap, type Subscription } from 'rxjs';
import { apiRoutes } from './api/router.js';
import { AmiSource } from './sources/ami/source.js';
import { AriSource, createAriSource } from './sources/ari/source.js';
import { pickSource } from './sources/registry.js';
import type { ReplayTarget, Source } from './sources/source.js';
import { InvalidEvents } from './outbox/invalid-events.js';
import { prepareValidator, validateEvent } from './events/validator.js';
import { warmUp } from './warm-up.js';
import { normalizerOptions } from './config/normalizer.js';
import type { BridgeConfig } from './config/load.js';
import { type BridgeEvent, isCallEvent } from './events/types.js';
import { createTracker, normalize, type NormalizerInput, type SnapshotTrigger } from './normalizer/index.js';
import type { CallTracker, IdSource } from './normalizer/tracker.js';
import { HttpServer, type HttpServerContext } from './http/server.js';
import { TokenVerifier, type Principal } from './http/tokens.js';
import { Outbox } from './outbox/index.js';
import { DeliveryThread } from './sinks/delivery-thread.js';
import { DeliveryPace, PopActivity } from './outbox/pace.js';
import { CallLedger } from './outbox/call-ledger.js';
import type { Cap } from './normalizer/state.js';
import { PresenceSync } from './presence/sync.js';
import { BridgeMetrics } from './ops/metrics.js';
import { opsRoutes, tokenMatcher, type Readiness } from './ops/routes.js';
import { USER_AGENT } from './util/version.js';
import { ScreenPopSink } from './sinks/screenpop.js';
import { WallboardSink } from './sinks/wallboard.js';
import { SinkSet } from './sinks/set.js';
import type { Sink } from './sinks/sink.js';

/** Where the outbox lives: config, else systemd's StateDirectory, else ./data. */
export function outboxPath(config: BridgeConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (config.outbox.path) return config.outbox.path;
  const state = env.STATE_DIRECTORY?.split(':')[0];
  return state ? join(state, 'outbox.db') : resolve('data', 'outbox.db');
}

export interface BridgeContext {
  config: BridgeConfig;
  log: Logger;
  /** Replay and tests: a loopback AMI server playing a trace, instead of the configured PBX. */
  replay?: ReplayTarget;
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
  /** The event source: the first row of the source table (src/sources/registry.ts) the config asks for. */
  source: Source | null = null;
  /** The AMI connection the API and presence act through (the event source, when AMI is configured). */
  ami: AmiSource | null = null;
  /** The ARI connection: the event source without AMI, else beside it, a reader of channel variables. */
  ari: AriSource | null = null;
  tracker: CallTracker | null = null;
  private readonly sinks: SinkSet;
  private outbox: Outbox | null = null;
  /** What each call in progress has told, beside the outbox (only when a durable sink uses it). */
  private ledger: CallLedger | null = null;
  /** Where durable sinks run when `outbox.deliveryThread` (src/sinks/delivery-thread.ts); started by the first. */
  private deliveryThread: DeliveryThread | null = null;
  /**
   * Durable sinks run on the delivery thread: not for an in-memory outbox (another thread cannot
   * open it), nor on a delivery node (a bus message is acknowledged once its event is in the
   * outbox, which must then be at once).
   */
  private readonly usesDeliveryThread: boolean;
  /** The delivery thread keeps the call ledger (a PBX source): each batch is recorded there. */
  private ledgerOnThread = false;
  /** Events the durable sinks have not taken yet: the current AMI read's (flush). */
  private pending: BridgeEvent[] = [];
  /** Caps hit and not yet back below 90 %: logged once per episode, counted every time. */
  private readonly capsLogged = new Set<Cap>();
  /** The HTTP server (agent page, event streams, widget, API), when `http` is configured. */
  http: HttpServer | null = null;
  /** The screen-pop sink whose streams the HTTP server serves (implied by `http`). */
  screenpop: ScreenPopSink | null = null;
  /** The supervisors' wallboard (implied by http, like the screen pop). */
  wallboard: WallboardSink | null = null;
  /** Presence sync between the CRM and the queues, when `api` is configured. */
  presence: PresenceSync | null = null;
  /** Prometheus metrics (served at /metrics when http is on). */
  readonly metrics: BridgeMetrics;
  /** The config in force (a reload replaces what it can). */
  private config: BridgeConfig;
  private stopping = false;
  /** Events that failed the contract: logged, counted, kept; never delivered. */
  private readonly invalid: InvalidEvents;
  private subscription: Subscription | null = null;
  private ended: Promise<void> = Promise.resolve();
  private readonly log: Logger;
  /** The pace of the durable sinks on this thread (without a delivery thread); the worker has its own. */
  private readonly pace: DeliveryPace;
  /** Whether screen pops are going out: the deliveries' pace follows it (src/outbox/pace.ts). */
  private readonly popActivity = new PopActivity((on) => {
    this.pace.setPopping(on);
    this.deliveryThread?.popping(on);
    this.log.debug({ popping: on }, on ? 'screen pops going out: durable deliveries paced' : 'no screen pop for a while: durable deliveries at full speed');
  });

  constructor(private readonly ctx: BridgeContext) {
    this.log = ctx.log;
    this.config = ctx.config;
    this.pace = new DeliveryPace(ctx.config.outbox.deliveriesPerSecondWhilePopping);
    this.metrics = new BridgeMetrics({
      callsInProgress: () => this.tracker?.activeCalls ?? 0,
      sseClients: () => (this.screenpop?.streams ?? 0) + (this.wallboard?.streams ?? 0),
      queues: () => this.wallboard?.queues() ?? [],
      outbox: () => (this.outbox ? { outbox: this.outbox, sinks: [...this.sinks.durable] } : null),
      stalledAfterMs: () => this.config.outbox.stalledAfterMs,
      deliveryThreadPending: () => this.deliveryThread?.pending ?? 0,
      deliveriesPaced: () => this.pace.limited,
    });
    this.usesDeliveryThread = ctx.config.outbox.deliveryThread && outboxPath(ctx.config) !== ':memory:' && pickSource(ctx.config, ctx.replay !== undefined).kind !== 'nats';
    this.sinks = new SinkSet({
      log: this.log,
      outbox: this.openOutbox,
      userAgent: USER_AGENT,
      onOutcome: (name, outcome) => this.metrics.outcome(name, outcome),
      pace: this.pace,
      popped: () => this.popActivity.popped(),
      ...(this.usesDeliveryThread ? { deliveryThread: this.openDeliveryThread } : {}),
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
    // Every event is checked against the contract: compile it before the first one can arrive.
    prepareValidator();
    await this.sinks.start(config, this.ctx.sinks);
    this.screenpop = this.sinks.find(ScreenPopSink);
    this.wallboard = this.sinks.find(WallboardSink);
    this.tracker = createTracker({
      ...normalizerOptions(config),
      ids: this.ctx.ids,
      onDroppedVariable: (name, last) =>
        this.log.child({ module: 'normalizer' }).warn(
          { variable: name.length > 100 ? `${name.slice(0, 100)}…` : name },
          `a CRM variable whose name the event contract cannot carry (^Omlcrm[A-Za-z0-9_]*$) was dropped; said once per name${last ? ' (the last name said: later ones are dropped silently)' : ''}`,
        ),
      onCap: (cap, evicted) => this.onCap(cap, evicted),
    });
    const def = pickSource(config, this.ctx.replay !== undefined);
    if (this.outbox && def.kind !== 'nats') {
      // A restart goes on with the calls the previous run had announced (src/outbox/call-ledger.ts).
      this.ledger = CallLedger.open(this.outbox.database, { log: this.log.child({ module: 'call-ledger' }), maxCalls: config.calls.maxInProgress, maxAgents: config.calls.maxAgents });
      const saved = this.ledger.load();
      if (this.deliveryThread) {
        // From now on the delivery thread records each event, in the transaction of its batch.
        this.deliveryThread.useLedger(config.calls.maxInProgress, config.calls.maxAgents);
        this.ledger = null;
        this.ledgerOnThread = true;
      }
      this.tracker.restore(saved.calls, saved.agents);
      if (saved.calls.length > 0) this.log.info({ calls: saved.calls.length, agents: saved.agents.length }, 'call ledger: calls in progress at the last stop continue (ended at the first resync if the PBX no longer has them)');
    }
    if (def.kind === 'ami' && config.pbx.ari && !this.ctx.replay) {
      // ARI next to AMI: only for reading variables. Its events are not fed to the normalizer, so
      // every event is emitted once.
      this.ari = createAriSource(config.pbx.ari, this.log.child({ module: 'ari' }), true);
    }
    // The first calls after a start run on compiled code (src/warm-up.ts): before connecting.
    if (def.kind === 'ami' && !this.ctx.replay && config.startup.warmUp) {
      await warmUp(config, this.deliveryThread, this.log.child({ module: 'warm-up' }));
      // Stopped meanwhile (SIGTERM while warming up): nothing more to start.
      if (this.stopping) return;
    }
    const aside = this.ari;
    const source = def.create(config, {
      log: this.log.child({ module: def.kind === 'nats' ? 'nats-source' : def.kind }),
      ...(this.ctx.replay ? { replay: this.ctx.replay } : {}),
      // With ARI beside AMI, missed variables are read through it; AMI Getvar while it is away.
      ...(aside ? { readVarAside: async (uniqueid: string, name: string) => (aside.status.state === 'connected' ? aside.getVar(uniqueid, name) : undefined) } : {}),
    });
    this.source = source;
    if (source instanceof AmiSource) this.ami = source;
    if (source instanceof AriSource) this.ari = source;
    const metrics = this.metrics;
    let done!: () => void;
    this.ended = new Promise<void>((r) => (done = r));
    source.status$.subscribe((s) => metrics.source(s));
    if (source.stage === 'bus') {
      // A delivery node: normalized events from the stream, straight to the sinks.
      this.subscription = source.events$.subscribe({
        next: (event) => {
          if (this.deliver(event)) metrics.event(event, null);
        },
        complete: () => done(),
      });
      await this.startHttp(config);
      await source.start();
      return;
    }
    const ami = this.ami;
    if (config.api && ami) {
      const presence = new PresenceSync({ config: config.api.presence, agents: this.tracker.agents, ami, log: this.log.child({ module: 'presence' }) });
      this.presence = presence;
      // After every login: which queues each agent is in, and paused or not.
      let logins = 0;
      ami.status$.subscribe((s) => {
        if (s.state !== 'connected' || s.logins === logins) return;
        logins = s.logins;
        ami.list({ action: 'QueueStatus' }, 'QueueStatusComplete').then(
          (rows) => presence.seedFrom(rows),
          (err: unknown) => this.log.warn({ err }, 'presence: QueueStatus failed; queue memberships are learnt from events until the next login'),
        );
      });
    }
    const presence = this.presence;
    const normalizerLog = this.log.child({ module: 'normalizer' });
    ami?.dropped$.subscribe((d) => metrics.amiFrameDropped(d.reason));
    let receivedAt: number | null = null;
    // The input the normalizer is handling (the pipeline is synchronous), to tell which events
    // a snapshot produced.
    let current: NormalizerInput | null = null;
    this.subscription = source.input$
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
          this.send(event);
          metrics.event(event, receivedAt);
        },
        complete: () => done(),
      });
    await this.startHttp(config);
    if (aside) await aside.start();
    await source.start();
  }

  private async startHttp(config: BridgeConfig): Promise<void> {
    if (config.http && this.screenpop) {
      this.http = new HttpServer({ ...this.httpContext(config), screenpop: this.screenpop, ...(this.source ? { source: this.source } : {}), log: this.log.child({ module: 'http' }), metrics: this.metrics });
      await this.http.start();
    } else if (config.api && !this.ctx.sinks) {
      this.log.warn('api is configured but http is not: the API needs the HTTP server (http.listen)');
    }
  }

  /** What the HTTP server needs from a config (also what a reload replaces). */
  private httpContext(config: BridgeConfig): Omit<HttpServerContext, 'screenpop' | 'log'> {
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
      wallboard: this.wallboard,
      isApiToken: apiTokens,
      callBack: Boolean(config.api),
      extraRoutes: [
        // The API acts on the PBX through the same AMI connection the events come from.
        ...(config.api ? apiRoutes({ config: config.api, ami: this.ami, ari: this.ari, presence: this.presence, agents, tokens, floor: this.wallboard, log: this.log.child({ module: 'api' }) }) : []),
        ...opsRoutes({
          readiness: () => this.readiness(),
          metrics: this.metrics,
          mayScrape: (token) => metricsToken(token) || tokens.verify(token)?.kind === 'supervisor',
          knows: (token) => tokens.verify(token) !== null || apiTokens(token),
        }),
      ],
    };
  }

  /** Ready = the event source connected, the outbox (if any sink uses it) usable, and no durable sink stalled. */
  readiness(): Readiness {
    const checks: Record<string, string> = {};
    const kind = this.source?.kind ?? 'source';
    const status = this.source?.status;
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
      this.sinks.reconfigure(next);
      applied.push('agents');
    }
    if (!this.ctx.sinks && !same(prev.sinks, next.sinks)) {
      await this.sinks.swap(next);
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

  /** Resolves when the source has ended (replay: the trace is over). */
  get done(): Promise<void> {
    return this.ended;
  }

  /**
   * Resolves once every event handed to the durable sinks so far is in the outbox: with the
   * delivery thread, once it has committed them (the hand-over is asynchronous).
   */
  async durable(): Promise<void> {
    this.flush();
    await this.deliveryThread?.drained();
  }

  /** Stops taking input, lets everything accepted reach the sinks, then stops the sinks. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const source of [this.source, this.ari === this.source ? null : this.ari]) {
      try {
        await source?.stop();
      } catch (err) {
        this.log.error({ err }, 'stopping a source failed');
      }
    }
    this.subscription?.unsubscribe();
    // Whatever the last read produced reaches the outbox before the sinks stop.
    this.flush();
    // No new streams or requests; open streams end when the screen-pop sink stops below.
    const closing = this.http?.stop().catch((err: unknown) => this.log.error({ err }, 'stopping the HTTP server failed'));
    await this.sinks.stop();
    this.popActivity.stop();
    await this.deliveryThread?.close();
    this.deliveryThread = null;
    await closing;
    this.ledger = null;
    try {
      this.outbox?.close();
    } catch (err) {
      this.log.error({ err }, 'closing the outbox failed');
    }
    this.outbox = null;
    this.events$.complete();
  }

  /** The thread webhook deliveries run on (src/sinks/delivery-thread.ts), started with the first webhook sink. */
  private readonly openDeliveryThread = (): DeliveryThread => {
    if (this.deliveryThread) return this.deliveryThread;
    this.deliveryThread = new DeliveryThread({
      outboxPath: outboxPath(this.config),
      deliveriesPerSecondWhilePopping: this.config.outbox.deliveriesPerSecondWhilePopping,
      busyTimeoutMs: 5000,
      synchronous: this.config.outbox.synchronous,
      userAgent: USER_AGENT,
      log: this.log.child({ module: 'delivery-thread' }),
      server: this.config.pbx.name,
      onOutcome: (name, outcome) => this.metrics.outcome(name, outcome),
      onPressure: (high) => (high ? this.source?.pause?.() : this.source?.resume?.()),
      onRestart: () => this.metrics.deliveryThreadRestart(),
    });
    this.deliveryThread.popping(this.popActivity.popping);
    return this.deliveryThread;
  };

  /** The durable outbox, opened when the first durable sink asks for it. */
  private openOutbox = (): Outbox => {
    this.outbox ??= Outbox.open(outboxPath(this.config), {
      log: this.log.child({ module: 'outbox' }),
      synchronous: this.config.outbox.synchronous,
      // With a delivery thread, its checkpointer copies the WAL; this connection writes little.
      ...(this.usesDeliveryThread ? { checkpoints: 'elsewhere' as const } : {}),
    });
    return this.outbox;
  };

  /**
   * Hands an event to every sink, if it matches the contract: the one gate every event passes,
   * from the normalizer or from the NATS stream. An event that does not goes to no sink (nor to
   * events$): it is logged, counted and kept (src/outbox/invalid-events.ts). Returns whether it went out.
   */
  private deliver(event: BridgeEvent): boolean {
    if (!this.admit(event)) return false;
    this.send(event);
    // A bus source acknowledges the message when this returns: its event must be in the outbox
    // by then (delivery nodes run their sinks on the main thread: see the constructor).
    this.flush();
    return true;
  }

  /** The contract gate alone: whether `event` may go to the sinks (if not, it is kept aside). */
  private admit(event: BridgeEvent): boolean {
    const problems = validateEvent(event);
    if (problems.length === 0) return true;
    this.invalid.keep(event, problems);
    return false;
  }

  /**
   * Hands an admitted event to every sink and to events$: at once to the sinks that keep nothing
   * (screen pop, log), and to the durable ones (webhook, nats) in the batch of everything the
   * current AMI read produces (flush).
   */
  private send(event: BridgeEvent): void {
    this.sinks.deliverNow(event);
    this.events$.next(event);
    this.pending.push(event);
    if (this.pending.length === 1) queueMicrotask(this.flush);
  }

  /**
   * Hands the durable sinks everything the current AMI read produced. The normalizer handles one
   * AMI read (or one ARI message) synchronously; the microtask queued by its first event runs when
   * that read is done and hands all of its events over at once: to the delivery thread (one
   * message; it writes them in one transaction: src/sinks/delivery-thread.ts says where an event
   * becomes durable), or without one, here, in ONE transaction: the call ledger's record of each
   * and every durable sink's outbox rows (and a webhook preset's call state), one commit instead
   * of one per event. The dispatchers are told after the commit (their notify is a later
   * microtask), so they never look before the rows are there.
   */
  private readonly flush = (): void => {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    if (this.deliveryThread) return this.deliveryThread.accept(batch, this.sinks.threadedNames(), this.ledgerOnThread);
    const deliver = (event: BridgeEvent) => this.sinks.deliverDurable(event);
    // The ledger records what each call has emitted in the same transaction as the outbox takes
    // its events, so a restart never repeats or forgets one.
    if (this.ledger) return this.ledger.acceptBatch(batch, deliver);
    const outbox = this.outbox;
    if (!outbox) {
      for (const event of batch) deliver(event);
      return;
    }
    try {
      outbox.batch(() => batch.forEach(deliver));
    } catch (err) {
      this.log.error({ err, events: batch.length }, 'outbox: could not write a batch of events in one transaction; writing them one by one');
      for (const event of batch) deliver(event);
    }
  };

  /**
   * A call the live-channel snapshot ended: none of its channels is left, and its Hangup never
   * reached the bridge (it was disconnected, or an event was lost). After a reconnect that is
   * expected; the periodic reconciliation finding one means events went missing.
   */
  private onReconciled(log: Logger, event: BridgeEvent, trigger: SnapshotTrigger): void {
    if (!isCallEvent(event)) return;
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
