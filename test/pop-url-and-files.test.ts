// Issue 15 ("Also"): a `.` or `..` path-segment value is an error for screen pops too (not an
// emptied segment that opens another CRM page), and the event log file is created 0600.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { compileRules, renderPops } from '../dist/http/server.js';
import { logSink } from '../dist/sinks/log.js';
import type { SinkContext } from '../dist/sinks/sink.js';
import { ringing } from './helpers/sample-events.js';

const rules = compileRules([
  { events: ['call.ringing'], target: 'new-tab', url: 'https://crm.example.com/contacts/{callerNumber}/view?q={callerName}', text: 'Call from {callerNumber}' },
]);

function withCaller(number: string): BridgeEvent {
  return { ...ringing, caller: { number, name: '..' } } as BridgeEvent;
}

t.test('given a caller number that is a dot segment, when pops are rendered, then the pop has no URL and says why, and its text still shows', async (t) => {
  for (const number of ['..', '.']) {
    const [pop] = renderPops(rules, withCaller(number));
    t.equal(pop?.url, null, `then "${number}" opens no URL (neither /contacts/view nor the climbed path)`);
    t.match(pop?.urlError, /'\.' or '\.\.'/, 'then the pop says why');
    t.equal(pop?.text, `Call from ${number}`, 'then the text is still shown');
  }
  const [ok] = renderPops(rules, withCaller('+4930123'));
  t.equal(ok?.url, 'https://crm.example.com/contacts/%2B4930123/view?q=..', 'then a real number opens its contact (`..` in the query is harmless)');
  t.equal(ok?.urlError, undefined);
  const [dotted] = renderPops(rules, withCaller('...'));
  t.equal(dotted?.url, 'https://crm.example.com/contacts/.../view?q=..', 'then three dots are an ordinary segment');
});

t.test('given a log sink writing to a new file, when it starts, then the file is readable by the bridge user only', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'crm-bridge-logsink-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sub', 'events.ndjson');
  const ctx = { log: pino({ level: 'silent' }), server: 'pbx1' } as unknown as SinkContext;
  const sink = logSink.create({ type: 'log', path: file }, ctx);
  const oldMask = process.umask(0o022); // the usual umask: without an explicit mode the file would be 0644
  try {
    await sink.start();
  } finally {
    process.umask(oldMask);
  }
  sink.deliver(ringing as BridgeEvent);
  await sink.stop();
  t.equal(statSync(file).mode & 0o777, 0o600, 'then the event file is 0600 (it holds callers’ numbers and names)');
  t.equal(JSON.parse(readFileSync(file, 'utf8').trim()).id, ringing.id, 'then the event was written');
});
