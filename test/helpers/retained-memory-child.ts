// Child process for test/memory.test.ts (run with --expose-gc): replays a real trace through the
// live path, keeps every event (as the screen-pop buffers do), and prints the heap each one holds.
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import pino from 'pino';
import { startReplayServer } from '../../dist/sources/ami/replay-server.js';
import { AmiSource } from '../../dist/sources/ami/source.js';
import type { BridgeEvent } from '../../dist/events/types.js';
import { createTracker, normalize } from '../../dist/normalizer/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const trace = readFileSync(new URL('../../lab/recordings/ten-calls.ami', import.meta.url));
const kept: BridgeEvent[] = [];
for (let r = 0; r < 10; r++) {
  const srv = await startReplayServer(trace);
  const source = new AmiSource({ host: '127.0.0.1', port: srv.port, username: 'x', secret: 'y', reconnect: false, actionTimeoutMs: 2000, resync: false, log: pino({ level: 'silent' }) });
  const tracker = createTracker({ server: 'pbx1', inboundContexts: ['from-pstn'], agentContexts: ['agents'], extensionPattern: '^[0-9]{2,6}$', agents: [] });
  await new Promise<void>((resolve) => {
    source.input$.pipe(normalize({ tracker, onError: () => undefined })).subscribe({ next: (e) => kept.push(e), complete: resolve });
    void source.start();
  });
  await srv.close();
}
gc();
gc();
const withEvents = v8.getHeapStatistics().used_heap_size;
const n = kept.length;
kept.length = 0;
gc();
gc();
process.stdout.write(JSON.stringify({ events: n, bytesPerEvent: (withEvents - v8.getHeapStatistics().used_heap_size) / n }) + '\n');
