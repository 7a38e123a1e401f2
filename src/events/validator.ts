// The event contract's JSON Schema (schema/events.v1.json, shipped in the package) compiled once,
// and its errors turned into one line per problem: `instancePath: message`.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import type { BridgeEvent } from './types.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the
// module object at type level and the plugin function (which carries `.default`) at runtime.
const addFormats = addFormatsPlugin.default;

// Relative to this module, so the same line finds the file from src/ (tests) and dist/ (package).
const SCHEMA_URL = new URL('../../schema/events.v1.json', import.meta.url);

/** The parsed JSON Schema of the v1 contract, as shipped in `schema/events.v1.json`. */
export const eventSchema: Readonly<Record<string, unknown>> = JSON.parse(readFileSync(SCHEMA_URL, 'utf8'));

interface Compiled {
  /** The whole schema. */
  validate: ValidateFunction;
  /** Each event type's shape ($defs/<type>), by type. */
  shapes: ReadonlyMap<string, ValidateFunction>;
}

let validator: Compiled | undefined;

function compiled(): Compiled {
  if (!validator) {
    const ajv = new Ajv2020({
      allErrors: true,
      strict: true,
      // `["string", "null"]` is how the schema says "a value or null"; standard JSON Schema.
      allowUnionTypes: true,
    });
    addFormats(ajv, ['date-time']);
    const validate = ajv.compile(eventSchema);
    const types = ((eventSchema.properties as { type: { enum: string[] } }).type.enum);
    const shapes = new Map<string, ValidateFunction>();
    for (const t of types) {
      const shape = ajv.getSchema(`${String(eventSchema.$id)}#/$defs/${t}`);
      if (!shape) throw new Error(`schema/events.v1.json has no $defs/${t}`);
      shapes.set(t, shape);
    }
    validator = { validate, shapes };
  }
  return validator;
}

/**
 * Compiles the schema now (≈ 0.4 s on a small machine) rather than at the first event, where it
 * would hold up the first call's events behind it. The bridge calls it before its source connects.
 */
export function prepareValidator(): void {
  compiled();
}

/**
 * Checks `e` against the v1 contract. Returns one line per problem (empty = valid), each
 * `instancePath: message`, the root being `/`.
 *
 * An event whose `type` is one of the contract's is valid exactly when it has that type's shape:
 * the schema's other if/then rows do not apply to it (each `if` is its `type` being another
 * const). So that shape alone is checked first, one branch instead of every type's `if` (this
 * runs for every event); only an event it refuses is checked by the whole schema, whose errors
 * are the ones reported (test/validator-shapes.test.ts compares the two).
 */
export function validateEvent(e: unknown): string[] {
  const { validate, shapes } = compiled();
  const type = typeof e === 'object' && e !== null && !Array.isArray(e) ? (e as { type?: unknown }).type : undefined;
  const shape = typeof type === 'string' ? shapes.get(type) : undefined;
  if (shape?.(e)) return [];
  return validateWhole(e);
}

/** validateEvent without the per-type shortcut: the whole schema, always (for tests). */
export function validateWhole(e: unknown): string[] {
  const { validate } = compiled();
  if (validate(e)) return [];
  return tidy(validate.errors ?? []).map(describe);
}

/** Thrown by assertValidEvent: the event's type and every problem found. */
export class EventValidationError extends Error {
  readonly eventType: string;
  readonly problems: readonly string[];

  constructor(eventType: string, problems: readonly string[]) {
    super(`invalid ${eventType} event: ${problems.join('; ')}`);
    this.name = 'EventValidationError';
    this.eventType = eventType;
    this.problems = problems;
  }
}

/** Throws an EventValidationError naming the event type and listing every problem, unless `e` is valid. */
export function assertValidEvent(e: unknown): asserts e is BridgeEvent {
  const problems = validateEvent(e);
  if (problems.length === 0) return;
  const type = typeof e === 'object' && e !== null && 'type' in e && typeof e.type === 'string' ? e.type : '(untyped)';
  throw new EventValidationError(type, problems);
}

function describe(err: ErrorObject): string {
  const path = err.instancePath === '' ? '/' : err.instancePath;
  const p = err.params as Record<string, unknown>;
  if (err.keyword === 'additionalProperties') return `${path}: must NOT have additional property '${String(p.additionalProperty)}'`;
  if (err.keyword === 'enum' && Array.isArray(p.allowedValues)) return `${path}: must be one of ${p.allowedValues.join(', ')}`;
  if (err.keyword === 'type' && Array.isArray(p.type)) return `${path}: must be ${p.type.join(' or ')}`;
  if (err.keyword === 'const') return `${path}: must be ${JSON.stringify(p.allowedValue)}`;
  return `${path}: ${err.message ?? err.keyword}`;
}

/**
 * A nullable object is `anyOf: [{ $ref }, { type: null }]`, which Ajv reports as three errors
 * (the object's, "must be null", "must match a schema in anyOf"). Keep what the value got wrong:
 * the object's errors when it is an object, else one "must be object or null".
 */
function tidy(errors: readonly ErrorObject[]): ErrorObject[] {
  const drop = new Set<ErrorObject>();
  const replace = new Map<ErrorObject, ErrorObject>();
  for (const any of errors) {
    if (any.keyword !== 'anyOf') continue;
    const here = errors.filter((e) => e.keyword === 'type' && e.instancePath === any.instancePath);
    const nullErr = here.find((e) => e.schemaPath === `${any.schemaPath}/1/type` && (e.params as { type?: unknown }).type === 'null');
    if (!nullErr) continue;
    drop.add(any).add(nullErr);
    // The object branch is a $ref, so its error's schemaPath is the referenced schema's.
    const wrongType = here.find((e) => e !== nullErr);
    if (wrongType) {
      const type = String((wrongType.params as { type?: unknown }).type);
      replace.set(wrongType, { ...wrongType, message: `must be ${type} or null` });
    }
  }
  // The schema dispatches on `type` with if/then (one per event type, standard JSON Schema):
  // only the matching shape is checked, and its errors say what is wrong; the `if` error
  // ("must match \"then\" schema") that comes with them says nothing more.
  for (const e of errors) if (e.keyword === 'if') drop.add(e);
  return errors.filter((e) => !drop.has(e)).map((e) => replace.get(e) ?? e);
}
