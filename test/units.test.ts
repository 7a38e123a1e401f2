// Pure pieces: reconnect backoff, agent identity, frame flattening.
import t from 'tap';
import { flattenFrame } from '../dist/normalizer/ami-event.js';
import { backoffDelay } from '../dist/util/backoff.js';
import { ChurnMap } from '../dist/util/churn-map.js';
import { AgentDirectory, interfaceOf, localPartner } from '../dist/normalizer/agents.js';

t.test('given the reconnect policy, when attempts fail, then delays grow exponentially up to the cap', async (t) => {
  const policy = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, jitter: 0 };
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelay(policy, n)), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

t.test('given jitter, then each delay stays within ±jitter of the base', async (t) => {
  const policy = { initialDelayMs: 1000, maxDelayMs: 1000, factor: 2, jitter: 0.2 };
  t.equal(backoffDelay(policy, 3, () => 0), 800);
  t.equal(backoffDelay(policy, 3, () => 0.5), 1000);
  t.equal(backoffDelay(policy, 3, () => 1), 1200);
});

t.test('given channel names, then interfaces and Local partners are derived', async (t) => {
  t.equal(interfaceOf('PJSIP/201-0000000a'), 'PJSIP/201');
  t.equal(interfaceOf('SIP/trunk-00000a1f'), 'SIP/trunk');
  t.equal(interfaceOf('Local/201@agents-0000000b;1'), 'Local/201@agents');
  t.equal(interfaceOf('PJSIP/201'), 'PJSIP/201');
  t.equal(localPartner('Local/201@agents-0000000b;1'), 'Local/201@agents-0000000b;2');
  t.equal(localPartner('PJSIP/201-0000000a'), null);
});

t.test('given no agents config, then agents are derived from devices and agent contexts only', async (t) => {
  const dir = new AgentDirectory({ agents: [], agentContexts: ['agents'], extensionPattern: '^[0-9]{2,6}$' });
  t.same(dir.fromChannel('PJSIP/201-00000012'), { id: '201', extension: '201', name: null, interface: 'PJSIP/201' });
  t.same(dir.fromChannel('Local/202@agents-00000001;2'), { id: '202', extension: '202', name: null, interface: 'Local/202@agents' });
  t.equal(dir.fromChannel('Local/41004100@from-pstn-00000000;1'), null, 'a Local channel in another context is not an agent');
  t.equal(dir.fromChannel('PJSIP/trunk-00000003'), null, 'a trunk endpoint is not an agent');
  t.equal(dir.fromChannel('Queue:sales'), null);
  dir.learnName('Local/202@agents', 'Agent 202');
  t.equal(dir.fromChannel('Local/202@agents-00000009;1')?.name, 'Agent 202', 'a queue MemberName names the agent from then on');
});

t.test('given an agents config, then it wins over derivation', async (t) => {
  const dir = new AgentDirectory({
    agents: [{ id: 'u-17', name: 'Ana Pérez', extension: '201', interfaces: ['PJSIP/201', 'Local/201@agents'] }],
    agentContexts: ['agents'],
    extensionPattern: '^[0-9]{2,6}$',
  });
  t.same(dir.fromChannel('Local/201@agents-0000000b;1'), { id: 'u-17', extension: '201', name: 'Ana Pérez', interface: 'Local/201@agents' });
  t.same(dir.fromChannel('pjsip/201-0000000b'), { id: 'u-17', extension: '201', name: 'Ana Pérez', interface: 'pjsip/201' }, 'interfaces match ignoring case');
  t.equal(dir.fromExtension('201')?.id, 'u-17');
  t.equal(dir.fromExtension('5551234'), null);
});

t.test('given asterisk-manager frames, then they flatten to one string per header', async (t) => {
  const varset = flattenFrame({ event: 'VarSet', variable: { Omlcrmcustomerid: '' }, value: 'a&b=c#d' });
  t.same(varset, { event: { event: 'VarSet', variable: 'Omlcrmcustomerid', value: 'a&b=c#d' }, problem: null });
  const glued = flattenFrame({ event: ['Newstate', 'Hangup'], uniqueid: ['1.1', '1.2'] });
  t.same(glued.event, { event: 'Newstate', uniqueid: '1.1' });
  t.same(glued.problem, { repeated: ['event', 'uniqueid'] });
});

t.test('given CRM response headers, then the framing verdict follows X-Frame-Options and CSP frame-ancestors', async (t) => {
  const { framingFrom } = await import('../dist/http/framing.js');
  const page = 'https://crm.example.com/contact';
  const bridge = 'http://bridge.local:8090';
  t.equal(framingFrom({}, page, bridge), 'allowed');
  t.equal(framingFrom({ 'x-frame-options': 'DENY' }, page, bridge), 'refused');
  t.equal(framingFrom({ 'x-frame-options': 'sameorigin' }, page, bridge), 'refused');
  t.equal(framingFrom({ 'x-frame-options': 'SAMEORIGIN' }, 'http://bridge.local:8090/x', bridge), 'allowed');
  t.equal(framingFrom({ 'content-security-policy': "default-src 'self'; frame-ancestors 'none'" }, page, bridge), 'refused');
  t.equal(framingFrom({ 'content-security-policy': 'frame-ancestors http://bridge.local:8090 https://other' }, page, bridge), 'allowed');
  t.equal(framingFrom({ 'content-security-policy': "frame-ancestors 'self'", 'x-frame-options': 'ALLOWALL' }, page, bridge), 'refused', 'CSP wins over X-Frame-Options');
  t.equal(framingFrom({ 'content-security-policy': 'frame-ancestors *.local:8090' }, page, bridge), 'allowed');
});

t.test('given a ChurnMap, then it keeps string keys like a Map: set, get, has, delete, size, clear and iteration, "__proto__" and index-like keys included', async (t) => {
  const m = new ChurnMap<number>();
  t.equal(m.size, 0);
  m.set('a', 1).set('__proto__', 2).set('42', 3).set('a', 4);
  t.equal(m.size, 3, 'setting a key again does not count it twice');
  t.equal(m.get('a'), 4);
  t.equal(m.get('__proto__'), 2, '"__proto__" is a key like any other');
  t.ok(m.has('42'));
  t.notOk(m.has('toString'), 'nothing inherited');
  t.equal(m.get('b'), undefined);
  t.same([...m.keys()].sort(), ['42', '__proto__', 'a']);
  t.same([...m.values()].sort(), [2, 3, 4]);
  t.same([...m.entries()].sort(), [['42', 3], ['__proto__', 2], ['a', 4]]);
  t.same(new Map(m), new Map([['a', 4], ['__proto__', 2], ['42', 3]]));
  t.equal(m.delete('a'), true);
  t.equal(m.delete('a'), false, 'a key deleted twice counts once');
  t.equal(m.size, 2);
  for (let i = 0; i < 10_000; i++) {
    m.set(`k${i}`, i);
    if (i >= 8) m.delete(`k${i - 8}`);
  }
  t.equal(m.size, 10, 'churn: 8 live keys plus the two set before');
  m.clear();
  t.equal(m.size, 0);
  t.same([...m], []);
  const from = new ChurnMap<number>([['x', 1], ['y', 2], ['x', 3]]);
  t.same(new Map(from), new Map([['x', 3], ['y', 2]]), 'built from entries, as new Map(entries)');
  t.equal(from.size, 2);
});
