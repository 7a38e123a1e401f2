// Target clipboard: the text copied for the CRM, or a Copy button when the browser refuses.

import { setLog } from './pop-log.js';
import { $, copyText, h, withTimeout } from './util.js';

export async function popClipboard(ctx) {
  const text = typeof ctx.pop.text === 'string' ? ctx.pop.text : '';
  try {
    if (!navigator.clipboard?.writeText) throw new Error('no clipboard access');
    await withTimeout(navigator.clipboard.writeText(text), 3000);
    setLog(ctx, 'copied', 'Copied to the clipboard');
  } catch {
    // Usually: the page did not have the focus (the agent was in another window).
    showClipboardFallback(ctx, text);
    setLog(ctx, 'copy-refused', 'Not copied (page not focused) — use Copy above');
  }
}

function showClipboardFallback(ctx, text) {
  for (const old of document.querySelectorAll('.clipboard-card')) old.remove(); // the clipboard holds one thing
  const code = h('code', { class: 'clip-text', 'data-testid': 'clipboard-text' }, text);
  const card = h('section', { class: 'card clipboard-card', role: 'status', 'aria-labelledby': 'clip-title' });
  const copy = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'copy-clipboard' }, 'Copy');
  copy.addEventListener('click', async () => {
    const ok = await copyText(text, code);
    copy.textContent = ok ? 'Copied ✓' : 'Select it and press Ctrl+C';
    if (ok) setLog(ctx, 'copied', 'Copied by click');
  });
  card.append(
    h('h2', { id: 'clip-title' }, ctx.number ? `Text for the CRM — ${ctx.number}` : 'Text for the CRM'),
    h('p', { class: 'hint' }, 'The browser did not let this page use the clipboard by itself. Click Copy, then paste with Ctrl+V (⌘V on a Mac).'),
    code,
    h('div', { class: 'row' }, copy, h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => card.remove() }, 'Dismiss')),
  );
  $('notices').append(card);
  ctx.clip = card;
}
