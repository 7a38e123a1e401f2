// Secrets by reference. A secret key in the config takes a literal string, `{ env: VAR }` or
// `{ file: /path }`; after loading it is always the resolved string. The schema marks such keys
// with the `secret` keyword, so validation, env overrides, resolution and redaction all find
// them by walking the schema, and a sink adding a token is adding `token: secretSchema(...)`.
//
// This module imports nothing from the sink registry: sink schemas import `secretSchema` from
// here, and the registry is imported by the config schema, so anything else would be a cycle.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { JsonSchema } from './json-schema.js';

/** What a secret key may hold in the file, before loading. */
export type SecretRef = string | { env: string } | { file: string };

export const SECRET_MESSAGE = 'must be a string or {env}/{file} reference';
export const REDACTED = '[redacted]';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Schema of a secret key. The `secret` keyword (see validate.ts) checks the three forms. */
export function secretSchema(description: string): JsonSchema {
  return {
    secret: true,
    description: `${description} A string, { env: VAR_NAME } or { file: /path/to/file } (trailing newline dropped; a relative path is relative to the config file). Never logged.`,
  };
}

export function isSecretSchema(schema: unknown): boolean {
  return isObject(schema) && schema['secret'] === true;
}

/** The reference a value stands for, or null when it is none of the three accepted forms. */
export function parseSecretRef(value: unknown): SecretRef | null {
  if (typeof value === 'string') return value.length > 0 ? value : null;
  if (!isObject(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const env = value['env'];
  if (keys[0] === 'env' && typeof env === 'string' && ENV_NAME.test(env)) return { env };
  const file = value['file'];
  if (keys[0] === 'file' && typeof file === 'string' && file.length > 0) return { file };
  return null;
}

/** `warning`: the secret was read, but something about it deserves the operator's attention. */
export type SecretResult = { ok: true; value: string; warning?: string } | { ok: false; problem: string };

/**
 * Resolves a reference. A problem names the variable or file, never a value: the messages end up
 * in logs and terminals.
 */
export function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv, baseDir: string): SecretResult {
  if (typeof ref === 'string') return { ok: true, value: ref };
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) return { ok: false, problem: `environment variable ${ref.env} is not set` };
    if (value === '') return { ok: false, problem: `environment variable ${ref.env} is empty` };
    return { ok: true, value };
  }
  const path = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, problem: `cannot read secret file ${path} (${fileErrorReason(err)})` };
  }
  // `echo secret > file` and editors add a final newline that is not part of the secret.
  const value = text.replace(/[\r\n]+$/, '');
  if (value === '') return { ok: false, problem: `secret file ${path} is empty` };
  const warning = loosePermissions(path);
  return warning ? { ok: true, value, warning } : { ok: true, value };
}

/**
 * Why a secret file is readable by more than its owner, or null. Only a warning: the file may be
 * shared on purpose (a group the daemon runs in), but every other local user reading the AMI
 * password or a supervisor token is rarely meant.
 */
export function loosePermissions(path: string): string | null {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return null; // it was just read: a race with its removal is not worth a second message
  }
  const readers = [mode & 0o040 ? 'its group' : '', mode & 0o004 ? 'every user' : ''].filter(Boolean);
  if (readers.length === 0) return null;
  return `secret file ${path} is readable by ${readers.join(' and ')} (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${path} (owned by the daemon's user)`;
}

export function fileErrorReason(err: unknown): string {
  const code = isObject(err) && typeof err['code'] === 'string' ? err['code'] : undefined;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
