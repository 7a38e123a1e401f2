// Plain substitution: header values (compileText) and JSON/form body leaves (body.ts).
import { TemplateError } from './errors.js';
import { parseTemplate, type Part } from './parse.js';
import type { TemplateVars } from './vars.js';

/** A template compiled once and rendered for many events. `render` never throws. */
export interface CompiledTemplate {
  /** The template as configured. */
  readonly source: string;
  /** Distinct names it reads, in first-use order (`<%KEY%>` keys as the names they read). */
  readonly names: readonly string[];
  render(vars: TemplateVars): string;
}

/** The value of `name` in `vars`: null when absent (an `Omlcrm…` variable the call lacks). */
export function lookup(vars: TemplateVars, name: string): string | null {
  return Object.hasOwn(vars, name) ? (vars[name] ?? null) : null;
}

/**
 * Literal texts and names interleaved as in a tagged template: `texts.length === names.length + 1`,
 * so a render is one loop of concatenations.
 */
export interface Interleaved {
  texts: string[];
  names: string[];
}

export function interleave(parts: readonly Part[]): Interleaved {
  const texts: string[] = [];
  const names: string[] = [];
  for (const p of parts) {
    if (p.kind === 'text') texts.push(p.text);
    else names.push(p.name);
  }
  return { texts, names };
}

export function renderInterleaved(t: Interleaved, vars: TemplateVars, encode: (value: string) => string): string {
  let out = t.texts[0]!;
  for (let i = 0; i < t.names.length; i++) {
    const value = lookup(vars, t.names[i]!);
    if (value !== null) out += encode(value);
    out += t.texts[i + 1]!;
  }
  return out;
}

/** A control character other than TAB (C0, DEL): CR/LF/NUL could split or end a header. */
function isControl(c: number): boolean {
  return (c < 0x20 && c !== 0x09) || c === 0x7f;
}

/** `value` without control characters other than TAB. */
export function stripControls(value: string): string {
  let i = 0;
  while (i < value.length && !isControl(value.charCodeAt(i))) i++;
  if (i === value.length) return value;
  let out = value.slice(0, i);
  for (; i < value.length; i++) if (!isControl(value.charCodeAt(i))) out += value[i];
  return out;
}

/**
 * A one-line text template, for HTTP header values: substituted values lose CR, LF, NUL and every
 * other control character but TAB, so no value can end the header or add another. The template's
 * own text may not contain them either. Null renders as ''.
 */
export function compileText(template: string): CompiledTemplate {
  const parsed = parseTemplate(template);
  const problems = [...parsed.problems];
  for (const p of parsed.parts) {
    if (p.kind === 'text' && stripControls(p.text) !== p.text) {
      problems.push({ path: [], message: 'contains a control character (CR, LF, NUL…); a header value is one line' });
      break;
    }
  }
  if (problems.length > 0) throw new TemplateError(problems);
  const compiled = interleave(parsed.parts);
  return { source: template, names: parsed.names, render: (vars) => renderInterleaved(compiled, vars, stripControls) };
}

/** The names `template` reads (`<%KEY%>` keys as their names); throws a TemplateError like the compile functions. */
export function referencedNames(template: string): string[] {
  const parsed = parseTemplate(template);
  if (parsed.problems.length > 0) throw new TemplateError(parsed.problems);
  return parsed.names;
}
