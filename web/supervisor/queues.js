// The queues: one table row per queue, live (waiting, longest wait) and today's figures.

import { KeyedList, setSince } from './keyed.js';
import { $, duration, h, percent, setText } from './util.js';

const num = (v) => (Number.isFinite(v) ? String(v) : '—');

/** Column key -> how the cell reads from a QueueFigures (longestWait ticks instead). */
const COLUMNS = [
  ['waiting', (q) => num(q.waiting)],
  ['longestWait', null],
  ['loggedIn', (q) => num(q.agents?.loggedIn)],
  ['available', (q) => num(q.agents?.available)],
  ['onCall', (q) => num(q.agents?.onCall)],
  ['paused', (q) => num(q.agents?.paused)],
  ['answered', (q) => num(q.answered)],
  ['abandoned', (q) => num(q.abandoned)],
  ['abandonRate', (q) => percent(q.abandonRate)],
  ['serviceLevel', null],
  ['averageWait', (q) => duration(q.averageWaitSeconds)],
  ['averageTalk', (q) => duration(q.averageTalkSeconds)],
];

let list = null;

function create(q) {
  const cells = COLUMNS.map(([col]) => h('td', { 'data-col': col, class: 'num' }));
  const row = h('tr', { 'data-testid': 'queue-row', 'data-queue': q.name }, h('th', { scope: 'row', class: 'queue-name' }, q.name), ...cells);
  row.querySelector('[data-col="longestWait"]').dataset.empty = '—';
  row.querySelector('[data-col="serviceLevel"]').append(h('span', { class: 'sl-value' }), h('span', { class: 'sl-n' }));
  return row;
}

function update(row, q) {
  for (const [col, text] of COLUMNS) {
    const td = row.querySelector(`[data-col="${col}"]`);
    if (text) setText(td, text(q));
  }
  setSince(row.querySelector('[data-col="longestWait"]'), q.longestWaitSince);
  const sl = row.querySelector('[data-col="serviceLevel"]');
  setText(sl.firstChild, percent(q.serviceLevel?.ratio));
  setText(sl.lastChild, Number.isFinite(q.serviceLevel?.seconds) ? ` ≤${q.serviceLevel.seconds} s` : '');
  sl.title = q.serviceLevel ? `${q.serviceLevel.answeredWithin} answered within ${q.serviceLevel.seconds} s` : '';
  row.dataset.waiting = String(q.waiting ?? 0);
  row.classList.toggle('has-waiting', q.waiting > 0);
}

export function renderQueues(items, keys) {
  list ??= new KeyedList($('queue-rows'), { create, update, compare: (a, b) => a.name.localeCompare(b.name), ticks: true });
  list.sync(items, keys);
  $('queues-empty').hidden = items.size > 0;
}

export function clearQueues() {
  list?.clear();
}
