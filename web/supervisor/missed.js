// Today's missed calls, newest first: when, who, which queue, why, how long they waited; and for
// those nobody has called back yet, a call-back from a chosen agent through the API
// (POST /api/v1/calls with the supervisor's token).

import { agentLabel, agentsForCallBack, STATE_TEXT } from './agents.js';
import { REASON_TEXT } from './chart.js';
import { callBack } from './http.js';
import { KeyedList } from './keyed.js';
import { floor } from './model.js';
import { $, clockIn, duration, h, isStr, partyText, setText } from './util.js';

let list = null;
let canCallBack = true;
/** Bumped when the agents change: a select refills its options when next opened. */
let agentsVersion = 0;

function create(m) {
  const select = h('select', { class: 'cb-agent', 'aria-label': 'Agent who calls back' }, h('option', { value: '' }, 'Choose an agent…'));
  select.dataset.version = '-1';
  // 1,000 agents in every row's select would be 100,000 options: a select is filled when it is
  // about to be used, and again only when the agents changed since.
  const fill = () => fillSelect(select);
  select.addEventListener('focus', fill);
  select.addEventListener('pointerdown', fill);
  const button = h('button', { type: 'button', class: 'btn btn-small btn-primary cb-button', 'data-testid': 'call-back' }, 'Call back');
  const row = h(
    'tr',
    { 'data-testid': 'missed-row', 'data-call': m.id },
    h('td', { 'data-col': 'time', class: 'num' }),
    h('td', { 'data-col': 'caller' }),
    h('td', { 'data-col': 'queue' }),
    h('td', { 'data-col': 'reason' }),
    h('td', { 'data-col': 'wait', class: 'num' }),
    h('td', { 'data-col': 'action' }, h('div', { class: 'cb-form' }, select, button), h('p', { class: 'cb-done' }), h('p', { class: 'cb-result', role: 'status', 'aria-live': 'polite' })),
  );
  button.addEventListener('click', () => void onCallBack(row, select, button));
  return row;
}

function fillSelect(select) {
  if (select.dataset.version === String(agentsVersion)) return;
  const chosen = select.value;
  const options = [h('option', { value: '' }, 'Choose an agent…')];
  for (const a of agentsForCallBack(floor.agents)) {
    options.push(h('option', { value: a.id, selected: a.id === chosen }, `${agentLabel(a)}${isStr(a.extension) ? ` (${a.extension})` : ''} — ${STATE_TEXT[a.state] ?? a.state}`));
  }
  select.replaceChildren(...options);
  select.value = chosen && floor.agents.has(chosen) ? chosen : '';
  select.dataset.version = String(agentsVersion);
}

function update(row, m) {
  setText(row.querySelector('[data-col="time"]'), clockIn(floor.timeZone, m.time));
  setText(row.querySelector('[data-col="caller"]'), partyText(m.caller));
  setText(row.querySelector('[data-col="queue"]'), isStr(m.queue) ? m.queue : '—');
  setText(row.querySelector('[data-col="reason"]'), REASON_TEXT[m.reason] ?? String(m.reason ?? ''));
  setText(row.querySelector('[data-col="wait"]'), duration(m.waitSeconds));
  row.dataset.reason = String(m.reason ?? '');
  const done = m.calledBack && typeof m.calledBack === 'object' ? m.calledBack : null;
  row.dataset.calledBack = String(Boolean(done));
  const form = row.querySelector('.cb-form');
  const number = isStr(m.caller?.number) ? m.caller.number : null;
  form.hidden = Boolean(done) || !number || !canCallBack;
  const doneText = row.querySelector('.cb-done');
  if (done) {
    const who = isStr(done.agent) ? agentLabel(floor.agents.get(done.agent) ?? { id: done.agent }) : null;
    const at = clockIn(floor.timeZone, done.time);
    setText(doneText, done.how === 'called_again' ? `called again at ${at}${who ? `, answered by ${who}` : ''}` : `called back at ${at}${who ? ` by ${who}` : ''}`);
    setText(row.querySelector('.cb-result'), '');
  } else setText(doneText, !number ? 'no number to call back' : !canCallBack ? 'call-back needs the API (api: in the config)' : '');
  doneText.hidden = !doneText.textContent;
}

async function onCallBack(row, select, button) {
  const m = floor.missed.get(row.dataset.call);
  const result = row.querySelector('.cb-result');
  if (!m || !isStr(m.caller?.number)) return;
  if (!select.value) {
    result.dataset.kind = 'error';
    setText(result, 'Choose the agent who calls back.');
    select.focus();
    return;
  }
  const agent = floor.agents.get(select.value) ?? { id: select.value };
  button.disabled = true;
  result.dataset.kind = 'pending';
  setText(result, `Calling ${m.caller.number} from ${agentLabel(agent)}…`);
  try {
    const r = await callBack(select.value, m.caller.number);
    result.dataset.kind = 'ok';
    setText(result, `${agentLabel(agent)}'s phone rings first, then ${isStr(r?.number) ? r.number : m.caller.number} (${isStr(r?.status) ? r.status : 'placed'}).`);
  } catch (err) {
    result.dataset.kind = 'error';
    setText(result, `Not placed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

const newestFirst = (a, b) => String(b.time).localeCompare(String(a.time)) || String(b.id).localeCompare(String(a.id));

export function renderMissed(items, keys, agentsChanged) {
  if (agentsChanged) agentsVersion++;
  list ??= new KeyedList($('missed-rows'), { create, update, compare: newestFirst });
  list.sync(items, keys);
  // "called back … by <name>" names agents: a renamed agent is rare, a snapshot is not.
  if (agentsChanged && keys !== null) list.each((row, m) => m.calledBack && update(row, m));
  let open = 0;
  for (const m of items.values()) if (!m.calledBack) open++;
  setText($('missed-count'), items.size ? `(${open} not called back of ${items.size})` : '');
  $('missed-empty').hidden = items.size > 0;
}

export function setCanCallBack(on) {
  canCallBack = on !== false;
  list?.each(update);
}

export function clearMissed() {
  list?.clear();
}
