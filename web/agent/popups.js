// Targets new-tab and named-tab, and the fallback when the browser blocks the pop-up: a one-click
// button (and a desktop notification), with how to allow pop-ups for good.

import { enableNotifications, notify, renderNotifyButtons } from './header.js';
import { setLog } from './pop-log.js';
import { $, h, windowName } from './util.js';
import { openWindow } from './windows.js';

export function popWindow(ctx, url) {
  const name = ctx.pop.target === 'new-tab' ? '_blank' : windowName(ctx.pop.name);
  const w = openWindow(url, name);
  if (!w) {
    setLog(ctx, 'blocked', 'Blocked by the browser — use the button above');
    showBlocked(ctx, url, name);
    return;
  }
  if (ctx.pop.target === 'new-tab') ctx.win = w;
  else {
    try {
      w.focus();
    } catch {
      /* ignore */
    }
  }
  setLog(ctx, 'opened', ctx.pop.target === 'new-tab' ? 'Opened in a new tab' : `Opened in the “${name}” window`);
}

// --- pop-ups blocked -----------------------------------------------------------------------------

function blockedBox(create) {
  let box = document.querySelector('[data-testid="popup-blocked"]');
  if (box || !create) return box;
  const origin = location.origin;
  const notifyBtn = h('button', { type: 'button', class: 'btn btn-small js-notify', onclick: enableNotifications }, 'Enable notifications');
  box = h(
    'section',
    { class: 'card alert', 'data-testid': 'popup-blocked', role: 'alert', 'aria-labelledby': 'blocked-title' },
    h('h2', { id: 'blocked-title' }, 'Pop-up blocked'),
    h('p', {}, 'The browser stopped the CRM record from opening by itself. Open it with one click:'),
    h('ul', { class: 'blocked-list' }),
    h('p', { class: 'hint' }, notifyBtn, ' Get a desktop notification you can click whenever this happens.'),
    h('p', { class: 'hint js-notify-denied', hidden: true }, 'Notifications are blocked for this site in the browser settings.'),
    h(
      'details',
      { class: 'howto' },
      h('summary', {}, 'Allow pop-ups for this site so records open by themselves'),
      h(
        'ul',
        {},
        h('li', {}, h('strong', {}, 'Chrome / Edge: '), 'click the pop-up-blocked icon at the right end of the address bar, choose “Always allow pop-ups and redirects from ', origin, '”, then Done.'),
        h(
          'li',
          {},
          h('strong', {}, 'Firefox: '),
          'click Preferences (or Options) in the yellow bar under the address bar, then “Allow pop-ups for ',
          location.host,
          '”. Or: Settings → Privacy & Security → Permissions → Block pop-up windows → Exceptions… → add ',
          origin,
          '.',
        ),
        h('li', {}, h('strong', {}, 'Safari: '), 'Settings → Websites → Pop-up Windows → set this site to Allow.'),
      ),
    ),
  );
  $('notices').append(box);
  renderNotifyButtons();
  return box;
}

export function showBlocked(ctx, url, name) {
  const box = blockedBox(true);
  const label = ctx.number ? `Open CRM record — ${ctx.number}` : 'Open CRM record';
  const open = () => {
    const w = openWindow(url, name);
    if (!w) return false;
    if (name === '_blank') ctx.win = w;
    setLog(ctx, 'opened', 'Opened by click');
    removeBlocked(ctx);
    return true;
  };
  const item = h(
    'li',
    { class: 'blocked-item' },
    h('button', { type: 'button', class: 'btn btn-primary btn-big', 'data-testid': 'open-blocked', 'data-url': url, 'data-call-id': ctx.callId ?? '', onclick: open }, label),
    ctx.name ? h('span', { class: 'blocked-name' }, ctx.name) : null,
    h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'aria-label': `Dismiss ${label}`, onclick: () => removeBlocked(ctx) }, 'Dismiss'),
  );
  box.querySelector('.blocked-list').append(item);
  ctx.blockedItem = item;
  ctx.notification = notify(
    ctx.number ? `Incoming call ${ctx.number}` : 'Incoming call',
    `${ctx.name ? `${ctx.name} — ` : ''}click to open the CRM record`,
    ctx.key,
    open,
  );
}

export function removeBlocked(ctx) {
  ctx.blockedItem?.remove();
  ctx.blockedItem = null;
  try {
    ctx.notification?.close();
  } catch {
    /* ignore */
  }
  ctx.notification = null;
  const box = blockedBox(false);
  if (box && !box.querySelector('.blocked-item')) box.remove();
}
