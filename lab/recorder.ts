// Records an AMI session byte for byte: what the bridge would receive from Asterisk, greeting,
// login response and every event, exactly as it arrived. These recordings are the fixtures
// (lab/recordings/*.ami) that the normalizer's tests replay.
import net from 'node:net';
import { AmiFrame, AmiFrameParser, connected, encodeAction, withTimeout } from './ami-driver.js';

export interface AmiRecorder {
  /** Bytes received so far. */
  readonly byteLength: number;
  /** Resolves with the first received event matching `predicate` (earlier ones count). */
  waitFor(predicate: (frame: AmiFrame) => boolean, timeoutMs: number, what: string): Promise<AmiFrame>;
  /**
   * Makes sure everything Asterisk emitted before this call has been received, then stops.
   * `sendUserEvent` must make Asterisk raise a UserEvent with the given headers (e.g. through
   * the driver's connection): events reach every AMI session in one order, so once this session
   * sees that event it has seen every earlier one. The UserEvent is part of the recording.
   */
  stopAfterUserEvent(
    sendUserEvent: (fields: Record<string, string>) => Promise<unknown>,
    timeoutMs?: number,
  ): Promise<Buffer>;
  /** Closes the connection and returns everything received. */
  stop(): Buffer;
}

/**
 * Opens its own TCP connection to 127.0.0.1:`port`, logs in with `Events: on`, and resolves once
 * the login is accepted (the recording is then live).
 */
export async function recordAmi(port: number, user: string, secret: string, timeoutMs = 10_000): Promise<AmiRecorder> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let byteLength = 0;
  const parser = new AmiFrameParser();
  const frames: AmiFrame[] = [];
  const listeners = new Set<(frame: AmiFrame) => void>();
  let closed: Error | null = null;

  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    byteLength += chunk.length;
    for (const frame of parser.push(chunk)) {
      frames.push(frame);
      for (const listener of [...listeners]) listener(frame);
    }
  });
  const closedPromise = new Promise<never>((_, reject) => {
    const onEnd = (err?: Error): void => {
      closed ??= err ?? new Error('connection closed');
      reject(closed);
    };
    socket.on('error', onEnd);
    socket.on('close', () => onEnd());
  });
  closedPromise.catch(() => undefined);

  const label = `the recorder's AMI session (${user}@127.0.0.1:${port})`;
  const waitFor = (predicate: (frame: AmiFrame) => boolean, ms: number, what: string): Promise<AmiFrame> => {
    const seen = frames.find(predicate);
    if (seen) return Promise.resolve(seen);
    if (closed) return Promise.reject(new Error(`${label} closed (${closed.message}) before ${what}`));
    let listener: ((frame: AmiFrame) => void) | undefined;
    const found = new Promise<AmiFrame>((resolve) => {
      listener = (frame) => {
        if (predicate(frame)) resolve(frame);
      };
      listeners.add(listener);
    });
    const closedFirst = closedPromise.catch((err: Error) => {
      throw new Error(`${label} closed (${err.message}) before ${what}`);
    });
    return withTimeout(Promise.race([found, closedFirst]), ms, `${what} on ${label}`).finally(() => {
      if (listener) listeners.delete(listener);
    });
  };

  const stop = (): Buffer => {
    socket.destroy();
    return Buffer.concat(chunks);
  };

  try {
    await connected(socket, timeoutMs, `a TCP connection for ${label}`);
    socket.write(
      encodeAction({ Action: 'Login', Username: user, Secret: secret, Events: 'on', ActionID: 'recorder-login' }),
    );
    const response = await waitFor((f) => f.get('ActionID') === 'recorder-login', timeoutMs, 'the login response');
    if (response.get('Response') !== 'Success') {
      throw new Error(`${label}: login refused: ${response.get('Message') ?? response.toString()}`);
    }
  } catch (err) {
    socket.destroy();
    throw err;
  }

  let markers = 0;
  return {
    get byteLength() {
      return byteLength;
    },
    waitFor,
    async stopAfterUserEvent(sendUserEvent, ms = 10_000) {
      const marker = `${process.pid}-${++markers}`;
      await sendUserEvent({ UserEvent: 'RecordingEnd', Marker: marker });
      await waitFor(
        (f) => f.event === 'UserEvent' && f.get('UserEvent') === 'RecordingEnd' && f.get('Marker') === marker,
        ms,
        `the RecordingEnd UserEvent (marker ${marker})`,
      );
      return stop();
    },
    stop,
  };
}
