// Calls in progress: caller, queue, agent, state and how long, oldest first.

import { KeyedList, setSince } from './keyed.js';
import { $, h, isStr, partyText, setText } from './util.js';

const STATE_TEXT = { ringing: 'Ringing', queued: 'Waiting in queue', talking: 'Talking' };
let list = null;

function create(c) {
  return h(
    'tr',
    { 'data-testid': 'call-row', 'data-call': c.callId },
    h('td', { 'data-col': 'caller' }),
    h('td', { 'data-col': 'queue' }),
    h('td', { 'data-col': 'agent' }),
    h('td', { 'data-col': 'state' }, h('span', { class: 'call-state' }), ' ', h('span', { class: 'call-state-time muted', 'data-prefix': '', 'data-empty': '' })),
    h('td', { 'data-col': 'duration', class: 'num' }),
  );
}

function update(row, c) {
  const state = STATE_TEXT[c.state] ? c.state : 'talking';
  row.dataset.state = state;
  // An outbound call's other party is the one called.
  setText(row.querySelector('[data-col="caller"]'), partyText(c.direction === 'outbound' ? c.called : c.caller));
  setText(row.querySelector('[data-col="queue"]'), isStr(c.queue) ? c.queue : '—');
  setText(row.querySelector('[data-col="agent"]'), c.agent ? (isStr(c.agent.name) ? c.agent.name : `Agent ${c.agent.id}`) : '—');
  setText(row.querySelector('.call-state'), `${STATE_TEXT[state]}${c.direction === 'outbound' ? ' (outbound)' : ''}`);
  setSince(row.querySelector('.call-state-time'), state === 'talking' ? null : c.stateSince);
  setSince(row.querySelector('[data-col="duration"]'), c.started);
}

export function renderCalls(items, keys) {
  list ??= new KeyedList($('call-rows'), { create, update, compare: (a, b) => String(a.started).localeCompare(String(b.started)) || a.callId.localeCompare(b.callId), ticks: true });
  list.sync(items, keys);
  $('calls-empty').hidden = items.size > 0;
  setText($('calls-count'), items.size ? `(${items.size})` : '');
}

export function clearCalls() {
  list?.clear();
}
