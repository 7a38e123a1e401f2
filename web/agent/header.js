// Header: connection state, who is logged in, the agent's status, notifications, and error flashes.

import { agentLabel, myAgentId, session } from './session.js';
import { $, clock, h, isStr } from './util.js';

const STATUS_TEXT = { idle: 'Phone idle', ringing: 'Phone ringing', busy: 'On a call', unavailable: 'Phone unavailable', on_hold: 'On hold' };

export function setConn(state) {
  const el = $('conn-state');
  el.dataset.state = state;
  renderConnState();
}

/** What the bridge's event source is, for agents: a delivery node reads a bus, not the PBX. */
const SOURCE_WORDS = { ami: 'PBX', ari: 'PBX', nats: 'event bus' };

/**
 * The badge: this page's connection to the bridge, and — once the bridge has said (a `status`
 * event on the stream) — the bridge's own connection to the PBX. A page connected to a bridge that
 * lost its PBX gets no calls at all, so it must not look "live".
 */
export function renderConnState() {
  const el = $('conn-state');
  const state = el.dataset.state;
  const pbxDown = state === 'live' && session.pbx !== null && session.pbx.state !== 'connected';
  el.dataset.pbx = state === 'live' && session.pbx ? (pbxDown ? 'down' : 'up') : '';
  el.textContent = pbxDown ? `connected — ${SOURCE_WORDS[session.pbx.source] ?? 'PBX'} unreachable` : state;
  renderConnDetail();
}

export function renderConnDetail() {
  const state = $('conn-state').dataset.state;
  const last = session.lastMessageAt ? `last message ${clock(session.lastMessageAt)}` : 'no message yet';
  let text = '';
  if (state === 'live' && session.pbx && session.pbx.state !== 'connected') {
    const what = SOURCE_WORDS[session.pbx.source] ?? 'PBX';
    text = `The bridge has lost the ${what === 'PBX' ? 'phone system (PBX)' : what}${session.pbxDownSince ? ` since ${clock(session.pbxDownSince)}` : ''}: no calls reach this page until it is back.`;
  } else if (state === 'live') text = `Live since ${clock(session.liveSince ?? Date.now())} · ${last}`;
  else if (state === 'reconnecting') text = `Connection lost, reconnecting… (${last})`;
  else if (state === 'connecting') text = session.connectProblem || 'Connecting…';
  $('conn-detail').textContent = text;
}

export function renderWho() {
  const me = session.me;
  const el = $('who');
  if (!me) {
    el.textContent = '';
    return;
  }
  if (me.agent) {
    const a = me.agent;
    // Name and extension: the device interface (Local/201@agents) means nothing to an agent.
    const parts = [a.name || `Agent ${a.id}`];
    if (a.extension) parts.push(`ext. ${a.extension}`);
    el.textContent = parts.join(' · ');
  } else {
    el.textContent = me.supervisor ? 'Supervisor — all agents' : 'Logged in';
  }
}

export function renderAgentStatus(ev) {
  const who = myAgentId() === null ? `${agentLabel(ev.agent)}: ` : '';
  let text = null;
  if (ev.type === 'agent.paused') text = `Paused${isStr(ev.reason) ? ` (${ev.reason})` : ''}${ev.queue ? ` in ${ev.queue.name}` : ''}`;
  else if (ev.type === 'agent.unpaused') text = 'Ready';
  else if (ev.type === 'agent.status') text = STATUS_TEXT[ev.status] ?? ev.status;
  else if (ev.type === 'agent.login') text = `Logged in to ${ev.queue?.name ?? 'queue'}`;
  else if (ev.type === 'agent.logout') text = `Logged out of ${ev.queue?.name ?? 'queue'}`;
  if (text) {
    const el = $('agent-status');
    el.textContent = who + text;
    el.dataset.type = ev.type;
  }
}

const notificationsSupported = () => 'Notification' in window;

export function renderNotifyButtons() {
  const can = notificationsSupported() && Notification.permission === 'default' && Boolean(session.me);
  $('notify-btn').hidden = !can;
  for (const b of document.querySelectorAll('.js-notify')) b.hidden = !(notificationsSupported() && Notification.permission === 'default');
  for (const p of document.querySelectorAll('.js-notify-denied')) p.hidden = !(notificationsSupported() && Notification.permission === 'denied');
}

export async function enableNotifications() {
  if (!notificationsSupported()) return;
  try {
    await Notification.requestPermission();
  } catch {
    /* old callback-style browsers: ignore */
  }
  renderNotifyButtons();
}

export function notify(title, body, tag, onClick) {
  if (!notificationsSupported() || Notification.permission !== 'granted') return null;
  try {
    const n = new Notification(title, { body, tag, requireInteraction: true });
    n.onclick = (e) => {
      e.preventDefault?.();
      try {
        window.focus();
      } catch {
        /* ignore */
      }
      onClick?.();
      n.close();
    };
    return n;
  } catch {
    return null; // e.g. Android Chrome: only service workers may show notifications
  }
}

export function flash(message) {
  const box = $('notices');
  const note = h('p', { class: 'notice notice-error', role: 'alert' }, message, ' ', h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => note.remove() }, 'Dismiss'));
  box.append(note);
  setTimeout(() => note.remove(), 30000);
  while (box.querySelectorAll('.notice-error').length > 3) box.querySelector('.notice-error').remove();
}
