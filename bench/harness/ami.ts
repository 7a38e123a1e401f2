// The PBX side of every benchmark: AMI frames as templates (recorded ids rewritten per
// repetition, Timestamps stamped when written), a loopback AMI server, and what the real
// `crm-bridge replay` makes of a stream (to know how many events to expect).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { parseAction, splitGreeting } from './dist.js';
import { BIN } from './env.js';

export const CRLF = '\r\n';

// ------------------------------------------------------------------------------------------------
// AMI frames as templates, and their Timestamp values.

/** A frame as parts: literal text, a per-repetition value, or null for the Timestamp value. */
export type Part = string | ((rep: number) => string) | null;

/** Merges adjacent literals: fewer concatenations per frame. */
export function mergeLiterals(parts: Part[]): Part[] {
  const merged: Part[] = [];
  for (const p of parts) {
    const prev = merged[merged.length - 1];
    if (typeof p === 'string' && typeof prev === 'string') merged[merged.length - 1] = prev + p;
    else merged.push(p);
  }
  return merged;
}

// Uniqueid, Linkedid, DestUniqueid, LocalOneLinkedid, …: every header naming a channel's or call's id.
export const UID_HEADER = /(?:Uniqueid|Linkedid)$/i;
export const UID_VALUE = /^(\d{9,11})\.(\d+)$/;
// A channel name with its 8-hex-digit sequence number: Local/201@agents-00000022;1, PJSIP/201-0000001a.
export const CHANNEL = /([A-Za-z0-9]+\/[^\s;,|]*?-)([0-9a-f]{8})(?![0-9a-f])/g;
export const UUID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)([0-9a-f]{12})$/;

/**
 * A trace's frames' id ranges, so that repetitions can be offset and never collide: Uniqueid/
 * Linkedid epochs, channel sequence numbers, the id headers seen, and the first Linkedid value.
 */
export function scanIds(texts: string[]): { eMin: number; eMax: number; cMin: number; cMax: number; headers: Set<string>; firstLinked: string | null } {
  let eMin = Infinity;
  let eMax = -Infinity;
  let cMin = Infinity;
  let cMax = -Infinity;
  let firstLinked: string | null = null;
  const headers = new Set<string>();
  for (const t of texts) {
    for (const line of t.split(CRLF)) {
      const i = line.indexOf(': ');
      if (i < 0) continue;
      const name = line.slice(0, i);
      const value = line.slice(i + 2);
      const m = UID_VALUE.exec(value);
      if (m && name !== 'Timestamp' && UID_HEADER.test(name)) {
        headers.add(name);
        eMin = Math.min(eMin, Number(m[1]));
        eMax = Math.max(eMax, Number(m[1]));
        if (name === 'Linkedid' && firstLinked === null) firstLinked = value;
      }
      for (const c of value.matchAll(CHANNEL)) {
        cMin = Math.min(cMin, parseInt(c[2] as string, 16));
        cMax = Math.max(cMax, parseInt(c[2] as string, 16));
      }
    }
  }
  return { eMin, eMax, cMin, cMax, headers, firstLinked };
}

/**
 * The parts of a frame line that is a Timestamp (stamped when written), a Uniqueid/Linkedid
 * (epoch offset by `rep × epochSpan`) or a BridgeUniqueid (UUID tail + rep); null for any other line.
 */
export function idParts(line: string, epochSpan: number): Part[] | null {
  const i = line.indexOf(': ');
  const name = i >= 0 ? line.slice(0, i) : '';
  const value = i >= 0 ? line.slice(i + 2) : '';
  if (name === 'Timestamp') return ['Timestamp: ', null, CRLF];
  const uid = UID_VALUE.exec(value);
  if (uid && UID_HEADER.test(name)) {
    const epoch = Number(uid[1]);
    const rest = uid[2] as string;
    return [`${name}: `, (rep) => `${epoch + rep * epochSpan}.${rest}`, CRLF];
  }
  const uuid = name === 'BridgeUniqueid' ? UUID.exec(value) : null;
  if (uuid) {
    const head = uuid[1] as string;
    const tail = parseInt(uuid[2] as string, 16);
    return [`${name}: `, (rep) => head + ((tail + rep) % 2 ** 48).toString(16).padStart(12, '0'), CRLF];
  }
  return null;
}

export function render(parts: Part[], rep: number, stamp: string): string {
  let s = '';
  for (const p of parts) {
    if (typeof p === 'string') s += p;
    else if (p === null) s += stamp;
    else s += p(rep);
  }
  return s;
}

/**
 * AMI Timestamp values: the wall-clock ms at which a frame is written, with a counter in the µs
 * digits (0–499) so that two frames of one ms never share a Timestamp (the normalizer derives
 * event ids from it) and the event's ms-rounded `time` is still that ms. More than 500 frames in
 * one ms borrow the next ms (only in unpaced bursts; a frame is then stamped ≤ 1 ms late).
 */
export class Stamper {
  private lastMs = 0;
  private n = 0;
  borrowed = 0;
  stamp(): string {
    let ms = Date.now();
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      if (++this.n >= 500) {
        ms = this.lastMs + 1;
        this.n = 0;
        this.borrowed++;
      }
    } else this.n = 0;
    this.lastMs = ms;
    return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}${String(this.n).padStart(3, '0')}`;
  }
}

// ------------------------------------------------------------------------------------------------
// Loopback AMI server: greeting, Login, then whatever the feeder writes (whole frames only, so an
// action's response may be written at any time without cutting a frame).

export interface AmiServer {
  port: number;
  logins: number;
  /** The first logged-in socket. */
  loggedIn: Promise<net.Socket>;
  /** When a logged-in client first went away (null while it has not). */
  disconnectedAt: number | null;
  close(): Promise<void>;
}

/**
 * Serves `trace.greeting`; after a Login, writes `trace.once` (stamped now), then calls
 * `opts.onLogin` (if given) with the socket and the Login's Username, for benches that feed every
 * connection (bench/pipeline.ts logs in twice per run: 'warmup', then 'measure').
 */
export async function startAmiServer(
  trace: { greeting: string; once: Part[][] },
  stamper: Stamper,
  opts: { onLogin?: (socket: net.Socket, username: string) => void } = {},
): Promise<AmiServer> {
  const sockets = new Set<net.Socket>();
  let resolveLogin!: (s: net.Socket) => void;
  const loggedIn = new Promise<net.Socket>((r) => (resolveLogin = r));
  const state: AmiServer = {
    port: 0,
    logins: 0,
    loggedIn,
    disconnectedAt: null,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      if (state.logins > 0 && state.disconnectedAt === null) state.disconnectedAt = Date.now();
    });
    socket.write(trace.greeting);
    let pending = '';
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1');
      if (pending.length > 1 << 20) return socket.destroy(); // not an AMI client
      let end: number;
      while ((end = pending.indexOf(`${CRLF}${CRLF}`)) >= 0) {
        const action = parseAction(pending.slice(0, end));
        pending = pending.slice(end + 4);
        const id = action.actionid ? `ActionID: ${action.actionid}${CRLF}` : '';
        const name = action.action?.toLowerCase();
        if (name === 'login') {
          state.logins++;
          let out = `Response: Success${CRLF}${id}Message: Authentication accepted${CRLF}${CRLF}`;
          for (const f of trace.once) out += render(f, 0, stamper.stamp());
          socket.write(out);
          if (state.logins === 1) resolveLogin(socket);
          opts.onLogin?.(socket, action.username ?? '');
        } else if (name === 'ping') {
          socket.write(`Response: Success${CRLF}${id}Ping: Pong${CRLF}Timestamp: ${stamper.stamp()}${CRLF}${CRLF}`);
        } else if (name === 'logoff') {
          socket.end(`Response: Goodbye${CRLF}${id}Message: Thanks for all the fish.${CRLF}${CRLF}`);
        } else {
          socket.write(`Response: Error${CRLF}${id}Message: Not available in the benchmark${CRLF}${CRLF}`);
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}


// ------------------------------------------------------------------------------------------------
// A recorded trace as templates, rendered again and again (bench/webhook.ts, bench/screenpop.ts):
// repetition `rep` gets Uniqueid/Linkedid epochs offset by rep × the trace's epoch span, channel
// sequence numbers by rep × their span, BridgeUniqueid tails + rep, so repetitions never collide.

export interface TemplateTrace {
  greeting: string;
  /** The recorded login response (kept for `crm-bridge replay`, which plays the body verbatim). */
  loginFrame: string;
  /** Sent once after login: FullyBooted, SuccessfulAuth. */
  once: Part[][];
  /** Repeated: every other event frame (the end-of-recording UserEvent is dropped). */
  frames: Part[][];
  /** Each repeated frame's recorded Timestamp (s; the previous one's where it has none). */
  stamps: number[];
  /** Bytes of one repetition (with a 26-character Timestamp value). */
  bytesPerRep: number;
  ids: ReturnType<typeof scanIds>;
  epochSpan: number;
}

/**
 * The body text and id ranges of `file` first (`prepare` sees them and may return a rewrite for a
 * line: a per-repetition function, e.g. for agents; `channels(line, rep)` renumbers its channels),
 * then the templates.
 */
export function loadTemplate(file: string, prepare: (body: string, channels: (line: string, rep: number) => string) => ((line: string) => Part | null) | null = () => null): TemplateTrace {
  const { greeting, body } = splitGreeting(fs.readFileSync(file));
  const text = body.toString('latin1');
  const texts = text.split(`${CRLF}${CRLF}`).filter((f) => f.trim() !== '');
  // First pass: the ranges to offset by, so repetitions never collide.
  const ids = scanIds(texts);
  if (!Number.isFinite(ids.eMin) || !ids.firstLinked) throw new Error(`${file}: no Uniqueid/Linkedid values found`);
  const epochSpan = ids.eMax - ids.eMin + 1;
  const chanSpan = Number.isFinite(ids.cMin) ? ids.cMax - ids.cMin + 1 : 0;
  const channels = (line: string, rep: number) => line.replace(CHANNEL, (_m, prefix: string, hex: string) => prefix + (parseInt(hex, 16) + rep * chanSpan).toString(16).padStart(8, '0'));
  const rewrite = prepare(text, channels);
  const compile = (t: string): Part[] => {
    const parts: Part[] = [];
    for (const line of t.split(CRLF)) {
      const idp = idParts(line, epochSpan);
      if (idp) {
        parts.push(...idp);
        continue;
      }
      const own = rewrite?.(line);
      CHANNEL.lastIndex = 0;
      if (own) parts.push(own);
      else if (chanSpan > 0 && CHANNEL.test(line)) {
        // Channel sequence numbers: literal text between per-repetition parts.
        CHANNEL.lastIndex = 0;
        let last = 0;
        for (const c of line.matchAll(CHANNEL)) {
          const at = c.index ?? 0;
          const prefix = c[1] as string;
          const n = parseInt(c[2] as string, 16);
          parts.push(line.slice(last, at), (rep) => prefix + (n + rep * chanSpan).toString(16).padStart(8, '0'));
          last = at + c[0].length;
        }
        parts.push(line.slice(last) + CRLF);
      } else parts.push(line + CRLF);
      CHANNEL.lastIndex = 0;
    }
    parts.push(CRLF);
    return mergeLiterals(parts);
  };
  let loginFrame = '';
  const once: Part[][] = [];
  const frames: Part[][] = [];
  const stamps: number[] = [];
  for (const t of texts) {
    if (t.startsWith('Response:')) {
      if (!loginFrame) loginFrame = `${t}${CRLF}${CRLF}`;
      continue;
    }
    const event = /^Event: (.*)$/m.exec(t)?.[1]?.trim();
    if (event === 'FullyBooted' || event === 'SuccessfulAuth') once.push(compile(t));
    else if (event === 'UserEvent' && /^UserEvent: RecordingEnd$/m.test(t)) continue;
    else {
      frames.push(compile(t));
      const ts = Number(/^Timestamp: (\d+\.\d+)$/m.exec(t)?.[1] ?? Number.NaN);
      stamps.push(Number.isFinite(ts) ? ts : (stamps[stamps.length - 1] ?? Number.NaN));
    }
  }
  const stamp = '1795423831.279196';
  const bytesPerRep = frames.reduce((n, f) => n + render(f, 0, stamp).length, 0);
  return { greeting, loginFrame, once, frames, stamps, bytesPerRep, ids, epochSpan };
}

/** `reps` repetitions of `trace` as a file `crm-bridge replay` reads: greeting, login, once, frames. */
export function writeReplayFile(trace: TemplateTrace, reps: number, file: string): void {
  const stamper = new Stamper();
  const out: string[] = [trace.greeting, trace.loginFrame];
  for (const f of trace.once) out.push(render(f, 0, stamper.stamp()));
  for (let rep = 0; rep < reps; rep++) for (const f of trace.frames) out.push(render(f, rep, stamper.stamp()));
  fs.writeFileSync(file, out.join(''), 'latin1');
}

/** The events `crm-bridge replay <file> [--config config]` prints, and its stderr. */
export function replay(file: string, config?: string): { events: Array<Record<string, unknown>>; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'replay', file, ...(config ? ['--config', config] : [])], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' },
    maxBuffer: 512 * 1024 * 1024,
    timeout: 180_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`crm-bridge replay ${file} failed (${r.status ?? r.signal}): ${r.stderr.slice(0, 2000)}`);
  const events = r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { events, stderr: r.stderr };
}
