// Ajv set up for the config schema, and Ajv errors turned into zigbee2mqtt-style lines:
// `path: message (is 'value')`, one per problem, never showing a secret.
import { Ajv, type SchemaValidateFunction, type ErrorObject, type FuncKeywordDefinition, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import type { JsonSchema } from '../util/json-schema.js';
import { configSchema } from './schema.js';
import { isObject, isSecretSchema, parseSecretRef, SECRET_MESSAGE } from '../util/secret.js';
import { formatPath, type ConfigPath } from './walk.js';
import { redactUrls } from '../util/redact.js';
import { parseSubnet } from '../util/subnet.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the
// module object at type level and the plugin function (which carries `.default`) at runtime.
const addFormats = addFormatsPlugin.default;

/** `secret: true` — a literal string or an `{ env }` / `{ file }` reference (see secret.ts). */
const secretKeyword: FuncKeywordDefinition = {
  keyword: 'secret',
  schemaType: 'boolean',
  errors: true,
  validate: function secret(_enabled: boolean, data: unknown): boolean {
    if (parseSecretRef(data)) return true;
    (secret as SchemaValidateFunction).errors = [{ keyword: 'secret', message: SECRET_MESSAGE, params: {} }];
    return false;
  },
};

/** `regexp: true` — the string compiles the way the normalizer compiles it (`new RegExp(s)`). */
const regexpKeyword: FuncKeywordDefinition = {
  keyword: 'regexp',
  type: 'string',
  schemaType: 'boolean',
  errors: true,
  validate: function regexp(_enabled: boolean, data: string): boolean {
    try {
      new RegExp(data);
      return true;
    } catch (err) {
      // V8 says "Invalid regular expression: /(/: Unterminated group"; the pattern is shown anyway.
      const reason = (err instanceof Error ? err.message : String(err)).replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
      (regexp as SchemaValidateFunction).errors = [{ keyword: 'regexp', message: `must be a valid JavaScript regular expression: ${reason}`, params: { reason } }];
      return false;
    }
  },
};

/** `timeZone: true`: an IANA time zone this Node knows (Intl). */
const timeZoneKeyword: FuncKeywordDefinition = {
  keyword: 'timeZone',
  type: 'string',
  schemaType: 'boolean',
  errors: true,
  validate: function timeZone(_enabled: boolean, data: string): boolean {
    try {
      new Intl.DateTimeFormat('en-CA', { timeZone: data });
      return true;
    } catch {
      (timeZone as SchemaValidateFunction).errors = [{ keyword: 'timeZone', message: 'must be an IANA time zone name such as Europe/Berlin or America/New_York', params: {} }];
      return false;
    }
  },
};

interface UniqueRule {
  key: string;
  ignoreCase?: boolean;
}

/**
 * `uniqueBy: [{ key }]` on an array of objects — no two items share a value of `key` (or, when
 * `key` holds a list, no value appears twice across all the lists). Each repeat is reported at
 * its own path, naming the first occurrence.
 */
const uniqueByKeyword: FuncKeywordDefinition = {
  keyword: 'uniqueBy',
  type: 'array',
  schemaType: 'array',
  errors: true,
  validate: function uniqueBy(rules: UniqueRule[], data: unknown[], _parent, cxt): boolean {
    const base = cxt?.instancePath ?? '';
    const errors: Partial<ErrorObject>[] = [];
    for (const rule of rules) {
      const first = new Map<string, string>();
      const check = (value: unknown, pointer: string): void => {
        if (typeof value !== 'string') return;
        const norm = rule.ignoreCase ? value.toLowerCase() : value;
        const seen = first.get(norm);
        if (seen === undefined) first.set(norm, pointer);
        else errors.push({ instancePath: pointer, keyword: 'uniqueBy', message: `duplicates ${pointerToPath(seen)}`, params: { first: seen, value } });
      };
      data.forEach((item, i) => {
        if (!isObject(item)) return;
        const value = item[rule.key];
        const pointer = `${base}/${i}/${rule.key}`;
        if (Array.isArray(value)) value.forEach((v, j) => check(v, `${pointer}/${j}`));
        else check(value, pointer);
      });
    }
    (uniqueBy as SchemaValidateFunction).errors = errors;
    return errors.length === 0;
  },
};

let validator: ValidateFunction | null = null;

/** The compiled config validator: fills defaults in place, collects every error. */
export function configValidator(): ValidateFunction {
  if (validator) return validator;
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    discriminator: true,
    // `verbose` puts the offending value and parent schema on each error: needed for
    // `(is 'value')` and for listing the allowed keys when one is unknown.
    verbose: true,
    strict: true,
    // The sinks `items` discriminate on `type` that only the branches declare.
    strictRequired: false,
  });
  addFormats(ajv);
  ajv.addKeyword(secretKeyword);
  ajv.addKeyword(regexpKeyword);
  ajv.addKeyword(uniqueByKeyword);
  ajv.addKeyword(timeZoneKeyword);
  validator = ajv.compile(configSchema());
  return validator;
}

export function pointerToSegments(pointer: string): ConfigPath {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function pointerToPath(pointer: string): string {
  return formatPath(pointerToSegments(pointer));
}

/** `'abc'`, `5`, `null`, `an object`: short and single-line. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    // A URL may carry credentials (user-info, `apikey=`, a token in the path): never echo them.
    const shown = redactUrls(value);
    const s = shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
    return `'${JSON.stringify(s).slice(1, -1)}'`;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : String(typeof value);
}

/** The closest of `candidates` to `word`, if it is a plausible typo of it. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance: edits plus adjacent swaps, the usual typos ('hots'). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(at(i, j), at(i - 2, j - 2) + 1);
    }
  }
  return at(a.length, b.length);
}

export interface ConfigProblem {
  path: ConfigPath;
  message: string;
  /** Present when the value may be shown: never for secrets. */
  value?: { shown: unknown };
}

/**
 * Whether an error arose at or inside a secret key. Decided from the schema path, not from the
 * error's `parentSchema`, which Ajv leaves out for custom keywords such as `secret` itself.
 */
function withinSecret(root: JsonSchema, schemaPath: string): boolean {
  let node: unknown = root;
  for (const seg of pointerToSegments(schemaPath.replace(/^#/, ''))) {
    if (isSecretSchema(node)) return true;
    node = isObject(node) || Array.isArray(node) ? (node as Record<string | number, unknown>)[seg] : undefined;
  }
  return isSecretSchema(node);
}

/** One Ajv error as a problem at the path of the key concerned. */
export function problemFromAjv(err: ErrorObject): ConfigProblem {
  const problem = describeAjvError(err);
  // The one gate for values: whatever the keyword, nothing from a secret key is shown.
  if (err.keyword === 'secret' || withinSecret(configSchema(), err.schemaPath)) return { path: problem.path, message: problem.message };
  return problem;
}

function describeAjvError(err: ErrorObject): ConfigProblem {
  const path = pointerToSegments(err.instancePath);
  const params = err.params as Record<string, unknown>;
  const parentSchema = (err.parentSchema ?? {}) as JsonSchema;
  const value = { shown: err.data };
  switch (err.keyword) {
    case 'required':
      return { path: [...path, String(params['missingProperty'])], message: 'is required' };
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const allowed = Object.keys((parentSchema['properties'] as JsonSchema | undefined) ?? {});
      const guess = closest(key, allowed);
      return { path: [...path, key], message: guess ? `unknown key (did you mean '${guess}'?)` : `unknown key (allowed: ${allowed.join(', ')})` };
    }
    case 'discriminator': {
      const tag = String(params['tag']);
      if (params['tagValue'] === undefined) return { path: [...path, tag], message: 'is required' };
      if (params['error'] === 'tag') return { path: [...path, tag], message: 'must be a string', value: { shown: params['tagValue'] } };
      const branches = (parentSchema['oneOf'] as JsonSchema[] | undefined) ?? [];
      const types = branches.map((b) => String((b['properties'] as Record<string, JsonSchema>)[tag]?.['const']));
      return { path: [...path, tag], message: `must be one of ${types.join(', ')}`, value: { shown: params['tagValue'] } };
    }
    case 'enum':
      return { path, message: `must be one of ${(params['allowedValues'] as unknown[]).join(', ')}`, value };
    case 'minLength':
    case 'minItems':
      return { path, message: params['limit'] === 1 ? 'must not be empty' : err.message ?? err.keyword, value };
    case 'uniqueItems': {
      // Ajv reports "items ## j and i are identical" with i < j: point at the repeat.
      const [i, j] = [Number(params['i']), Number(params['j'])].sort((x, y) => x - y) as [number, number];
      const items = Array.isArray(err.data) ? err.data : [];
      return { path: [...path, j], message: `duplicates ${formatPath([...path, i])}`, value: { shown: items[j] } };
    }
    case 'type':
      // `(is an object)` rather than the object itself.
      if (typeof err.data === 'object' && err.data !== null) return { path, message: `${err.message ?? 'has the wrong type'} (is ${describeValue(err.data)})` };
      return { path, message: err.message ?? err.keyword, value };
    case 'uniqueBy':
      // Ajv's `verbose` sets `data` to the whole array; the repeated value travels in params.
      return { path, message: err.message ?? err.keyword, value: { shown: params['value'] } };
    default:
      return { path, message: err.message ?? err.keyword, value };
  }
}

/**
 * Where the tokens the bridge itself accepts live: whoever holds one of these is let in (as an
 * agent, a supervisor, an API client, Prometheus), or, for `tokenSecret`, can mint such tokens.
 * Credentials the bridge sends to others (webhook, NATS, AMI, ARI) are chosen by those systems
 * and are not checked here.
 */
function acceptedTokens(doc: unknown): Array<{ path: ConfigPath; token: string }> {
  if (!isObject(doc)) return [];
  const out: Array<{ path: ConfigPath; token: string }> = [];
  const add = (token: unknown, path: ConfigPath) => {
    if (typeof token === 'string') out.push({ path, token });
  };
  const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
  list(doc['agents']).forEach((a, i) => isObject(a) && add(a['token'], ['agents', i, 'token']));
  const http = doc['http'];
  if (isObject(http)) {
    add(http['tokenSecret'], ['http', 'tokenSecret']);
    add(http['metricsToken'], ['http', 'metricsToken']);
    list(http['supervisors']).forEach((s, i) => isObject(s) && add(s['token'], ['http', 'supervisors', i, 'token']));
  }
  const api = doc['api'];
  if (isObject(api)) list(api['tokens']).forEach((t, i) => isObject(t) && add(t['token'], ['api', 'tokens', i, 'token']));
  return out;
}

/** The least a token (or the key that signs tokens) must be worth: as hard to guess as a random 128-bit key. */
export const MIN_TOKEN_BITS = 128;
/** Fewer distinct characters than this is not a random token, whatever its length ('aaaa…', '1010…'). */
export const MIN_TOKEN_DISTINCT = 8;
export const MAKE_A_TOKEN = 'openssl rand -hex 32';

/**
 * An estimate, in bits, of how hard a token is to guess, assuming its characters were drawn at
 * random (a person's password is worth far less than this says; that is why `openssl rand` is
 * asked for). The alphabet is the union of the character classes the token uses: only digits
 * 10, only hex digits of one case 16, else lower case 26 + upper case 26 + digits 10 + anything
 * else 33. The length counted is the token's shortest period, so a repeated phrase
 * ('password1password1…') is worth one copy of it. A 32-character hex string scores 128.
 */
export function tokenBits(token: string): number {
  const chars = [...token];
  const length = shortestPeriod(chars);
  let alphabet: number;
  if (/^[0-9]+$/.test(token)) alphabet = 10;
  else if (/^[0-9a-f]+$/.test(token) || /^[0-9A-F]+$/.test(token)) alphabet = 16;
  else {
    alphabet = 0;
    if (/[a-z]/.test(token)) alphabet += 26;
    if (/[A-Z]/.test(token)) alphabet += 26;
    if (/[0-9]/.test(token)) alphabet += 10;
    if (/[^A-Za-z0-9]/.test(token)) alphabet += 33;
  }
  return length * Math.log2(alphabet);
}

/** The length of the shortest prefix whose repetition makes the whole string (its length if none). */
function shortestPeriod(chars: readonly string[]): number {
  // KMP failure function: the longest proper prefix that is also a suffix.
  const fail = new Array<number>(chars.length).fill(0);
  for (let i = 1, k = 0; i < chars.length; i++) {
    while (k > 0 && chars[i] !== chars[k]) k = fail[k - 1] ?? 0;
    if (chars[i] === chars[k]) k++;
    fail[i] = k;
  }
  const period = chars.length - (fail[chars.length - 1] ?? 0);
  return period > 0 && chars.length % period === 0 ? period : chars.length;
}

/** Why a token is too weak to accept, or null. Never quotes the token. */
export function tokenWeakness(token: string): string | null {
  const bits = Math.floor(tokenBits(token));
  if (bits < MIN_TOKEN_BITS) return `is too weak: about ${bits} bits of entropy, at least ${MIN_TOKEN_BITS} needed (32 random hex characters); make one with \`${MAKE_A_TOKEN}\``;
  const distinct = new Set(token).size;
  if (distinct < MIN_TOKEN_DISTINCT) return `is too weak: only ${distinct} distinct characters (a random token has many more); make one with \`${MAKE_A_TOKEN}\``;
  return null;
}

/**
 * Every accepted token is strong, and no two are the same: with a shared token, whoever is
 * looked up last wins (an agent whose token equals a supervisor's would watch every call).
 * Problems name config paths only, never a token. Expects resolved secrets; a secret that
 * could not be resolved is skipped (already reported).
 */
export function tokenProblems(doc: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const first = new Map<string, ConfigPath>();
  for (const { path, token } of acceptedTokens(doc)) {
    const weakness = tokenWeakness(token);
    if (weakness) problems.push({ path, message: weakness });
    const seen = first.get(token);
    if (seen) problems.push({ path, message: `is the same token as ${formatPath(seen)}: every token must be different (each one says who is asking)` });
    else first.set(token, path);
  }
  return problems;
}

/** http.trustedProxies entries that are neither an IP address nor a subnet (the schema's pattern is loose). */
export function trustedProxyProblems(doc: unknown): ConfigProblem[] {
  const http = isObject(doc) ? doc['http'] : undefined;
  const list = isObject(http) ? http['trustedProxies'] : undefined;
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry, i): ConfigProblem[] => {
    if (typeof entry !== 'string') return [];
    const subnet = parseSubnet(entry);
    return 'problem' in subnet ? [{ path: ['http', 'trustedProxies', i], message: `${subnet.problem} (is '${entry}')` }] : [];
  });
}
