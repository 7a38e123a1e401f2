// Environment overrides, zigbee2mqtt-style: CRM_BRIDGE_CONFIG_<KEY_PATH> sets one key, with the
// names derived from the schema (walk.ts). Values are only coerced here; whether they are valid
// is left to the schema, so a bad value is reported like any other, naming its variable.
import type { JsonSchema } from '../util/json-schema.js';
import { isObject } from '../util/secret.js';
import { closest, type ConfigProblem } from './validate.js';
import { ENV_PREFIX, envSettings, formatPath, type EnvKind, type EnvSetting } from './walk.js';

export interface EnvResult {
  problems: ConfigProblem[];
  /** Formatted key path (`pbx.ami.port`) -> the variable that set it. */
  origins: Map<string, string>;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

type Coerced = { ok: true; value: unknown } | { ok: false; message: string };

// Only string-list leaves can fail to coerce, and those are never secrets: showing `raw` is safe.

function coerce(raw: string, kind: EnvKind): Coerced {
  const text = raw.trim();
  switch (kind) {
    case 'string':
      return { ok: true, value: raw };
    case 'number':
    case 'integer':
      // Not a number: keep the text, so the schema reports "must be integer (is 'abc')".
      return { ok: true, value: NUMBER.test(text) ? Number(text) : raw };
    case 'boolean': {
      const lower = text.toLowerCase();
      return { ok: true, value: lower === 'true' ? true : lower === 'false' ? false : raw };
    }
    case 'string[]':
      if (text.startsWith('[')) {
        try {
          return { ok: true, value: JSON.parse(text) as unknown };
        } catch {
          return { ok: false, message: 'must be a JSON array (["a","b"]) or a comma-separated list' };
        }
      }
      return { ok: true, value: text.split(',').map((s) => s.trim()).filter((s) => s !== '') };
  }
}

/** Sets `path` in `doc`, creating missing objects; false when something in the way is not an object. */
function setPath(doc: Record<string, unknown>, path: readonly string[], value: unknown): boolean {
  let node = doc;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node = node[key] = {};
    else if (isObject(next)) node = next;
    // e.g. `pbx: 5` in the file: the schema reports that; the override has nowhere to go.
    else return false;
  }
  node[path[path.length - 1] as string] = value;
  return true;
}

/**
 * Applies every CRM_BRIDGE_CONFIG_* variable to `doc` (in place). An empty variable counts as
 * unset (systemd `Environment=NAME=` clears). An unknown name is a problem: a typo must not be
 * silently ignored.
 */
export function applyEnvOverrides(schema: JsonSchema, doc: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvResult {
  const settings = new Map<string, EnvSetting>(envSettings(schema).map((s) => [s.name, s]));
  const problems: ConfigProblem[] = [];
  const origins = new Map<string, string>();
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX)) continue;
    const setting = settings.get(name);
    if (!setting) {
      // Compared without the common prefix, which would make any two names look alike.
      const suffix = closest(name.slice(ENV_PREFIX.length), [...settings.keys()].map((n) => n.slice(ENV_PREFIX.length)));
      const guess = suffix && ENV_PREFIX + suffix;
      problems.push({ path: [name], message: guess ? `unknown setting (did you mean ${guess}?)` : 'unknown setting (see config.yaml for the keys that can be set)' });
      continue;
    }
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const key = formatPath(setting.path);
    origins.set(key, name);
    const coerced = coerce(raw, setting.kind);
    if (!coerced.ok) problems.push({ path: setting.path, message: coerced.message, value: { shown: raw } });
    else setPath(doc, setting.path, coerced.value);
  }
  return { problems, origins };
}
