// A loopback AMI server that plays back a recorded AMI byte stream (as captured from the TCP
// socket, greeting and responses included) to whoever logs in.
//
// `crm-bridge replay`, the fast fixture tests, the demo and the benchmarks all use it, so a
// recorded trace goes through exactly the code that live traffic goes through: a TCP socket,
// the AMI parser (parser.ts), the AMI source and the normalizer.
import net from 'node:net';

export interface ReplayServerOptions {
  host?: string;
  port?: number;
  /**
   * Bytes per write. Default: the whole trace at once. 1 writes byte by byte (yielding to the
   * event loop between writes), which splits every frame at every byte on the way.
   */
  chunkSize?: number;
  /** Close the connection after the trace (default true): the client then sees its end. */
  endAfter?: boolean;
  /** Accept only this login (default: any username/secret). */
  credentials?: { username: string; secret: string };
}

export interface ReplayServer {
  port: number;
  host: string;
  /** Resolves when a client has been sent the whole trace. */
  played: Promise<void>;
  close(): Promise<void>;
}

const GREETING_PREFIX = 'Asterisk Call Manager/';
const DEFAULT_GREETING = `${GREETING_PREFIX}11.0.0\r\n`;

/** Splits a trace into its greeting line (if it has one) and the rest. */
export function splitGreeting(trace: Buffer): { greeting: string; body: Buffer } {
  const head = trace.subarray(0, 64).toString('latin1');
  if (head.startsWith(GREETING_PREFIX)) {
    const eol = trace.indexOf('\n');
    if (eol >= 0) return { greeting: trace.subarray(0, eol + 1).toString('latin1'), body: trace.subarray(eol + 1) };
  }
  return { greeting: DEFAULT_GREETING, body: trace };
}

// What Asterisk writes first in every frame it sends; the parser splits headers at ': '.
const FIRST_HEADER = /^(Event|Response): \S/i;

/**
 * Why `trace` is not an AMI recording, or null when it is one. A recording is the bytes of an
 * AMI session: it starts with the greeting line (`Asterisk Call Manager/2.10.4`), or, when cut
 * from a longer capture, with a frame's first header (`Event: …` or `Response: …`). Anything
 * else (JSON, a picture, an empty file) would play as nothing, or as garbage frames, silently.
 */
export function notAmiReason(trace: Buffer): string | null {
  if (trace.length === 0) return 'the file is empty';
  const head = trace.subarray(0, 256);
  if (head.toString('latin1').startsWith(GREETING_PREFIX)) return null;
  const eol = head.indexOf('\n');
  const firstLine = head.subarray(0, eol >= 0 ? eol : head.length).toString('latin1').replace(/\r$/, '');
  if (FIRST_HEADER.test(firstLine)) return null;
  return `it does not start with the '${GREETING_PREFIX}…' greeting or an AMI frame ('Event: …' or 'Response: …'); it starts with ${describeStart(head)}`;
}

/** `'{"calls": [{"id": 1, …'`, `binary data` or `a blank line`: how a file starts, on one short line. */
function describeStart(head: Buffer): string {
  let text: string;
  try {
    // stream: a character cut at the end of `head` is not an error.
    text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
  } catch {
    return 'binary data';
  }
  // Control characters other than tab and line ends: not text.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return 'binary data';
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line.trim() === '') return 'a blank line';
  const shown = line.length > 40 ? `${line.slice(0, 40)}…` : line;
  return `'${shown.replace(/\t/g, '\\t')}'`;
}

/**
 * How many bytes of `trace` follow its last complete frame (one that ends with a blank line): a
 * recording cut in the middle of a frame. The parser keeps such bytes waiting for the rest, so
 * they never become an event.
 */
export function unfinishedTail(trace: Buffer): number {
  const { body } = splitGreeting(trace);
  const text = body.toString('latin1');
  const lf = text.lastIndexOf('\n\n');
  const crlf = text.lastIndexOf('\n\r\n');
  const end = Math.max(lf < 0 ? 0 : lf + 2, crlf < 0 ? 0 : crlf + 3);
  return text.slice(end).trim() === '' ? 0 : body.length - end;
}

export function parseAction(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) fields[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return fields;
}

export async function startReplayServer(trace: Buffer, opts: ReplayServerOptions = {}): Promise<ReplayServer> {
  const { greeting, body } = splitGreeting(trace);
  const sockets = new Set<net.Socket>();
  let resolvePlayed!: () => void;
  const played = new Promise<void>((r) => (resolvePlayed = r));

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    socket.write(greeting);
    let pending = '';
    let playing = false;
    socket.on('data', (data) => {
      pending += data.toString('utf8');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const action = parseAction(pending.slice(0, end));
        pending = pending.slice(end + 4);
        const id = action.actionid ? `ActionID: ${action.actionid}\r\n` : '';
        if (action.action?.toLowerCase() === 'login') {
          const c = opts.credentials;
          if (c && (action.username !== c.username || action.secret !== c.secret)) {
            socket.end(`Response: Error\r\n${id}Message: Authentication failed\r\n\r\n`);
            return;
          }
          socket.write(`Response: Success\r\n${id}Message: Authentication accepted\r\n\r\n`);
          if (!playing) {
            playing = true;
            void play(socket).then(resolvePlayed, () => undefined);
          }
        } else if (!playing) {
          socket.write(`Response: Error\r\n${id}Message: Not available in replay\r\n\r\n`);
        }
        // Actions that arrive during playback get no answer: writing one would cut a frame.
      }
    });
  });

  async function play(socket: net.Socket): Promise<void> {
    const size = opts.chunkSize ?? body.length;
    for (let off = 0; off < body.length && !socket.destroyed; off += size) {
      const ok = socket.write(body.subarray(off, off + size));
      if (size < body.length) {
        // Yield so every write leaves as its own TCP segment.
        await new Promise<void>((r) => (ok ? setImmediate(r) : socket.once('drain', () => r())));
      }
    }
    if (opts.endAfter ?? true) socket.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    port: addr.port,
    host: addr.address,
    played,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
