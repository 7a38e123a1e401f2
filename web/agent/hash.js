// Target hash (Tencent style): one always-open CRM frame per rule; each pop changes only its #….

import { FRAME_TIMEOUT_MS, makeFrame, refusedExplanation, watchFrame } from './frames.js';
import { setLog } from './pop-log.js';
import { hashFrames } from './session.js';
import { setNoFrame } from './storage.js';
import { $, h, hostOf, originOf } from './util.js';
import { openDetached } from './windows.js';

function splitHash(u) {
  const i = u.indexOf('#');
  return i < 0 ? [u, ''] : [u.slice(0, i), u.slice(i + 1)];
}

export function popHash(ctx, url) {
  const [base, fragment] = splitHash(url);
  let hf = hashFrames.get(ctx.pop.ruleId);
  if (!hf) {
    const area = $('hash-area');
    area.hidden = false;
    const frame = makeFrame(url, 'CRM panel');
    frame.setAttribute('data-testid', 'hash-frame');
    frame.setAttribute('data-rule-id', ctx.pop.ruleId);
    frame.setAttribute('data-url', url);
    const note = h('p', { class: 'frame-note', role: 'status', hidden: true });
    hf = { frame, base, url };
    const panel = h(
      'div',
      { class: 'hash-panel' },
      h(
        'div',
        { class: 'panel-bar' },
        h('span', { class: 'panel-title' }, 'CRM'),
        h('span', { class: 'panel-host' }, hostOf(url)),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => openDetached(hf.url) }, 'Open in a new tab'),
      ),
      note,
      frame,
    );
    watchFrame(frame, url, {
      onSlow: () => {
        note.textContent = `Still loading after ${FRAME_TIMEOUT_MS / 1000} s. If it stays blank, this CRM probably refuses to be shown inside another page.`;
        note.hidden = false;
      },
      onLoaded: () => {
        note.hidden = true;
      },
      onRefused: () => {
        note.hidden = true;
        frame.hidden = true; // kept in the page: its #… keeps following the calls
        setNoFrame(originOf(url), true);
        panel.append(refusedExplanation(url, 'The CRM panel', [h('button', { type: 'button', class: 'btn btn-primary', onclick: () => openDetached(hf.url) }, 'Open in a new tab')]));
      },
    });
    area.append(panel);
    hashFrames.set(ctx.pop.ruleId, hf);
    setLog(ctx, 'opened', 'CRM panel opened');
    return;
  }
  // Same document, new fragment: the browser navigates to the fragment without reloading, and the
  // CRM page hears a hashchange. The base URL stays the one of the first pop.
  const next = `${hf.base}#${fragment}`;
  hf.url = next;
  hf.frame.src = next;
  hf.frame.setAttribute('data-url', next);
  setLog(ctx, 'updated', `CRM panel updated (#${fragment})`);
}
