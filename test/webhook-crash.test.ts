// kill -9 of the daemon in the middle of webhook delivery, then a restart on the same outbox:
// every event accepted before the kill still reaches the CRM, in order per call.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startReplayServer } from '../dist/sources/ami/replay-server.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { startReceiver } from './helpers/receivers.js';
import { replayTrace } from './helpers/replay.js';

const TRACE = readFileSync(new URL('../lab/recordings/ten-calls.ami', import.meta.url));

t.test('given a daemon delivering webhooks slowly, when it is killed with SIGKILL and restarted, then nothing is lost', async (t) => {
  const { events: expected } = await replayTrace(TRACE, {}, {
    server: 'pbx1',
    inboundContexts: ['from-pstn', 'from-trunk', 'from-external', 'from-did-direct', 'ext-did'],
    agentContexts: ['agents', 'from-queue'],
    extensionPattern: '^[0-9]{2,6}$',
    agents: [],
  });
  let slow = true;
  // A CRM that takes its time: the kill lands while requests are in flight.
  const receiver = await startReceiver(async () => {
    if (slow) await new Promise((r) => setTimeout(r, 25));
    return { status: 200 };
  });
  t.teardown(() => receiver.close());
  // The connection stays open after the trace: the daemon must not reconnect and read it again.
  const ami = await startReplayServer(TRACE, { endAfter: false });
  const dir = mkdtempSync(join(tmpdir(), 'crm-bridge-crash-'));
  const config = writeConfig(`pbx:
  name: pbx1
  ami: { host: 127.0.0.1, port: ${ami.port}, username: replay, secret: { env: AMI_SECRET }, resync: false,
         reconnect: { initialDelayMs: 200, maxDelayMs: 1000, factor: 2, jitter: 0 } }
sinks:
  - type: webhook
    name: crm
    url: ${receiver.url}/events
    concurrency: 2
    retry: { initialDelayMs: 50, maxDelayMs: 500, factor: 2, jitter: 0 }
outbox:
  path: ${join(dir, 'outbox.db')}
log:
  level: info
`);
  const first = startDaemon(config, { AMI_SECRET: 'x' });
  await receiver.waitFor((r) => r.length >= 15, '15 deliveries before the kill');
  first.child.kill('SIGKILL');
  const code = await first.stop();
  t.equal(code, null, 'then the first daemon died by the signal');
  const before = receiver.requests.length;
  t.ok(before < expected.length, `then it was killed mid-delivery (${before} of ${expected.length} delivered)`);
  await ami.close();

  slow = false;
  const second = startDaemon(config, { AMI_SECRET: 'x' });
  t.teardown(() => second.stop());
  const want = new Set(expected.map((e) => e.id));
  await receiver.waitFor((r) => [...want].every((id) => r.some((x) => x.headers['webhook-id'] === id)), 'every event after the restart', 60_000);
  const got = receiver.requests.map((r) => JSON.parse(r.body) as BridgeEvent);
  t.same(new Set(got.map((e) => e.id)), want, 'then every event accepted before the kill was delivered');
  const dupes = got.length - new Set(got.map((e) => e.id)).size;
  t.ok(dupes <= 2, `then at most the requests in flight at the kill were repeated (${dupes}), with the same webhook-id`);
  const lastSeq = new Map<string, number>();
  for (const e of got) {
    if (!('callId' in e)) continue;
    const prev = lastSeq.get(e.callId) ?? 0;
    t.ok(e.seq >= prev, `call ${e.callId}: seq ${e.seq} after ${prev}`);
    lastSeq.set(e.callId, Math.max(prev, e.seq));
  }
  t.equal(await second.stop(), 0, 'then the restarted daemon stops cleanly');
});
