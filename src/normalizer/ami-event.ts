// AMI frames as the normalizer sees them: one flat record, keys lower-cased with spaces removed
// (the convention of the `asterisk-manager` package), every value a string. src/sources/ami/parser.ts
// makes them straight from the bytes; flattenFrame below gives the same from a frame of the
// package's own reader (which the bridge no longer uses; kept for tests and the benchmark).

export type AmiEvent = Readonly<Record<string, string>>;

/** What `asterisk-manager` hands out: repeated headers become arrays, Variable/ChanVariable objects. */
export type ManagerFrame = Record<string, unknown>;

export interface FrameProblem {
  /** Headers that appeared more than once in one frame (usually a truncated frame glued to the next). */
  repeated: string[];
}

/**
 * A copy of `s` that shares no memory with the string it was cut from. asterisk-manager splits
 * each socket read (up to 64 KB) into lines and values, and V8 keeps such pieces as slices of
 * the whole read: an event kept for hours (screen-pop replay buffers) would otherwise hold every
 * AMI read its values came from (measured: ~2 MB per agent with full buffers).
 */
export function detach(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1); // V8 copies strings shorter than 13 anyway
}

/**
 * Flattens a frame from `asterisk-manager` into an AmiEvent, in place: the frame is the package's
 * own fresh object for this one frame, and rewriting its values costs ~40 % less than copying it
 * key by key into a new object (this runs for every AMI frame; see bench/pipeline.ts).
 *
 * - `Variable: NAME` (VarSet) arrives as `{ variable: { NAME: '' } }`: we keep the name.
 * - `ChanVariable: NAME=value` headers (arriving as an object) are dropped: the bridge takes
 *   dialplan data only from VarSet.
 * - A header repeated in one frame arrives as an array; we keep the first value and report it,
 *   because real Asterisk never repeats these headers and the frame is then suspect.
 */
export function flattenFrame(frame: ManagerFrame): { event: AmiEvent; problem: FrameProblem | null } {
  let repeated: string[] | null = null;
  for (const key in frame) {
    const value = frame[key];
    if (typeof value === 'string') {
      frame[key] = detach(value);
    } else if (Array.isArray(value)) {
      frame[key] = value.length > 0 ? detach(String(value[0])) : '';
      (repeated ??= []).push(key);
    } else if (key === 'variable' && value !== null && typeof value === 'object') {
      const names = Object.keys(value as Record<string, unknown>);
      let variable = detach(names[0] ?? '');
      // "Variable: a=b" would arrive as { a: 'b' }; a real VarSet never has '=' in the name.
      const rest = (value as Record<string, unknown>)[variable];
      if (typeof rest === 'string' && rest !== '') variable = `${variable}=${rest}`;
      frame[key] = variable;
    } else if (value !== undefined && value !== null && typeof value !== 'object') {
      frame[key] = String(value);
    } else {
      delete frame[key];
    }
  }
  return { event: frame as AmiEvent, problem: repeated ? { repeated } : null };
}

/** Event names as sent -> in lower case; bounded in number and length (names are the PBX's to make up). */
const LOWER_NAMES = new Map<string, string>();
const LOWER_NAMES_MAX = 1024;
const LOWER_NAME_MAX_LENGTH = 64;

/**
 * The event's name in lower case ('' when it has none), the key of the mapping table. Every AMI
 * frame asks for it, and a name is one of a few dozen: each is lower-cased once, not per frame.
 */
export function eventName(ev: AmiEvent): string {
  const raw = ev.event;
  return raw === undefined ? '' : lowerEventName(raw);
}

/** An event name (the Event header's value) in lower case; see eventName. */
export function lowerEventName(raw: string): string {
  let name = LOWER_NAMES.get(raw);
  if (name === undefined) {
    name = raw.toLowerCase();
    if (LOWER_NAMES.size < LOWER_NAMES_MAX && raw.length <= LOWER_NAME_MAX_LENGTH) LOWER_NAMES.set(raw, name);
  }
  return name;
}

/** Seconds since the epoch from the AMI `Timestamp` header (timestampevents = yes), or null. */
export function amiTimestamp(ev: AmiEvent): number | null {
  const ts = ev.timestamp;
  if (!ts) return null;
  const n = Number(ts);
  return Number.isFinite(n) && n > 0 ? n : null;
}
