// A loopback AMI proxy that loses chosen events: what Asterisk sends is cut into frames and each
// is passed on whole, unless `drop` says otherwise — an event that never reaches the bridge,
// without a disconnect (which would trigger a resync). What the client sends passes untouched.
import net from 'node:net';

/** A frame's headers, names lower-cased (the first value of a repeated header). */
export type FrameHeaders = Record<string, string>;

export interface AmiFilterProxy {
  port: number;
  /** Frames for which this returns true are not passed on (null: pass everything). */
  drop: ((frame: FrameHeaders) => boolean) | null;
  /** The frames dropped so far. */
  readonly dropped: FrameHeaders[];
  close(): Promise<void>;
}

const FRAME_END = Buffer.from('\r\n\r\n');

function headers(raw: Buffer): FrameHeaders {
  const out: FrameHeaders = {};
  for (const line of raw.toString('utf8').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    out[name] ??= line.slice(colon + 1).trim();
  }
  return out;
}

export async function startAmiFilterProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<AmiFilterProxy> {
  const open = new Set<net.Socket>();
  const dropped: FrameHeaders[] = [];
  const proxy: AmiFilterProxy = {
    port: 0,
    drop: null,
    dropped,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream);
    // The greeting is one line without a blank line after it; every other frame ends with one.
    let greeted = false;
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      if (!greeted) {
        const eol = pending.indexOf('\r\n');
        if (eol < 0) return;
        greeted = true;
        client.write(pending.subarray(0, eol + 2));
        pending = pending.subarray(eol + 2);
      }
      for (let end = pending.indexOf(FRAME_END); end >= 0; end = pending.indexOf(FRAME_END)) {
        const raw = pending.subarray(0, end + FRAME_END.length);
        pending = pending.subarray(end + FRAME_END.length);
        const drop = proxy.drop;
        if (drop) {
          const h = headers(raw);
          if (drop(h)) {
            dropped.push(h);
            continue;
          }
        }
        client.write(raw);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.port = (server.address() as net.AddressInfo).port;
  return proxy;
}
