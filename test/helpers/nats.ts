// A real nats-server with JetStream (Debian's `nats-server`, run with -js) on a free loopback port,
// its store in a temp dir that survives a restart; and a reader of a stream's contents that
// tests wait on (an ordered consumer: exactly what the stream holds, in stream order).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { freePort } from '../../lab/asterisk.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store (after stop()). */
  restart(): Promise<void>;
}

export async function startNats(): Promise<NatsServer> {
  if (!existsSync(NATS_SERVER)) throw new Error(`${NATS_SERVER} is missing: apt-get install nats-server (.ci/run does)`);
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'crm-bridge-nats-'));
  let child: ChildProcess | null = null;
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      let out = '';
      const timer = setTimeout(() => reject(new Error(`nats-server did not get ready in 20 s:\n${out}`)), 20_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', onData);
      c.once('exit', (code) => {
        clearTimeout(timer);
        if (!out.includes('Server is ready')) reject(new Error(`nats-server exited (${code}) before it was ready:\n${out}`));
      });
    });
  await launch();
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await exited;
  };
  return { url: `nats://127.0.0.1:${port}`, port, storeDir, stop, restart: launch };
}

export interface StoredEvent {
  seq: number;
  subject: string;
  msgId: string | null;
  data: Record<string, unknown>;
}

export interface StreamReader {
  readonly messages: StoredEvent[];
  waitFor<T>(check: (m: StoredEvent[]) => T | undefined, what: string, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/** Reads a stream from its start, live. The stream must exist (waitForStream). */
export async function readStream(url: string, stream: string): Promise<StreamReader> {
  const nc = await connect({ servers: [url] });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream);
  const messages: StoredEvent[] = [];
  const waiters = new Set<() => void>();
  const iter = await consumer.consume();
  void (async () => {
    for await (const m of iter) {
      messages.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id') ?? null, data: m.json<Record<string, unknown>>() });
      for (const w of [...waiters]) w();
    }
  })().catch(() => undefined);
  return {
    messages,
    waitFor: (check, what, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const w = () => {
          const v = check(messages);
          if (v === undefined) return;
          clearTimeout(timer);
          waiters.delete(w);
          resolve(v);
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${messages.length} messages in the stream)`));
        }, timeoutMs);
        waiters.add(w);
        w();
      }),
    close: async () => {
      iter.stop();
      await nc.close();
    },
  };
}

/** Creates the stream as the sink would, so a reader can attach before the first event. */
export async function createStream(url: string, stream: string, subjects: string[]): Promise<void> {
  const nc = await connect({ servers: [url] });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects, duplicate_window: 120_000_000_000 });
  await nc.close();
}
