// Prometheus metrics (prom-client), served at GET /metrics on the http.listen server. One
// registry per bridge (not prom-client's global one), so tests can run several. Gauges that
// mirror state someone else keeps (calls in progress, outbox depth, SSE clients) are read at
// scrape time through `collect`, never copied on the hot path.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SourceStatus } from '../sources/source.js';
import type { BridgeEvent } from '../events/types.js';
import type { AuthFailureReason, CapName, HttpMetrics } from '../http/server.js';
import type { DeliveryOutcome } from '../outbox/dispatcher.js';
import type { Outbox } from '../outbox/index.js';
import type { QueueFigures } from '../supervisor/types.js';
import { stallProblem } from './stall.js';

export const METRICS_PREFIX = 'crm_bridge_';

/** What the metrics read at scrape time. */
export interface MetricsSources {
  callsInProgress(): number;
  sseClients(): number;
  /** The outbox if it is open, and the durable sinks' names. */
  outbox(): { outbox: Outbox; sinks: string[] } | null;
  /** `outbox.stalledAfterMs`: how long a sink may have events waiting and deliver none (0: never stalled). */
  stalledAfterMs?(): number;
  /** Events handed to the delivery thread and not yet committed (0 without one). */
  deliveryThreadPending?(): number;
  /** Pops are going out: durable deliveries are held to outbox.deliveriesPerSecondWhilePopping (src/outbox/pace.ts). */
  deliveriesPaced?(): boolean;
  /** The wallboard's queues (src/supervisor/floor.ts): per-queue gauges. */
  queues?(): QueueFigures[];
}

export class BridgeMetrics implements HttpMetrics {
  readonly registry = new Registry();
  private readonly amiConnected: Gauge;
  private readonly amiLogins: Counter;
  private readonly amiDisconnects: Counter;
  private readonly amiEvents: Counter;
  /** AMI events not yet added to amiEvents (see its collect). */
  private amiEventsUncounted = 0;
  private readonly amiDropped: Counter<'reason'>;
  private readonly events: Counter<'type'>;
  private readonly eventLatency: Histogram;
  private readonly deliveries: Counter<'sink' | 'result'>;
  private readonly deliveryDuration: Histogram<'sink'>;
  private readonly deliveryLatency: Histogram<'sink'>;
  private readonly normalizerErrors: Counter;
  private readonly invalidEvents: Counter;
  private readonly reloads: Counter<'result'>;
  private readonly reconciled: Counter<'trigger'>;
  private readonly authFailures: Counter<'reason'>;
  /** One counter for every bound of the bridge, by `cap`: calls, agents, and the SSE stream caps. */
  private readonly capsHit: Counter<'cap'>;
  private readonly threadRestarts: Counter;
  private lastAmiState: string | null = null;
  /** Per durable sink, its last successful delivery (epoch ms). */
  private readonly lastDelivery = new Map<string, number>();
  private readonly startedAt = Date.now();

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    const p = METRICS_PREFIX;
    collectDefaultMetrics({ register: this.registry, prefix: p });
    // prom-client's defaults include three gauges named `…_total` (nodejs_active_handles_total,
    // _requests_total, _resources_total), which Prometheus reserves for counters (`promtool check
    // metrics` warns, and rate() on them is wrong). Their labelled siblings (nodejs_active_handles
    // {type}…) carry the same numbers: sum them. Any gauge of the defaults so named is dropped.
    for (const m of this.registry.getMetricsAsArray()) {
      if (m.name.endsWith('_total') && (m as unknown) instanceof Gauge) this.registry.removeSingleMetric(m.name);
    }
    this.amiConnected = new Gauge({ name: `${p}ami_connected`, help: '1 while logged in to AMI, else 0.', registers });
    this.amiConnected.set(0);
    this.amiLogins = new Counter({ name: `${p}ami_logins_total`, help: 'Successful AMI logins (the first one and every reconnect).', registers });
    this.amiDisconnects = new Counter({ name: `${p}ami_disconnects_total`, help: 'AMI connections lost or refused.', registers });
    this.amiEvents = new Counter({
      name: `${p}ami_events_received_total`,
      help: 'AMI events received (before normalization).',
      registers,
      // Counted in a plain number (amiEvent runs for every AMI frame, and the counter's inc()
      // allocates), added to the counter when it is read.
      collect: () => {
        if (this.amiEventsUncounted === 0) return;
        this.amiEvents.inc(this.amiEventsUncounted);
        this.amiEventsUncounted = 0;
      },
    });
    this.amiDropped = new Counter({
      name: `${p}ami_frames_dropped_total`,
      help: 'AMI frames dropped for breaking a limit (pbx.ami.maxLineBytes, maxHeaders, maxFrameBytes), by reason: line_too_long, too_many_headers, frame_too_large.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['line_too_long', 'too_many_headers', 'frame_too_large']) this.amiDropped.inc({ reason }, 0);
    this.events = new Counter({ name: `${p}events_total`, help: 'Normalized events handed to the sinks, by type.', labelNames: ['type'], registers });
    this.eventLatency = new Histogram({
      name: `${p}event_latency_seconds`,
      help: 'From receiving the AMI event to handing the normalized event to the sinks.',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.deliveries = new Counter({
      name: `${p}sink_deliveries_total`,
      help: 'Delivery attempts by durable sinks, by result: delivered, retry, dead, aborted.',
      labelNames: ['sink', 'result'],
      registers,
    });
    this.deliveryDuration = new Histogram({
      name: `${p}sink_attempt_duration_seconds`,
      help: 'How long one delivery attempt took (e.g. the webhook request).',
      labelNames: ['sink'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: `${p}sink_delivery_latency_seconds`,
      help: 'From accepting an event into the outbox to its successful delivery (retries included).',
      labelNames: ['sink'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
      registers,
    });
    this.normalizerErrors = new Counter({ name: `${p}normalizer_errors_total`, help: 'AMI inputs the normalizer could not handle (skipped, logged).', registers });
    this.invalidEvents = new Counter({
      name: `${p}events_invalid_total`,
      help: 'Normalized events that failed the event schema: sent to no sink, kept as dead letters (src/outbox/invalid-events.ts).',
      registers,
    });
    this.reloads = new Counter({ name: `${p}config_reloads_total`, help: 'SIGHUP reloads, by result: applied, refused.', labelNames: ['result'], registers });
    this.reconciled = new Counter({
      name: `${p}calls_reconciled_total`,
      help: 'Calls ended because the live-channel snapshot no longer had any of their channels (their Hangup never reached the bridge), by trigger: reconnect, periodic.',
      labelNames: ['trigger'],
      registers,
    });
    // Both series exist from the start, so a rate() or an alert sees 0 rather than nothing.
    for (const trigger of ['reconnect', 'periodic']) this.reconciled.inc({ trigger }, 0);
    this.authFailures = new Counter({
      name: `${p}auth_failures_total`,
      help: 'Requests refused for want of a valid token, by reason: no_token, invalid_token, throttled (the address sent too many wrong tokens: 429, unchecked).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['no_token', 'invalid_token', 'throttled']) this.authFailures.inc({ reason }, 0);
    this.capsHit = new Counter({
      name: `${p}caps_hit_total`,
      help: 'Times a bound was reached and something was evicted or refused, by cap: calls (calls.maxInProgress: the oldest call ended), agents (calls.maxAgents: the least recently seen forgotten), sse_per_token, sse_per_address (http.streams: the stream refused).',
      labelNames: ['cap'],
      registers,
    });
    for (const cap of ['calls', 'agents', 'sse_per_token', 'sse_per_address']) this.capsHit.inc({ cap }, 0);
    new Gauge({
      name: `${p}calls_in_progress`,
      help: 'Calls the normalizer is tracking right now.',
      registers,
      collect() {
        this.set(sources.callsInProgress());
      },
    });
    new Gauge({
      name: `${p}delivery_thread_pending_events`,
      help: 'Events handed over to the delivery thread and not yet committed to the outbox (the reader pauses at 20000).',
      registers,
      collect() {
        this.set(sources.deliveryThreadPending?.() ?? 0);
      },
    });
    new Gauge({
      name: `${p}deliveries_paced`,
      help: '1 while screen pops are going out and the durable sinks together deliver at most outbox.deliveriesPerSecondWhilePopping events a second (0: no limit in force).',
      registers,
      collect() {
        this.set(sources.deliveriesPaced?.() ? 1 : 0);
      },
    });
    this.threadRestarts = new Counter({ name: `${p}delivery_thread_restarts_total`, help: 'Times the delivery thread exited on its own and was started again.', registers });
    new Gauge({
      name: `${p}sse_clients`,
      help: 'Open event streams (agent pages, widgets, supervisors).',
      registers,
      collect() {
        this.set(sources.sseClients());
      },
    });
    const perSink = (name: string, help: string, read: (o: Outbox, sink: string) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['sink'],
        registers,
        collect() {
          this.reset();
          const o = sources.outbox();
          if (!o) return;
          for (const sink of o.sinks) this.set({ sink }, read(o.outbox, sink));
        },
      });
    // The wallboard's figures per queue (README: Supervisor wallboard). Today's counts reset at
    // midnight in supervisor.timeZone, so they are gauges, not counters.
    const perQueue = (name: string, help: string, read: (q: QueueFigures) => number | null, labelNames: string[] = [], expand?: (q: QueueFigures) => Array<[Record<string, string>, number]>) =>
      new Gauge({
        name,
        help,
        labelNames: ['queue', ...labelNames],
        registers,
        collect() {
          this.reset();
          for (const q of sources.queues?.() ?? []) {
            if (expand) for (const [labels, v] of expand(q)) this.set({ queue: q.name, ...labels }, v);
            else {
              const v = read(q);
              if (v !== null) this.set({ queue: q.name }, v);
            }
          }
        },
      });
    perQueue(`${p}queue_callers_waiting`, 'Callers waiting in the queue now.', (q) => q.waiting);
    perQueue(`${p}queue_longest_wait_seconds`, 'How long the caller waiting longest has waited (0: nobody waits).', (q) => (q.longestWaitSince ? Math.max(0, (Date.now() - Date.parse(q.longestWaitSince)) / 1000) : 0));
    perQueue(`${p}queue_agents`, 'Agents of the queue by state: logged_in, available, on_call, paused.', () => null, ['state'], (q) => [
      [{ state: 'logged_in' }, q.agents.loggedIn],
      [{ state: 'available' }, q.agents.available],
      [{ state: 'on_call' }, q.agents.onCall],
      [{ state: 'paused' }, q.agents.paused],
    ]);
    perQueue(`${p}queue_answered_today`, 'Queue calls answered today (since midnight in supervisor.timeZone).', (q) => q.answered);
    perQueue(`${p}queue_missed_today`, 'Queue calls missed today, by reason (abandoned: the caller hung up).', () => null, ['reason'], (q) => Object.entries(q.missed).map(([reason, n]) => [{ reason }, n]));
    perQueue(`${p}queue_service_level_ratio`, "Today's service level: answered within the queue's threshold / (answered + missed). Absent before the first call.", (q) => q.serviceLevel.ratio);
    perQueue(`${p}queue_service_level_threshold_seconds`, "The queue's service-level threshold N.", (q) => q.serviceLevel.seconds);
    perQueue(`${p}queue_abandon_rate_ratio`, "Today's abandoned / (answered + missed). Absent before the first call.", (q) => q.abandonRate);
    perQueue(`${p}queue_average_wait_seconds`, "Today's average wait of answered calls (ASA). Absent before the first answer.", (q) => q.averageWaitSeconds);
    perQueue(`${p}queue_average_talk_seconds`, "Today's average talk time of answered calls that ended. Absent before the first.", (q) => q.averageTalkSeconds);
    perSink(`${p}outbox_depth`, 'Events waiting in the outbox for delivery, by sink.', (o, s) => o.depth(s));
    perSink(`${p}outbox_oldest_age_seconds`, 'Age of the oldest event waiting in the outbox, by sink (0 when none).', (o, s) => o.oldestAgeMs(s) / 1000);
    perSink(`${p}dead_letters`, 'Events in the dead-letter table, by sink (see crm-bridge outbox list --dead).', (o, s) => o.deadCount(s));
    perSink(
      `${p}sink_last_delivery_timestamp_seconds`,
      'When the sink last delivered an event (Unix time, s); the daemon start time until its first delivery.',
      (_o, s) => (this.lastDelivery.get(s) ?? this.startedAt) / 1000,
    );
    perSink(
      `${p}sink_stalled`,
      '1 while the sink has had events waiting and delivered none for outbox.stalledAfterMs (then /readyz is not ready), else 0.',
      (o, s) => (this.stallOf(o, s, Date.now()) ? 1 : 0),
    );
  }

  /** Sinks that stopped delivering, with why (see stall.ts); empty when all deliver. */
  stalledSinks(now = Date.now()): Record<string, string> {
    const o = this.sources.outbox();
    const out: Record<string, string> = {};
    if (!o) return out;
    for (const sink of o.sinks) {
      const problem = this.stallOf(o.outbox, sink, now);
      if (problem) out[sink] = problem;
    }
    return out;
  }

  private stallOf(outbox: Outbox, sink: string, now: number): string | null {
    const afterMs = this.sources.stalledAfterMs?.() ?? 0;
    if (afterMs <= 0) return null;
    const pending = outbox.depth(sink);
    if (pending === 0) return null;
    return stallProblem({ pending, oldestPendingAgeMs: outbox.oldestAgeMs(sink, now), lastDeliveryAt: this.lastDelivery.get(sink) ?? null, since: this.startedAt }, afterMs, now);
  }

  source(status: SourceStatus): void {
    const was = this.lastAmiState;
    this.lastAmiState = status.state;
    if (status.state === was) return;
    this.amiConnected.set(status.state === 'connected' ? 1 : 0);
    if (status.state === 'connected') this.amiLogins.inc();
    if (status.state === 'disconnected' && was !== null) this.amiDisconnects.inc();
  }

  amiEvent(): void {
    this.amiEventsUncounted++;
  }

  amiFrameDropped(reason: string): void {
    this.amiDropped.inc({ reason });
  }

  event(event: BridgeEvent, receivedAt: number | null, now = Date.now()): void {
    this.events.inc({ type: event.type });
    if (receivedAt !== null) this.eventLatency.observe(Math.max(0, now - receivedAt) / 1000);
  }

  outcome(sink: string, o: DeliveryOutcome, now = Date.now()): void {
    this.deliveries.inc({ sink, result: o.kind });
    if (o.durationMs !== undefined) this.deliveryDuration.observe({ sink }, o.durationMs / 1000);
    if (o.kind === 'delivered') {
      this.deliveryLatency.observe({ sink }, Math.max(0, now - o.item.createdAt) / 1000);
      this.lastDelivery.set(sink, now);
    }
  }

  deliveryThreadRestart(): void {
    this.threadRestarts.inc();
  }

  normalizerError(): void {
    this.normalizerErrors.inc();
  }

  invalidEvent(): void {
    this.invalidEvents.inc();
  }

  callReconciled(trigger: 'reconnect' | 'periodic'): void {
    this.reconciled.inc({ trigger });
  }

  authFailure(reason: AuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  capHit(cap: CapName | 'calls' | 'agents'): void {
    this.capsHit.inc({ cap });
  }

  reload(result: 'applied' | 'refused'): void {
    this.reloads.inc({ result });
  }

  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
