// Where the benchmarks find what they run and read: the repository, the built daemon, the
// TypeScript loader their child processes need, and the recorded Asterisk traces. RECORDINGS is
// the one place in bench/ that names the recordings directory.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/crm-bridge.js');
/** Node 20 cannot strip types itself: every bench process written in TypeScript runs under tap's loader. */
export const LOADER = ['--import', '@tapjs/typescript/import'];
export const RECORDINGS = path.join(ROOT, 'lab/recordings');

/** A recorded trace by file name (`ten-calls.ami`). */
export const recording = (name: string): string => path.join(RECORDINGS, name);

/** Every recorded trace, in directory order. */
export const recordings = (): string[] => fs.readdirSync(RECORDINGS).filter((f) => f.endsWith('.ami')).map(recording);

/** A benchmark file of bench/ by name (`bench/pipeline-child.ts`). */
export const benchFile = (name: string): string => path.join(ROOT, 'bench', name);

/**
 * The recorded traces the pipeline and memory benchmarks clone: the Asterisk 22 Local-channel
 * scenarios their figures were first measured on, named so that a new recording does not silently
 * change the traffic (the SIP-lab traces hold pickups and transfers between calls, whose calls end
 * by merging, which the memory benchmark's "calls in progress" cut does not model).
 */
export const BENCH_TRACES = [
  'agent-session', 'attended-transfer', 'blind-transfer', 'direct-answered', 'direct-busy', 'direct-noanswer',
  'outbound', 'queue-abandoned', 'queue-answered', 'queue-timeout', 'ten-calls',
].map((name) => recording(`${name}.ami`));

/** The `calls` settings of the test Asterisk the traces were recorded on (lab/pbx). */
export const TRACE_CALLS = {
  inboundContexts: ['from-pstn', 'from-trunk', 'from-external', 'from-did-direct', 'ext-did'],
  agentContexts: ['agents', 'phones'],
  extensionPattern: '^[0-9]{2,6}$',
};

/** Throws unless the daemon has been built (`file`, relative to the repository). */
export function requireBuild(script: string, file = 'dist/cli.js'): void {
  if (!fs.existsSync(path.join(ROOT, file))) throw new Error(`dist/ is missing: run \`npm run build\` first (or \`npm run bench:${script}\`)`);
}
