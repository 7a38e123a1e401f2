// Opening CRM tabs from this page without giving the CRM a handle on it.

import { h } from './util.js';

let openerFrame = null;

/**
 * The window that opens CRM tabs: a hidden about:blank frame of this page (same origin). A tab it
 * opens has that frame as window.opener, which gives two things at once:
 * - this page may close the tab (on ring_stopped): browsers let a page close a script-opened tab
 *   whose opener it can access. Cutting the opener instead (w.opener = null, or 'noopener') makes
 *   close() fail ("Unsafe attempt to initiate navigation…" in Chromium);
 * - the CRM page has no handle on this page: navigating opener, opener.parent or opener.top
 *   throws a SecurityError, so it cannot replace the page that holds the agent's phone.
 */
function popupOpener() {
  try {
    if (openerFrame?.isConnected && openerFrame.contentWindow?.document) return openerFrame.contentWindow;
  } catch {
    /* it was navigated away: make a new one (the old one stays: its tabs can still be closed) */
  }
  openerFrame = h('iframe', { class: 'opener-frame', hidden: true, 'aria-hidden': 'true', tabindex: '-1', title: 'Opens CRM tabs' });
  document.body.append(openerFrame);
  return openerFrame.contentWindow;
}

/**
 * Opens `url` in a tab named `name` ('_blank' for a new one). Returns the tab, or null when the
 * browser blocked the pop-up (window.open returns null then). Called as window.open with the
 * opener frame as `this`, so the tab's opener is that frame (and a stubbed window.open still works).
 */
export function openWindow(url, name) {
  let w = null;
  try {
    w = window.open.call(popupOpener(), url, name);
  } catch {
    try {
      w = window.open(url, name);
      if (w) w.opener = null; // no opener frame (odd browser): at least cut the link
    } catch {
      w = null;
    }
  }
  if (!w) return null;
  try {
    if (w.closed) return null;
  } catch {
    /* ignore */
  }
  return w;
}

/** A tab we will never need to close (the agent clicked "Open in a new tab"). */
export function openDetached(url) {
  try {
    window.open(url, '_blank', 'noopener');
  } catch {
    /* ignore */
  }
}
