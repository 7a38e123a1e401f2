// The JSON Schema of the event contract (schema/events.v1.json) and its validator: one valid,
// realistic example of every event type, the failures the schema exists to catch, and the
// documentation's examples (docs/events.md), which must validate too.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { assertValidEvent, EventValidationError, eventSchema, validateEvent } from '../src/events/validator.js';
import { EVENT_TYPES, type BridgeEvent, type EventType } from '../src/events/types.js';
import {
  started, queued, ringing, answered, ringStopped, transferred, hangup, missed, missedHangup,
  login, paused, unpaused, status, logout,
} from './helpers/sample-events.js';

// ---------------------------------------------------------------------------------------------
// The sample events (test/helpers/sample-events.ts): one inbound queue call on pbx1, an abandoned
// call from a withheld number and one agent's session: one example of every event type.

const EXAMPLES: readonly BridgeEvent[] = [
  started, queued, ringing, answered, ringStopped, transferred, hangup, missed, missedHangup,
  login, paused, unpaused, status, logout,
];

// ---------------------------------------------------------------------------------------------

/** A deep copy of `e` with the value at `path` (keys from the root) replaced, or removed if `undefined`. */
function edit(e: object, path: readonly string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(e) as Record<string, unknown>;
  let at: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

t.test('given a realistic example of every event type, then each is valid', async (t) => {
  const covered = new Set(EXAMPLES.map((e) => e.type));
  t.same([...EVENT_TYPES].filter((type) => !covered.has(type)), [], 'then every event type has an example');
  for (const e of EXAMPLES) t.same(validateEvent(e), [], `${e.type} seq ${e.seq} is valid`);
});

t.test('given the schema file, then it is draft 2020-12, dispatches on exactly the contract types and describes every property', async (t) => {
  t.equal(eventSchema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  t.equal(eventSchema.$id, 'https://asterisk-crm-bridge.dev/schema/events.v1.json');
  type Branch = { if: { properties: { type: { const: string } } }; then: { $ref: string } };
  const branches = eventSchema.allOf as Branch[];
  t.same(branches.map((b) => b.if.properties.type.const), [...EVENT_TYPES], 'then one if/then branch per type, in the order of EVENT_TYPES');
  t.same(branches.map((b) => b.then.$ref), EVENT_TYPES.map((type) => `#/$defs/${type}`), 'then each branch is the shape of its type');
  t.notOk('discriminator' in eventSchema || 'oneOf' in eventSchema, 'then there is no OpenAPI discriminator (nor the oneOf it would need)');
  const undescribed: string[] = [];
  const walk = (node: unknown, where: string): void => {
    if (typeof node !== 'object' || node === null) return;
    const obj = node as Record<string, unknown>;
    const props = obj.properties as Record<string, Record<string, unknown>> | undefined;
    if (props) for (const [name, sub] of Object.entries(props)) if (typeof sub.description !== 'string' || sub.description === '') undescribed.push(`${where}/properties/${name}`);
    for (const [key, child] of Object.entries(obj)) walk(child, `${where}/${key}`);
  };
  walk(eventSchema, '#');
  t.same(undescribed, [], 'then every property has a description');
});

t.test('given a standard JSON Schema validator (Ajv 2020-12, strict, no discriminator option), then the file compiles and it agrees with validateEvent', async (t) => {
  const ajv = new Ajv2020({ allowUnionTypes: true });
  addFormatsPlugin.default(ajv);
  const standard = ajv.compile(eventSchema);
  for (const e of EXAMPLES) t.ok(standard(e), `then ${e.type} is valid`);
  const broken = [
    edit(started, ['type'], 'call.created'),
    edit(ringing, ['seq'], 0),
    edit(queued, ['queue'], null),
    edit(status, ['callId'], '1'),
    edit(ringStopped, ['reason'], 'timeout'),
    edit(answered, ['channel'], null),
  ];
  for (const e of broken) {
    t.notOk(standard(e), `then ${String(e.type)} broken is invalid`);
    t.not(validateEvent(e).length, 0, 'and validateEvent refuses it too');
  }
});

t.test('given a caller name with & and non-ASCII text, then it passes through as any other string', async (t) => {
  t.same(validateEvent(edit(started, ['caller', 'name'], 'Acme & Sons — Müller & Søn, 東京')), []);
});

t.test('given a call whose CRM variable was exported empty, then vars accepts the empty value', async (t) => {
  t.same(validateEvent(edit(queued, ['vars'], { Omlcrmcustomerid: '', Omlcrm_note: 'a=b&c=d#e' })), []);
});

t.test('given a call without origin, or with origin click-to-call, then both are valid', async (t) => {
  t.same(validateEvent(edit(started, ['origin'], 'click-to-call')), []);
  t.same(validateEvent(edit(started, ['origin'], '')), ['/origin: must NOT have fewer than 1 characters']);
});

t.test('given an event missing a required key, then the key is named', async (t) => {
  t.same(validateEvent(edit(ringing, ['seq'], undefined)), ["/: must have required property 'seq'"]);
  t.same(validateEvent(edit(started, ['vars'], undefined)), ["/: must have required property 'vars'"]);
  t.same(validateEvent(edit(started, ['channel'], undefined)), ["/: must have required property 'channel'"], 'then nullable keys are still required');
  t.same(validateEvent(edit(login, ['queue'], undefined)), ["/: must have required property 'queue'"]);
  t.same(validateEvent(edit(hangup, ['durations', 'talkSeconds'], undefined)), ["/durations: must have required property 'talkSeconds'"]);
  t.same(validateEvent(edit(answered, ['agent', 'interface'], undefined)), ["/agent: must have required property 'interface'"]);
});

t.test('given an event with a key the contract does not define, then it fails and names the key', async (t) => {
  t.same(validateEvent(edit(ringing, ['callID'], '1795369723.40')), ["/: must NOT have additional property 'callID'"]);
  t.same(validateEvent(edit(answered, ['agent', 'email'], 'zoe@example.com')), ["/agent: must NOT have additional property 'email'"]);
  t.same(validateEvent(edit(hangup, ['cause', 'raw'], 'AST_CAUSE_NORMAL')), ["/cause: must NOT have additional property 'raw'"]);
  t.same(validateEvent(edit(status, ['callId'], '1795369723.40')), ["/: must NOT have additional property 'callId'"], 'then agent events carry no callId');
  t.same(validateEvent(edit(login, ['status'], 'idle')), ["/: must NOT have additional property 'status'"], 'then a field of another type does not leak in');
});

t.test('given an empty string where a value belongs, then it fails: absent information is null', async (t) => {
  t.same(validateEvent(edit(started, ['caller', 'name'], '')), ['/caller/name: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(started, ['caller', 'number'], '')), ['/caller/number: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(ringing, ['agent', 'id'], '')), ['/agent/id: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(ringing, ['agent', 'name'], '')), ['/agent/name: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(started, ['server'], '')), ['/server: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(started, ['callId'], '')), ['/callId: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(paused, ['reason'], '')), ['/reason: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(missedHangup, ['cause', 'text'], '')), ['/cause/text: must NOT have fewer than 1 characters']);
  t.same(validateEvent(edit(queued, ['queue', 'name'], '')), ['/queue/name: must NOT have fewer than 1 characters']);
});

t.test('given a time not exactly YYYY-MM-DDTHH:MM:SS.sssZ, then it fails', async (t) => {
  const pattern = '/time: must match pattern "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"';
  for (const time of ['2026-11-22T17:48:43Z', '2026-11-22T17:48:43.1Z', '2026-11-22T18:48:43.118+01:00', '2026-11-22 17:48:43.118Z', '1795369723.118']) {
    const problems = validateEvent(edit(started, ['time'], time));
    t.ok(problems.includes(pattern), `then ${time} fails the pattern`);
    t.same(problems.filter((p) => !p.startsWith('/time: ')), [], 'then only the time is reported');
  }
  t.same(validateEvent(edit(started, ['time'], '2026-13-22T17:48:43.118Z')), ['/time: must match format "date-time"'], 'then a month 13 fails');
});

t.test('given a value outside an enum, then it fails and lists the allowed values', async (t) => {
  t.same(validateEvent(edit(started, ['direction'], 'incoming')), ['/direction: must be one of inbound, outbound, internal']);
  t.same(
    validateEvent(edit(ringStopped, ['reason'], 'timeout')),
    ['/reason: must be one of answered_elsewhere, no_answer, busy, unavailable, caller_hangup, rejected'],
    'then a call.missed reason is not a ring_stopped reason',
  );
  t.same(validateEvent(edit(missed, ['reason'], 'answered_elsewhere')), ['/reason: must be one of abandoned, no_answer, busy, unavailable, timeout']);
  t.same(validateEvent(edit(status, ['status'], 'away')), ['/status: must be one of idle, ringing, busy, unavailable, on_hold']);
  t.same(validateEvent(edit(hangup, ['hangupBy'], 'customer')), ['/hangupBy: must be one of caller, agent, system']);
  t.same(validateEvent(edit(transferred, ['transfer', 'kind'], 'warm')), ['/transfer/kind: must be one of blind, attended']);
  t.same(validateEvent(edit(started, ['specVersion'], '2')), ['/specVersion: must be "1"']);
});

t.test('given an unknown or missing type, then only the type is reported', async (t) => {
  t.same(validateEvent(edit(started, ['type'], 'call.created')), [
    `/type: must be one of ${EVENT_TYPES.join(', ')}`,
  ]);
  t.same(validateEvent(edit(started, ['type'], undefined)), ["/: must have required property 'type'"]);
  t.same(validateEvent(null), ['/: must be object']);
  t.same(validateEvent('call.started'), ['/: must be object']);
});

t.test('given CRM variables, then only Omlcrm-prefixed keys with string values pass', async (t) => {
  t.same(validateEvent(edit(queued, ['vars'], { customerid: '12345' })), ["/vars: must NOT have additional property 'customerid'"]);
  t.same(validateEvent(edit(queued, ['vars'], { omlcrmcustomerid: '12345' })), ["/vars: must NOT have additional property 'omlcrmcustomerid'"], 'then the prefix is case-sensitive');
  t.same(validateEvent(edit(queued, ['vars'], { 'Omlcrm-id': '12345' })), ["/vars: must NOT have additional property 'Omlcrm-id'"]);
  t.same(validateEvent(edit(queued, ['vars'], { Omlcrmcustomerid: 12345 })), ['/vars/Omlcrmcustomerid: must be string']);
  t.same(validateEvent(edit(queued, ['vars'], null)), ['/vars: must be object'], 'then no vars is {}, not null');
});

t.test('given call.ringing, call.answered or call.ring_stopped for a party that is not an agent, then agent null is valid and channel names it', async (t) => {
  // The remote party of an outbound call, rung, answering and stopping through the trunk.
  const trunk = { uniqueid: '1795369801.77', name: 'PJSIP/trunk-0000003c' };
  for (const e of [ringing, answered, ringStopped]) {
    t.same(validateEvent(edit(edit(e, ['agent'], null), ['channel'], trunk)), [], `then ${e.type} with agent null is valid`);
    t.same(validateEvent(edit(e, ['channel'], null)), ['/channel: must be object'], `then ${e.type} without a channel fails: it names the rung party`);
    t.same(validateEvent(edit(e, ['channel'], undefined)), ["/: must have required property 'channel'"]);
  }
  t.same(validateEvent(edit(ringing, ['agent'], '201')), ['/agent: must be object or null']);
  t.same(validateEvent(edit(status, ['agent'], null)), ['/agent: must be object'], 'then agent events are still about one agent');
  t.same(validateEvent(edit(started, ['agent'], null)), [], 'then call.started may have no agent');
  t.same(validateEvent(edit(started, ['channel'], null)), [], 'then other call events may have no channel');
});

t.test('given call.queued with queue null, then it fails; agent.paused may have queue null', async (t) => {
  t.same(validateEvent(edit(queued, ['queue'], null)), ['/queue: must be object']);
  t.same(validateEvent(edit(paused, ['queue'], null)), []);
});

t.test('given a seq below 1 or not an integer, then it fails', async (t) => {
  t.same(validateEvent(edit(started, ['seq'], 0)), ['/seq: must be >= 1']);
  t.same(validateEvent(edit(login, ['seq'], 0)), ['/seq: must be >= 1']);
  t.same(validateEvent(edit(started, ['seq'], 1.5)), ['/seq: must be integer']);
  t.same(validateEvent(edit(started, ['seq'], '1')), ['/seq: must be integer']);
});

t.test('given ids, then ULIDs and UUIDs pass and anything else fails', async (t) => {
  t.same(validateEvent(edit(started, ['id'], '')), ['/id: must NOT have fewer than 1 characters', '/id: must match pattern "^[0-9A-Za-z-]+$"']);
  t.same(validateEvent(edit(started, ['id'], 'pbx1:1795369723.40:1')), ['/id: must match pattern "^[0-9A-Za-z-]+$"']);
  t.same(validateEvent(edit(started, ['id'], 'a'.repeat(65))), ['/id: must NOT have more than 64 characters']);
});

t.test('given numbers the contract bounds, then negatives and fractional positions fail and null passes', async (t) => {
  t.same(validateEvent(edit(answered, ['ringSeconds'], -0.001)), ['/ringSeconds: must be >= 0']);
  t.same(validateEvent(edit(answered, ['ringSeconds'], null)), []);
  t.same(validateEvent(edit(queued, ['queue', 'position'], 0)), ['/queue/position: must be >= 1']);
  t.same(validateEvent(edit(queued, ['queue', 'position'], 1.5)), ['/queue/position: must be integer or null']);
  t.same(validateEvent(edit(hangup, ['cause', 'code'], '16')), ['/cause/code: must be integer or null']);
  t.same(validateEvent(edit(hangup, ['durations', 'totalSeconds'], null)), []);
});

t.test('given a broken event with several problems, then every problem is reported at once', async (t) => {
  const broken = edit(edit(edit(ringing, ['seq'], 0), ['direction'], 'in'), ['caller', 'name'], '');
  t.same(validateEvent(broken).sort(), [
    '/caller/name: must NOT have fewer than 1 characters',
    '/direction: must be one of inbound, outbound, internal',
    '/seq: must be >= 1',
  ]);
});

t.test('given assertValidEvent, then a valid event passes and an invalid one throws with its type and every problem', async (t) => {
  t.doesNotThrow(() => assertValidEvent(hangup));
  const broken = edit(edit(hangup, ['seq'], 0), ['disposition'], 'completed');
  try {
    assertValidEvent(broken);
    t.fail('then it throws');
  } catch (err) {
    t.ok(err instanceof EventValidationError, 'then it throws an EventValidationError');
    const e = err as EventValidationError;
    t.equal(e.eventType, 'call.hangup');
    t.same([...e.problems].sort(), ['/disposition: must be one of answered, missed', '/seq: must be >= 1']);
    t.match(e.message, /^invalid call\.hangup event: /);
    t.match(e.message, '/seq: must be >= 1');
    t.match(e.message, '/disposition: must be one of answered, missed');
  }
  t.throws(() => assertValidEvent({}), { message: "invalid (untyped) event: /: must have required property 'type'" });
});

t.test('given docs/events.md, then every complete JSON example in it is a valid event and every type has one', async (t) => {
  const doc = readFileSync(new URL('../docs/events.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const events = blocks.filter((b) => b.includes('"specVersion"')).map((b) => JSON.parse(b) as { type: EventType });
  t.ok(events.length >= EVENT_TYPES.length);
  const documented = new Set(events.map((e) => e.type));
  t.same(EVENT_TYPES.filter((type) => !documented.has(type)), [], 'then every event type has a documented example');
  for (const e of events) t.same(validateEvent(e), [], `then the documented ${e.type} example is valid`);
});
