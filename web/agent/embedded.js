// Target embedded: the CRM record in a tab inside this page, or in a tab of its own when the CRM
// refuses to be framed.
//
// What stays on screen: a record is only ever shown because its own call popped it or the agent
// picked its tab. When a tab closes (its call moved on), the view falls back to another tab of the
// same call, else to nothing — never to an earlier call's record, which under the current call's
// card would be the wrong customer.
//
// How many stay: a tab of an ended call is kept, marked ended (the agent may still be writing the
// call's notes in it: closing it would lose them), until another call's record pops; then the
// tabs of ended calls are closed except those of the last call that ended (its wrap-up). Tabs of
// calls still in progress, and the tab on screen, are never closed by the page.

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
  pruneEndedTabs(ctx);
  const label = tabLabel(ctx);
  const tabBtn = h(
    'button',
    { type: 'button', role: 'tab', id: `${id}-tab`, class: 'tab-btn', 'aria-controls': `${id}-panel`, 'aria-selected': 'false', tabindex: '-1', title: ctx.name ? `${label} — ${ctx.name}` : label },
    label,
  );
  const tab = h('div', { class: 'tab', 'data-testid': 'embedded-tab', 'data-url': url, 'data-server': ctx.server ?? '', 'data-call-id': ctx.callId ?? '', 'data-state': 'loading' }, tabBtn);
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

/** Shows `tab`'s record, or none (null): the tabs stay, the agent may pick one. */
function selectTab(tab) {
  const tabs = [...$('tabstrip').children];
  for (const t of tabs) {
    const on = t === tab;
    const btn = t.querySelector('[role="tab"]');
    t.classList.toggle('active', on);
    btn.setAttribute('aria-selected', String(on));
    // With none selected, the first tab is the keyboard's way in.
    btn.tabIndex = on || (!tab && t === tabs[0]) ? 0 : -1;
    const panel = tabPanels.get(t);
    if (panel) panel.hidden = !on;
  }
  $('embedded-none').hidden = Boolean(tab) || tabs.length === 0;
}

const sameCall = (a, b) => a.dataset.server === b.dataset.server && a.dataset.callId === b.dataset.callId;

/**
 * "+49 151 … · 14:02": who and when, so two calls of one number differ — to the second if they
 * came within a minute, numbered if one call pops two CRM records.
 */
function tabLabel(ctx) {
  const t = Date.parse(ctx.time);
  const at = new Date(Number.isFinite(t) ? t : Date.now());
  const who = ctx.number || ctx.name || 'Unknown caller';
  const taken = new Set([...$('tabstrip').children].map((x) => x.querySelector('[role="tab"]').textContent));
  let label = `${who} · ${at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
  if (taken.has(label)) label = `${who} · ${at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}`;
  const base = label;
  for (let n = 2; taken.has(label); n++) label = `${base} (${n})`;
  return label;
}

/** The call is over: its tabs stay (wrap-up), marked ended. */
let endedSeq = 0;
export function markCallEnded(server, callId) {
  const order = ++endedSeq;
  for (const t of $('tabstrip').children) {
    if (t.dataset.server !== server || t.dataset.callId !== callId || t.dataset.ended) continue;
    t.dataset.ended = String(order);
    const btn = t.querySelector('[role="tab"]');
    btn.title = `${btn.title} — call ended`;
  }
}

/** Another call pops: ended calls' tabs go, but those of the last call that ended (see the top). */
function pruneEndedTabs(ctx) {
  const tabs = [...$('tabstrip').children].filter((t) => t.dataset.ended && !(t.dataset.server === (ctx.server ?? '') && t.dataset.callId === (ctx.callId ?? '')));
  const last = Math.max(...tabs.map((t) => Number(t.dataset.ended)));
  for (const t of tabs) if (Number(t.dataset.ended) !== last && !t.classList.contains('active')) removeTab(t);
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
  // Another record of the same call, or nothing: never an earlier call's customer (see the top).
  else if (wasActive) selectTab(rest.filter((t) => sameCall(t, tab)).pop() ?? null);
}
