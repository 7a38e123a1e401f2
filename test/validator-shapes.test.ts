// validateEvent checks an event of a known type against that type's shape alone, and only
// falls back to the whole schema when the shape refuses it (src/events/validator.ts). These tests
// prove the shortcut changes nothing: the schema is built so that it cannot, and on every event
// the recordings normalize to, and on broken copies of each, it answers what the whole schema does.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { eventSchema, validateEvent, validateWhole } from '../dist/events/validator.js';
import { AmiParser } from '../dist/sources/ami/parser.js';
import { createTracker, step } from '../dist/normalizer/index.js';
import type { BridgeEvent } from '../dist/events/types.js';
import { TEST_NORMALIZER } from './helpers/replay.js';
import { answered, hangup, login, logout, missed, missedHangup, paused, queued, ringing, ringStopped, started, status, transferred, unpaused } from './helpers/sample-events.js';

const dir = new URL('../lab/recordings/', import.meta.url);

/** Every event each recording normalizes to, in-process (parser -> tracker). */
function recordedEvents(): BridgeEvent[] {
  const out: BridgeEvent[] = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.ami'))) {
    const tracker = createTracker(TEST_NORMALIZER);
    const parser = new AmiParser();
    for (const item of parser.feed(readFileSync(new URL(name, dir)))) {
      if (item.kind === 'frame' && item.event.event) out.push(...step(tracker, { kind: 'event', event: item.event, receivedAt: 0 }));
    }
  }
  return out;
}

/** Copies of `e` each broken in one place: a top-level or second-level key removed, or set to a wrong value. */
function broken(e: BridgeEvent): unknown[] {
  const out: unknown[] = [];
  const wrong: unknown[] = [null, 'x', '', 1, -1, 1.5, true, {}, [], 'call.started', 'agent.status'];
  const walk = (obj: Record<string, unknown>, path: string[], depth: number): void => {
    for (const key of Object.keys(obj)) {
      const at = [...path, key];
      out.push(edited(e, at, undefined));
      for (const w of wrong) out.push(edited(e, at, w));
      const v = obj[key];
      if (depth < 1 && v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, at, depth + 1);
    }
    out.push(edited(e, [...path, 'extra'], 1));
  };
  walk(e as unknown as Record<string, unknown>, [], 0);
  return out;
}

function edited(e: object, path: readonly string[], value: unknown): unknown {
  const copy = structuredClone(e) as Record<string, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

t.test('given the contract schema, then its root only dispatches on type: one if/then per type, each to $defs/<type>', async (t) => {
  const s = eventSchema as Record<string, unknown>;
  t.same(
    Object.keys(s).filter((k) => !['$schema', '$id', 'title', 'description', '$comment', '$defs'].includes(k)).sort(),
    ['allOf', 'properties', 'required', 'type'],
    'then nothing else constrains an event at the root',
  );
  const types = (s.properties as { type: { enum: string[] } }).type.enum;
  t.same(Object.keys(s.properties as object), ['type']);
  t.same(s.required, ['type']);
  t.equal(s.type, 'object');
  const rows = s.allOf as Array<Record<string, unknown>>;
  t.same(
    rows.map((r) => ({ keys: Object.keys(r).sort(), ifKeys: Object.keys(r.if as object).sort(), type: (r.if as { type: unknown }).type, required: (r.if as { required: unknown }).required, props: Object.keys((r.if as { properties: object }).properties) })),
    types.map(() => ({ keys: ['if', 'then'], ifKeys: ['properties', 'required', 'type'], type: 'object', required: ['type'], props: ['type'] })),
  );
  t.same(
    rows.map((r) => [((r.if as { properties: { type: { const: string } } }).properties.type.const), (r.then as { $ref: string }).$ref]),
    types.map((type) => [type, `#/$defs/${type}`]),
    'then each row sends its own type to its own shape, one row per type',
  );
});

t.test('given every event the recordings normalize to, and broken copies of each, when validated, then the per-type shortcut answers as the whole schema does', async (t) => {
  // The sample events too: one of every type, whether or not a recording has it.
  const events = [...recordedEvents(), started, queued, ringing, answered, ringStopped, transferred, hangup, missed, missedHangup, login, paused, unpaused, status, logout];
  t.ok(events.length > 300, `${events.length} events`);
  const seen = new Set<string>();
  let checked = 0;
  let invalid = 0;
  const mismatches: string[] = [];
  for (const e of events) {
    t.same(validateEvent(e), [], `${e.type} is valid`);
    // One event per type and shape of fields is enough to break in every way.
    const shape = `${e.type}:${Object.keys(e).sort().join(',')}`;
    if (seen.has(shape)) continue;
    seen.add(shape);
    for (const b of broken(e)) {
      const fast = validateEvent(b);
      const whole = validateWhole(b);
      checked++;
      if (whole.length > 0) invalid++;
      if (JSON.stringify(fast) !== JSON.stringify(whole)) mismatches.push(`${JSON.stringify(b).slice(0, 200)}: ${JSON.stringify(fast)} vs ${JSON.stringify(whole)}`);
    }
  }
  for (const odd of [null, undefined, 1, 'call.started', [], [{ type: 'call.started' }], {}, { type: 'nope' }, { type: '__proto__' }, { type: 'constructor' }]) {
    checked++;
    if (JSON.stringify(validateEvent(odd)) !== JSON.stringify(validateWhole(odd))) mismatches.push(String(odd));
  }
  t.same(mismatches.slice(0, 5), [], `then none of ${checked} differs (${invalid} invalid)`);
});
