// The manager socket: plain TCP or TLS, opened by us and handed to `asterisk-manager`, whose
// reader we take off it (src/sources/ami/parser.ts reads instead).
//
// asterisk-manager 0.2.0 keeps its socket in a closure and opens it with `net.createConnection`
// inside connect(), synchronously; it has no TLS and no way to pass a socket in. So for the
// duration of that one synchronous call `net.createConnection` returns our socket, which the
// package then uses for login and actions (its writes and its ActionID bookkeeping) as before.
// Nothing else can run during a synchronous call, so no other connection sees the swap. The
// package's 'data' listener (its reader) is then removed and ours added; its setEncoding call
// is made a no-op on this socket so that reads stay bytes (limits are in bytes, and a UTF-8
// character cut between two reads is joined by the parser's line buffer).
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

/** pbx.ami.tls: Asterisk's manager.conf `tlsenable = yes` (`tlsbindaddr`, port 5039 by default). */
export interface AmiTlsOptions {
  /** PEM of the CA (or of the self-signed certificate) to trust, or the path of a file holding it. */
  ca?: string;
  /** Refuse a certificate that does not verify (default true). */
  rejectUnauthorized?: boolean;
  /** The name the certificate must carry, when it is not `host` (SNI and verification). */
  servername?: string;
}

/** pbx.ami.tls as configured (true: verify against the system's CAs) -> the socket's options. */
export function amiTlsOptions(tls: boolean | AmiTlsOptions | undefined): AmiTlsOptions | false {
  if (!tls) return false;
  return tls === true ? {} : tls;
}

export interface SocketTarget {
  host: string;
  port: number;
  tls: AmiTlsOptions | false;
}

/** What of the package's manager object this needs. */
export interface ConnectsOnce {
  connect(port: number, host: string, cb: (err?: unknown) => void): void;
}

/** The event after which the login may be written: TCP connected, or the TLS handshake done. */
export function readyEvent(target: SocketTarget): 'connect' | 'secureConnect' {
  return target.tls ? 'secureConnect' : 'connect';
}

export function openSocket(target: SocketTarget): net.Socket {
  if (!target.tls) return net.createConnection({ host: target.host, port: target.port });
  const o = target.tls;
  const ca = o.ca === undefined ? undefined : o.ca.includes('-----BEGIN') ? o.ca : fs.readFileSync(o.ca, 'utf8');
  // An IP address is not a valid SNI name; Node warns when given one.
  const servername = o.servername ?? (net.isIP(target.host) ? undefined : target.host);
  return tls.connect({ host: target.host, port: target.port, ca, servername, rejectUnauthorized: o.rejectUnauthorized ?? true });
}

/**
 * Connects `manager` over `socket` and returns the socket with the package's reader removed;
 * `onData` gets every read as a Buffer.
 */
export function attachSocket(manager: ConnectsOnce, socket: net.Socket, target: SocketTarget, onData: (chunk: Buffer) => void): void {
  Object.defineProperty(socket, 'setEncoding', { value: () => socket, configurable: true });
  const original = net.createConnection;
  let used = false;
  // The package calls Net.createConnection(port, host); whatever it asks for, it gets ours.
  (net as { createConnection: unknown }).createConnection = () => {
    used = true;
    return socket;
  };
  try {
    manager.connect(target.port, target.host, () => undefined);
  } finally {
    (net as { createConnection: unknown }).createConnection = original;
  }
  if (!used) {
    socket.destroy();
    throw new Error('asterisk-manager did not open its connection through net.createConnection (a version this bridge does not know?)');
  }
  socket.removeAllListeners('data');
  socket.on('data', onData);
}
