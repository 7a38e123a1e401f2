// The one table of sink types: adding a sink is adding a file and a row here.
import type { SinkDefinition } from './sink.js';
import { logSink } from './log.js';
import { natsSink } from './nats.js';
import { screenpopSink } from './screenpop.js';
import { wallboardSink } from './wallboard.js';
import { webhookSink } from './webhook.js';

// `any`: each row has its own config type; the table is indexed by the config's `type` string.
export const SINKS: Record<string, SinkDefinition<any, any>> = {
  [logSink.type]: logSink,
  [webhookSink.type]: webhookSink,
  [natsSink.type]: natsSink,
  // Implied by `http`, never listed under `sinks:`.
  [screenpopSink.type]: screenpopSink,
  [wallboardSink.type]: wallboardSink,
};
