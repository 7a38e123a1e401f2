// The pop log: one line per pop with what became of it, newest first, bounded.

import { $, clock, copyText, h, safeUrl } from './util.js';
import { openDetached } from './windows.js';

const LOG_MAX = 50;

const TARGET_TEXT = {
  'new-tab': 'New tab',
  'named-tab': 'CRM window',
  embedded: 'In this page',
  hash: 'CRM panel',
  background: 'Background request',
  clipboard: 'Clipboard',
};

export function addLog(ctx) {
  const { pop } = ctx;
  const url = safeUrl(pop.url);
  let action = null;
  if (url && pop.target !== 'background') {
    action = h('button', { type: 'button', class: 'btn btn-small btn-quiet', title: 'Open this record in a new tab', onclick: () => openDetached(url) }, 'Open');
  } else if (pop.target === 'clipboard' && typeof pop.text === 'string') {
    const text = pop.text;
    action = h('button', { type: 'button', class: 'btn btn-small btn-quiet' }, 'Copy');
    action.addEventListener('click', async () => {
      action.textContent = (await copyText(text)) ? 'Copied ✓' : 'Copy failed';
    });
  }
  const li = h(
    'li',
    { class: 'pop-item', 'data-target': pop.target, 'data-url': pop.url ?? '', 'data-call-id': ctx.callId ?? '', 'data-rule-id': pop.ruleId, 'data-status': 'pending' },
    h('time', { datetime: new Date().toISOString() }, clock(Date.now())),
    h('span', { class: 'pop-target' }, TARGET_TEXT[pop.target] ?? pop.target),
    h('span', { class: 'pop-who' }, ctx.number || ctx.name || ''),
    h('span', { class: 'pop-status' }, ''),
    action,
  );
  const list = $('pop-log');
  list.prepend(li);
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
  $('pop-log-empty').hidden = true;
  return li;
}

export function setLog(ctx, status, text) {
  if (!ctx.log) return;
  ctx.log.dataset.status = status;
  ctx.log.querySelector('.pop-status').textContent = text;
}
