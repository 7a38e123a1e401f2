// The agents: a compact tile each (1,000 must stay usable), state counts that filter, and a filter
// box by name, extension, queue or state. Tiles keep their place (by name): on a wallboard a tile
// that jumps whenever its agent takes a call cannot be followed.

import { KeyedList, setSince } from './keyed.js';
import { floor } from './model.js';
import { $, h, isStr, partyText, setText } from './util.js';

/** State -> words (colour is never the only sign of a state). */
export const STATE_TEXT = {
  on_call: 'On a call',
  on_hold: 'On hold',
  ringing: 'Ringing',
  paused: 'Paused',
  available: 'Available',
  unavailable: 'Unavailable',
  logged_out: 'Logged out',
};
const STATES = Object.keys(STATE_TEXT);

export const agentLabel = (a) => (a ? (isStr(a.name) ? a.name : `Agent ${a.id}`) : '');

const filter = { text: '', state: '' };
let list = null;

function create(a) {
  return h(
    'li',
    { class: 'tile', 'data-testid': 'agent-tile', 'data-agent': a.id },
    h('div', { class: 'tile-head' }, h('span', { class: 'tile-name' }), h('span', { class: 'tile-ext' })),
    h('div', { class: 'tile-state' }, h('span', { class: 'state-text' }), ' ', h('span', { class: 'state-time', 'data-empty': '' })),
    h('div', { class: 'tile-reason' }, h('span', { class: 'muted' }, 'Reason: '), h('span', { class: 'reason-text' })),
    h('div', { class: 'tile-call' }, h('span', { class: 'call-who' }), ' ', h('span', { class: 'call-time', 'data-empty': '' })),
    h('div', { class: 'tile-today' }),
  );
}

function update(el, a) {
  const state = STATE_TEXT[a.state] ? a.state : 'unavailable';
  el.dataset.state = state;
  setText(el.querySelector('.tile-name'), agentLabel(a));
  setText(el.querySelector('.tile-ext'), isStr(a.extension) ? `ext. ${a.extension}` : '');
  setText(el.querySelector('.state-text'), STATE_TEXT[state]);
  setSince(el.querySelector('.state-time'), a.since);
  const reason = el.querySelector('.tile-reason');
  const why = state === 'paused' && isStr(a.pausedReason) ? a.pausedReason : '';
  setText(reason.lastChild, why);
  reason.hidden = !why;
  const call = el.querySelector('.tile-call');
  call.hidden = !a.call;
  // The other party: on an outbound call the call's caller is the agent, the one called is not.
  const live = a.call ? floor.calls.get(a.call.callId) : null;
  const other = live?.direction === 'outbound' ? live.called : a.call?.caller;
  setText(call.querySelector('.call-who'), a.call ? `${partyText(other)}${isStr(a.call.queue) ? ` · ${a.call.queue}` : ''}` : '');
  setSince(call.querySelector('.call-time'), a.call ? a.call.since : null);
  setText(el.querySelector('.tile-today'), `${a.callsToday ?? 0} call${a.callsToday === 1 ? '' : 's'} today`);
  el.dataset.search = [a.name, a.extension, a.id, ...(Array.isArray(a.queues) ? a.queues : []), STATE_TEXT[state], a.pausedReason].filter(isStr).join('\n').toLowerCase();
  applyFilter(el);
}

function applyFilter(el) {
  const show = (!filter.state || el.dataset.state === filter.state) && (!filter.text || el.dataset.search.includes(filter.text));
  if (el.hidden === show) el.hidden = !show;
}

const byName = (a, b) => agentLabel(a).localeCompare(agentLabel(b), undefined, { numeric: true }) || a.id.localeCompare(b.id);

export function renderAgents(items, keys) {
  list ??= new KeyedList($('agent-tiles'), { create, update, compare: byName, ticks: true });
  list.sync(items, keys);
  renderCounts(items);
}

/** Tiles that show a call that changed (its direction and parties come with the call). */
export function refreshAgentsOf(callIds) {
  const ids = [];
  for (const id of callIds) {
    const agent = floor.calls.get(id)?.agent?.id;
    if (agent) ids.push(agent);
  }
  if (ids.length) list?.refresh(ids);
}

function renderCounts(items) {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const a of items.values()) counts[STATE_TEXT[a.state] ? a.state : 'unavailable']++;
  const box = $('agent-counts');
  if (!box.firstChild) {
    box.append(
      ...['', ...STATES].map((s) =>
        h('button', { type: 'button', class: 'chip', 'data-state': s, 'aria-pressed': 'false', onclick: () => setStateFilter(s) }, h('span', { class: 'chip-label' }, s ? STATE_TEXT[s] : 'All'), ' ', h('span', { class: 'chip-count' })),
      ),
    );
  }
  for (const b of box.children) {
    const s = b.dataset.state;
    setText(b.querySelector('.chip-count'), s ? counts[s] : items.size);
    b.setAttribute('aria-pressed', String(s === filter.state));
  }
  renderShown();
}

function renderShown() {
  let shown = 0;
  list?.each((el) => {
    if (!el.hidden) shown++;
  });
  const total = list?.size ?? 0;
  setText($('agents-shown'), filter.text || filter.state ? `${shown} of ${total} shown` : '');
  $('agents-empty').hidden = total > 0;
}

function setStateFilter(s) {
  filter.state = s;
  for (const b of $('agent-counts').children) b.setAttribute('aria-pressed', String(b.dataset.state === s));
  refilter();
}

function refilter() {
  list?.each(applyFilter);
  renderShown();
}

export function wireAgentFilter() {
  let pending = false;
  $('agent-filter').addEventListener('input', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      filter.text = $('agent-filter').value.trim().toLowerCase();
      refilter();
    });
  });
}

/** Agents for a call-back, available ones first, then by name. */
export function agentsForCallBack(items) {
  const rank = (a) => (a.state === 'available' ? 0 : a.state === 'logged_out' ? 2 : 1);
  return [...items.values()].sort((a, b) => rank(a) - rank(b) || byName(a, b));
}

export function clearAgents() {
  list?.clear();
  $('agent-counts').replaceChildren();
}
