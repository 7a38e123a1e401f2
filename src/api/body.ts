// Request bodies: read (bounded), parsed as JSON, and checked against the operation's JSON Schema
// (the very schema the OpenAPI document publishes). Every problem is reported at once, one line
// each, `field: what is wrong`.
import type { IncomingMessage } from 'node:http';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { ApiError } from './errors.js';

export const MAX_BODY_BYTES = 16 * 1024;

/** Strings with no control characters (CR/LF would end an AMI header). */
export const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]*$';

/** Friendlier words for the patterns the API's schemas use. */
const PATTERN_MESSAGES: Record<string, string> = {
  [NO_CONTROL]: 'must not contain control characters',
};

let ajv: Ajv2020 | null = null;

export function compileBodySchema(schema: Record<string, unknown>): ValidateFunction {
  ajv ??= new Ajv2020({ allErrors: true, strict: true });
  return ajv.compile(schema);
}

function field(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.length ? parts.join('.') : '(body)';
}

/** One Ajv error as `field: message`; null for errors that only repeat another one. */
export function describeError(err: ErrorObject): string | null {
  const params = err.params as Record<string, unknown>;
  // A bad property name: Ajv reports the inner failure (with `propertyName`) and a summary.
  if (err.keyword === 'propertyNames') return null;
  const name = (err as ErrorObject & { propertyName?: string }).propertyName;
  if (name !== undefined) {
    return `${field(err.instancePath, name)}: not an allowed name${err.keyword === 'pattern' ? ` (must match ${String(params['pattern'])})` : ''}`;
  }
  switch (err.keyword) {
    case 'required':
      return `${field(err.instancePath, String(params['missingProperty']))}: is required`;
    case 'additionalProperties':
      return `${field(err.instancePath, String(params['additionalProperty']))}: unknown field`;
    case 'pattern': {
      const pattern = String(params['pattern']);
      return `${field(err.instancePath)}: ${PATTERN_MESSAGES[pattern] ?? `must match ${pattern}`}`;
    }
    case 'minLength':
      return `${field(err.instancePath)}: ${params['limit'] === 1 ? 'must not be empty' : (err.message ?? 'too short')}`;
    default:
      return `${field(err.instancePath)}: ${err.message ?? err.keyword}`;
  }
}

/** Every problem with `data`, empty when it is valid. */
export function problemsOf(validate: ValidateFunction, data: unknown): string[] {
  if (validate(data)) return [];
  const lines = (validate.errors ?? []).map(describeError).filter((l): l is string => l !== null);
  return [...new Set(lines)];
}

/** Reads a JSON request body: 415 unless JSON, 413 when too large, 400 when it does not parse. */
export async function readJson(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    throw new ApiError(415, `the body must be JSON: send Content-Type: application/json (got ${type ? `'${type}'` : 'none'})`);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new ApiError(413, `the body is larger than ${limit} bytes`, undefined, { connection: 'close' });
  }
  // Events rather than `for await`: leaving an async iterator early destroys the socket, and
  // with it the 413 this function is about to send. The rest of a too-large body is drained.
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void got.push(chunk);
      req.off('data', onData);
      req.resume();
      reject(new ApiError(413, `the body is larger than ${limit} bytes`, undefined, { connection: 'close' }));
    };
    req.on('data', onData);
    req.once('end', () => resolve(got));
    req.once('error', reject);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'the body is empty: expected a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError(400, `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Parses and validates, or throws a 400 listing every problem. */
export async function readValidBody<T>(req: IncomingMessage, validate: ValidateFunction): Promise<T> {
  const data = await readJson(req);
  const problems = problemsOf(validate, data);
  if (problems.length) throw new ApiError(400, `invalid request: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, problems);
  return data as T;
}
