// Log in / log out. A login bumps session.gen, so async work of an older session drops its result.

import { renderCall } from './calls.js';
import { renderConnDetail, renderNotifyButtons, renderWho, setConn } from './header.js';
import { api } from './http.js';
import { leadership, renderLeader } from './leadership.js';
import { calls, closeSeen, hashFrames, pending, processed, session } from './session.js';
import { writeToken } from './storage.js';
import { closeStream, connectStream } from './stream.js';
import { $, backoff, isStr, sleep } from './util.js';

function normalizeRules(rules) {
  if (!Array.isArray(rules)) return [];
  return rules
    .filter((r) => r && isStr(r.id) && Array.isArray(r.events))
    .map((r) => ({
      id: r.id,
      events: r.events.filter(isStr),
      target: r.target,
      name: isStr(r.name) ? r.name : null,
      closeOn: Array.isArray(r.closeOn) ? r.closeOn.filter(isStr) : ['call.ring_stopped'],
    }));
}

export async function login(token) {
  const gen = ++session.gen;
  session.token = token;
  session.everLive = false;
  session.pbx = null;
  session.pbxDownSince = null;
  session.lastMessageAt = null;
  session.lastEventId = null;
  session.connectProblem = null;
  writeToken(token);
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('logout-btn').hidden = false;
  setConn('connecting');
  let me = null;
  for (let attempt = 0; me === null; attempt++) {
    try {
      me = await api('me');
    } catch (err) {
      if (gen !== session.gen) return;
      if (err.status === 401 || err.status === 403) {
        logout(`This token was not accepted (${err.message}).`);
        return;
      }
      session.connectProblem = `Cannot reach the bridge (${err.message}); retrying…`;
      renderConnDetail();
      await sleep(backoff(attempt));
      if (gen !== session.gen) return;
    }
  }
  if (gen !== session.gen) return;
  session.connectProblem = null;
  session.me = me && typeof me === 'object' ? me : {};
  session.rules = normalizeRules(session.me.rules);
  renderWho();
  renderNotifyButtons();
  leadership.start();
  renderLeader(leadership.isLeader);
  connectStream(null);
}

export function logout(message) {
  session.gen++;
  closeStream();
  leadership.stop();
  writeToken(null);
  session.token = null;
  session.me = null;
  session.rules = [];
  session.everLive = false;
  session.pbx = null;
  session.pbxDownSince = null;
  session.lastMessageAt = null;
  session.lastEventId = null;
  clearApp();
  renderWho();
  renderLeader(false);
  renderNotifyButtons();
  $('agent-status').textContent = '';
  $('logout-btn').hidden = true;
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  setConn('logged-out');
}

function clearApp() {
  for (const ctx of pending.values()) {
    try {
      ctx.notification?.close();
    } catch {
      /* ignore */
    }
  }
  calls.clear();
  pending.clear();
  closeSeen.clear();
  processed.clear();
  hashFrames.clear();
  $('notices').replaceChildren();
  $('tabstrip').replaceChildren();
  $('tabpanels').replaceChildren();
  $('embedded-area').hidden = true;
  $('hash-area').replaceChildren();
  $('hash-area').hidden = true;
  $('pop-log').replaceChildren();
  $('pop-log-empty').hidden = false;
  renderCall();
}
