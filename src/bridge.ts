// The controller: wires the AMI source through the normalizer to the sinks. The whole
// architecture in one sentence: a source emits AMI input, the normalizer turns it into
// contract events, and every configured sink receives every event.
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { map, Subject, tap, type Subscription } from 'rxjs';
import { AmiSource } from './ami/source.js';
import type { BridgeConfig } from './config/load.js';
import type { BridgeEvent } from './events/types.js';
import { createTracker, normalize, type NormalizerInput } from './normalizer/index.js';
import type { CallTracker } from './normalizer/tracker.js';
import { AgentChannel } from './http/agent-channel.js';
import { HttpServer } from './http/server.js';
import { TokenVerifier, type Principal } from './http/tokens.js';
import { Outbox } from './outbox/index.js';
import { PresenceSync } from './presence/sync.js';
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
  source?: { reconnect?: false; resync?: boolean; host?: string; port?: number };
  /** Replaces the configured sinks (replay prints to stdout whatever the config says). */
  sinks?: Sink[];
}

export class Bridge {
  /** Every normalized event, after it was handed to the sinks. */
  readonly events$ = new Subject<BridgeEvent>();
  source: AmiSource | null = null;
  tracker: CallTracker | null = null;
  private sinks: Sink[] = [];
  private outbox: Outbox | null = null;
  /** The HTTP server (screen pop, widget), when `http` is configured. */
  http: HttpServer | null = null;
  channel: AgentChannel | null = null;
  /** Presence sync between the CRM and the queues, when `api` is configured. */
  presence: PresenceSync | null = null;
  private subscription: Subscription | null = null;
  private ended: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly ctx: BridgeContext) {
    this.log = ctx.log;
  }

  async start(): Promise<void> {
    const { config } = this.ctx;
    this.sinks = this.ctx.sinks ?? this.createSinks();
    if (config.http && !this.ctx.sinks) {
      this.channel = new AgentChannel({
        log: this.log.child({ module: 'screenpop' }),
        keepAliveSeconds: config.http.keepAliveSeconds,
        retryMs: config.http.retryMs,
        bufferPerAgent: config.http.bufferPerAgent,
        agentQueues: new Map(config.agents.filter((a) => a.queues?.length).map((a) => [a.id, a.queues ?? []])),
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
      agents: config.agents,
    });
    const ami = config.pbx.ami;
    const over = this.ctx.source ?? {};
    this.source = new AmiSource({
      host: over.host ?? ami.host,
      port: over.port ?? ami.port,
      username: ami.username,
      secret: ami.secret,
      reconnect: over.reconnect === false ? false : ami.reconnect,
      actionTimeoutMs: ami.actionTimeoutMs,
      resync: over.resync ?? ami.resync,
      log: this.log.child({ module: 'ami' }),
    });
    const normalizerLog = this.log.child({ module: 'normalizer' });
    let done!: () => void;
    this.ended = new Promise<void>((r) => (done = r));
    const source = this.source;
    if (config.api) {
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
    this.subscription = source.input$
      .pipe(
        tap((input) => presence?.observe(input)),
        normalize({ tracker: this.tracker, onError: (err, input) => this.onNormalizerError(normalizerLog, err, input) }),
        map((event) => (presence ? presence.annotate(event) : event)),
      )
      .subscribe({
        next: (event) => this.deliver(event),
        complete: () => done(),
      });
    if (config.http && this.channel) {
      const statics: Array<{ token: string; who: Principal }> = [
        ...config.agents.filter((a) => a.token).map((a) => ({ token: a.token ?? '', who: { kind: 'agent' as const, agentId: a.id } })),
        ...config.http.supervisors.map((s) => ({ token: s.token, who: { kind: 'supervisor' as const, name: s.name } })),
      ];
      if (statics.length === 0 && !config.http.tokenSecret && !config.api?.tokens.length) {
        this.log.warn('http is on but no token is configured (agents[].token, http.supervisors, http.tokenSecret, api.tokens): nobody can connect');
      }
      const tokens = new TokenVerifier(statics, config.http.tokenSecret);
      const agents = this.tracker.agents;
      this.http = new HttpServer({
        config: config.http,
        rules: config.screenpop,
        channel: this.channel,
        tokens,
        agents,
        log: this.log.child({ module: 'http' }),
        // The API acts on the PBX through the same AMI connection the events come from.
        ...(config.api ? { api: { config: config.api, ami: this.source, presence: this.presence, agents, tokens, log: this.log.child({ module: 'api' }) } } : {}),
      });
      await this.http.start();
    } else if (config.api && !this.ctx.sinks) {
      this.log.warn('api is configured but http is not: the API needs the HTTP server (http.listen)');
    }
    await this.source.start();
  }

  /** Resolves when the source has ended (replay: the trace is over). */
  get done(): Promise<void> {
    return this.ended;
  }

  /** Stops taking AMI input, lets everything accepted reach the sinks, then stops the sinks. */
  async stop(): Promise<void> {
    try {
      await this.source?.stop();
    } catch (err) {
      this.log.error({ err }, 'stopping the AMI source failed');
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
    this.outbox ??= Outbox.open(outboxPath(this.ctx.config), {
      log: this.log.child({ module: 'outbox' }),
      synchronous: this.ctx.config.outbox.synchronous,
    });
    return this.outbox;
  };

  private createSinks(): Sink[] {
    return this.ctx.config.sinks.map((entry, i) => {
      const def = SINKS[entry.type];
      if (!def) throw new Error(`sinks[${i}].type: unknown sink type '${entry.type}'`);
      return def.create(entry, {
        log: this.log.child({ module: 'sink', sink: entry.name ?? `${entry.type}#${i}` }),
        server: this.ctx.config.pbx.name,
        outbox: this.openOutbox,
        userAgent: USER_AGENT,
      });
    });
  }

  private deliver(event: BridgeEvent): void {
    for (const sink of this.sinks) {
      try {
        sink.deliver(event);
      } catch (err) {
        // A sink must not throw; if one does, the others still get the event.
        this.log.error({ err, sink: sink.name, eventId: event.id }, 'sink threw while accepting an event');
      }
    }
    this.events$.next(event);
  }

  private onNormalizerError(log: Logger, err: unknown, input: NormalizerInput): void {
    const event = input.kind === 'event' ? input.event : undefined;
    log.error({ err, amiEvent: event?.event, uniqueid: event?.uniqueid, linkedid: event?.linkedid }, 'could not normalize an AMI event; skipped it and carried on');
  }
}
