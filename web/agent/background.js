// Target background: a request to the CRM that shows nothing.

import { setLog } from './pop-log.js';

export function popBackground(ctx, url) {
  setLog(ctx, 'sending', 'Sending…');
  fetch(url, { mode: 'no-cors', credentials: 'include', cache: 'no-store', keepalive: true })
    .then(() => setLog(ctx, 'sent', 'Sent in the background'))
    .catch((err) => setLog(ctx, 'failed', `Request failed: ${err.message}`));
}
