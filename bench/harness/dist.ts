// The built daemon's modules the benchmarks use: the one place in bench/ that imports from dist/
// (besides bench/memory-child.ts, which runs as plain JavaScript and imports nothing of bench/).
export { parseAction, splitGreeting } from '../../dist/ami/replay-server.js';
export { flattenFrame, type AmiEvent, type ManagerFrame } from '../../dist/ami/frame.js';
export { AmiParser } from '../../dist/ami/parser.js';
export { Bridge } from '../../dist/bridge.js';
export { defaultConfig } from '../../dist/config/load.js';
export { validateEvent } from '../../dist/events/schema.js';
export type { BridgeEvent } from '../../dist/events/types.js';
export { mintToken } from '../../dist/http/tokens.js';
export { createTracker } from '../../dist/normalizer/index.js';
export type { Sink } from '../../dist/sinks/types.js';
