// Header templates (webhook `headers:`): any Unicode value travels, nothing can break the header.
//
// An HTTP field value is bytes, and in practice only visible ASCII survives every client, proxy
// and framework: undici refuses anything beyond Latin-1, others mangle Latin-1 as UTF-8 or the
// reverse. So a substituted value is sent as visible ASCII, percent-encoded the RFC 3986 way:
//
//   - every character outside printable ASCII (0x20–0x7E), and `%` itself, becomes the `%XX` of
//     its UTF-8 bytes: `王小明` -> `%E7%8E%8B%E5%B0%8F%E6%98%8E`, `Müller` -> `M%C3%BCller`,
//     `50%` -> `50%25`, CR LF NUL TAB -> `%0D %0A %00 %09`. A receiver gets the value back with
//     one percent-decode (decodeURIComponent, urllib.parse.unquote, rawurldecode); a plain ASCII
//     value without `%` is unchanged, so `Acme & Sons` reads as it always did.
//   - a value right after `name*=` (an RFC 8187 extended parameter, as in
//     `Content-Disposition: attachment; filename*={callerName}`) is sent as an RFC 8187
//     ext-value: `UTF-8''` followed by the value with every byte outside attr-char
//     percent-encoded. After a literal `name*=UTF-8''` only the encoded value is added.
//
// The template's own text is the operator's and is sent as written; it must be printable ASCII
// (checked at start), so CR, LF and NUL can come from nowhere.
import { TemplateError } from './errors.js';
import { parseTemplate } from './parse.js';
import { lookup, type CompiledTemplate } from './text.js';
import type { TemplateVars } from './vars.js';

/** RFC 9110 token: what a field name may be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Printable ASCII and TAB: what literal text in a header template may hold. */
const LITERAL = /^[\t\x20-\x7e]*$/;
/** RFC 8187 attr-char. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;
/** `name*=` (an extended parameter about to get its value), or `name*=UTF-8''` written out. */
const EXT_PARAM = /[!#$%&'+.^_`|~0-9A-Za-z-]\*=\s*$/;
const EXT_PARAM_WITH_CHARSET = /[!#$%&'+.^_`|~0-9A-Za-z-]\*=\s*UTF-8''$/i;

const utf8 = new TextEncoder();

/** `%XX` for every UTF-8 byte of `char` (a lone surrogate becomes U+FFFD, as TextEncoder does). */
function percentBytes(char: string): string {
  let out = '';
  for (const b of utf8.encode(char)) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** A value as visible ASCII: printable ASCII but `%` kept, everything else percent-encoded UTF-8. */
export function encodeHeaderValue(value: string): string {
  let out = '';
  for (const char of value) {
    const c = char.codePointAt(0)!;
    out += c >= 0x20 && c <= 0x7e && c !== 0x25 ? char : percentBytes(char);
  }
  return out;
}

/** RFC 8187 value-chars: attr-char kept, every other byte percent-encoded. */
export function encodeExtValue(value: string): string {
  let out = '';
  for (const char of value) out += ATTR_CHAR.test(char) ? char : percentBytes(char);
  return out;
}

/** True if `name` may be an HTTP header name. */
export function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/**
 * Compiles a header value template (see the top of this file for the encoding). Throws a
 * TemplateError if its literal text is not printable ASCII. `render` never throws and its result
 * is always a valid field value.
 */
export function compileHeader(template: string): CompiledTemplate {
  const parsed = parseTemplate(template);
  const problems = [...parsed.problems];
  for (const p of parsed.parts) {
    if (p.kind === 'text' && !LITERAL.test(p.text)) {
      problems.push({ path: [], message: 'a header template must be printable ASCII (a line break, a control character or non-ASCII text would make an invalid header); non-ASCII values come from variables, which are percent-encoded' });
      break;
    }
  }
  if (problems.length > 0) throw new TemplateError(problems);
  /** `absent`: what a null value renders as (an ext-value still needs its charset). */
  type Piece = string | { name: string; encode: (v: string) => string; absent: string };
  const pieces: Piece[] = [];
  let before = '';
  for (const p of parsed.parts) {
    if (p.kind === 'text') {
      pieces.push(p.text);
      before += p.text;
      continue;
    }
    if (EXT_PARAM_WITH_CHARSET.test(before)) pieces.push({ name: p.name, encode: encodeExtValue, absent: '' });
    else if (EXT_PARAM.test(before)) pieces.push({ name: p.name, encode: (v) => `UTF-8''${encodeExtValue(v)}`, absent: "UTF-8''" });
    else pieces.push({ name: p.name, encode: encodeHeaderValue, absent: '' });
    // What follows a value is judged by literal text only: a value cannot open a parameter.
    before = '';
  }
  return {
    source: template,
    names: parsed.names,
    render(vars: TemplateVars): string {
      let out = '';
      for (const piece of pieces) {
        if (typeof piece === 'string') out += piece;
        else {
          const value = lookup(vars, piece.name);
          out += value === null ? piece.absent : piece.encode(value);
        }
      }
      return out;
    },
  };
}
