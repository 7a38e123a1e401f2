// The nats source: a delivery node reads the events PBX-side bridges published to a JetStream
// stream (src/sinks/nats.ts) and hands them to its own sinks (webhook, screen pop, log) — no PBX
// connection, no normalizer: the events are already normalized.
//
// Two ways to read, by config:
// - `consumer: <name>` (webhook nodes): nodes naming the same consumer share the work. The
//   stream's subjects end in a partition number (a hash of the callId); each partition has a
//   durable consumer `<name>-p<N>`, and each partition is owned by one node at a time through a
//   lease in a KV bucket (`crm-bridge-<name>`, entries expire unless refreshed). Nodes heartbeat
//   in the same bucket and each takes about partitions / nodes; a node that dies stops
//   refreshing, its leases expire, and the others take its partitions — its unacknowledged
//   messages are redelivered to them. A message is acknowledged once the node's sinks accepted it
//   (a webhook sink: committed to the node's own outbox), so each event is handled by one node,
//   in order per call while partition ownership is stable.
// - no consumer (pop nodes): every node reads every event (an ordered consumer, starting
//   `replaySeconds` back so the agents' resume buffers are warm), so an agent can connect to any
//   node and resume with Last-Event-ID on another.
//
// A message that is not a valid event is logged with its stream sequence and terminated (parked
// in the stream, never redelivered): it cannot block the events behind it.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';
import type { NatsConnection } from '@nats-io/nats-core';
import { nanos } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { NATS_AUTH_SCHEMA, NATS_PARTITIONS_SCHEMA, NATS_PREFIX_SCHEMA, NATS_SERVERS_SCHEMA, natsConnect, type NatsAuth } from '../bus/nats.js';
import type { JsonSchema } from '../util/json-schema.js';
import type { BusSource, SourceDefinition, SourceStatus } from './source.js';
import { ConnectedSource } from './status.js';
import { validateEvent } from '../events/validator.js';
import type { BridgeEvent } from '../events/types.js';
import { redactUrl } from '../util/redact.js';

export interface NatsSourceConfig {
  type: 'nats';
  name: string;
  servers: string[];
  stream: string;
  consumer?: string;
  subjectPrefix: string;
  partitions: number;
  /** Only events of these PBXs (`server`); absent: all. */
  pbx?: string[];
  replaySeconds: number;
  ackWaitSeconds: number;
  leaseSeconds: number;
  auth?: NatsAuth;
}

/** The `source:` config section of a delivery node. */
export const natsSourceSchema: JsonSchema = {
  type: 'object',
  description: 'A delivery node: read the events PBX-side bridges published to a NATS JetStream stream (instead of pbx).',
  additionalProperties: false,
  required: ['type', 'servers', 'stream'],
  properties: {
    type: { const: 'nats' },
    name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', default: 'delivery', description: "This node's name in logs." },
    servers: NATS_SERVERS_SCHEMA,
    stream: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', description: 'The stream the bridges publish to (their nats sink).' },
    consumer: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]+$',
      description: 'Durable consumer name: nodes with the same name share the work (webhook nodes). Absent: this node reads every event (pop nodes).',
    },
    subjectPrefix: NATS_PREFIX_SCHEMA,
    partitions: NATS_PARTITIONS_SCHEMA,
    pbx: { type: 'array', items: { type: 'string' }, description: 'Only the events of these PBXs (their pbx.name). Absent: all.' },
    replaySeconds: { type: 'integer', minimum: 0, default: 300, description: 'Without consumer: read this far back at start (warms the agents\' resume buffers).' },
    ackWaitSeconds: { type: 'integer', minimum: 1, default: 30, description: 'With consumer: a message not acknowledged this long is redelivered.' },
    leaseSeconds: { type: 'integer', minimum: 1, default: 5, description: "With consumer: partition lease refresh period; a dead node's partitions move after about 3× this." },
    auth: NATS_AUTH_SCHEMA,
  },
};

export interface NatsSourceOptions {
  config: NatsSourceConfig;
  log: Logger;
}

export class NatsSource extends ConnectedSource implements BusSource {
  readonly kind = 'nats';
  readonly stage = 'bus';
  /** Each valid event, handed on synchronously: when next() returns the node's sinks accepted it, and it is acknowledged. */
  readonly events$ = new Subject<BridgeEvent>();
  readonly nodeId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private kv: KV | null = null;
  private readonly owned = new Map<number, { revision: number; messages: ConsumerMessages | null }>();
  private ordered: ConsumerMessages | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Messages parked (not valid events) so far. */
  parked = 0;

  constructor(private readonly opts: NatsSourceOptions) {
    super();
  }


  /** Partitions this node reads now (shared consumer), or null (reads everything). */
  get partitions(): number[] | null {
    return this.opts.config.consumer ? [...this.owned.keys()].sort((a, b) => a - b) : null;
  }

  describe(): string {
    return `NATS stream ${this.opts.config.stream}`;
  }

  async start(): Promise<void> {
    this.connection.enter('connecting');
    void this.run();
  }


  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.ordered?.stop();
    for (const p of [...this.owned.keys()]) await this.release(p, true);
    // Leave the group at once, so the others take the freed partitions now, not when the heartbeat expires.
    await this.kv?.delete(`node.${this.nodeId}`).catch(() => undefined);
    const nc = this.nc;
    this.nc = null;
    if (nc) await nc.drain().catch(() => nc.close());
    this.connection.enter('stopped');
    this.events$.complete();
    this.status$.complete();
  }

  private async run(): Promise<void> {
    const c = this.opts.config;
    const log = this.opts.log;
    try {
      const nc = await natsConnect(c.servers, `crm-bridge delivery ${this.nodeId}`, c.auth);
      if (this.stopped) return void (await nc.close());
      this.nc = nc;
      this.js = jetstream(nc);
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect') this.connection.disconnected('NATS connection lost');
          else if (s.type === 'reconnect') this.connection.connected();
        }
      })().catch(() => undefined);
      this.connection.connected();
      log.info({ servers: c.servers.map(redactUrl), stream: c.stream, consumer: c.consumer ?? null, node: this.nodeId }, 'NATS source connected');
    } catch (err) {
      log.error({ err }, 'NATS source: no connection; giving up (restart the node)');
      this.connection.disconnected(String((err as Error)?.message ?? err));
      return;
    }
    await this.begin();
  }

  /** Starts reading; if that fails (the stream does not exist yet, NATS away), tries again. */
  private async begin(): Promise<void> {
    const c = this.opts.config;
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        if (c.consumer) await this.startShared(c.consumer);
        else await this.startOrdered();
        return;
      } catch (err) {
        const retryInMs = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
        this.opts.log[attempt === 1 || attempt % 10 === 0 ? 'warn' : 'debug']({ err: String((err as Error)?.message ?? err), stream: c.stream, retryInMs }, 'NATS source: cannot read the stream yet; retrying');
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
  }

  /** Pop nodes: every event, from `replaySeconds` back. */
  private async startOrdered(): Promise<void> {
    const c = this.opts.config;
    // The whole stream (its subjects are the bridges' prefix); a per-consumer filter list needs
    // nats-server 2.10, and Debian 12 ships 2.9.
    const consumer = await this.js!.consumers.get(c.stream, {
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(Date.now() - c.replaySeconds * 1000).toISOString(),
    });
    const messages = await consumer.consume();
    this.ordered = messages;
    void (async () => {
      for await (const m of messages) this.handle(m, false);
    })().catch((err: unknown) => this.opts.log.error({ err }, 'NATS source: reading stopped'));
  }

  /** Webhook nodes: partitions leased in a KV bucket, one durable consumer per partition. */
  private async startShared(consumer: string): Promise<void> {
    const c = this.opts.config;
    const kvm = new Kvm(this.js!);
    this.kv = await kvm.create(`crm-bridge-${consumer}`, { history: 1, ttl: c.leaseSeconds * 3 * 1000 });
    const tick = () => void this.rebalance(consumer).catch((err: unknown) => this.opts.log.warn({ err }, 'NATS source: lease round failed; trying again'));
    tick();
    this.timer = setInterval(tick, c.leaseSeconds * 1000);
    this.timer.unref();
  }

  private rebalancing = false;

  private async rebalance(consumer: string): Promise<void> {
    const kv = this.kv;
    if (!kv || this.stopped || this.rebalancing) return;
    this.rebalancing = true;
    try {
      const P = this.opts.config.partitions;
      await kv.put(`node.${this.nodeId}`, String(Date.now()));
      let nodes = 0;
      for await (const _k of await kv.keys('node.*')) nodes++;
      const target = Math.ceil(P / Math.max(1, nodes));
      // Keep what is ours (a failed refresh means someone else took it: let it go).
      for (const [p, lease] of [...this.owned]) {
        try {
          lease.revision = await kv.update(`p.${p}`, this.nodeId, lease.revision);
        } catch {
          this.opts.log.warn({ partition: p }, 'NATS source: lost the lease of a partition; stopped reading it');
          await this.release(p, false);
        }
      }
      // Give back what is over our share, so newcomers get some.
      while (this.owned.size > target) {
        const p = Math.max(...this.owned.keys());
        await this.release(p, true);
      }
      // Take free partitions up to our share.
      for (let p = 0; p < P && this.owned.size < target && !this.stopped; p++) {
        if (this.owned.has(p)) continue;
        let revision: number;
        try {
          revision = await kv.create(`p.${p}`, this.nodeId);
        } catch {
          continue; // someone holds it
        }
        this.owned.set(p, { revision, messages: null });
        void this.read(consumer, p);
      }
    } finally {
      this.rebalancing = false;
    }
  }

  private async read(consumer: string, p: number): Promise<void> {
    const c = this.opts.config;
    const durable = `${consumer}-p${p}`;
    try {
      const jsm = await jetstreamManager(this.nc!);
      await jsm.consumers.add(c.stream, {
        durable_name: durable,
        filter_subject: `${c.subjectPrefix}.*.*.*.${p}`,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(c.ackWaitSeconds * 1000),
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: 1000,
      });
      const cons = await this.js!.consumers.get(c.stream, durable);
      const messages = await cons.consume();
      const lease = this.owned.get(p);
      if (!lease) return void messages.stop();
      lease.messages = messages;
      this.opts.log.info({ partition: p, consumer: durable, node: this.nodeId }, 'NATS source: reading a partition');
      for await (const m of messages) this.handle(m, true);
    } catch (err) {
      this.opts.log.error({ err, partition: p }, 'NATS source: could not read a partition; releasing it');
      await this.release(p, true);
    }
  }

  private async release(p: number, giveBack: boolean): Promise<void> {
    const lease = this.owned.get(p);
    if (!lease) return;
    this.owned.delete(p);
    lease.messages?.stop();
    if (giveBack) await this.kv?.delete(`p.${p}`).catch(() => undefined);
  }

  private handle(m: JsMsg, ack: boolean): void {
    let event: unknown;
    let problems: string[];
    try {
      event = m.json();
      problems = validateEvent(event);
    } catch (err) {
      problems = [`not JSON: ${(err as Error).message}`];
    }
    if (problems.length) {
      this.parked++;
      this.opts.log.error({ seq: m.seq, subject: m.subject, problems: problems.slice(0, 5) }, 'NATS source: a message on the stream is not a valid event; parked it (not redelivered) and went on');
      if (ack) m.term();
      return;
    }
    const e = event as BridgeEvent;
    if (this.opts.config.pbx && !this.opts.config.pbx.includes(e.server)) {
      if (ack) m.ack();
      return;
    }
    this.events$.next(e);
    if (ack) m.ack();
  }
}

/** The `source:` row of the source table: a delivery node reading a NATS JetStream stream. */
export const natsSource: SourceDefinition = {
  kind: 'nats',
  configured: (config, replay) => !replay && config.source !== undefined,
  create: (config, { log }) => new NatsSource({ config: config.source!, log }),
};
