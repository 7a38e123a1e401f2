// The one table of sink types: adding a sink is adding a file and a row here.
import type { SinkDefinition } from './types.js';
import { logSink } from './log.js';

export const SINKS: Record<string, SinkDefinition<any>> = {
  [logSink.type]: logSink,
};
