// The nats sink: every accepted event goes into the durable outbox first, then a dispatcher
// publishes it to a NATS JetStream stream — the bus between PBX-side bridges and delivery nodes.
//
// - Subject `<subjectPrefix>.<server>.<type>.<partition>`, e.g. `crm.pbx1.call.ringing.7`; the
//   partition (0…partitions-1) is a hash of the callId (agent events: of the agent id), so a
//   delivery node can take a share of the calls and keep each call in order.
// - `Nats-Msg-Id` = the event id: the stream drops a second copy within its duplicate window.
//   Two bridges on one PBX (an HA pair) give every AMI-derived event the same id (UUIDv5 of the
//   AMI event, see src/normalizer/index.ts), so both may publish and the stream keeps one.
// - An event counts as delivered only when JetStream acknowledged it (PubAck). NATS down or
//   unreachable: events wait in the outbox and go out in order per call when it is back; the
//   pipeline never blocks.
// - The stream is created at start if it does not exist (subjects `<subjectPrefix>.>`; storage,
//   max age, replicas, duplicate window from the config), or checked if it does.
import type { NatsConnection } from '@nats-io/nats-core';
import { nanos } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type StreamConfig } from '@nats-io/jetstream';
import { type BridgeEvent, eventJson } from '../events/types.js';
import { NATS_AUTH_SCHEMA, NATS_PARTITIONS_SCHEMA, NATS_PREFIX_SCHEMA, NATS_SERVERS_SCHEMA, natsConnect, type NatsAuth } from '../bus/nats.js';
import { Dispatcher, type DeliveryOutcome, type DeliveryResult, type OutboxItem } from '../outbox/index.js';
import { partitionOf } from '../outbox/partition.js';
import type { JsonSchema } from '../util/json-schema.js';
import type { Sink, SinkContext, SinkDefinition } from './sink.js';
import { redactUrl } from '../util/redact.js';

export interface NatsSinkConfig {
  type: 'nats';
  name?: string;
  servers: string[];
  stream: string;
  subjectPrefix: string;
  partitions: number;
  create: boolean;
  storage: 'file' | 'memory';
  maxAgeSeconds: number;
  replicas: number;
  duplicateWindowSeconds: number;
  auth?: NatsAuth;
  publishTimeoutMs: number;
  concurrency: number;
  retry: { initialDelayMs: number; maxDelayMs: number; factor: number; jitter: number };
}

/** FNV-1a: a stable, fast string hash (the same in every bridge and every delivery node). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `crm.pbx1.call.ringing.7`: where an event is published. */
export function subjectOf(event: BridgeEvent, prefix: string, partitions: number): string {
  return `${prefix}.${event.server}.${event.type}.${fnv1a(partitionOf(event)) % partitions}`;
}

const TOKEN = '^[A-Za-z0-9_-]+$';

const schema: JsonSchema = {
  type: 'object',
  description: 'Publishes every event to a NATS JetStream stream (the bus to delivery nodes and other bridges).',
  additionalProperties: false,
  required: ['type', 'servers', 'stream'],
  properties: {
    type: { const: 'nats' },
    name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]+$', description: 'Name in logs, metrics and the outbox (default nats:<stream>).' },
    servers: NATS_SERVERS_SCHEMA,
    stream: { type: 'string', pattern: TOKEN, description: 'JetStream stream name, e.g. CRM_EVENTS.' },
    subjectPrefix: NATS_PREFIX_SCHEMA,
    partitions: NATS_PARTITIONS_SCHEMA,
    create: { type: 'boolean', default: true, description: 'Create the stream if it does not exist (else it must exist).' },
    storage: { type: 'string', enum: ['file', 'memory'], default: 'file', description: 'Stream storage (when created).' },
    maxAgeSeconds: { type: 'integer', minimum: 60, default: 604800, description: 'How long the stream keeps events (when created). Default 7 days.' },
    replicas: { type: 'integer', minimum: 1, maximum: 5, default: 1, description: 'Stream replicas (when created; 3 on a three-node cluster).' },
    duplicateWindowSeconds: { type: 'integer', minimum: 1, default: 120, description: 'Window in which the stream drops a second copy of an event id (when created). Must cover an HA pair\'s lag and a retried publish.' },
    auth: NATS_AUTH_SCHEMA,
    publishTimeoutMs: { type: 'integer', minimum: 100, default: 5000, description: 'How long to wait for JetStream to acknowledge one publish.' },
    concurrency: { type: 'integer', minimum: 1, maximum: 1024, default: 64, description: 'Publishes in flight at once (each for a different call).' },
    retry: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Backoff between attempts while NATS is away (events are never dropped for it).',
      properties: {
        initialDelayMs: { type: 'integer', minimum: 1, default: 200 },
        maxDelayMs: { type: 'integer', minimum: 1, default: 10000 },
        factor: { type: 'number', minimum: 1, default: 2 },
        jitter: { type: 'number', minimum: 0, maximum: 1, default: 0.2 },
      },
    },
  },
};

class NatsSink implements Sink {
  readonly name: string;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private connecting: Promise<void> | null = null;
  private streamReady = false;
  private dispatcher: Dispatcher | null = null;
  private stopped = false;

  constructor(
    private readonly config: NatsSinkConfig,
    private readonly ctx: SinkContext,
  ) {
    this.name = config.name ?? `nats:${config.stream}`;
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Never blocks the start: NATS may come later; the outbox holds events meanwhile.
    this.connecting = this.connect();
    this.dispatcher = new Dispatcher(
      this.ctx.outbox(),
      {
        sink: this.name,
        concurrency: this.config.concurrency,
        retry: this.config.retry,
        // The bus is infrastructure: an event is kept until it is published, however long that takes.
        maxAttempts: Number.MAX_SAFE_INTEGER,
        maxAgeMs: Number.MAX_SAFE_INTEGER,
        log: this.ctx.log,
        ...(this.ctx.pace ? { pace: this.ctx.pace } : {}),
        ...(this.ctx.onOutcome ? { onOutcome: (o: DeliveryOutcome) => this.ctx.onOutcome?.(this.name, o) } : {}),
      },
      (item, signal) => this.attempt(item, signal),
    );
    this.dispatcher.start();
  }

  deliver(event: BridgeEvent, json?: string): void {
    this.ctx.outbox().enqueue(this.name, partitionOf(event), event.id, json ?? eventJson(event));
    this.dispatcher?.notify();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.dispatcher?.stop({ deadlineMs: 5_000 });
    this.dispatcher = null;
    const nc = this.nc;
    this.nc = null;
    this.js = null;
    if (nc) await nc.drain().catch(() => nc.close());
  }

  private async connect(): Promise<void> {
    const { servers, auth } = this.config;
    try {
      const nc = await natsConnect(servers, `crm-bridge ${this.name}`, auth);
      if (this.stopped) {
        await nc.close();
        return;
      }
      this.nc = nc;
      this.js = jetstream(nc, { timeout: this.config.publishTimeoutMs });
      this.ctx.log.info({ servers: servers.map(redactUrl), server: redactUrl(nc.getServer()) }, 'NATS connected');
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect') this.ctx.log.warn({ server: s.server }, 'NATS disconnected; reconnecting (events wait in the outbox)');
          else if (s.type === 'reconnect') this.ctx.log.info({ server: s.server }, 'NATS reconnected');
        }
      })().catch(() => undefined);
    } catch (err) {
      this.ctx.log.error({ err, servers: servers.map(redactUrl) }, 'NATS connection failed for good; events stay in the outbox until a restart');
    }
  }

  /** Creates or checks the stream, once per connection. */
  private async ensureStream(nc: NatsConnection): Promise<string | null> {
    if (this.streamReady) return null;
    const c = this.config;
    const jsm = await jetstreamManager(nc, { timeout: c.publishTimeoutMs });
    const subject = `${c.subjectPrefix}.>`;
    try {
      const info = await jsm.streams.info(c.stream);
      const subjects = info.config.subjects ?? [];
      if (!subjects.some((s) => s === subject || s === '>' || (s.endsWith('.>') && subject.startsWith(s.slice(0, -1))))) {
        return `stream ${c.stream} exists but does not take ${subject} (its subjects: ${subjects.join(', ')})`;
      }
    } catch (err) {
      if (!/stream not found/i.test(String((err as Error)?.message ?? err))) throw err;
      if (!c.create) return `stream ${c.stream} does not exist (create it, or set create: true)`;
      const cfg: Partial<StreamConfig> & { name: string } = {
        name: c.stream,
        subjects: [subject],
        storage: c.storage === 'memory' ? StorageType.Memory : StorageType.File,
        max_age: nanos(c.maxAgeSeconds * 1000),
        num_replicas: c.replicas,
        duplicate_window: nanos(c.duplicateWindowSeconds * 1000),
      };
      await jsm.streams.add(cfg);
      this.ctx.log.info({ stream: c.stream, subjects: [subject], storage: c.storage, replicas: c.replicas }, 'NATS stream created');
    }
    this.streamReady = true;
    return null;
  }

  private async attempt(item: OutboxItem, signal: AbortSignal): Promise<DeliveryResult> {
    const nc = this.nc;
    const js = this.js;
    if (!nc || !js || nc.isClosed()) return { ok: false, retry: true, error: 'NATS is not connected yet' };
    if (signal.aborted) return { ok: false, retry: true, error: 'stopping' };
    try {
      const problem = await this.ensureStream(nc);
      if (problem) return { ok: false, retry: true, error: problem };
      const event = JSON.parse(item.payload) as BridgeEvent;
      const ack = await js.publish(subjectOf(event, this.config.subjectPrefix, this.config.partitions), item.payload, {
        msgID: event.id,
        expect: { streamName: this.config.stream },
        timeout: this.config.publishTimeoutMs,
      });
      if (ack.duplicate) this.ctx.log.debug({ eventId: event.id, seq: ack.seq }, 'NATS: the stream already had this event (HA peer or retried publish)');
      return { ok: true };
    } catch (err) {
      return { ok: false, retry: true, error: `NATS publish failed: ${(err as Error)?.message ?? String(err)}` };
    }
  }
}

export const natsSink: SinkDefinition<NatsSinkConfig> = {
  type: 'nats',
  schema,
  durable: true,
  create: (config, ctx) => new NatsSink(config, ctx),
  validate(config) {
    const problems: Array<{ path: Array<string | number>; message: string }> = [];
    if (config.auth?.user && !config.auth.password) problems.push({ path: ['auth', 'password'], message: 'is required with auth.user' });
    if (config.auth?.token && config.auth.user) problems.push({ path: ['auth'], message: 'give either a token or a user and password, not both' });
    return problems;
  },
};
