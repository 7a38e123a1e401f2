// The normalizer's name-based event ids (UUIDv5) are made without the uuid package on the hot
// path; they must stay exactly uuid's v5 of the same name, or HA peers and replays would disagree.
import t from 'tap';
import { v5 as uuidv5 } from 'uuid';
import { defaultIds, EVENT_ID_NAMESPACE, nameBasedId } from '../dist/normalizer/index.js';

t.test('given event-id seeds, when made into ids, then each is exactly uuid v5 of the seed in the event namespace', async (t) => {
  const names = [
    'pbx1|newchannel|1795423805.18|1795423805.239091|call.started|1795423805.18|0',
    'pbx1|devicestatechange||1795423805.240000|agent.status|agent:201|0',
    '',
    'a',
    'ünïcødé € 😀 | Ana Pérez',
    'x'.repeat(1359),
    'x'.repeat(1360),
    '€'.repeat(2000),
    'y'.repeat(10_000),
  ];
  for (let i = 0; i < 500; i++) names.push(`pbx-${i}|hangup|18000${i}.${i * 7}|18000${i}.${String(i).padStart(6, '0')}|call.hangup|18000${i}.1|${i % 5}`);
  const differing = names.filter((name) => nameBasedId(name) !== uuidv5(name, EVENT_ID_NAMESPACE)).map((n) => `${n.slice(0, 40)}… (${n.length} chars)`);
  t.same(differing, [], `then all ${names.length} ids are uuid's`);
  t.equal(defaultIds(names[0] ?? ''), uuidv5(names[0] ?? '', EVENT_ID_NAMESPACE), 'then defaultIds uses it');
  t.match(defaultIds(null), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'then an event without a Timestamp gets a UUIDv7');
});

t.test('given a seed that is not well-formed UTF-16, then the id is uuid\'s for the seed with U+FFFD, not a crash', async (t) => {
  const lone = 'pbx1|varset|\ud800|1.2';
  t.equal(nameBasedId(lone), uuidv5('pbx1|varset|\ufffd|1.2', EVENT_ID_NAMESPACE));
  t.equal(nameBasedId(`${lone}|${'z'.repeat(5000)}`), uuidv5(`pbx1|varset|\ufffd|1.2|${'z'.repeat(5000)}`, EVENT_ID_NAMESPACE), 'then also past the fast path');
});
