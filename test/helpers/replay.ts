// Plays a recorded AMI trace through the real path (loopback TCP, asterisk-manager, AmiSource,
// normalizer) in-process and collects the events.
import pino from 'pino';
import { startReplayServer, type ReplayServerOptions } from '../../dist/sources/ami/replay-server.js';
import { AmiSource } from '../../dist/sources/ami/source.js';
import type { BridgeEvent } from '../../dist/events/types.js';
import { createTracker, normalize, type NormalizerOptions } from '../../dist/normalizer/index.js';
import type { CallTracker } from '../../dist/normalizer/tracker.js';

/** The calls/agents settings the test Asterisk (lab/pbx) needs. */
export const TEST_NORMALIZER: Omit<NormalizerOptions, 'ids'> = {
  server: 'pbx1',
  inboundContexts: ['from-pstn', 'from-trunk', 'from-external', 'from-did-direct', 'ext-did'],
  agentContexts: ['agents', 'phones'],
  extensionPattern: '^[0-9]{2,6}$',
  agents: [],
};

export interface ReplayResult {
  events: BridgeEvent[];
  tracker: CallTracker;
  errors: unknown[];
  logs: Array<Record<string, unknown>>;
}

export async function replayTrace(trace: Buffer, server: ReplayServerOptions = {}, normalizer = TEST_NORMALIZER): Promise<ReplayResult> {
  const srv = await startReplayServer(trace, server);
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const source = new AmiSource({ host: srv.host, port: srv.port, username: 'replay', secret: 'replay', reconnect: false, actionTimeoutMs: 5000, resync: false, log });
  const tracker = createTracker(normalizer);
  const events: BridgeEvent[] = [];
  const errors: unknown[] = [];
  const done = new Promise<void>((resolve, reject) => {
    source.input$.pipe(normalize({ tracker, onError: (err) => errors.push(err) })).subscribe({ next: (e) => events.push(e), complete: resolve, error: reject });
  });
  await source.start();
  await done;
  await srv.close();
  return { events, tracker, errors, logs };
}
