// Two helpers of the AMI reader (parser.ts) for its hot path, where each header of each frame
// goes: finding a header's normalized key by its bytes, and decoding a range of a read.

/**
 * Normalized keys by their raw bytes, so that a header's key costs no string at all: an open
 * addressing table whose probes are bounded (PROBES), so that keys made to collide cost at most
 * PROBES comparisons each (and are then decoded, as a key not seen yet is); bounded to `max` entries.
 * Each entry keeps a copy of its bytes, never a view of a socket read.
 */
export class ByteKeys {
  private static readonly PROBES = 8;
  private readonly mask: number;
  private readonly hashes: Int32Array;
  private readonly bytes: Array<Buffer | undefined>;
  private readonly keys: string[];
  private size = 0;

  constructor(private readonly max: number) {
    // A power of two, at least twice `max`: probes stay short.
    const slots = 2 ** Math.ceil(Math.log2(Math.max(2, 2 * max)));
    this.mask = slots - 1;
    this.hashes = new Int32Array(slots);
    this.bytes = new Array<Buffer | undefined>(slots).fill(undefined);
    this.keys = new Array<string>(slots).fill('');
  }

  get(buf: Buffer, start: number, end: number, hash: number): string | undefined {
    const mask = this.mask;
    for (let p = 0, i = hash & mask; p < ByteKeys.PROBES; p++, i = (i + 1) & mask) {
      const b = this.bytes[i];
      if (b === undefined) return undefined;
      if (this.hashes[i] === hash && sameBytes(b, buf, start, end)) return this.keys[i];
    }
    return undefined;
  }

  add(buf: Buffer, start: number, end: number, hash: number, key: string): void {
    if (this.size >= this.max) return;
    const mask = this.mask;
    for (let p = 0, i = hash & mask; p < ByteKeys.PROBES; p++, i = (i + 1) & mask) {
      if (this.bytes[i] !== undefined) continue;
      this.hashes[i] = hash;
      this.bytes[i] = Buffer.from(buf.subarray(start, end));
      this.keys[i] = key;
      this.size++;
      return;
    }
  }
}

function sameBytes(a: Buffer, buf: Buffer, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[start + i]) return false;
  return true;
}

// Buffer's own decoders, called directly: buf.toString(encoding, start, end) looks the encoding
// up on every call, and this runs for every header of every AMI frame. Not in @types/node, but on
// Buffer.prototype in every Node release (lib/internal/buffer.js).
interface Decoders {
  utf8Slice(start: number, end: number): string;
}
export const utf8 = (buf: Buffer, start: number, end: number): string => (buf as unknown as Decoders).utf8Slice(start, end);
