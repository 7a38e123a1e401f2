// Loading the configuration: YAML file -> env overrides -> schema validation with defaults ->
// secret resolution. Every problem found on the way is collected and thrown at once as a
// ConfigError, so an operator fixes the file in one pass instead of one restart per typo.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { applyEnvOverrides } from './env.js';
import { SINKS } from '../sinks/registry.js';
import { compileText, compileUrl, TemplateError } from '../template/index.js';
import { ConfigError } from './errors.js';
import { configSchema, type BridgeConfig } from './schema.js';
import { fileErrorReason, isObject, parseSecretRef, REDACTED, resolveSecret } from '../util/secret.js';
import { configValidator, describeValue, problemFromAjv, tokenProblems, trustedProxyProblems, type ConfigProblem } from './validate.js';
import { envSettings, formatPath, mapSecrets, type ConfigPath, type EnvKind } from './walk.js';
import { redactUrlsDeep } from '../util/redact.js';

export { ConfigError, EXIT_CONFIG } from './errors.js';
export { configSchema } from './schema.js';
export type { AgentConfig, BridgeConfig, CallsConfig, LogConfig, LogLevel, PbxConfig, SinkConfig } from './schema.js';
// Sinks take secretSchema() from ./secret.js directly: importing this module from a sink would be a cycle.
export type { SecretRef } from '../util/secret.js';

export const SYSTEM_CONFIG_PATH = '/etc/crm-bridge/config.yaml';

/**
 * Which config file to use: `explicit` if given (even if it does not exist, so that loading it
 * reports that), else ./config.yaml, else /etc/crm-bridge/config.yaml, else null.
 */
export function findConfigPath(explicit?: string, cwd: string = process.cwd()): string | null {
  if (explicit) return resolve(cwd, explicit);
  const local = join(cwd, 'config.yaml');
  if (existsSync(local)) return local;
  if (existsSync(SYSTEM_CONFIG_PATH)) return SYSTEM_CONFIG_PATH;
  return null;
}

export interface LoadOptions {
  /**
   * For a command that never connects to the PBX (`crm-bridge replay`): pbx.ami and pbx.ari
   * become optional, and their secrets are not read (they come back empty), so neither the
   * secret file nor the variable has to be there. Every other check applies.
   */
  offline?: boolean;
}

/**
 * Reads, overrides from `env`, validates and resolves a config file. Throws a ConfigError
 * listing every problem; never puts a secret's value in it.
 */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): BridgeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`${path}: cannot read the config file (${fileErrorReason(err)})`]);
  }
  return finish(parseYaml(path, text), { source: path, env, baseDir: dirname(resolve(path)), applyEnv: true, offline: opts.offline ?? false });
}

/** What loading noticed without refusing the config (secret files others can read), per loaded config. */
const WARNINGS = new WeakMap<BridgeConfig, string[]>();

/** The warnings found while loading `config` (`path: what`), for the caller to show or log. */
export function configWarnings(config: BridgeConfig): string[] {
  return WARNINGS.get(config) ?? [];
}

/** Overrides for defaultConfig(): nested keys merge, lists replace. */
export type ConfigOverrides = DeepPartial<BridgeConfig>;
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

// Stands in for empty AMI credentials while validating a default config (see defaultConfig).
const NO_CREDENTIAL = '\u0000unset';

/**
 * A valid config without a file, for `crm-bridge replay` and tests: pbx.name 'pbx1', default
 * calls/agents/log, one log sink on stdout. Unlike a file, it may leave the AMI username and
 * secret empty — a replay server accepts any login. Throws a ConfigError for bad overrides.
 */
export function defaultConfig(overrides: ConfigOverrides = {}): BridgeConfig {
  const doc = merge({ pbx: { name: 'pbx1', ami: { username: '', secret: '' } } }, structuredClone(overrides));
  const pbx = doc['pbx'];
  const ami = isObject(pbx) && isObject(pbx['ami']) ? pbx['ami'] : {};
  const blank = (['username', 'secret'] as const).filter((k) => ami[k] === '');
  for (const key of blank) ami[key] = NO_CREDENTIAL;
  const config = finish(doc, { source: 'defaultConfig()', env: {}, baseDir: process.cwd(), applyEnv: false, offline: false });
  for (const key of blank) config.pbx.ami![key] = '';
  return config;
}

/**
 * The config with every secret replaced by '[redacted]', and the credentials inside URLs
 * (user-info, `apikey=`, a token in the path: see webhook/redact.ts): safe to log at startup.
 */
export function describeConfig(config: BridgeConfig): BridgeConfig {
  const copy = structuredClone(config);
  mapSecrets(configSchema(), copy, () => REDACTED);
  return redactUrlsDeep(copy);
}

/** Every CRM_BRIDGE_CONFIG_* variable, with the key it sets (for docs and `--help`). */
export function configEnvVars(): { name: string; key: string; kind: EnvKind }[] {
  return envSettings(configSchema()).map((s) => ({ name: s.name, key: formatPath(s.path), kind: s.kind }));
}

function parseYaml(path: string, text: string): unknown {
  const lineCounter = new LineCounter();
  // prettyErrors would append the offending source line to the message — possibly a secret.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      path,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `${path}:${line}:${col}: ${e.message}`;
      }),
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw new ConfigError(path, [`${path}: ${err instanceof Error ? err.message : String(err)}`]);
  }
}

interface FinishOptions {
  /** For messages: the file, or what stands in for one. */
  source: string;
  env: NodeJS.ProcessEnv;
  /** Relative `{ file }` secrets are resolved from here. */
  baseDir: string;
  applyEnv: boolean;
  offline: boolean;
}

function finish(parsed: unknown, opts: FinishOptions): BridgeConfig {
  const schema = configSchema();
  // An empty file parses as null: treat it as an empty mapping, so the errors name the keys.
  const doc = parsed ?? {};
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  let origins = new Map<string, string>();
  if (opts.applyEnv) {
    // Unknown variables are reported even when the file's top level is not a mapping.
    const env = applyEnvOverrides(schema, isObject(doc) ? doc : {}, opts.env);
    problems.push(...env.problems);
    origins = env.origins;
  }
  const validate = configValidator();
  const shapeOk = validate(doc);
  if (!shapeOk) problems.push(...(validate.errors ?? []).map(problemFromAjv));
  // Resolved even when other keys are wrong, so a missing secret file is reported in the same pass.
  mapSecrets(schema, doc, (value, path) => {
    const ref = parseSecretRef(value);
    if (!ref) return value; // shape already reported by the schema
    if (opts.offline && path[0] === 'pbx') return '';
    const result = resolveSecret(ref, opts.env, opts.baseDir);
    if (result.ok) {
      if (result.warning) warnings.push(`${formatPath(path)}: ${result.warning}`);
      return result.value;
    }
    problems.push({ path, message: result.problem });
    return value;
  });
  // Templates and option combinations, in the same pass as the shape: an operator fixing a typo
  // should not find a broken template only on the next run. A key the schema or its secret has
  // already refused is not checked again (its value is not what the check expects).
  if (shapeOk && problems.length === 0) problems.push(...pbxProblems(doc, opts.offline));
  problems.push(...notUnder(problems, [...sinkProblems(doc), ...screenpopProblems(doc), ...trustedProxyProblems(doc)]));
  // Weak and shared tokens, as soon as the secrets they come from are read.
  if (shapeOk) problems.push(...tokenProblems(doc));
  if (problems.length > 0) {
    const lines = problems.map((p) => formatProblem(p, origins));
    throw new ConfigError(opts.source, [...new Set(lines)]);
  }
  // A delivery node is named after its source (logs, sink context); it has no PBX of its own.
  const source = (doc as { source?: { name: string } }).source;
  if (source) (doc as Record<string, unknown>)['pbx'] = { name: source.name };
  WARNINGS.set(doc as BridgeConfig, warnings);
  return doc as BridgeConfig;
}

/** `pbx.ami.port: must be <= 65535 (is 70000, from CRM_BRIDGE_CONFIG_PBX_AMI_PORT)` */
function formatProblem(problem: ConfigProblem, origins: ReadonlyMap<string, string>): string {
  const key = formatPath(problem.path);
  let from: string | undefined;
  for (const [setKey, name] of origins) {
    if (key === setKey || key.startsWith(`${setKey}[`) || key.startsWith(`${setKey}.`)) from = name;
  }
  const details = [problem.value ? `is ${describeValue(problem.value.shown)}` : '', from ? `from ${from}` : ''].filter((d) => d !== '');
  return `${key}: ${problem.message}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
}

function merge(base: Record<string, unknown>, over: unknown): Record<string, unknown> {
  if (!isObject(over)) return base;
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = base[key];
    base[key] = isObject(current) && isObject(value) ? merge(current, value) : value;
  }
  return base;
}

/** A bridge next to a PBX (pbx: AMI, ARI or both; offline, neither is needed), or a delivery node (source), not both. */
function pbxProblems(doc: unknown, offline: boolean): ConfigProblem[] {
  const pbx = isObject(doc) ? doc['pbx'] : undefined;
  const source = isObject(doc) ? doc['source'] : undefined;
  if (pbx === undefined && source === undefined) return [{ path: ['pbx'], message: 'is required (or source, for a delivery node reading a NATS stream)' }];
  if (pbx !== undefined && source !== undefined) return [{ path: ['source'], message: 'a config has pbx (a bridge next to a PBX) or source (a delivery node), not both' }];
  if (source !== undefined && isObject(doc) && doc['api'] !== undefined) return [{ path: ['api'], message: 'needs a PBX connection (pbx): a delivery node cannot place calls or pause agents' }];
  if (!offline && isObject(pbx) && !pbx['ami'] && !pbx['ari']) {
    return [{ path: ['pbx'], message: 'needs ami (the manager interface) or ari (the REST interface), or both' }];
  }
  return [];
}

/** The `found` problems at no key that is, contains or lies inside one of `known`'s. */
function notUnder(known: readonly ConfigProblem[], found: readonly ConfigProblem[]): ConfigProblem[] {
  const prefix = (a: ConfigPath, b: ConfigPath) => a.length <= b.length && a.every((seg, i) => seg === b[i]);
  return found.filter((p) => !known.some((k) => prefix(k.path, p.path) || prefix(p.path, k.path)));
}

/** What each sink's own validate() finds (templates, option combinations), with config paths. */
function sinkProblems(doc: unknown): ConfigProblem[] {
  const sinks = isObject(doc) && Array.isArray(doc['sinks']) ? (doc['sinks'] as unknown[]) : [];
  const problems: ConfigProblem[] = [];
  sinks.forEach((entry, i) => {
    const type = isObject(entry) ? entry['type'] : undefined;
    const def = typeof type === 'string' ? SINKS[type] : undefined;
    // The entry may break the schema (already reported): a check that trips over it says nothing more.
    let found: Array<{ path: Array<string | number>; message: string }> = [];
    try {
      found = isObject(entry) ? (def?.validate?.(entry) ?? []) : [];
    } catch {
      found = [{ path: [], message: 'cannot be checked further until the problems above are fixed' }];
    }
    for (const p of found) problems.push({ path: ['sinks', i, ...p.path], message: p.message });
  });
  return problems;
}

/** Screen-pop rules: templates name known variables; each target has what it needs. */
function screenpopProblems(doc: unknown): ConfigProblem[] {
  const rules = isObject(doc) && Array.isArray(doc['screenpop']) ? (doc['screenpop'] as Array<Record<string, unknown>>) : [];
  const problems: ConfigProblem[] = [];
  const http = isObject(doc) ? doc['http'] : undefined;
  if (rules.length > 0 && !http) problems.push({ path: ['screenpop'], message: 'needs http.listen: the agent page and its event stream are served by the HTTP server' });
  rules.forEach((rule, i) => {
    const target = rule['target'];
    if (target === 'clipboard' ? typeof rule['text'] !== 'string' : typeof rule['url'] !== 'string') {
      problems.push({ path: ['screenpop', i], message: target === 'clipboard' ? 'target clipboard needs text' : `target ${String(target)} needs url` });
    }
    for (const key of ['url', 'text'] as const) {
      const value = rule[key];
      if (typeof value !== 'string') continue;
      try {
        if (key === 'url') compileUrl(value);
        else compileText(value);
      } catch (err) {
        if (err instanceof TemplateError) for (const p of err.problems) problems.push({ path: ['screenpop', i, key, ...p.path], message: p.message });
        else problems.push({ path: ['screenpop', i, key], message: (err as Error).message });
      }
    }
  });
  return problems;
}
