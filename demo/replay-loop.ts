// The demo's stand-in PBX when no real Asterisk can run: a loopback AMI server that plays the
// calls recorded from a real Asterisk 22 (lab/recordings/*.ami) over and over, paced as they
// were recorded, so the bridge sees a PBX where calls keep coming.
//
// src/sources/ami/replay-server.ts plays one trace once, byte for byte. A loop needs more: every play
// gets fresh Uniqueids/Linkedids, channel sequence numbers and bridge ids (or the normalizer
// would take the second play for the first call again), and Timestamps of now, keeping the
// recorded microsecond spacing (event times, durations and event ids derive from them).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { parseAction, splitGreeting } from '../dist/sources/ami/replay-server.js';

const CRLF = '\r\n';
const FRAME_END = `${CRLF}${CRLF}`;
/** A channel or call id: `<epoch>.<sequence>`. */
const UID = /^\d{9,11}\.\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A channel name's 8-hex-digit sequence: Local/201@agents-00000022;1, PJSIP/201-0000001a. */
const CHANNEL_SEQ = /([A-Za-z0-9]+\/[^\s;,|]*?-)([0-9a-f]{8})(?![0-9a-f])/g;

/** A header line; value null for a line without a colon, kept whole as the name. */
type Header = [name: string, value: string | null];

interface RecordedFrame {
  /** Microseconds after the recording's first Timestamp. */
  atUs: number;
  headers: Header[];
}

export interface Recording {
  name: string;
  frames: RecordedFrame[];
  durationMs: number;
}

/** Reads a trace, keeping the PBX's events and dropping what only the recorder produced. */
export function loadRecording(name: string, file: string): Recording {
  const { body } = splitGreeting(readFileSync(file));
  const frames: RecordedFrame[] = [];
  let t0: number | null = null;
  let at = 0;
  for (const text of body.toString('utf8').split(FRAME_END)) {
    if (text.trim() === '') continue;
    const headers = text.split(CRLF).map((line): Header => {
      const i = line.indexOf(': ');
      return i < 0 ? [line, null] : [line.slice(0, i), line.slice(i + 2)];
    });
    const [first, firstValue] = headers[0] ?? ['', null];
    // The recorder's login response; the boot/auth events belong to its login (the server sends
    // its own at each login); the marker the recorder sent to find the trace's end.
    if (first === 'Response') continue;
    if (first === 'Event' && (firstValue === 'FullyBooted' || firstValue === 'SuccessfulAuth')) continue;
    if (headers.some(([n, v]) => n === 'UserEvent' && v === 'RecordingEnd')) continue;
    const ts = headers.find(([n]) => n === 'Timestamp')?.[1];
    if (ts) {
      const us = micros(ts);
      t0 ??= us;
      at = us - t0;
    }
    frames.push({ atUs: at, headers });
  }
  if (frames.length === 0) throw new Error(`${file}: no AMI events in it`);
  return { name, frames, durationMs: Math.ceil(at / 1000) };
}

/** `1795423781.770012` → integer microseconds (exact: epoch µs fit a double). */
function micros(ts: string): number {
  const [s = '0', f = ''] = ts.split('.');
  return Number(s) * 1_000_000 + Number(f.padEnd(6, '0').slice(0, 6));
}

function formatMicros(us: number): string {
  return `${Math.floor(us / 1_000_000)}.${String(us % 1_000_000).padStart(6, '0')}`;
}

/** Ids that never repeat across plays: Asterisk's own counters go on rising, too. */
class IdSource {
  private channelSeq = 0;
  private uniqueSeq = 0;
  uniqueid(): string {
    return `${Math.floor(Date.now() / 1000)}.${this.uniqueSeq++}`;
  }
  channel(): string {
    return (this.channelSeq++ % 2 ** 32).toString(16).padStart(8, '0');
  }
}

/** One play of a recording: maps its recorded ids to fresh ones, consistently within the play. */
class Play {
  private readonly uids = new Map<string, string>();
  private readonly uuids = new Map<string, string>();
  private readonly channels = new Map<string, string>();
  constructor(
    private readonly ids: IdSource,
    /** Epoch µs that the recording's first Timestamp becomes. */
    private readonly startUs: number,
  ) {}

  render(frame: RecordedFrame): string {
    let out = '';
    for (const [name, value] of frame.headers) {
      out += value === null ? `${name}${CRLF}` : `${name}: ${this.value(name, value, frame)}${CRLF}`;
    }
    return out + CRLF;
  }

  private value(name: string, value: string, frame: RecordedFrame): string {
    if (name === 'Timestamp') return formatMicros(this.startUs + frame.atUs);
    if (UID.test(value) && (/(uniqueid|linkedid)$/i.test(name) || this.uids.has(value))) {
      return this.mapped(this.uids, value, () => this.ids.uniqueid());
    }
    if (UUID.test(value)) return this.mapped(this.uuids, value, () => randomUUID());
    return value.replace(CHANNEL_SEQ, (_m, prefix: string, seq: string) => prefix + this.mapped(this.channels, seq, () => this.ids.channel()));
  }

  private mapped(map: Map<string, string>, recorded: string, fresh: () => string): string {
    let v = map.get(recorded);
    if (v === undefined) {
      v = fresh();
      map.set(recorded, v);
    }
    return v;
  }
}

export interface ReplayLoopOptions {
  /** The calls, played in this order, round and round. */
  playlist: Recording[];
  /** A new call starts this often (or when the previous recording is over, if it is longer). */
  everyMs: number;
  /** The only login accepted. */
  credentials: { username: string; secret: string };
  /** Called as each recorded call starts playing. */
  onCall?: (recording: Recording, n: number) => void;
}

export interface ReplayLoop {
  host: string;
  port: number;
  /** Starts the calls (once the bridge is logged in, so it sees every call from its start). */
  startCalls(): void;
  /** Stops placing calls (a call being played stops where it is, as if the PBX died). */
  stopCalls(): Promise<void>;
  close(): Promise<void>;
}

export async function startReplayLoop(opts: ReplayLoopOptions): Promise<ReplayLoop> {
  const ids = new IdSource();
  const sockets = new Set<net.Socket>();
  const listeners = new Set<net.Socket>();
  const stop = new AbortController();
  let running = false;

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      listeners.delete(socket);
    });
    socket.write('Asterisk Call Manager/11.0.0\r\n');
    let pending = '';
    socket.on('data', (data: Buffer) => {
      pending += data.toString('utf8');
      if (pending.length > 1 << 20) return socket.destroy(); // not an AMI client
      let end: number;
      while ((end = pending.indexOf(FRAME_END)) >= 0) {
        const reply = answer(parseAction(pending.slice(0, end)), socket);
        pending = pending.slice(end + FRAME_END.length);
        if (reply) socket.write(reply);
      }
    });
  });

  /** Whole frames only, so an answer never cuts an event in two. */
  function answer(action: Record<string, string>, socket: net.Socket): string | null {
    const id = action.actionid ? `ActionID: ${action.actionid}${CRLF}` : '';
    switch (action.action?.toLowerCase()) {
      case 'login': {
        const c = opts.credentials;
        if (action.username !== c.username || action.secret !== c.secret) {
          socket.end(`Response: Error${CRLF}${id}Message: Authentication failed${FRAME_END}`);
          return null;
        }
        listeners.add(socket);
        return `Response: Success${CRLF}${id}Message: Authentication accepted${FRAME_END}` + `Event: FullyBooted${CRLF}Privilege: system,all${CRLF}Status: Fully Booted${FRAME_END}`;
      }
      case 'coreshowchannels':
        // The bridge's resync after login. The replayed calls start after it, so none is live.
        return `Response: Success${CRLF}${id}EventList: start${CRLF}Message: Channels will follow${FRAME_END}` + `Event: CoreShowChannelsComplete${CRLF}${id}EventList: Complete${CRLF}ListItems: 0${FRAME_END}`;
      case 'queuestatus':
        return `Response: Success${CRLF}${id}EventList: start${CRLF}Message: Queue status will follow${FRAME_END}` + `Event: QueueStatusComplete${CRLF}${id}EventList: Complete${CRLF}ListItems: 0${FRAME_END}`;
      case 'ping':
        return `Response: Success${CRLF}${id}Ping: Pong${CRLF}Timestamp: ${formatMicros(Date.now() * 1000)}${FRAME_END}`;
      case 'logoff':
        socket.end(`Response: Goodbye${CRLF}${id}Message: Thanks for all the fish.${FRAME_END}`);
        return null;
      default:
        return `Response: Error${CRLF}${id}Message: Not available in the demo's replay of recorded calls${FRAME_END}`;
    }
  }

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stop.signal.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', done);
        resolve();
      }
      stop.signal.addEventListener('abort', done);
    });

  async function loop(): Promise<void> {
    for (let n = 0; !stop.signal.aborted; n++) {
      const recording = opts.playlist[n % opts.playlist.length]!;
      const startMs = Date.now();
      const play = new Play(ids, startMs * 1000);
      opts.onCall?.(recording, n + 1);
      for (let i = 0; i < recording.frames.length && !stop.signal.aborted; ) {
        const due = startMs + recording.frames[i]!.atUs / 1000;
        if (due > Date.now()) await wait(due - Date.now());
        // Everything due by now leaves in one write, as Asterisk would send a burst.
        let out = '';
        while (i < recording.frames.length && startMs + recording.frames[i]!.atUs / 1000 <= Date.now()) out += play.render(recording.frames[i++]!);
        for (const s of listeners) s.write(out);
      }
      await wait(startMs + Math.max(opts.everyMs, recording.durationMs + 2000) - Date.now());
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  let looping: Promise<void> = Promise.resolve();
  return {
    host: '127.0.0.1',
    port,
    startCalls() {
      if (running) return;
      running = true;
      looping = loop();
    },
    async stopCalls() {
      stop.abort();
      await looping;
    },
    async close() {
      stop.abort();
      await looping;
      await new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}
