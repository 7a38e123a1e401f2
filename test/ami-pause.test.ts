// Back-pressure on the AMI source (src/sources/ami/source.ts pause/resume), which the delivery
// thread asks for when too many events are handed over and not yet written: the real AmiSource
// over a real loopback TCP connection (the replay server).
import pino from 'pino';
import t from 'tap';
import { startReplayServer } from '../dist/sources/ami/replay-server.js';
import { AmiSource } from '../dist/sources/ami/source.js';
import type { Socket } from 'node:net';

const GREETING = 'Asterisk Call Manager/7.0.3\r\n';
const N = 20_000;
const events = Array.from({ length: N }, (_, i) => `Event: UserEvent\r\nUserEvent: n\r\nSeq: ${i}\r\n\r\n`).join('');

t.test('given a paused AMI source, then it reads nothing until resumed, and then every event arrives in order', async (t) => {
  const srv = await startReplayServer(Buffer.from(GREETING + events));
  t.teardown(() => srv.close());
  const source = new AmiSource({ host: srv.host, port: srv.port, username: 'x', secret: 'y', reconnect: false, actionTimeoutMs: 5000, resync: false, log: pino({ level: 'silent' }) });
  const socketOf = () => (source as unknown as { socket: Socket | null }).socket;
  const seqs: string[] = [];
  let atPause: number;
  let resumed!: () => void;
  const whenPaused = new Promise<void>((r) => (resumed = r));
  const done = new Promise<void>((resolve) =>
    source.input$.subscribe({
      next: (i) => {
        if (i.kind !== 'event' || i.event.userevent !== 'n') return;
        seqs.push(i.event.seq ?? '?');
        if (seqs.length === 1) {
          source.pause();
          resumed();
        }
      },
      complete: resolve,
    }),
  );
  await source.start();
  await whenPaused;
  t.equal(socketOf()?.isPaused(), true, 'then its socket is paused');
  // What the read in hand held is handed on (a read is never cut); nothing after it.
  atPause = seqs.length;
  t.ok(atPause < N, `then it stopped before the end (${atPause} of ${N} read)`);
  // Until the socket is resumed, no 'data' can come: the count is the same once the bytes the
  // server wrote are all waiting in the socket (its buffer, or the kernel's).
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(seqs.length, atPause, 'then nothing more is read while paused');
  source.resume();
  await done;
  t.equal(seqs.length, N, 'then, resumed, every event arrives');
  t.same(seqs, Array.from({ length: N }, (_, i) => String(i)), 'in order');
});
