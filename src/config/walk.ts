// Walking the config schema, alone or alongside a config value. Env override names, secret
// resolution and redaction are all derived from the schema this way, so a key added to the
// schema gets them without being listed anywhere else.
import type { JsonSchema } from '../util/json-schema.js';
import { isObject, isSecretSchema } from '../util/secret.js';

export type ConfigPath = (string | number)[];

/** `['sinks', 0, 'path']` -> `sinks[0].path`, the form every error message uses. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || '(root)';
}

function properties(schema: JsonSchema): Record<string, JsonSchema> {
  const props = schema['properties'];
  return isObject(props) ? (props as Record<string, JsonSchema>) : {};
}

/** The `oneOf` branch a discriminated value selects, if the schema is discriminated. */
function branchFor(schema: JsonSchema, data: Record<string, unknown>): JsonSchema | undefined {
  const discriminator = schema['discriminator'];
  const oneOf = schema['oneOf'];
  if (!isObject(discriminator) || !Array.isArray(oneOf)) return undefined;
  const tag = discriminator['propertyName'];
  if (typeof tag !== 'string') return undefined;
  return (oneOf as JsonSchema[]).find((b) => properties(b)[tag]?.['const'] === data[tag]);
}

/**
 * Replaces, in place, the value of every secret key present in `data` by `fn(value, path)`.
 * Follows object properties, array items and discriminated `oneOf` branches (sinks).
 */
export function mapSecrets(schema: JsonSchema, data: unknown, fn: (value: unknown, path: ConfigPath) => unknown, path: ConfigPath = []): void {
  if (Array.isArray(data)) {
    const items = schema['items'];
    if (!isObject(items)) return;
    data.forEach((item, i) => {
      if (isSecretSchema(items)) data[i] = fn(item, [...path, i]);
      else mapSecrets(items, item, fn, [...path, i]);
    });
    return;
  }
  if (!isObject(data)) return;
  for (const [key, sub] of Object.entries(properties(schema))) {
    if (!(key in data)) continue;
    if (isSecretSchema(sub)) data[key] = fn(data[key], [...path, key]);
    else mapSecrets(sub, data[key], fn, [...path, key]);
  }
  const branch = branchFor(schema, data);
  if (branch) mapSecrets(branch, data, fn, path);
}

export type EnvKind = 'string' | 'number' | 'integer' | 'boolean' | 'string[]';

export interface EnvSetting {
  /** `CRM_BRIDGE_CONFIG_PBX_AMI_HOST` */
  name: string;
  /** `['pbx', 'ami', 'host']` */
  path: string[];
  kind: EnvKind;
}

export const ENV_PREFIX = 'CRM_BRIDGE_CONFIG_';

/** `inboundContexts` -> `INBOUND_CONTEXTS`. */
export function upperSnake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
}

function leafKind(schema: JsonSchema): EnvKind | null {
  if (isSecretSchema(schema)) return 'string';
  const type = schema['type'];
  if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean') return type;
  const items = schema['items'];
  if (type === 'array' && isObject(items) && items['type'] === 'string') return 'string[]';
  return null;
}

/**
 * Every key settable from the environment: scalar and string-array leaves reached through
 * object properties only. Lists of objects (agents, sinks) have no stable key path, so they
 * are left to the file.
 */
export function envSettings(schema: JsonSchema): EnvSetting[] {
  const out: EnvSetting[] = [];
  const visit = (node: JsonSchema, path: string[]): void => {
    for (const [key, sub] of Object.entries(properties(node))) {
      const subPath = [...path, key];
      const kind = leafKind(sub);
      if (kind) out.push({ name: ENV_PREFIX + subPath.map(upperSnake).join('_'), path: subPath, kind });
      else if (sub['type'] === 'object') visit(sub, subPath);
    }
  };
  visit(schema, []);
  const seen = new Map<string, string>();
  for (const s of out) {
    const other = seen.get(s.name);
    // A schema bug, not a user error: two keys would share one variable.
    if (other) throw new Error(`config schema: ${formatPath(s.path)} and ${other} both map to ${s.name}`);
    seen.set(s.name, formatPath(s.path));
  }
  return out;
}

/**
 * Every key path in the schema, list items as `[]` and sink types as `sinks[type=log]`
 * (`pbx.ami.host`, `agents[].id`, `sinks[type=log].path`); used to check that the reference
 * config.yaml documents every key.
 */
export function schemaKeys(schema: JsonSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, sub] of Object.entries(properties(schema))) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push(path);
    out.push(...schemaKeys(sub, path));
    const items = sub['items'];
    if (isObject(items)) {
      out.push(...schemaKeys(items, `${path}[]`));
      const discriminator = items['discriminator'];
      const oneOf = items['oneOf'];
      if (isObject(discriminator) && Array.isArray(oneOf)) {
        const tag = String(discriminator['propertyName']);
        for (const branch of oneOf as JsonSchema[]) {
          out.push(...schemaKeys(branch, `${path}[${tag}=${String(properties(branch)[tag]?.['const'])}]`));
        }
      }
    }
  }
  return out;
}
