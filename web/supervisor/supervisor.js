// The supervisor's wallboard (/supervisor): queues, agents, calls in progress and today's missed
// calls, live from /supervisor/events (a FloorSnapshot, then FloorPatches: src/supervisor/types.ts).
// Plain ES modules, no build step, like the agent page (web/agent/).
//
// Rules every module keeps:
// - Data from the network reaches the DOM only through textContent / setAttribute values, never
//   innerHTML: caller names are hostile input.
// - Patches go into the model (model.js); the page renders at most once per animation frame and
//   then only the rows the patches named (keyed.js). One 1-s timer moves the counting-up
//   durations of the rows on screen, from the server's clock (its `now` corrects ours).
// - No polling and no reloads: a (re)connected stream starts with a snapshot.

import { clearAgents, refreshAgentsOf, renderAgents, wireAgentFilter } from './agents.js';
import { clearCalls, renderCalls } from './calls.js';
import { markNow, renderChart } from './chart.js';
import { auth, me } from './http.js';
import { tickVisible } from './keyed.js';
import { clearMissed, renderMissed, setCanCallBack } from './missed.js';
import { clearFloor, floor, takeDirty } from './model.js';
import { clearQueues, renderQueues } from './queues.js';
import { readToken, takeTokenFromUrl, writeToken } from './storage.js';
import { closeStream, connect, isDown } from './stream.js';
import { $, backoff, clockIn, isStr, setText, sleep } from './util.js';

const session = { gen: 0, me: null, pbx: null };

let frame = 0;
function scheduleRender() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (!floor.loaded) return;
  const d = takeDirty();
  const keys = (set) => (d.all ? null : set);
  if (d.all || d.queues.size) renderQueues(floor.queues, keys(d.queues));
  if (d.all || d.agents.size) renderAgents(floor.agents, keys(d.agents));
  if (d.all || d.calls.size) renderCalls(floor.calls, keys(d.calls));
  if (!d.all && d.calls.size) refreshAgentsOf(d.calls);
  if (d.all || d.chart) renderChart();
  if (d.all || d.missed.size || d.agents.size) renderMissed(floor.missed, keys(d.missed), d.all || d.agents.size > 0);
  if (d.all) renderDay();
}

function renderDay() {
  setText($('day'), floor.day ? `Today, ${floor.day}${floor.timeZone ? ` (${floor.timeZone})` : ''}` : '');
}

/** What the bridge reads its events from, in words (as the agent page says it). */
const SOURCE_WORDS = { ami: 'PBX', ari: 'PBX', nats: 'event bus' };

function setConn(state) {
  const el = $('conn-state');
  el.dataset.state = state;
  if (state !== 'live') session.pbx = null; // a new stream says it again
  renderConn();
}

/** The badge: this page's stream, and — once the bridge has said — the bridge's own source. */
function renderConn() {
  const el = $('conn-state');
  const state = el.dataset.state;
  const what = SOURCE_WORDS[session.pbx?.source] ?? 'PBX';
  const pbxDown = state === 'live' && session.pbx !== null && session.pbx.state !== 'connected';
  el.dataset.pbx = state === 'live' && session.pbx ? (pbxDown ? 'down' : 'up') : '';
  setText(el, pbxDown ? `connected — ${what} unreachable` : state);
  setText(
    $('conn-detail'),
    pbxDown
      ? `The bridge has lost the ${what === 'PBX' ? 'phone system (PBX)' : what}: these figures stop moving until it is back.`
      : state === 'reconnecting'
        ? 'Connection lost, reconnecting… the figures shown may be old.'
        : state === 'connecting'
          ? 'Connecting…'
          : '',
  );
  document.body.dataset.conn = pbxDown ? 'reconnecting' : state;
}

const handlers = {
  conn: setConn,
  changed: scheduleRender,
  rejected: (m) => logout(m),
  status: (s) => {
    session.pbx = { source: isStr(s.source) ? s.source : null, state: s.state };
    renderConn();
  },
};

async function login(token) {
  const gen = ++session.gen;
  auth.token = token;
  writeToken(token);
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('logout-btn').hidden = false;
  setConn('connecting');
  let who = null;
  for (let attempt = 0; who === null; attempt++) {
    try {
      who = await me();
    } catch (err) {
      if (gen !== session.gen) return;
      if (err.status === 401 || err.status === 403) {
        logout(err.status === 403 ? `This page is for supervisors; this token is not a supervisor's (${err.message}).` : `This token was not accepted (${err.message}).`);
        return;
      }
      setText($('conn-detail'), `Cannot reach the bridge (${err.message}); retrying…`);
      await sleep(backoff(attempt));
      if (gen !== session.gen) return;
    }
  }
  if (gen !== session.gen) return;
  session.me = who && typeof who === 'object' ? who : {};
  if (isStr(session.me.timeZone)) floor.timeZone = session.me.timeZone;
  setText($('who'), isStr(session.me.name) ? `Supervisor: ${session.me.name}` : 'Supervisor');
  setCanCallBack(session.me.callBack !== false);
  connect(handlers);
}

function logout(message) {
  session.gen++;
  session.me = null;
  closeStream();
  writeToken(null);
  auth.token = null;
  clearFloor();
  clearQueues();
  clearAgents();
  clearCalls();
  clearMissed();
  setText($('who'), '');
  $('logout-btn').hidden = true;
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  setText($('login-error'), message || '');
  setConn('logged-out');
}

function boot() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    if (!token) return;
    input.value = '';
    setText($('login-error'), '');
    void login(token);
  });
  $('logout-btn').addEventListener('click', () => logout('You are logged out.'));
  addEventListener('online', () => {
    if (session.me && isDown()) connect(handlers);
  });
  wireAgentFilter();
  setInterval(() => {
    if (!floor.loaded) return;
    tickVisible();
    markNow();
    setText($('clock'), clockIn(floor.timeZone, Date.now() + floor.offset, true));
  }, 1000);
  const token = takeTokenFromUrl() || readToken();
  if (token) void login(token);
  else logout('');
}

boot();
