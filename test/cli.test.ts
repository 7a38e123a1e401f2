// The built command line, spawned as users run it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { BIN, cli } from './helpers/cli.js';
import { replayTrace } from './helpers/replay.js';

const FIXTURE = new URL('../lab/recordings/queue-answered.ami', import.meta.url).pathname;

const tmp = mkdtempSync(join(tmpdir(), 'crm-bridge-cli-'));

t.test('given --version, then it prints the package version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const r = await cli(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout.trim(), pkg.version);
});

t.test('given --help, then it lists every command', async (t) => {
  const r = await cli(['--help']);
  t.equal(r.code, 0);
  for (const c of ['run', 'replay', 'check-config']) t.match(r.stdout, `crm-bridge ${c}`);
});

t.test('given an unknown command, then it exits 64 with usage', async (t) => {
  const r = await cli(['frobnicate']);
  t.equal(r.code, 64);
  t.match(r.stderr, "unknown command 'frobnicate'");
});

t.test('given a config with several mistakes, when checked, then every one is listed with its path and it exits 78', async (t) => {
  const file = join(tmp, 'bad.yaml');
  writeFileSync(file, ['pbx:', '  name: pbx1', '  ami:', '    port: 99999', '    username: bridge', '    secret: s3cr3t-value', '    colour: blue', 'sinks:', '  - type: lgo', ''].join('\n'));
  const r = await cli(['check-config', file]);
  t.equal(r.code, 78);
  t.match(r.stderr, 'pbx.ami.port');
  t.match(r.stderr, 'colour');
  t.match(r.stderr, 'sinks');
  t.notMatch(r.stderr + r.stdout, 's3cr3t-value', 'the secret never appears in the output');
});

t.test('given a valid config, when checked, then it exits 0', async (t) => {
  const file = join(tmp, 'good.yaml');
  writeFileSync(file, ['pbx:', '  name: pbx1', '  ami:', '    username: bridge', '    secret: { env: TEST_AMI_SECRET }', ''].join('\n'));
  const r = await cli(['check-config', file], { TEST_AMI_SECRET: 'x' });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, 'ok');
});

t.test('given run with a config that does not parse, then it exits 78 without starting', async (t) => {
  const file = join(tmp, 'broken.yaml');
  writeFileSync(file, 'pbx: [unclosed\n');
  const r = await cli(['run', '--config', file]);
  t.equal(r.code, 78);
  t.match(r.stderr, 'broken.yaml');
});

t.test('given a recorded real-Asterisk trace and no config, when replayed, then stdout is schema-valid NDJSON equal to the in-process replay', async (t) => {
  const r = await cli(['replay', FIXTURE], {}, { cwd: tmp });
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const events = lines.map((l) => JSON.parse(l) as BridgeEvent);
  t.ok(events.length >= 7);
  for (const e of events) t.same(validateEvent(e), [], `${e.type} is schema-valid`);
  // The CLI runs with the default config (agentContexts without the test's "phones"); for this
  // queue trace both give the same events.
  const { events: inProcess } = await replayTrace(readFileSync(FIXTURE));
  t.same(events.filter((e) => e.type !== 'agent.status'), inProcess.filter((e) => e.type !== 'agent.status'));
});

/** The events a replay printed, and the calls among them that never got their call.hangup. */
function eventsOf(stdout: string): { events: BridgeEvent[]; calls: Set<string>; open: string[] } {
  const events = stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as BridgeEvent);
  const calls = new Set<string>();
  const ended = new Set<string>();
  for (const e of events) {
    if (!('callId' in e)) continue;
    calls.add(e.callId);
    if (e.type === 'call.hangup') ended.add(e.callId);
  }
  return { events, calls, open: [...calls].filter((c) => !ended.has(c)) };
}

const STACK_LINE = /^\s+at /m;

t.test('given replay of a file that is not an AMI recording, then one line on stderr names the file and what is wrong, and it exits non-zero', async (t) => {
  const dir = mkdtempSync(join(tmp, 'not-ami-'));
  mkdirSync(join(dir, 'traces'));
  writeFileSync(join(dir, 'calls.json'), '{"events": [{"Event": "Newchannel"}]}\n');
  // The first bytes of a JPEG file.
  writeFileSync(join(dir, 'photo.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]));
  writeFileSync(join(dir, 'empty.ami'), '');
  const cases = [
    { file: 'calls.json', code: 65, says: "calls.json: not an AMI recording: it does not start with the 'Asterisk Call Manager/…' greeting or an AMI frame ('Event: …' or 'Response: …'); it starts with '{\"events\": [{\"Event\": \"Newchannel\"}]}'\n" },
    { file: 'photo.jpg', code: 65, says: "photo.jpg: not an AMI recording: it does not start with the 'Asterisk Call Manager/…' greeting or an AMI frame ('Event: …' or 'Response: …'); it starts with binary data\n" },
    { file: 'empty.ami', code: 65, says: 'empty.ami: not an AMI recording: the file is empty' },
    { file: 'traces', code: 66, says: 'traces: is a directory, not an AMI recording' },
    { file: 'missing.ami', code: 66, says: 'missing.ami: no such file' },
  ];
  for (const c of cases) {
    const r = await cli(['replay', c.file], {}, { cwd: dir });
    t.equal(r.code, c.code, `${c.file}: exit code`);
    t.equal(r.stderr.split('\n').length, 2, `${c.file}: one line`);
    t.ok(r.stderr.startsWith(`crm-bridge: ${c.says}`), `${c.file}: names the file and what is wrong: ${r.stderr}`);
    t.notMatch(r.stderr, STACK_LINE, `${c.file}: no stack trace`);
    t.equal(r.stdout, '', `${c.file}: no events`);
  }
});

t.test('given a trace that starts with frames instead of the greeting line, when replayed, then it gives the same events as with the greeting', async (t) => {
  const withGreeting = readFileSync(FIXTURE);
  const file = join(tmp, 'no-greeting.ami');
  writeFileSync(file, withGreeting.subarray(withGreeting.indexOf('\r\n') + 2));
  t.match(readFileSync(file, 'latin1'), /^Response: Success\r\n/);
  const [a, b] = await Promise.all([cli(['replay', FIXTURE], {}, { cwd: tmp }), cli(['replay', file], {}, { cwd: tmp })]);
  t.equal(b.code, 0, b.stderr);
  const ids = (stdout: string) => eventsOf(stdout).events.map((e) => `${e.type} ${e.id}`);
  t.ok(ids(a.stdout).length > 0);
  t.same(ids(b.stdout), ids(a.stdout));
});

t.test('given a config with no pbx.ami and no AMI secret, when a trace is replayed with it, then its settings apply and it exits 0', async (t) => {
  const file = join(tmp, 'dialplan-author.yaml');
  writeFileSync(file, ['pbx:', '  name: lab-pbx', 'calls:', '  agentContexts: [agents, phones]', ''].join('\n'));
  const r = await cli(['replay', FIXTURE, '--config', file], {}, { cwd: tmp });
  t.equal(r.code, 0, r.stderr);
  const { events } = eventsOf(r.stdout);
  t.ok(events.length > 0);
  t.same([...new Set(events.map((e) => e.server))], ['lab-pbx'], 'then every event names the PBX of the config');
  const daemon = await cli(['check-config', file]);
  t.equal(daemon.code, 78, 'then the daemon still refuses it: it needs a way to the PBX');
  t.match(daemon.stderr, 'pbx: needs ami');

  t.test('and given the production config, whose AMI secret file cannot be read, then replay does not need the secret either', async (t) => {
    const prod = join(tmp, 'production.yaml');
    writeFileSync(prod, ['pbx:', '  name: lab-pbx', '  ami: { username: bridge, secret: { file: /nonexistent/ami.secret } }', ''].join('\n'));
    const r = await cli(['replay', FIXTURE, '--config', prod], {}, { cwd: tmp });
    t.equal(r.code, 0, r.stderr);
    t.ok(eventsOf(r.stdout).events.length > 0);
    t.equal((await cli(['check-config', prod])).code, 78, 'then the daemon still needs it');
  });
});

t.test('given a replay config with mistakes, then each is listed as path: message and it exits 78 without replaying', async (t) => {
  const file = join(tmp, 'dialplan-author-typos.yaml');
  writeFileSync(file, ['pbx:', '  name: lab pbx', 'calls:', '  inboundContexts: from-pstn', '  agentContext: [agents]', ''].join('\n'));
  const r = await cli(['replay', FIXTURE, '--config', file], {}, { cwd: tmp });
  t.equal(r.code, 78);
  t.match(r.stderr, `pbx.name: must match pattern "^[A-Za-z0-9_.-]+$" (is 'lab pbx')`);
  t.match(r.stderr, 'calls.inboundContexts: must be array');
  t.match(r.stderr, "calls.agentContext: unknown key (did you mean 'agentContexts'?)");
  t.notMatch(r.stderr, STACK_LINE);
  t.equal(r.stdout, '');
});

const SUMMARY = /^crm-bridge replay: (\d+) calls?, (\d+) events?, (\d+) warnings?$/;

t.test('given a clean trace, when replayed, then stderr ends with a one-line summary of calls, events and warnings, and stdout holds only events', async (t) => {
  const r = await cli(['replay', new URL('../lab/recordings/ten-calls.ami', import.meta.url).pathname], {}, { cwd: tmp });
  t.equal(r.code, 0, r.stderr);
  const { events, calls, open } = eventsOf(r.stdout);
  t.same(open, [], 'then every call of the trace ended');
  t.same(r.stderr.split('\n'), [`crm-bridge replay: ${calls.size} calls, ${events.length} events, 0 warnings`, '']);
});

t.test('given a trace with a garbage frame that stops inside a frame in the middle of a call, when replayed, then the summary counts and names each warning', async (t) => {
  const trace = readFileSync(FIXTURE);
  const SEP = Buffer.from('\r\n\r\n');
  const frames: Buffer[] = [];
  for (let pos = trace.indexOf('\r\n') + 2, end; (end = trace.indexOf(SEP, pos)) >= 0; pos = end + 4) frames.push(trace.subarray(pos, end + 4));
  // Cut in the middle of a frame, two thirds of the way through the call, after a frame that is
  // neither an event nor a response.
  const cut = Math.floor((frames.length * 2) / 3);
  const half = frames[cut]!.subarray(0, 20);
  const garbage = Buffer.from('this line is not a header\r\n\r\n');
  const file = join(tmp, 'cut.ami');
  writeFileSync(file, Buffer.concat([trace.subarray(0, trace.indexOf('\r\n') + 2), ...frames.slice(0, 5), garbage, ...frames.slice(5, cut), half]));

  const r = await cli(['replay', file], {}, { cwd: tmp });
  t.equal(r.code, 0, r.stderr);
  const { events, calls, open } = eventsOf(r.stdout);
  t.ok(open.length > 0, 'the cut leaves a call open');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const logged = lines.filter((l) => l.startsWith('{') && (JSON.parse(l) as { level: number }).level >= 40);
  t.ok(logged.some((l) => l.includes('neither an event nor a response')), 'the garbage frame is logged');
  const [counts = '', which = '', ...more] = lines.slice(logged.length);
  t.same(more, [], 'then the summary is two lines after the log lines');
  const m = SUMMARY.exec(counts);
  t.ok(m, counts);
  t.same(m?.slice(1).map(Number), [calls.size, events.length, logged.length + open.length + 1]);
  t.match(which, `${logged.length} malformed frame${logged.length === 1 ? '' : 's'} (logged above)`);
  t.match(which, `${open.length} call${open.length === 1 ? '' : 's'} still open at the end of the trace (${open[0]}`);
  t.match(which, `the trace ends inside a frame (its last ${half.length} bytes never became an event)`);
});

t.test('given stdout closed by the reader (replay | head), when replaying, then it stops quietly and exits 0', async (t) => {
  const child = spawn(process.execPath, [BIN, 'replay', new URL('../lab/recordings/ten-calls.ami', import.meta.url).pathname], { env: { PATH: process.env.PATH }, cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  // The reader is gone before the first event: every write meets EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 0);
  t.equal(stderr, '', 'then nothing on stderr: no stack trace, no error, no summary');
});

t.test('given webhook templates naming unknown variables, when checked, then each is reported with a suggestion and it exits 78', async (t) => {
  const file = join(tmp, 'bad-templates.yaml');
  writeFileSync(file, [
    'pbx: { name: pbx1, ami: { username: b, secret: x } }',
    'sinks:',
    '  - type: webhook',
    '    url: "https://crm.example.com/c?caller=<%CALLERID%>&event={evnt}&x=<%CALLID%>"',
    '    method: GET',
    '    format: json',
    '    params: [{ from: callerNumbr, as: phone }]',
    '',
  ].join('\n'));
  const r = await cli(['check-config', file]);
  t.equal(r.code, 78);
  t.match(r.stderr, "sinks[0].url: unknown name {evnt}: did you mean {event}?");
  t.match(r.stderr, 'sinks[0].url: unknown WorldSmart key <%CALLID%>');
  t.match(r.stderr, "sinks[0].params[0].from: unknown name 'callerNumbr'");
  t.match(r.stderr, 'sinks[0].format: method GET sends no body');
});

t.test('given an outbox with a dead letter, when listed, retried and purged from the command line, then each does what it says', async (t) => {
  const { Outbox } = await import('../dist/outbox/index.js');
  const dbPath = join(tmp, 'cli-outbox.db');
  const box = Outbox.open(dbPath);
  box.enqueue('crm', 'call-1', 'evt-1', '{"id":"evt-1"}');
  box.enqueue('crm', 'call-1', 'evt-2', '{"id":"evt-2"}');
  const first = box.due('crm', Date.now(), 10)[0]!;
  box.deadLetter(first, 'rejected', 'HTTP 400');
  box.close();
  const file = join(tmp, 'outbox-config.yaml');
  writeFileSync(file, `pbx: { name: pbx1, ami: { username: b, secret: x } }\noutbox: { path: ${dbPath} }\n`);
  const waiting = await cli(['outbox', 'list', '--config', file]);
  t.equal(waiting.code, 0, waiting.stderr);
  t.same(waiting.stdout.trim().split('\n').map((l) => JSON.parse(l).eventId), ['evt-2']);
  const dead = await cli(['outbox', 'list', '--dead', '--config', file]);
  t.same(dead.stdout.trim().split('\n').map((l) => JSON.parse(l).eventId), ['evt-1']);
  t.match((await cli(['outbox', 'retry', 'evt-1', '--config', file])).stdout, '1 dead letter(s) queued');
  const after = await cli(['outbox', 'list', '--config', file]);
  t.same(after.stdout.trim().split('\n').map((l) => JSON.parse(l).eventId), ['evt-2', 'evt-1'], 'then the redriven event goes to the end of its call');
  const refused = await cli(['outbox', 'purge', '--config', file]);
  t.equal(refused.code, 64, 'then purge without --yes is refused');
  t.match((await cli(['outbox', 'purge', '--yes', '--config', file])).stdout, '2 waiting event(s) deleted');
});
