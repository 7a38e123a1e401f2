import type { Logger } from 'pino';
import type { BridgeEvent } from '../events/types.js';
import type { DeliveryOutcome } from '../outbox/dispatcher.js';
import type { Outbox } from '../outbox/index.js';
import type { DeliveryPace } from '../outbox/pace.js';
import type { JsonSchema } from '../util/json-schema.js';


export interface SinkContext {
  /** Child logger bound to { module: 'sink', sink: <name> }. */
  log: Logger;
  /** The configured PBX name (`pbx.name`). */
  server: string;
  /** The daemon's durable outbox, opened on first use (config `outbox`). */
  outbox: () => Outbox;
  /** `asterisk-crm-bridge/<version>`, for User-Agent headers. */
  userAgent: string;
  /** Told what became of each delivery attempt (metrics). */
  onOutcome?: (sink: string, outcome: DeliveryOutcome) => void;
  /** The pace durable sinks' dispatchers draw from while pops go out (src/outbox/pace.ts). */
  pace?: DeliveryPace;
  /** The screen-pop sink calls it when an event went to a stream (src/outbox/pace.ts, PopActivity). */
  popped?: () => void;
}

/**
 * One delivery target. Modelled on pino's transport contract: created cheaply, `start()` opens,
 * `deliver()` accepts an event (never throws: a sink reports its own failures), `stop()` flushes
 * everything accepted and closes.
 */
export interface Sink {
  readonly name: string;
  start(): Promise<void>;
  /** `json`: the event as JSON.stringify gives it, when the caller has it already (the delivery thread). */
  deliver(event: BridgeEvent, json?: string): void;
  stop(): Promise<void>;
  /** Implied sinks only (see SinkDefinition.implied): takes a reloaded config's entry in place. */
  reconfigure?(config: unknown): void;
}

export interface SinkDefinition<C extends { type: string } = { type: string }, S = never> {
  /** The `type:` value in `sinks:` entries. */
  type: C['type'];
  /** Schema of one entry (must require `type` with `const` = this type). */
  schema: JsonSchema;
  create(config: C, ctx: SinkContext): Sink;
  /**
   * Checks what the schema cannot (templates name known variables, option combinations), once the
   * entry has the schema's shape. Paths are relative to the entry; the config loader reports them
   * with every other problem, so a bad template is a config error at start.
   */
  validate?(config: C): Array<{ path: Array<string | number>; message: string }>;
  /**
   * For a sink the config implies instead of listing it under `sinks:` (the screen-pop sink comes
   * with `http`): its entry, or null when the config does not ask for it. An implied sink lives as
   * long as the daemon: a reload hands it the new entry (reconfigure) instead of replacing it, so
   * its open streams stay.
   */
  implied?(config: S): C | null;
  /**
   * The sink writes each event to the outbox (webhook, nats): it runs on the delivery thread
   * (src/sinks/delivery-thread.ts), or without one takes events in batches, one transaction per
   * AMI read with the call ledger (src/bridge.ts, flush), instead of one by one.
   */
  durable?: boolean;
}
