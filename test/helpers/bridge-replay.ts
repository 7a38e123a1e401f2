// The real Bridge (controller, sinks, outbox) fed by a recorded real-Asterisk trace over a
// loopback AMI socket: for sink tests that need real events without a live PBX.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startReplayServer } from '../../dist/sources/ami/replay-server.js';
import { Bridge } from '../../dist/bridge.js';
import { defaultConfig, type ConfigOverrides } from '../../dist/config/load.js';
import type { BridgeEvent } from '../../dist/events/types.js';

export interface ReplayBridge {
  bridge: Bridge;
  /** Every event the normalizer produced (all of them reached the sinks' deliver()). */
  events: BridgeEvent[];
  logs: Array<Record<string, unknown>>;
  outboxPath: string;
  stop(): Promise<void>;
}

export async function runBridgeOnTrace(trace: Buffer, overrides: ConfigOverrides, outboxPath?: string): Promise<ReplayBridge> {
  const dir = outboxPath ? null : mkdtempSync(join(tmpdir(), 'crm-bridge-outbox-'));
  const path = outboxPath ?? join(dir!, 'outbox.db');
  const config = defaultConfig({ calls: { agentContexts: ['agents', 'phones'] }, outbox: { path }, ...overrides });
  const server = await startReplayServer(trace);
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const bridge = new Bridge({ config, log, replay: { host: server.host, port: server.port } });
  const events: BridgeEvent[] = [];
  bridge.events$.subscribe((e) => events.push(e));
  await bridge.start();
  await bridge.done;
  // Every event is in the outbox (committed by the delivery thread) before the caller looks.
  await bridge.durable();
  return {
    bridge,
    events,
    logs,
    outboxPath: path,
    stop: async () => {
      await bridge.stop();
      await server.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
