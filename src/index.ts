// The package's library entry (package.json `main`): for embedding the bridge in another Node
// program or writing a source or sink outside this repository. The daemon itself starts from
// bin/crm-bridge.js (src/cli.ts).
export { Bridge, type BridgeContext } from './bridge.js';
export { defaultConfig, loadConfig, type BridgeConfig } from './config/load.js';
export * from './events/types.js';
export { eventSchema, validateEvent } from './events/validator.js';
export { SINKS } from './sinks/registry.js';
export type { Sink, SinkContext, SinkDefinition } from './sinks/sink.js';
export { SOURCES, pickSource } from './sources/registry.js';
export type { BusSource, PbxSource, Source, SourceDefinition, SourceStatus } from './sources/source.js';
export { createLogger } from './util/logger.js';
