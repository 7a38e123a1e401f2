// The template engine (docs/templates.md): the variables derived from each event type, the seeds'
// examples (OMniLeads, WorldSmart, Tencent), and that no value — however hostile — can add, cut or
// break a URL segment or parameter, a header, or a JSON / form body. Results are checked by
// parsing them (WHATWG URL, URLSearchParams, JSON.parse), not by comparing encodings.
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { validateEvent } from '../src/events/validator.js';
import type { BridgeEvent, CallMissed } from '../src/events/types.js';
import { EVENT_TYPES } from '../src/events/types.js';
import {
  appendParams,
  compileBody,
  compileParams,
  compileText,
  compileUrl,
  isKnownName,
  KNOWN_NAMES,
  referencedNames,
  TemplateError,
  templateVars,
  TENCENT_PARAMS,
  WORLDSMART_KEYS,
  type ParamSpec,
  type TemplateVars,
} from '../src/template/index.js';
import {
  started, queued, ringing, answered, ringStopped, transferred, blindToAgent, hangup, missed as sampleMissed, missedHangup,
  login, paused, unpaused, status, logout,
} from './helpers/sample-events.js';

// ---------------------------------------------------------------------------------------------
// The sample events (test/helpers/sample-events.ts): one inbound queue call on pbx1, an abandoned
// call from a withheld number and one agent's session.

// Here call.missed's own waitSeconds differs from its queue's waitSeconds (41.87), so that the
// variables test tells waitSeconds from queueWait.
const missed = { ...sampleMissed, waitSeconds: 45.1 } satisfies CallMissed;

const EVENTS: readonly BridgeEvent[] = [
  started, queued, ringing, answered, ringStopped, transferred, blindToAgent, hangup, missed, missedHangup,
  login, paused, unpaused, status, logout,
];

/** Every fixed name null, then `set`. */
function expected(set: Record<string, string | null>): Record<string, string | null> {
  return { ...Object.fromEntries(KNOWN_NAMES.map((n) => [n, null])), ...set };
}

const callFixed = {
  server: 'pbx1',
  callId: '1795369723.40',
  direction: 'inbound',
  callerNumber: '+4915112345678',
  callerName: 'Acme & Sons',
  calledNumber: '41004100',
};
const callVars = { ...callFixed, Omlcrmcustomerid: '12345', Omlcrmcustomerplan: 'gold & silver #2 = Müller' };
const a201 = { agentId: '201', agentExtension: '201', agentName: 'Zoë Łukasik' };
const a202 = { agentId: '202', agentExtension: '202', agentName: 'José Núñez' };
const inSales = { queue: 'sales', queuePosition: '1', queueWait: '3.2' };
const envelope = (e: BridgeEvent) => ({ event: e.type, eventId: e.id, time: e.time });

// ---------------------------------------------------------------------------------------------
// Variables

t.test('given a realistic event of every type, then each is a valid contract event', async (t) => {
  const covered = new Set(EVENTS.map((e) => e.type));
  t.same(EVENT_TYPES.filter((type) => !covered.has(type)), [], 'then every event type is covered');
  for (const e of EVENTS) t.same(validateEvent(e), [], `${e.type} seq ${e.seq} is valid`);
});

t.test('given the contract list of template names, then every one is a known name', async (t) => {
  const contract = [
    'event', 'eventId', 'time', 'callId', 'uniqueid', 'direction', 'callerNumber', 'callerName', 'calledNumber',
    'agentId', 'agentExtension', 'agentName', 'queue', 'queuePosition', 'queueWait', 'ringSeconds', 'talkSeconds',
    'hangupCause', 'transferKind', 'transferTo', 'server', 'status',
  ];
  t.same(contract.filter((n) => !isKnownName(n)), []);
  for (const extra of ['reason', 'disposition', 'hangupBy', 'hangupCauseCode', 'totalSeconds', 'agentStatus', 'paused']) t.ok(isKnownName(extra), extra);
  t.ok(isKnownName('Omlcrmcustomerid'), 'a dialplan variable is a name');
  t.ok(isKnownName('Omlcrm_ticket_2'));
  t.notOk(isKnownName('omlcrmcustomerid'), 'the Omlcrm prefix is case-sensitive, as in the contract');
  t.notOk(isKnownName('Omlcrm-id'), 'a dialplan variable name is [A-Za-z0-9_]');
  t.notOk(isKnownName('OMLCUSTOMDIALPLANVARS'));
  t.notOk(isKnownName('__proto__'));
});

t.test('given each call event, when its variables are derived, then every name has the documented value', async (t) => {
  const startedVars = templateVars(started);
  t.strictSame(startedVars, expected({ ...envelope(started), ...callFixed, uniqueid: '1795369723.40' }), 'call.started: the call, no agent, no queue');
  t.notOk('Omlcrmcustomerid' in startedVars, 'then call.started has no CRM variables before the dialplan exports them');

  t.strictSame(templateVars(queued), expected({
    ...envelope(queued), ...callVars, uniqueid: '1795369723.40', queue: 'sales', queuePosition: '1', queueWait: '0',
  }), 'call.queued: queue, position, wait 0');
  t.strictSame(templateVars(ringing), expected({
    ...envelope(ringing), ...callVars, ...a201, uniqueid: '1795369726.41', queue: 'sales', queuePosition: '1', queueWait: '0.003', status: '100',
  }), 'call.ringing: the agent rung, status 100');
  t.strictSame(templateVars(answered), expected({
    ...envelope(answered), ...callVars, ...a201, ...inSales, uniqueid: '1795369726.41', ringSeconds: '3.2', status: '200',
  }), 'call.answered: ringSeconds, status 200');
  t.strictSame(templateVars(ringStopped), expected({
    ...envelope(ringStopped), ...callVars, ...a202, ...inSales, uniqueid: '1795369726.42', reason: 'answered_elsewhere',
  }), 'call.ring_stopped: reason');
  t.strictSame(templateVars(transferred), expected({
    ...envelope(transferred), ...callVars, ...a201, ...inSales, transferKind: 'attended', transferTo: '203',
  }), 'call.transferred: kind and target number; uniqueid null without a channel');
  t.equal(templateVars(blindToAgent).transferTo, '203', 'then a target without a number is named by its agent extension');
  t.equal(templateVars(blindToAgent).transferKind, 'blind');
  t.strictSame(templateVars(hangup), expected({
    ...envelope(hangup), ...callVars, agentId: 'u-17', agentExtension: '203', agentName: 'Ana Pérez', ...inSales,
    uniqueid: '1795369723.40', status: '400', disposition: 'answered', hangupBy: 'caller',
    hangupCause: 'Normal Clearing', hangupCauseCode: '16', ringSeconds: '3.2', talkSeconds: '255.472', totalSeconds: '262.259',
  }), 'call.hangup: cause text and code, durations, status 400, the last connected agent');
  t.strictSame(templateVars(missed), expected({
    ...envelope(missed), server: 'pbx1', callId: '1795369911.57', direction: 'inbound', calledNumber: '41004100',
    queue: 'sales', queuePosition: '2', queueWait: '41.87', reason: 'abandoned', waitSeconds: '45.1',
  }), 'call.missed: withheld caller is null, reason, waitSeconds; status stays null');
  t.strictSame(templateVars(missedHangup), expected({
    ...envelope(missedHangup), server: 'pbx1', callId: '1795369911.57', direction: 'inbound', calledNumber: '41004100',
    uniqueid: '1795369911.57', queue: 'sales', queuePosition: '2', queueWait: '41.87', status: '400',
    disposition: 'missed', hangupBy: 'caller', ringSeconds: '41.2', talkSeconds: '0', totalSeconds: '47.5',
  }), 'call.hangup of a missed call: unknown cause is null, talkSeconds 0 is "0"');
});

t.test('given each agent event, when its variables are derived, then call names are null and agent names are set', async (t) => {
  const agent = { ...a202, server: 'pbx1' };
  t.strictSame(templateVars(login), expected({ ...envelope(login), ...agent, queue: 'support' }), 'agent.login');
  t.strictSame(templateVars(logout), expected({ ...envelope(logout), ...agent, queue: 'support' }), 'agent.logout');
  t.strictSame(templateVars(paused), expected({ ...envelope(paused), ...agent, queue: 'support', reason: 'Mittagspause', paused: '1' }), 'agent.paused: paused 1 and the reason');
  t.strictSame(templateVars(unpaused), expected({ ...envelope(unpaused), ...agent, paused: '0' }), 'agent.unpaused: paused 0');
  t.strictSame(templateVars(status), expected({ ...envelope(status), ...agent, agentStatus: 'ringing' }), 'agent.status: agentStatus, not the Tencent status');
});

// ---------------------------------------------------------------------------------------------
// The seeds' examples

const omniVars = templateVars({
  ...answered,
  vars: { Omlcrmcustomerid: '321321321', Omlcrmcampaignid: '11', Omlcrmrecfile: 'prev-115-20190604-2-4149014-1559667982.424.wav' },
});

t.test('given the OMniLeads GET example as a parameter table, then the URL is exactly the documented one', async (t) => {
  const params = compileParams([
    { from: 'Omlcrmcustomerid', as: 'idClient' },
    { value: 11, as: 'idCamp' }, // a YAML number
    { value: 'es', as: 'lang' },
    { from: 'Omlcrmrecfile', as: 'recordingFile' },
  ]);
  t.equal(
    appendParams('https://mycrm.domain.com', params.render(omniVars), 'query'),
    'https://mycrm.domain.com?idClient=321321321&idCamp=11&lang=es&recordingFile=prev-115-20190604-2-4149014-1559667982.424.wav',
  );
  t.same(params.names, ['Omlcrmcustomerid', 'Omlcrmrecfile']);
});

t.test('given the OMniLeads clean-URL example with {holders}, then each value fills its segment', async (t) => {
  const url = compileUrl('https://mycrm.domain.com/{Omlcrmcustomerid}/{Omlcrmcampaignid}/es/{Omlcrmrecfile}');
  t.equal(url.render(omniVars), 'https://mycrm.domain.com/321321321/11/es/prev-115-20190604-2-4149014-1559667982.424.wav');
});

t.test('given a params map, then values are translated and unlisted ones pass or take the default', async (t) => {
  const params = compileParams([
    { from: 'event', as: 'action', map: { 'call.started': 'newCall', 'call.hangup': 'endCall' }, default: 'other' },
    { from: 'direction', as: 'dir', map: { inbound: 'in', outbound: 'out' } },
    { from: 'status', as: 'st', map: { 100: 'ring' } },
  ]);
  t.same(params.render(templateVars(started)), [['action', 'newCall'], ['dir', 'in']], 'then a null status is left out');
  t.same(params.render(templateVars(ringing)), [['action', 'other'], ['dir', 'in'], ['st', 'ring']]);
  t.same(params.render({ event: 'call.hangup', direction: 'internal', status: '400' }), [['action', 'endCall'], ['dir', 'internal'], ['st', '400']], 'then without a default an unlisted value passes unchanged');
});

t.test('given null values in params, then they are left out unless keepEmpty or a default; an empty value is sent', async (t) => {
  const params = compileParams([
    { from: 'callerName', as: 'name' },
    { from: 'callerName', as: 'nameOrEmpty', keepEmpty: true },
    { from: 'callerName', as: 'nameOrAnon', default: 'anonymous' },
    { from: 'Omlcrmticket', as: 'ticket' },
    { from: 'Omlcrmnote', as: 'note' },
  ]);
  t.same(params.render({ callerName: null, Omlcrmnote: '' }), [['nameOrEmpty', ''], ['nameOrAnon', 'anonymous'], ['note', '']]);
  const preset = compileParams([{ from: '<%CALLERID%>', as: 'cli' }]);
  t.same(preset.render(templateVars(answered)), [['cli', '+4915112345678']], 'then a WorldSmart key works as `from`');
});

t.test('given the WorldSmart Salesforce search URL, then the literal %&search=+Go%21+ survives and the caller is one parameter', async (t) => {
  const tpl = 'http://na2.salesforce.com/search/SearchResults?searchType=1&sen=003&setLast=1&sbs_tr=<%CALLERID%>%&search=+Go%21+';
  const rendered = compileUrl(tpl).render(templateVars(answered));
  t.equal(rendered, 'http://na2.salesforce.com/search/SearchResults?searchType=1&sen=003&setLast=1&sbs_tr=%2B4915112345678%&search=+Go%21+');
  t.ok(rendered.endsWith('%&search=+Go%21+'));
  const q = new URL(rendered).searchParams;
  t.same([...q.keys()], ['searchType', 'sen', 'setLast', 'sbs_tr', 'search']);
  t.equal(q.get('search'), ' Go! ');
});

t.test('given the WorldSmart task-creation URL, then each key lands decoded in its parameter', async (t) => {
  const tpl = 'http://na3.salesforce.com/00T/e?title=Call&followup=1&tsk5=Call&tsk6=Call%20From:%20<%CALLERID%>&tsk6_fu=Related To Call From:%20<%CALLERID%>%20on:%20<%SYSTIME%>';
  const url = compileUrl(tpl);
  t.same(url.names, ['callerNumber', 'time']);
  const q = new URL(url.render(templateVars({ ...answered, caller: { number: '+49 30 1234&5', name: null } }))).searchParams;
  t.equal(q.get('tsk6'), 'Call From: +49 30 1234&5');
  t.equal(q.get('tsk6_fu'), 'Related To Call From: +49 30 1234&5 on: 2026-11-22T17:48:49.905Z', 'then SYSTIME is the event time, ISO 8601 UTC');
  t.same([...q.keys()], ['title', 'followup', 'tsk5', 'tsk6', 'tsk6_fu']);
});

t.test('given the WorldSmart logout servlet example, then user, time and extension are sent', async (t) => {
  const url = compileUrl('http://www.newaccount.com/servlet/WSLogoutServlet?MyID=<%USERID%>&MyTime=<%SYSTIME%>&MyExtension=<%USEREXT%>');
  t.equal(url.render(templateVars(logout)), 'http://www.newaccount.com/servlet/WSLogoutServlet?MyID=202&MyTime=2026-11-22T18%3A00%3A59.999Z&MyExtension=202');
  const asWritten = compileUrl('http://www.newaccount.com/servlet/WSLogoutServlet?MyID= <%USERID%> &MyTime= <%SYSTIME%>');
  t.equal(asWritten.render(templateVars(logout)), 'http://www.newaccount.com/servlet/WSLogoutServlet?MyID= 202 &MyTime= 2026-11-22T18%3A00%3A59.999Z', 'then the spaces written in the template are kept as written');
});

t.test('given every WorldSmart key, then each reads its documented name', async (t) => {
  t.same(WORLDSMART_KEYS, {
    CALLERID: 'callerNumber', USERID: 'agentId', USEREXT: 'agentExtension', SYSTIME: 'time', DID: 'calledNumber',
    QUEUENAME: 'queue', QUEUEWAITTIME: 'queueWait', TRANSFERID: 'transferTo', DNDSTATUS: 'paused',
  });
  const all = compileUrl('https://crm.example.com/ws?c=<%CALLERID%>&u=<%USERID%>&e=<%USEREXT%>&t=<%SYSTIME%>&d=<%DID%>&q=<%QUEUENAME%>&w=<%QUEUEWAITTIME%>&x=<%TRANSFERID%>&dnd=<%DNDSTATUS%>');
  const q = new URL(all.render(templateVars(transferred))).searchParams;
  t.same(Object.fromEntries(q), { c: '+4915112345678', u: '201', e: '201', t: '2026-11-22T17:50:12.034Z', d: '41004100', q: 'sales', w: '3.2', x: '203', dnd: '' });
  const dnd = compileUrl('https://crm.example.com/dnd?user=<%USERID%>&dnd=<%DNDSTATUS%>');
  t.equal(dnd.render(templateVars(paused)), 'https://crm.example.com/dnd?user=202&dnd=1');
  t.equal(dnd.render(templateVars(unpaused)), 'https://crm.example.com/dnd?user=202&dnd=0');
});

t.test('given the Tencent hash template, then mobile and status land in the fragment, status 100/200/400', async (t) => {
  const url = compileUrl('https://crm.example.com/pop#?mobile={callerNumber}&status={status}');
  t.equal(url.render(templateVars(ringing)), 'https://crm.example.com/pop#?mobile=%2B4915112345678&status=100');
  const hashParams = (e: BridgeEvent) => Object.fromEntries(new URLSearchParams(new URL(url.render(templateVars(e))).hash.slice(2)));
  t.same(hashParams(answered), { mobile: '+4915112345678', status: '200' });
  t.same(hashParams(hangup), { mobile: '+4915112345678', status: '400' });
});

t.test('given the tencent preset, then the page gets Tencent\'s parameter names in the hash', async (t) => {
  const pairs = compileParams(TENCENT_PARAMS).render(templateVars({ ...ringing, caller: { number: '18888888888', name: 'Mr. Liu' } }));
  const url = appendParams('https://www.qq.com', pairs, 'fragment');
  t.equal(url, 'https://www.qq.com#?mobile=18888888888&status=100&type=phone&nickName=Mr.%20Liu&agentNickName=Zo%C3%AB%20%C5%81ukasik');
  t.equal(appendParams('https://crm.example.com/#/calls', [['mobile', '1']], 'fragment'), 'https://crm.example.com/#/calls?mobile=1', 'then a hash route is kept');
  t.equal(appendParams('https://crm.example.com/#?a=1', [['mobile', '1']], 'fragment'), 'https://crm.example.com/#?a=1&mobile=1');
  t.equal(appendParams('https://crm.example.com/x?a=1#top', [['b', '2']], 'query'), 'https://crm.example.com/x?a=1&b=2#top', 'then query params go before the fragment');
  t.equal(appendParams('https://crm.example.com/x', [], 'query'), 'https://crm.example.com/x');
});

// ---------------------------------------------------------------------------------------------
// Hostile values

const HOSTILE: readonly [string, string][] = [
  ['an ampersand', 'Acme & Sons'],
  ['a hash', 'x#y'],
  ['an equals sign', 'a=b'],
  ['a path climb', '../../admin'],
  ['a query start', '?x=1'],
  ['a plus and spaces', 'a+b c'],
  ['a percent escape', '%41%2F%'],
  ['backslashes', '..\\..\\admin'],
  ['non-ASCII', 'Ünïcødé 名前'],
  ['an emoji', 'Ana 👩‍💻'],
  ['a newline and tab', 'line1\r\nline2\tend'],
  ['a 2 KB name', 'Müller & Söhne #1 /?='.repeat(103).slice(0, 2048)],
];

const HOSTILE_URL = 'https://crm.example.com/contacts/{callerName}/calls/{callId}?name={callerName}&id={callId}&plan={Omlcrmcustomerplan}#?mobile={callerNumber}&name={callerName}';
const hostileUrl = compileUrl(HOSTILE_URL);

/** The event's variables with callerName and the CRM plan variable set to `value`. */
function hostileVars(value: string): TemplateVars {
  return { ...templateVars(answered), callerName: value, Omlcrmcustomerplan: value };
}

t.test('given hostile values, when they land in path, query and fragment, then every segment and parameter decodes to the original', async (t) => {
  for (const [what, value] of HOSTILE) {
    const url = new URL(hostileUrl.render(hostileVars(value)));
    t.equal(url.host, 'crm.example.com', `${what}: host unchanged`);
    const segments = url.pathname.split('/');
    t.equal(segments.length, 5, `${what}: then the path keeps its 4 segments (contacts, value, calls, id)`);
    t.equal(decodeURIComponent(segments[2] ?? ''), value, `${what}: then the path segment decodes to the value`);
    t.equal(segments[4], '1795369723.40', `${what}: then the following segment is untouched`);
    t.same([...url.searchParams.keys()], ['name', 'id', 'plan'], `${what}: then the query keeps exactly its parameters`);
    t.equal(url.searchParams.get('name'), value, `${what}: query value`);
    t.equal(url.searchParams.get('plan'), value, `${what}: a CRM variable in the query`);
    t.equal(url.searchParams.get('id'), '1795369723.40');
    const hash = new URLSearchParams(url.hash.slice(2));
    t.same([...hash.keys()], ['mobile', 'name'], `${what}: then the fragment keeps exactly its parameters`);
    t.equal(hash.get('name'), value, `${what}: fragment value`);
    t.equal(hash.get('mobile'), '+4915112345678');
  }
});

t.test('given a value that is exactly . or .., when it fills a path segment, then it renders empty rather than climb', async (t) => {
  for (const value of ['.', '..']) {
    const url = new URL(hostileUrl.render(hostileVars(value)));
    t.equal(url.pathname, '/contacts//calls/1795369723.40', `${value}: then the segments stay in place`);
    t.equal(url.searchParams.get('name'), value, `${value}: then the query still carries it`);
  }
  const joined = compileUrl('https://crm.example.com/a/{callerName}{callerNumber}/b');
  t.equal(new URL(joined.render({ callerName: '.', callerNumber: '.' })).pathname, '/a//b', 'then two values making .. together are caught too');
  t.equal(new URL(joined.render({ callerName: '.', callerNumber: 'x' })).pathname, '/a/.x/b');
});

t.test('given hostile values in params, when appended to the query or the fragment, then each decodes to the original', async (t) => {
  const params = compileParams([{ from: 'callerName', as: 'name' }, { from: 'callId', as: 'id' }, { value: 'a&b=c#d', as: 'fixed&key' }]);
  for (const [what, value] of HOSTILE) {
    const pairs = params.render(hostileVars(value));
    const inQuery = new URL(appendParams('https://crm.example.com/in?x=1#frag', pairs, 'query'));
    t.same([...inQuery.searchParams], [['x', '1'], ['name', value], ['id', '1795369723.40'], ['fixed&key', 'a&b=c#d']], `${what}: query`);
    t.equal(inQuery.hash, '#frag');
    const inHash = new URL(appendParams('https://crm.example.com/in', pairs, 'fragment'));
    t.same([...new URLSearchParams(inHash.hash.slice(2))], [['name', value], ['id', '1795369723.40'], ['fixed&key', 'a&b=c#d']], `${what}: fragment`);
  }
});

t.test('given CR/LF in a header value, then the rendered header is one line that undici accepts', async (t) => {
  const header = compileText('call {callId} from {callerName}');
  for (const value of ['Acme\r\nX-Injected: 1', 'a\nb', 'a\rb', 'nul\0byte', 'del\x7f', 'tab\tok']) {
    const rendered = header.render({ callId: '1.2', callerName: value });
    t.notMatch(rendered, /[\r\n\0\x7f]/, JSON.stringify(value));
    const headers = new Headers();
    headers.set('x-call', rendered);
    t.same([...headers.keys()], ['x-call'], `${JSON.stringify(value)}: then exactly one header`);
  }
  t.equal(header.render({ callId: '1.2', callerName: 'Acme\r\nX-Injected: 1' }), 'call 1.2 from AcmeX-Injected: 1');
  t.equal(header.render({ callId: '1.2', callerName: 'tab\tok' }), 'call 1.2 from tab\tok', 'then TAB is kept');
  t.throws(() => compileText('a\r\nb: {callId}'), TemplateError, 'then the template itself cannot hold a line break');
});

t.test('given a lone surrogate in a value, then rendering a URL does not throw', async (t) => {
  const url = compileUrl('https://crm.example.com/{callerName}?n={callerName}');
  t.equal(url.render({ callerName: 'a\uD800b' }), 'https://crm.example.com/a%EF%BF%BDb?n=a%EF%BF%BDb');
});

// ---------------------------------------------------------------------------------------------
// Unknown names and syntax

t.test('given unknown names and keys, then one TemplateError names every one with the closest known name', async (t) => {
  const err = t.throws(() => compileUrl('https://crm.example.com/{callerNumbr}/{agentid}?q=<%CALLID%>&c={omlcrmcustomerid}&x={ queue }&y={bogusthing}'));
  t.type(err, TemplateError);
  const problems = (err as TemplateError).problems;
  t.same(problems.map((p) => [p.name, p.suggestion]), [
    ['callerNumbr', '{callerNumber}'],
    ['agentid', '{agentId}'],
    ['<%CALLID%>', '<%CALLERID%>'],
    ['omlcrmcustomerid', '{Omlcrmcustomerid}'],
    [' queue ', '{queue}'],
    ['bogusthing', null],
  ]);
  const message = (err as TemplateError).message;
  for (const part of ['{callerNumbr}', 'did you mean {callerNumber}?', '<%CALLID%>', 'did you mean <%CALLERID%>?', '{bogusthing}']) t.match(message, part);
});

t.test('given Omlcrm names the call lacks, then they compile and render empty (URL, text) or null (body leaf)', async (t) => {
  const vars = templateVars(started);
  t.equal(compileUrl('https://crm.example.com/c/{Omlcrmticket}?plan={Omlcrmplan}').render(vars), 'https://crm.example.com/c/?plan=');
  t.equal(compileText('ticket {Omlcrmticket}').render(vars), 'ticket ');
  t.same(compileBody({ ticket: '{Omlcrmticket}', note: 'ticket {Omlcrmticket}' }).render(vars), { ticket: null, note: 'ticket ' });
});

t.test('given a holder in the host, then compiling fails: a value may not choose where a request goes', async (t) => {
  t.throws(() => compileUrl('https://{Omlcrmtenant}.crm.example.com/x'), TemplateError);
  t.throws(() => compileUrl('https://crm.example.com:{queue}/x'), TemplateError);
  t.equal(compileUrl('https://crm.example.com/{server}.x').render({ server: 'pbx1' }), 'https://crm.example.com/pbx1.x');
});

t.test('given braces, then {{ and }} are literal braces and an unclosed { is an error', async (t) => {
  t.equal(compileText('{{callId}} = {callId}; }').render({ callId: '7' }), '{callId} = 7; }');
  t.same(referencedNames('{{callId}} {callerName} <%DID%> {callerName}'), ['callerName', 'calledNumber']);
  t.throws(() => compileText('x {callId'), TemplateError);
  t.throws(() => compileText('x <%DID'), TemplateError);
  t.throws(() => referencedNames('{nope}'), TemplateError);
});

t.test('given a params list with mistakes, then every problem is reported at its row and key', async (t) => {
  const err = t.throws(() => compileParams([
    { from: '{callerNumber}', as: 'tel' },
    { form: 'callId', as: 'id' },
    { from: 'callId', value: 'x', as: '' },
    { value: { nested: true }, as: 'v' },
  ] as unknown as ParamSpec[])) as TemplateError;
  t.same(err.problems.map((p) => p.path), [[0, 'from'], [1, 'form'], [1], [2, 'as'], [2], [3, 'value']]);
  t.equal(err.problems[0]?.suggestion, 'callerNumber', 'then a braced name is suggested bare');
});

// ---------------------------------------------------------------------------------------------
// Bodies

const NASTY = 'He said "hi" \\ C:\\path\n{not a holder}? & a=b&c=d #x 名前';

t.test('given a JSON body, when values hold quotes, backslashes, newlines and &=, then JSON.parse returns them exactly', async (t) => {
  const body = compileBody({
    event: '{event}',
    call: { id: '{callId}', caller: { number: '{callerNumber}', name: '{callerName}' }, note: 'Call from {callerName} ({callerNumber})' },
    crm: ['{Omlcrmcustomerplan}', '{Omlcrmmissing}'],
    fixed: { n: 3, ok: true, none: null, brace: '{{literal}}' },
    ...parseYaml('__proto__: "{callerNumber}"\n'), // YAML makes it an own key, as a config file would
  });
  const vars = { ...templateVars(answered), callerName: NASTY, Omlcrmcustomerplan: NASTY };
  const parsed: unknown = JSON.parse(body.serialize(vars));
  t.strictSame(parsed, {
    event: 'call.answered',
    call: { id: '1795369723.40', caller: { number: '+4915112345678', name: NASTY }, note: `Call from ${NASTY} (+4915112345678)` },
    crm: [NASTY, null],
    fixed: { n: 3, ok: true, none: null, brace: '{literal}' },
    ...JSON.parse('{"__proto__":"+4915112345678"}'),
  });
  t.equal(body.contentType, 'application/json');
  t.ok(Object.hasOwn(body.render(vars) as object, '__proto__'), 'then a __proto__ key stays an own key');
});

t.test('given a form body, when values hold &, =, +, newlines and non-ASCII, then URLSearchParams returns them exactly and null is left out', async (t) => {
  const body = compileBody({ id: '{callId}', name: '{callerName}', text: 'from {callerName}', agent: '{agentName}', camp: 11, rec: true, none: null }, 'form');
  const vars = { ...templateVars(answered), callerName: NASTY, agentName: null };
  const form = new URLSearchParams(body.serialize(vars));
  t.same([...form], [['id', '1795369723.40'], ['name', NASTY], ['text', `from ${NASTY}`], ['camp', '11'], ['rec', 'true']]);
  t.equal(body.contentType, 'application/x-www-form-urlencoded');
  t.throws(() => compileBody({ nested: { a: '{callId}' } }, 'form'), TemplateError, 'then a nested form body is refused');
  t.throws(() => compileBody(['{callId}'], 'form'), TemplateError);
});

t.test('given a body with unknown names and non-JSON values, then every problem is reported at its path', async (t) => {
  const err = t.throws(() => compileBody({ a: { b: ['{calerName}'] }, c: 'x {nope} <%USR%>', d: new Date(0), e: Infinity })) as TemplateError;
  t.same(err.problems.map((p) => p.path), [['a', 'b', 0], ['c'], ['c'], ['d'], ['e']]);
  t.match(err.message, /a\.b\[0\]: unknown name \{calerName\}: did you mean \{callerName\}\?/);
});

t.test('given a compiled template, when rendered many times, then results do not share state', async (t) => {
  const body = compileBody({ list: ['{callId}'], obj: { k: '{callId}' } });
  const a = body.render({ callId: '1' }) as { list: string[] };
  a.list.push('mutated');
  t.same(body.render({ callId: '2' }), { list: ['2'], obj: { k: '2' } });
});
