// Request bodies are trees, not text: templates live only in string leaves, and the tree is
// serialized after rendering (JSON.stringify / URLSearchParams), so no value can break its shape.
import { TemplateError, under, type TemplateProblem } from './errors.js';
import { parseTemplate } from './parse.js';
import { interleave, lookup, renderInterleaved, type Interleaved } from './text.js';
import type { TemplateVars } from './vars.js';

export type BodyValue = string | number | boolean | null | BodyValue[] | { [key: string]: BodyValue };

export type BodyFormat = 'json' | 'form';

export interface CompiledBody {
  readonly format: BodyFormat;
  /** `application/json` or `application/x-www-form-urlencoded`. */
  readonly contentType: string;
  readonly names: readonly string[];
  /** A fresh tree with every string leaf rendered. */
  render(vars: TemplateVars): BodyValue;
  /** The request body: JSON text, or `key=value&…` (form: null values left out). */
  serialize(vars: TemplateVars): string;
}

type Node =
  | { kind: 'const'; value: string | number | boolean | null }
  | { kind: 'raw'; name: string }
  | { kind: 'text'; template: Interleaved }
  | { kind: 'array'; items: Node[] }
  | { kind: 'object'; entries: [string, Node][] };

const identity = (v: string): string => v;

function compileNode(value: unknown, path: (string | number)[], problems: TemplateProblem[], names: string[]): Node {
  if (typeof value === 'string') {
    const parsed = parseTemplate(value);
    problems.push(...under(path, parsed.problems));
    for (const n of parsed.names) if (!names.includes(n)) names.push(n);
    if (parsed.names.length === 0) return { kind: 'const', value: parsed.parts[0]?.kind === 'text' ? parsed.parts[0].text : value };
    const [before, holder, after] = parsed.parts;
    if (parsed.parts.length === 3 && before?.kind === 'text' && before.text === '' && holder?.kind === 'name' && after?.kind === 'text' && after.text === '') {
      return { kind: 'raw', name: holder.name };
    }
    return { kind: 'text', template: interleave(parsed.parts) };
  }
  if (value === null || typeof value === 'boolean') return { kind: 'const', value };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) problems.push({ path, message: 'must be a finite number' });
    return { kind: 'const', value };
  }
  if (Array.isArray(value)) return { kind: 'array', items: value.map((v, i) => compileNode(v, [...path, i], problems, names)) };
  if (typeof value === 'object' && isPlainObject(value)) {
    return { kind: 'object', entries: Object.entries(value as object).map(([k, v]) => [k, compileNode(v, [...path, k], problems, names)]) };
  }
  problems.push({ path, message: `must be a string, number, boolean, null, list or mapping (is ${value instanceof Date ? 'a date' : typeof value})` });
  return { kind: 'const', value: null };
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function renderNode(node: Node, vars: TemplateVars): BodyValue {
  switch (node.kind) {
    case 'const':
      return node.value;
    case 'raw':
      return lookup(vars, node.name);
    case 'text':
      return renderInterleaved(node.template, vars, identity);
    case 'array':
      return node.items.map((n) => renderNode(n, vars));
    case 'object':
      // fromEntries defines own properties: a `__proto__` key stays a key.
      return Object.fromEntries(node.entries.map(([k, n]) => [k, renderNode(n, vars)]));
  }
}

/**
 * Compiles a body given as a YAML tree (mapping, list, scalars) whose string leaves may hold
 * templates. Keys are literal. A leaf that is exactly one `{name}` (or `<%KEY%>`) renders as the
 * value itself, a string or null; any other templated leaf renders as a string, null as ''.
 * Numbers, booleans and null leaves stay as they are. `form`: the body must be one mapping of
 * scalars; a null value leaves its key out (as compileParams does). Throws a TemplateError
 * listing every problem, each at its path in the tree.
 */
export function compileBody(body: unknown, format: BodyFormat = 'json'): CompiledBody {
  const problems: TemplateProblem[] = [];
  const names: string[] = [];
  const root = compileNode(body, [], problems, names);
  if (format === 'form') {
    if (root.kind !== 'object') problems.push({ path: [], message: 'a form body must be a mapping of names to values' });
    else {
      for (const [k, n] of root.entries) {
        if (n.kind === 'array' || n.kind === 'object') problems.push({ path: [k], message: 'a form value must be a string, number, boolean or null, not a list or mapping' });
      }
    }
  }
  if (problems.length > 0) throw new TemplateError(problems);
  const render = (vars: TemplateVars): BodyValue => renderNode(root, vars);
  if (format === 'json') {
    return { format, contentType: 'application/json', names, render, serialize: (vars) => JSON.stringify(render(vars)) };
  }
  const entries = root.kind === 'object' ? root.entries : [];
  return {
    format,
    contentType: 'application/x-www-form-urlencoded',
    names,
    render,
    serialize(vars: TemplateVars): string {
      const form = new URLSearchParams();
      for (const [k, n] of entries) {
        const v = renderNode(n, vars);
        if (v !== null) form.append(k, String(v));
      }
      return form.toString();
    },
  };
}
