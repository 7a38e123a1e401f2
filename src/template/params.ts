// The OMniLeads parameter table (type / name / name expected by the CRM) as a list: each entry
// takes a variable or a fixed value, optionally translates it, and names it as the CRM expects.
import { TemplateError, type TemplateProblem } from './errors.js';
import { checkName } from './parse.js';
import { lookup } from './text.js';
import { WORLDSMART_KEYS, type TemplateVars } from './vars.js';

type Scalar = string | number | boolean;

interface ParamOptions {
  /** The parameter name the CRM expects. */
  as: string;
  /** Translates values: `{ 'call.started': newCall, inbound: in }`. Values not listed pass unchanged (or become `default`). */
  map?: Readonly<Record<string, Scalar>>;
  /** Used when the value is null, or when `map` is given and does not list the value. */
  default?: Scalar;
  /** When the value is still null: send the parameter empty (true) or leave it out (false, the default). */
  keepEmpty?: boolean;
}

/** One row of the table: a variable (`from`: a name or a `<%KEY%>`) or a fixed `value`, sent `as` the CRM's name. */
export type ParamSpec = (ParamOptions & { from: string; value?: never }) | (ParamOptions & { value: Scalar; from?: never });

export interface CompiledParams {
  /** Distinct variable names read, in order. */
  readonly names: readonly string[];
  /** `[key, value]` in list order; a key may repeat. Never throws. */
  render(vars: TemplateVars): [string, string][];
}

interface Row {
  as: string;
  from: string | null;
  value: string | null;
  map: Map<string, string> | null;
  fallback: string | null;
  keepEmpty: boolean;
}

const SPEC_KEYS = new Set(['as', 'from', 'value', 'map', 'default', 'keepEmpty']);

function isScalar(v: unknown): v is Scalar {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** `from: '<%CALLERID%>'` reads callerNumber; anything else is taken as a name. */
function fromName(written: string): string {
  if (written.startsWith('<%') && written.endsWith('%>')) {
    const key = written.slice(2, -2);
    if (Object.hasOwn(WORLDSMART_KEYS, key)) return WORLDSMART_KEYS[key]!;
  }
  return written;
}

function compileRow(spec: unknown, at: number, problems: TemplateProblem[]): Row | null {
  const problem = (path: (string | number)[], message: string, extra: Partial<TemplateProblem> = {}): void => {
    problems.push({ path: [at, ...path], message, ...extra });
  };
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    problem([], 'must be a mapping with `as` and one of `from` / `value`');
    return null;
  }
  const s = spec as Record<string, unknown>;
  const before = problems.length;
  for (const key of Object.keys(s)) if (!SPEC_KEYS.has(key)) problem([key], `unknown key (allowed: ${[...SPEC_KEYS].join(', ')})`);
  if (typeof s.as !== 'string' || s.as === '') problem(['as'], 'must be a non-empty string: the parameter name the CRM expects');
  const hasFrom = s.from !== undefined;
  const hasValue = s.value !== undefined;
  if (hasFrom === hasValue) problem([], 'needs exactly one of `from` (a variable) and `value` (a fixed value)');
  let from: string | null = null;
  if (hasFrom) {
    if (typeof s.from !== 'string') problem(['from'], 'must be a variable name');
    else {
      from = fromName(s.from);
      const unknown = checkName(from, 'param');
      if (unknown) problems.push({ ...unknown, path: [at, 'from'] });
    }
  }
  if (hasValue && !isScalar(s.value)) problem(['value'], 'must be a string, number or boolean');
  let map: Map<string, string> | null = null;
  if (s.map !== undefined) {
    if (typeof s.map !== 'object' || s.map === null || Array.isArray(s.map)) problem(['map'], 'must be a mapping of value → value');
    else {
      map = new Map();
      for (const [k, v] of Object.entries(s.map)) {
        if (isScalar(v)) map.set(k, String(v));
        else problem(['map', k], 'must be a string, number or boolean');
      }
    }
  }
  if (s.default !== undefined && !isScalar(s.default)) problem(['default'], 'must be a string, number or boolean');
  if (s.keepEmpty !== undefined && typeof s.keepEmpty !== 'boolean') problem(['keepEmpty'], 'must be true or false');
  if (problems.length > before) return null;
  return {
    as: s.as as string,
    from,
    value: hasValue ? String(s.value) : null,
    map,
    fallback: s.default === undefined ? null : String(s.default),
    keepEmpty: s.keepEmpty === true,
  };
}

/**
 * Compiles a parameter list. Each row renders `[as, value]`: the variable's value (or the fixed
 * value), translated by `map`; `default` when the value is null or (with `map`) not listed; a
 * null left after that omits the row unless `keepEmpty` (then `[as, '']`). An empty string is a
 * value (an `Omlcrm…` variable exported empty) and is sent. Throws a TemplateError listing every
 * problem, paths `[row, key]`.
 */
export function compileParams(list: readonly ParamSpec[]): CompiledParams {
  const problems: TemplateProblem[] = [];
  const rows: Row[] = [];
  if (!Array.isArray(list)) throw new TemplateError([{ path: [], message: 'must be a list of { from | value, as }' }]);
  list.forEach((spec: unknown, i) => {
    const row = compileRow(spec, i, problems);
    if (row) rows.push(row);
  });
  if (problems.length > 0) throw new TemplateError(problems);
  const names: string[] = [];
  for (const r of rows) if (r.from !== null && !names.includes(r.from)) names.push(r.from);
  return {
    names,
    render(vars: TemplateVars): [string, string][] {
      const out: [string, string][] = [];
      for (const r of rows) {
        let v = r.from === null ? r.value : lookup(vars, r.from);
        if (v === null) v = r.fallback;
        else if (r.map) v = r.map.get(v) ?? r.fallback ?? v;
        if (v !== null) out.push([r.as, v]);
        else if (r.keepEmpty) out.push([r.as, '']);
      }
      return out;
    },
  };
}

/**
 * Tencent Cloud Contact Center's pop-up parameters (docs/templates.md "Tencent"), for a page
 * written for Tencent: render with `appendParams(url, pairs, 'fragment')` to get
 * `#?mobile=…&status=100&type=phone…`. Tencent's userId, avatar, agentEmail, agentMobile,
 * agentRoleId and sdkAppId have no PBX equivalent; add rows with `value` where a page needs them.
 */
export const TENCENT_PARAMS: readonly ParamSpec[] = [
  { from: 'callerNumber', as: 'mobile' },
  { from: 'status', as: 'status' },
  { value: 'phone', as: 'type' },
  { from: 'callerName', as: 'nickName' },
  { from: 'agentName', as: 'agentNickName' },
];

/** Parameter lists a config can name instead of writing them out. */
export const PARAM_PRESETS: Readonly<Record<string, readonly ParamSpec[]>> = {
  tencent: TENCENT_PARAMS,
};
