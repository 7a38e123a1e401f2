// Our AMI reader: bytes from the manager socket -> flat AmiEvent records, incrementally and
// within limits.
//
// It replaces `asterisk-manager`'s reader (lib/ami.js ManagerReader), which cannot be made safe
// from outside: it appends every read to one string and splits the whole of it again
// (`leftOver += data; split(/\r?\n/)`), so megabytes without a newline cost quadratic time and
// unbounded memory; it takes lines off an array with shift() one at a time, so one frame with
// 100k headers blocks the event loop for seconds (200k: over a minute); and a `Response: Follows`
// whose `--END COMMAND--` never comes swallows the rest of the session.
//
// Here every byte is looked at a bounded number of times (O(n) per byte: lines are found with
// Buffer#indexOf and decoded once; a dropped frame's lines are not even decoded), the only
// buffered data is the current line (≤ maxLineBytes) and the current frame (≤ maxFrameBytes,
// ≤ maxHeaders lines), and a frame that breaks a limit is skipped up to its blank line and
// reported, never delivered in part.
//
// What comes out is what the package plus flattenFrame (frame.ts) made of the same bytes:
// - keys trimmed and lower-cased (`CallerIDNum` -> `calleridnum`), the value everything after
//   the first ': ' (a line without ': ' is a key with an empty value);
// - a repeated header keeps its first value and is reported (`repeated`);
// - `Variable: NAME` (VarSet) keeps NAME, `Variable: a=b` keeps `a=b`, `ChanVariable` headers
//   are dropped (the bridge takes dialplan data only from VarSet);
// - the greeting line (`Asterisk Call Manager/…`) at a frame's start is skipped;
// - `Response: Follows` (Asterisk ≤ 13's Command output) collects raw lines up to
//   `--END COMMAND--` (or chan_dongle's `--END SMS EVENT--`) and the blank line after it, and
//   comes out as `{ response: 'follows', content, actionid }`.
// A Follows without its end marker is bounded by the same limits; when it breaks one, it is
// dropped and the lines after its first blank line are read again as ordinary frames (without
// looking for Follows among them, so each byte is read again at most once): the events that
// arrived behind an unterminated Follows are not lost.
import { detach, lowerEventName, type AmiEvent } from '../../normalizer/ami-event.js';
import { ByteKeys, utf8 } from './byte-keys.js';

/**
 * Frames of which only some headers are read (the normalizer's HEADERS_READ): by the event's name
 * in lower case, the headers to keep. The others are neither decoded nor kept.
 */
export type AmiLeanFrames = ReadonlyMap<string, ReadonlySet<string>>;

export interface AmiParserLimits {
  /** Bytes in one frame, line ends included. */
  maxFrameBytes: number;
  /** Header lines in one frame (output lines for a Follows response). */
  maxHeaders: number;
  /** Bytes in one line, line end excluded. */
  maxLineBytes: number;
}

export const DEFAULT_AMI_LIMITS: Readonly<AmiParserLimits> = Object.freeze({
  maxFrameBytes: 64 * 1024,
  maxHeaders: 512,
  maxLineBytes: 8 * 1024,
});

/** Which limit a dropped frame broke (the label of crm_bridge_ami_frames_dropped_total). */
export type AmiDropReason = 'line_too_long' | 'too_many_headers' | 'frame_too_large';

export interface AmiFrame {
  kind: 'frame';
  event: AmiEvent;
  /** Headers that appeared more than once (their first value was kept), or null. */
  repeated: string[] | null;
}

export interface AmiDrop {
  kind: 'dropped';
  reason: AmiDropReason;
  /** The limit that was broken (bytes or headers). */
  limit: number;
  /** The frame's Event or Response value, if it came before the limit was hit. */
  first: string | null;
  /** A `Response: Follows` whose end marker did not come within the limits. */
  follows: boolean;
}

export type AmiParserItem = AmiFrame | AmiDrop;

const LF = 0x0a;
const CR = 0x0d;
const GREETING = 'Asterisk Call Manager';
const COLON = 0x3a;
const SPACE = 0x20;
/** First bytes of a line that may be the greeting (`Asterisk Call Manager`) or isFollows(). */
const MAYBE_SPECIAL_FIRST: readonly boolean[] = Array.from({ length: 256 }, (_, b) => b === 0x41 || b === 0x52 || b === 0x72);
/** Keys seen so far, raw -> normalized; bounded so that a stream of random keys cannot grow it. */
const KEY_CACHE_MAX = 4096;

export class AmiParser {
  private readonly limits: AmiParserLimits;
  /** Bytes of a line cut by the end of a read, waiting for the rest (≤ maxLineBytes in all). */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The current line broke maxLineBytes: skip its bytes up to the next LF. */
  private skippingLine = false;

  // The frame being read.
  private fields: Record<string, string> = {};
  private repeated: string[] | null = null;
  private headers = 0;
  private frameBytes = 0;
  private first: string | null = null;
  /** The current frame broke a limit: skip up to its blank line (already reported). */
  private dropping = false;

  // A `Response: Follows` being read: 1 collecting, 2 end marker seen (waiting for the blank line).
  private follow: 0 | 1 | 2 = 0;
  private followLines: string[] = [];
  /** Lines read again after an unterminated Follows are never taken for the start of another. */
  private rereading = false;

  private readonly keys = new Map<string, string>();
  /** The same, by the key's bytes (header()). */
  private readonly byteKeys = new ByteKeys(KEY_CACHE_MAX);
  /** Where feed() collects what it returns. */
  private out: AmiParserItem[] = [];

  /** See AmiLeanFrames; none when not given (every header of every frame is kept). */
  private readonly lean: AmiLeanFrames | null;
  /** The current frame's headers to keep, when it is a lean one (its first header named it). */
  private keep: ReadonlySet<string> | null = null;
  /** Keys of the current lean frame that were not kept: a repeated one is reported all the same. */
  private skipped: string[] | Set<string> | null = null;

  constructor(limits: Partial<AmiParserLimits> = {}, lean?: AmiLeanFrames) {
    this.limits = { ...DEFAULT_AMI_LIMITS, ...limits };
    this.lean = lean ?? null;
  }

  /** Parses one read; returns the frames it completed and the frames it dropped, in order. */
  feed(chunk: Buffer): AmiParserItem[] {
    const out: AmiParserItem[] = [];
    this.out = out;
    const max = this.limits.maxLineBytes;
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        // The line goes on in the next read: keep its bytes unless it is already too long.
        if (!this.skippingLine) {
          const piece = chunk.subarray(pos);
          if (this.partialBytes + piece.length > max + 1) this.lineTooLong();
          else if (piece.length > 0) {
            // A copy: the read's buffer is reused by nobody, but keeping a slice keeps all of it.
            this.partial.push(Buffer.from(piece));
            this.partialBytes += piece.length;
          }
        }
        break;
      }
      if (this.skippingLine) {
        this.skippingLine = false;
        this.frameBytes += nl - pos + 1;
      } else if (this.partialBytes > 0) {
        if (this.partialBytes + (nl - pos) > max + 1) {
          this.lineTooLong();
          this.skippingLine = false;
          pos = nl + 1;
          continue;
        }
        const line = Buffer.concat([...this.partial, chunk.subarray(pos, nl)]);
        this.partial = [];
        this.partialBytes = 0;
        this.lineBytes(line, 0, line.length);
      } else {
        this.lineBytes(chunk, pos, nl);
      }
      pos = nl + 1;
    }
    return out;
  }

  /** Bytes of an unfinished line or frame held now (for tests: memory stays bounded). */
  get buffered(): number {
    let followBytes = 0;
    for (const l of this.followLines) followBytes += l.length;
    return this.partialBytes + (this.dropping ? 0 : this.frameBytes) + followBytes;
  }

  /** The current line broke maxLineBytes before its end arrived. */
  private lineTooLong(): void {
    this.partial = [];
    this.frameBytes += this.partialBytes;
    this.partialBytes = 0;
    this.skippingLine = true;
    this.longLine();
  }

  /** A line longer than maxLineBytes: the frame it is in is dropped. */
  private longLine(): void {
    // Inside a Follows, the line is its own only if no blank line came before it.
    if (this.follow && !this.abandonFollows('line_too_long', this.limits.maxLineBytes)) this.dropping = true;
    else this.drop('line_too_long', this.limits.maxLineBytes);
  }

  /** One line, LF excluded, as bytes [start, end) of buf. */
  private lineBytes(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CR) end--;
    const len = end - start;
    if (len > this.limits.maxLineBytes) {
      // Arrived whole in one read, but too long all the same.
      this.frameBytes += len + 1;
      this.longLine();
      return;
    }
    if (len === 0) {
      this.blankLine();
      return;
    }
    if (this.dropping) {
      // Not decoded: a frame being skipped costs a scan for LF and nothing more.
      this.frameBytes += len + 1;
      return;
    }
    // A frame's first line may be the greeting (`A…`) or a `Response: Follows` (`r…`, `R…`: no
    // other first character lower-cases to `r`), and a Follows' lines are kept whole: those are
    // decoded as lines. Every other line is a header, read from its bytes (header()).
    if (this.follow === 0 && (this.headers > 0 || !MAYBE_SPECIAL_FIRST[buf[start]!])) this.header(buf, start, end, len);
    else this.line(buf.toString('utf8', start, end), len, buf, start);
  }

  private blankLine(): void {
    if (this.follow === 1) {
      this.followLine('', 0);
      return;
    }
    if (this.follow === 2) {
      this.endFollows();
      return;
    }
    if (!this.dropping && this.headers > 0) {
      this.out.push({ kind: 'frame', event: this.fields, repeated: this.repeated });
    }
    this.resetFrame();
  }

  private resetFrame(): void {
    this.fields = {};
    this.repeated = null;
    this.headers = 0;
    this.frameBytes = 0;
    this.first = null;
    this.dropping = false;
    this.keep = null;
    this.skipped = null;
  }

  /** A non-empty line of `bytes` bytes, decoded; `buf` from `start` holds its bytes, when at hand. */
  private line(text: string, bytes: number, buf?: Buffer, start = 0): void {
    if (this.follow) {
      this.followLine(text, bytes);
      return;
    }
    if (this.headers === 0) {
      if (text.startsWith(GREETING)) return;
      if (!this.rereading && isFollows(text)) {
        this.follow = 1;
        this.followLine(text, bytes);
        return;
      }
    }
    if (!this.counted(bytes)) return;
    const colon = text.indexOf(': ');
    const raw = colon < 0 ? text : text.slice(0, colon);
    this.field(this.keyOf(raw), colon < 0 ? '' : valueOf(text, colon + 2, bytes, buf, start));
  }

  /**
   * Counts one more header line of `bytes` bytes in the frame; false (and the frame dropped) when
   * that breaks maxHeaders or maxFrameBytes.
   */
  private counted(bytes: number): boolean {
    this.frameBytes += bytes + 1;
    if (++this.headers > this.limits.maxHeaders) {
      this.drop('too_many_headers', this.limits.maxHeaders);
      return false;
    }
    if (this.frameBytes > this.limits.maxFrameBytes) {
      this.drop('frame_too_large', this.limits.maxFrameBytes);
      return false;
    }
    return true;
  }

  private keyOf(raw: string): string {
    let key = this.keys.get(raw);
    if (key === undefined) {
      key = raw.trim().toLowerCase();
      if (this.keys.size < KEY_CACHE_MAX) this.keys.set(raw, key);
    }
    return key;
  }

  /**
   * A header line (not a frame's first line that could be the greeting or a Follows), bytes
   * [start, end) of buf, `bytes` long: what line() makes of it, without decoding the line. Only
   * the value is decoded, straight from its bytes (exactly sized: it keeps nothing else alive),
   * and the key is looked up by its bytes (ByteKeys), decoded only the first time they are
   * seen. The first `: ` is found in the bytes
   * where line() finds it in the text: UTF-8 never uses bytes below 0x80 inside a multi-byte
   * character, and a decoder's replacement character is never `:` or a space.
   */
  private header(buf: Buffer, start: number, end: number, bytes: number): void {
    if (!this.counted(bytes)) return;
    // A loop, not buf.indexOf(': ', start): that would search past the line's end when the
    // line has none (and make a frame of such lines quadratic). It hashes the key's bytes on the way.
    let colon = -1;
    let hash = 0;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b === COLON && buf[i + 1] === SPACE && i + 1 < end) {
        colon = i;
        break;
      }
      hash = (Math.imul(hash, 31) + b) | 0;
    }
    const keyEnd = colon < 0 ? end : colon;
    const key = this.byteKeys.get(buf, start, keyEnd, hash) ?? this.newKey(buf, start, keyEnd, hash);
    if (this.keep !== null && !this.keep.has(key)) {
      this.skip(key);
      return;
    }
    const value = colon < 0 ? '' : utf8(buf, colon + 2, end);
    this.field(key, value);
    // An event's name is its first header: whether the frame is a lean one is known from there.
    if (this.headers === 1 && key === 'event' && this.lean !== null) this.keep = this.lean.get(lowerEventName(value)) ?? null;
  }

  /** A header of a lean frame not kept: what field() would have said of a repeat, and nothing else. */
  private skip(key: string): void {
    // field() never reports these repeated (nor keeps a `__proto__`).
    if (key === 'variable' || key === 'chanvariable' || key === '__proto__') return;
    // A list while short (the usual dozen), a set beyond: maxHeaders may be large.
    let skipped = (this.skipped ??= []);
    if (Array.isArray(skipped) && skipped.length >= 16) skipped = this.skipped = new Set(skipped);
    if (Array.isArray(skipped) ? !skipped.includes(key) : !skipped.has(key)) {
      if (Array.isArray(skipped)) skipped.push(key);
      else skipped.add(key);
      return;
    }
    const r = (this.repeated ??= []);
    if (!r.includes(key)) r.push(key);
  }

  private newKey(buf: Buffer, start: number, end: number, hash: number): string {
    const key = this.keyOf(utf8(buf, start, end));
    this.byteKeys.add(buf, start, end, hash, key);
    return key;
  }

  /** One header of the frame being read: its key normalized, its value decoded. */
  private field(key: string, value: string): void {
    if (key === 'variable') {
      // As the package's { NAME: rest } object flattened: `a=` becomes `a`.
      const eq = value.indexOf('=');
      if (eq >= 0 && eq === value.length - 1) value = value.slice(0, eq);
    } else if (key === 'chanvariable') {
      return;
    }
    const fields = this.fields;
    // Own properties only: a header named `constructor` or `toString` is a header like any other.
    if (fields[key] !== undefined && Object.hasOwn(fields, key)) {
      if (key !== 'variable') {
        const r = (this.repeated ??= []);
        if (!r.includes(key)) r.push(key);
      }
      return;
    }
    // `__proto__` would set the prototype (or be ignored): no AMI header has that name.
    if (key === '__proto__') return;
    fields[key] = value;
    if (this.first === null && (key === 'event' || key === 'response')) this.first = value;
  }

  private followLine(text: string, bytes: number): void {
    this.frameBytes += bytes + 1;
    if (this.follow === 1 && (text === '--END COMMAND--' || text === '--END SMS EVENT--')) this.follow = 2;
    this.followLines.push(text);
    let broke = false;
    if (this.followLines.length > this.limits.maxHeaders) broke = !this.abandonFollows('too_many_headers', this.limits.maxHeaders);
    else if (this.frameBytes > this.limits.maxFrameBytes) broke = !this.abandonFollows('frame_too_large', this.limits.maxFrameBytes);
    // No blank line in it: the lines up to the next blank one are still the Follows' own.
    if (broke) this.dropping = true;
  }

  private endFollows(): void {
    const lines = this.followLines;
    // The package's content: every line up to the blank one, the last (the end marker) left out.
    lines.pop();
    const content = lines.join('\n');
    const m = /actionid: ([^\r\n]+)/i.exec(content);
    const event: Record<string, string> = { response: 'follows', content };
    if (m) event.actionid = m[1]!;
    this.out.push({ kind: 'frame', event, repeated: null });
    this.follow = 0;
    this.followLines = [];
    this.resetFrame();
  }

  /**
   * A Follows broke a limit: it is reported as dropped, and what followed its first blank line
   * is read again as ordinary frames (the frame being read after that goes on with the next
   * line). Returns whether there was such a blank line.
   */
  private abandonFollows(reason: AmiDropReason, limit: number): boolean {
    const lines = this.followLines;
    this.follow = 0;
    this.followLines = [];
    this.resetFrame();
    this.out.push({ kind: 'dropped', reason, limit, first: 'Follows', follows: true });
    const blank = lines.indexOf('');
    if (blank < 0) return false;
    this.rereading = true;
    try {
      for (let i = blank + 1; i < lines.length; i++) {
        const text = lines[i]!;
        if (text === '') this.blankLine();
        else if (!this.dropping) this.line(text, Buffer.byteLength(text));
        else this.frameBytes += text.length + 1;
      }
    } finally {
      this.rereading = false;
    }
    return true;
  }

  private drop(reason: AmiDropReason, limit: number): void {
    if (this.dropping) return;
    this.out.push({ kind: 'dropped', reason, limit, first: this.first, follows: false });
    this.dropping = true;
    this.fields = {};
    this.repeated = null;
  }
}

/** `Response: Follows` as the package recognised it: the first line of a frame. */
function isFollows(line: string): boolean {
  return line.length >= 9 && line.slice(0, 9).toLowerCase() === 'response:' && line.toLowerCase().includes('follow');
}

/**
 * The value of a header line, from character `from` of `text` (the line, `bytes` long in UTF-8),
 * as a string of its own. A value outlives its line (the tracker keeps names and ids for a call's
 * life), and a slice of the line would keep the whole line alive: ~0.3 KB per call in progress
 * (bench:memory). V8 copies slices shorter than 13 characters; longer ones are decoded again from
 * the line's bytes when at hand (exactly sized), else detached.
 */
function valueOf(text: string, from: number, bytes: number, buf: Buffer | undefined, start: number): string {
  if (text.length - from < 13) return text.slice(from);
  if (!buf) return detach(text.slice(from));
  // All ASCII (the usual case): characters are bytes. Else count the bytes before the value.
  const offset = bytes === text.length ? from : Buffer.byteLength(text.slice(0, from));
  return buf.toString('utf8', start + offset, start + bytes);
}
