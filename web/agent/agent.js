// The agent page (/agent): log in with a token, follow the agent's event stream (Server-Sent
// Events) and pop the caller's CRM record the way each screen-pop rule says. Contract: web/API.md
// (endpoints, Pop, PopRule) and docs/events.md (the events). Plain ES modules, no build step:
// this one wires the page; each concern is a module of its own (listed in CONTRIBUTING.md).
//
// Rules every module keeps:
// - Data from the network reaches the DOM only through textContent / setAttribute values, never
//   innerHTML: caller names are hostile input.
// - It never navigates this page (it may hold a browser phone): no _self/_top/_parent targets, no
//   location assignment; CRM frames are sandboxed without allow-top-navigation (no frame-busting);
//   CRM tabs are opened through a same-origin blank frame, so the CRM's window.opener is that frame,
//   not this page (it cannot navigate us) while we can still close the tab (see openWindow, windows.js).
// - Only http(s) URLs are opened, framed or requested.
// - One tab per agent pops (Web Locks, BroadcastChannel fallback) and a (call, rule) pops once
//   (localStorage), so several tabs or a reconnect replay never pop a record twice.

import { ENDED_LINGER_MS, currentCall, renderCall, renderTimer } from './calls.js';
import { enableNotifications, renderConnDetail, setConn } from './header.js';
import { login, logout } from './login.js';
import { session } from './session.js';
import { readToken, takeTokenFromUrl } from './storage.js';
import { connectStream, onTokenRejected } from './stream.js';
import { $ } from './util.js';

function boot() {
  onTokenRejected(logout);
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    if (!token) return;
    input.value = '';
    $('login-error').textContent = '';
    void login(token);
  });
  $('logout-btn').addEventListener('click', () => logout('You are logged out.'));
  $('notify-btn').addEventListener('click', enableNotifications);
  addEventListener('online', () => {
    if (session.token && session.me && (!session.es || session.es.readyState === EventSource.CLOSED)) connectStream(session.lastEventId);
  });
  setInterval(() => {
    renderTimer();
    if (session.me) renderConnDetail();
    // Ended calls stop lingering on the card after a while.
    const c = currentCall();
    if (c && c.state === 'ended' && c.endedAt && Date.now() - c.endedAt < ENDED_LINGER_MS + 1500 && Date.now() - c.endedAt >= ENDED_LINGER_MS) renderCall();
    // Only when the bridge sends visible keep-alives: a silent connection is a dead one.
    const ka = Number(session.me?.keepAliveSeconds) || 15;
    if (session.namedKeepAlive && session.es && $('conn-state').dataset.state === 'live' && session.lastMessageAt && Date.now() - session.lastMessageAt > ka * 3000 + 5000) {
      connectStream(session.lastEventId);
      setConn('reconnecting');
    }
  }, 1000);

  const fromUrl = takeTokenFromUrl();
  const token = fromUrl || readToken();
  renderCall();
  if (token) void login(token);
  else logout('');
}

boot();
