// Target embedded: the CRM record in a tab inside this page, or in a tab of its own when the CRM
// refuses to be framed.

import { FRAME_TIMEOUT_MS, makeFrame, refusedExplanation, watchFrame } from './frames.js';
import { notify } from './header.js';
import { setLog } from './pop-log.js';
import { showBlocked } from './popups.js';
import { noFrameOrigins, setNoFrame } from './storage.js';
import { $, h, hostOf, originOf } from './util.js';
import { openWindow } from './windows.js';

const tabPanels = new WeakMap();
let tabSeq = 0;

export function popEmbedded(ctx, url) {
  const area = $('embedded-area');
  area.hidden = false;
  const origin = originOf(url);
  const id = `crm-tab-${++tabSeq}`;
  const label = ctx.number || ctx.name || 'CRM record';
  const tabBtn = h(
    'button',
    { type: 'button', role: 'tab', id: `${id}-tab`, class: 'tab-btn', 'aria-controls': `${id}-panel`, 'aria-selected': 'false', tabindex: '-1', title: ctx.name ? `${label} — ${ctx.name}` : label },
    label,
  );
  const tab = h('div', { class: 'tab', 'data-testid': 'embedded-tab', 'data-url': url, 'data-call-id': ctx.callId ?? '', 'data-state': 'loading' }, tabBtn);
  const closeBtn = h('button', { type: 'button', class: 'tab-close', 'aria-label': `Close ${label}`, title: 'Close' }, '×');
  tab.append(closeBtn);
  const note = h('p', { class: 'frame-note', role: 'status', hidden: true });
  const panel = h('div', { role: 'tabpanel', id: `${id}-panel`, class: 'tabpanel', 'aria-labelledby': `${id}-tab`, hidden: true });
  let frame = null;
  let explanation = null;

  /** Opens the record in a tab of its own, kept so that closeOn can still close it. */
  const openOutside = (why) => {
    const w = openWindow(url, '_blank');
    if (w) {
      ctx.win = w;
      setLog(ctx, 'opened', why);
    } else {
      setLog(ctx, 'blocked', 'Blocked by the browser — use the button above');
      showBlocked(ctx, url, '_blank');
    }
  };
  const showFrame = () => {
    explanation?.remove();
    explanation = null;
    tab.dataset.state = 'loading';
    frame = makeFrame(url, `CRM record for ${label}`);
    const mine = frame;
    watchFrame(frame, url, {
      onSlow: () => {
        if (frame !== mine) return;
        tab.dataset.state = 'slow';
        note.textContent = `Still loading after ${FRAME_TIMEOUT_MS / 1000} s. If it stays blank, this CRM probably refuses to be shown inside another page: use “Blank? Open in a new tab”.`;
        note.hidden = false;
      },
      onLoaded: () => {
        if (frame !== mine) return;
        tab.dataset.state = 'loaded';
        note.hidden = true;
      },
      onRefused: () => {
        if (frame !== mine) return;
        setNoFrame(origin, true);
        showRefused();
        setLog(ctx, 'refused', 'This CRM refuses to be shown in the page — open it in a new tab');
      },
    });
    panel.append(frame);
  };
  const showRefused = () => {
    tab.dataset.state = 'refused';
    note.hidden = true;
    frame?.remove();
    frame = null;
    if (explanation) return;
    explanation = refusedExplanation(url, 'This CRM record', [
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => openOutside('Opened in a new tab by click') }, 'Open in a new tab'),
      h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => { setNoFrame(origin, false); showFrame(); } }, 'Try showing it in this page again'),
    ]);
    panel.append(explanation);
  };

  panel.append(
    h(
      'div',
      { class: 'panel-bar' },
      h('span', { class: 'panel-title' }, ctx.name ? `${label} · ${ctx.name}` : label),
      h('span', { class: 'panel-host' }, hostOf(url)),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-small',
          title: `Some CRMs refuse to be shown inside another page. This opens the record in a new tab, and the next records of ${hostOf(url)} too.`,
          onclick: () => {
            setNoFrame(origin, true);
            showRefused();
            openOutside('Opened in a new tab (the CRM stayed blank here)');
          },
        },
        'Blank? Open in a new tab',
      ),
    ),
    note,
  );
  tabPanels.set(tab, panel);
  tabBtn.addEventListener('click', () => selectTab(tab));
  tabBtn.addEventListener('keydown', (e) => tabKeys(e, tab));
  closeBtn.addEventListener('click', () => {
    removeTab(tab);
    if (ctx.tab === tab) ctx.tab = null;
    setLog(ctx, 'dismissed', 'Tab closed');
  });
  $('tabstrip').append(tab);
  $('tabpanels').append(panel);
  selectTab(tab);
  ctx.tab = tab;
  if (ctx.pop.framing === 'refused' || ctx.pop.frameable === false || noFrameOrigins().has(origin)) {
    showRefused();
    openOutside('This CRM cannot be shown in the page: opened in a new tab');
  } else {
    showFrame();
    setLog(ctx, 'opened', 'Shown in this page');
  }
  if (document.hidden && !ctx.notification) {
    ctx.notification = notify(ctx.number ? `Incoming call ${ctx.number}` : 'Incoming call', ctx.name || 'The CRM record is open in the agent page', ctx.key, () => selectTab(tab));
  }
}

function selectTab(tab) {
  for (const t of $('tabstrip').children) {
    const on = t === tab;
    const btn = t.querySelector('[role="tab"]');
    t.classList.toggle('active', on);
    btn.setAttribute('aria-selected', String(on));
    btn.tabIndex = on ? 0 : -1;
    const panel = tabPanels.get(t);
    if (panel) panel.hidden = !on;
  }
}

function tabKeys(e, tab) {
  const tabs = [...$('tabstrip').children];
  const i = tabs.indexOf(tab);
  let next = null;
  if (e.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
  else if (e.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
  else if (e.key === 'Home') next = tabs[0];
  else if (e.key === 'End') next = tabs[tabs.length - 1];
  if (!next) return;
  e.preventDefault();
  selectTab(next);
  next.querySelector('[role="tab"]').focus();
}

export function removeTab(tab) {
  const wasActive = tab.classList.contains('active');
  tabPanels.get(tab)?.remove();
  tab.remove();
  const rest = [...$('tabstrip').children];
  if (rest.length === 0) $('embedded-area').hidden = true;
  else if (wasActive) selectTab(rest[rest.length - 1]);
}
