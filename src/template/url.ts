// URL templates: each value is encoded for the part of the URL it lands in, decided once from the
// template's own text, so no value can add, cut or re-target a segment or a parameter.
import { TemplateError, type TemplateProblem } from './errors.js';
import { parseTemplate } from './parse.js';
import { lookup, type CompiledTemplate } from './text.js';
import type { TemplateVars } from './vars.js';

/** encodeURIComponent, which leaves only `A-Z a-z 0-9 - _ . ! ~ * ' ( )` unencoded. */
export function encodeComponent(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    // A lone surrogate (URIError): encode U+FFFD in its place rather than fail the render.
    return encodeURIComponent(value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'));
  }
}

type Where = 'authority' | 'path' | 'query' | 'fragment';

/** A value slot. */
interface Slot {
  kind: 'slot';
  name: string;
}

/** A path segment that holds at least one value: rendered whole, to catch a `.` / `..` result. */
interface Segment {
  kind: 'segment';
  items: (string | Slot)[];
  /** The segment with every value empty. */
  literal: string;
}

type Piece = string | Slot | Segment;

/** What WHATWG URL (and most servers) treat as `.` or `..`, removing or resolving the segment. */
function isDotSegment(s: string): boolean {
  if (s.length === 0 || s.length > 6) return false;
  const l = s.toLowerCase();
  return l === '.' || l === '..' || l === '%2e' || l === '.%2e' || l === '%2e.' || l === '%2e%2e';
}

/** A URL that cannot be rendered safely for these values (see CompiledUrl.renderChecked). */
export class UrlRenderError extends Error {
  override name = 'UrlRenderError';
}

/** The segment rendered, or null if its values make it `.` or `..`. */
function renderSegment(seg: Segment, vars: TemplateVars): string | null {
  let out = '';
  for (const item of seg.items) {
    if (typeof item === 'string') out += item;
    else {
      const value = lookup(vars, item.name);
      if (value !== null) out += encodeComponent(value);
    }
  }
  // Encoding cannot stop a parser from resolving `..`: the URL would address another resource.
  return isDotSegment(out) ? null : out;
}

/** A compiled URL template. */
export interface CompiledUrl extends CompiledTemplate {
  /**
   * Like `render`, but a value that makes a path segment `.` or `..` is an error instead of an
   * empty segment: for a request (the webhook), where neither the climbed nor the emptied URL is
   * the resource the template names. Throws a UrlRenderError.
   */
  renderChecked(vars: TemplateVars): string;
}

const SCHEME_AND_SLASHES = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/|^\/\//;

/**
 * A URL template with `{name}` holders and `<%KEY%>` keys anywhere after the host. Values are
 * percent-encoded as one component (encodeURIComponent): in the path a value stays inside its
 * segment (`/` is `%2F`; a value that would make the segment `.` or `..` renders empty, or is an
 * error with `renderChecked`), in the
 * query and fragment it stays inside its parameter (`&`, `=`, `#`, `+`, space encoded). The
 * template's literal text is kept exactly as written. Null renders as ''. A value may not decide
 * the scheme, host or port: a holder there is a problem.
 */
export function compileUrl(template: string): CompiledUrl {
  const parsed = parseTemplate(template);
  const problems: TemplateProblem[] = [...parsed.problems];

  const pieces: Piece[] = [];
  let where: Where = 'path';
  let pending = ''; // literal text outside an open path segment
  let segment: (string | Slot)[] = []; // the open path segment, while `where === 'path'`
  let segmentHasSlot = false;

  const closeSegment = (): void => {
    if (segmentHasSlot) {
      if (pending) pieces.push(pending);
      pending = '';
      const literal = segment.filter((s): s is string => typeof s === 'string').join('');
      pieces.push({ kind: 'segment', items: mergeText(segment), literal });
    } else pending += segment.join('');
    segment = [];
    segmentHasSlot = false;
  };

  const first = parsed.parts[0];
  const start = first?.kind === 'text' ? SCHEME_AND_SLASHES.exec(first.text) : null;
  if (start) where = 'authority';

  for (const [index, part] of parsed.parts.entries()) {
    if (part.kind === 'name') {
      const slot: Slot = { kind: 'slot', name: part.name };
      if (where === 'authority') {
        problems.push({ path: [], message: `{${part.name}} is in the scheme or host: a value may not choose where the request goes`, name: part.name });
      } else if (where === 'path') {
        segment.push(slot);
        segmentHasSlot = true;
      } else {
        if (pending) pieces.push(pending);
        pending = '';
        pieces.push(slot);
      }
      continue;
    }
    let text = part.text;
    if (index === 0 && start) {
      pending += start[0];
      text = text.slice(start[0].length);
    }
    for (const c of text) {
      if (where === 'authority') {
        if (c === '/') where = 'path';
        else if (c === '?') where = 'query';
        else if (c === '#') where = 'fragment';
        pending += c;
      } else if (where === 'path') {
        if (c === '/' || c === '?' || c === '#') {
          closeSegment();
          pending += c;
          if (c === '?') where = 'query';
          else if (c === '#') where = 'fragment';
        } else segment.push(c);
      } else {
        if (where === 'query' && c === '#') where = 'fragment';
        pending += c;
      }
    }
  }
  if (where === 'path') closeSegment();
  if (pending) pieces.push(pending);
  if (problems.length > 0) throw new TemplateError(problems);

  const compiled = mergeText(pieces);
  const render = (vars: TemplateVars, strict: boolean): string => {
    let out = '';
    for (const piece of compiled) {
      if (typeof piece === 'string') out += piece;
      else if (piece.kind === 'slot') {
        const value = lookup(vars, piece.name);
        if (value !== null) out += encodeComponent(value);
      } else {
        const segment = renderSegment(piece, vars);
        if (segment === null && strict) {
          const names = piece.items.filter((i): i is Slot => typeof i !== 'string').map((i) => `{${i.name}}`);
          throw new UrlRenderError(`the value of ${names.join(' + ')} makes a URL path segment '.' or '..' (a parser would climb the path); the request cannot be built`);
        }
        out += segment ?? piece.literal;
      }
    }
    return out;
  };
  return {
    source: template,
    names: parsed.names,
    render: (vars) => render(vars, false),
    renderChecked: (vars) => render(vars, true),
  };
}

/** Adjacent strings joined into one. */
function mergeText<T>(items: readonly (string | T)[]): (string | T)[] {
  const out: (string | T)[] = [];
  for (const item of items) {
    const last = out[out.length - 1];
    if (typeof item === 'string' && typeof last === 'string') out[out.length - 1] = last + item;
    else if (item !== '') out.push(item);
  }
  return out;
}

/**
 * `url` with `pairs` appended, each key and value encoded as one component: to the query (before
 * any fragment; `?` or `&` as needed), or to the fragment the way Tencent's pop-up reads it
 * (`#?mobile=…&status=100`; after an existing `#/route` as `#/route?…`). The rest of `url` is
 * kept as is. No pairs: `url` unchanged.
 */
export function appendParams(url: string, pairs: readonly (readonly [string, string])[], where: 'query' | 'fragment'): string {
  if (pairs.length === 0) return url;
  const encoded = pairs.map(([k, v]) => `${encodeComponent(k)}=${encodeComponent(v)}`).join('&');
  const hash = url.indexOf('#');
  if (where === 'fragment') {
    if (hash < 0) return `${url}#?${encoded}`;
    return `${url}${separator(url.slice(hash + 1))}${encoded}`;
  }
  const beforeHash = hash < 0 ? url : url.slice(0, hash);
  const rest = hash < 0 ? '' : url.slice(hash);
  return `${beforeHash}${separator(beforeHash)}${encoded}${rest}`;
}

/** What goes between `s` (a URL before its fragment, or a fragment) and more parameters. */
function separator(s: string): string {
  const q = s.indexOf('?');
  if (q < 0) return '?';
  const params = s.slice(q + 1);
  return params === '' || params.endsWith('&') ? '' : '&';
}
