// asterisk-manager's own AMI reader on a socket of our making, for comparing it with
// src/sources/ami/parser.ts (test/ami-parser.test.ts: the same frames; bench/ami-parser.ts: the speed).
// The package opens its socket itself in connect(): for that one call net.createConnection hands
// it an EventEmitter, and whatever is emitted as 'data' on it is what the package reads.
/// <reference path="../../src/sources/ami/asterisk-manager.d.ts" />
import { EventEmitter } from 'node:events';
import net from 'node:net';
import AsteriskManager from 'asterisk-manager';

export interface PackageReader {
  /** The package's manager: 'managerevent' and 'rawevent' carry its frames. */
  manager: EventEmitter;
  /** The socket it reads: emit('data', text) as a socket with setEncoding('utf-8') would. */
  socket: EventEmitter;
}

export function packageReader(): PackageReader {
  const socket = Object.assign(new EventEmitter(), { setKeepAlive() {}, setNoDelay() {}, setEncoding() {}, readyState: 'open' });
  const original = net.createConnection;
  (net as { createConnection: unknown }).createConnection = () => socket;
  const manager = new (AsteriskManager as unknown as new () => EventEmitter & { connect(p: number, h: string): void })();
  try {
    manager.connect(1, 'x');
  } finally {
    (net as { createConnection: unknown }).createConnection = original;
  }
  return { manager, socket };
}
