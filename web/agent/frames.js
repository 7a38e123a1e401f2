// CRM frames (targets embedded and hash): sandboxed, and watched for a CRM that refuses framing.

import { h, hostOf } from './util.js';

export const FRAME_TIMEOUT_MS = 8000;

/** A CRM frame: sandboxed without allow-top-navigation, so a frame-busting CRM cannot replace this page. */
export function makeFrame(url, title) {
  const f = document.createElement('iframe');
  f.className = 'crm-frame';
  f.title = title;
  f.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads');
  f.setAttribute('allow', 'clipboard-write');
  f.src = url;
  return f;
}

/**
 * A CRM that forbids framing (X-Frame-Options / CSP frame-ancestors) shows as an empty frame, and
 * current browsers do not tell the embedding page: Chromium fires `load` on the refused frame, with
 * a cross-origin error document, just as for a page that loaded. So, as well as it can be done:
 * 1. a Pop with `framing: 'refused'` (the bridge HEAD-requests the CRM page and reads its
 *    X-Frame-Options / CSP frame-ancestors), or a CRM origin known to refuse (learned below, kept
 *    in localStorage), is not framed: the tab explains why and the record opens in a new tab;
 * 2. where the browser does give it away (the frame's document is readable although the CRM is on
 *    another origin: about:blank or an error page), the origin is learned as refusing;
 * 3. no load event after FRAME_TIMEOUT_MS: a hint that it may be blocked;
 * 4. always: "Blank? Open in a new tab" in the tab's bar, which also remembers the origin so the
 *    next records of that CRM open in a new tab directly.
 */
export function watchFrame(frame, url, { onSlow, onLoaded, onRefused }) {
  let loaded = false;
  const timer = setTimeout(() => {
    if (!loaded && frame.isConnected) onSlow();
  }, FRAME_TIMEOUT_MS);
  frame.addEventListener('load', () => {
    loaded = true;
    clearTimeout(timer);
    if (!frame.isConnected) return;
    if (frameLooksRefused(frame, url)) onRefused();
    else onLoaded();
  });
}

function frameLooksRefused(frame, url) {
  let href;
  let doc;
  try {
    href = frame.contentWindow.location.href;
    doc = frame.contentDocument;
  } catch {
    return false; // a cross-origin document: the CRM page (or its login page) — or Chromium's error page
  }
  if (!href || href === 'about:blank' || /^(chrome-error|about:neterror|about:blocked)/.test(href)) return true;
  try {
    if (new URL(href).origin !== new URL(url).origin) return true;
  } catch {
    return true;
  }
  // Same origin as this page: readable. An empty document means nothing was shown.
  const body = doc?.body;
  return Boolean(doc) && (!body || (body.childElementCount === 0 && !body.textContent.trim()));
}

export function refusedExplanation(url, what, actions) {
  return h(
    'div',
    { class: 'frame-refused', 'data-testid': 'frame-refused' },
    h('p', { class: 'frame-refused-title' }, `${what} cannot be shown inside this page`),
    h(
      'p',
      {},
      `The CRM at ${hostOf(url)} does not let other sites show it in a frame (X-Frame-Options or Content-Security-Policy frame-ancestors), so the browser would show an empty box. Open it in its own tab instead. To fix it for good, the CRM administrator can allow framing by ${location.origin}, or the bridge administrator can switch this rule to target new-tab.`,
    ),
    h('div', { class: 'row' }, actions),
  );
}
