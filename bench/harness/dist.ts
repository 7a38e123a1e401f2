// The built daemon's modules the benchmarks use: the one place in bench/ that imports from dist/,
// besides the measured children (bench/pipeline-child.ts, bench/memory-child.ts), which load only
// what they measure (memory-child.ts also runs as plain JavaScript, importing nothing of bench/).
export { parseAction, splitGreeting } from '../../dist/sources/ami/replay-server.js';
export { flattenFrame, type AmiEvent, type ManagerFrame } from '../../dist/normalizer/ami-event.js';
export { AmiParser } from '../../dist/sources/ami/parser.js';
export { validateEvent } from '../../dist/events/validator.js';
export type { BridgeEvent } from '../../dist/events/types.js';
export { mintToken } from '../../dist/http/tokens.js';
export { createTracker } from '../../dist/normalizer/index.js';
