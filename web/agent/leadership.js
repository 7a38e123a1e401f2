// Leadership: exactly one tab of this browser pops for each agent. The lock (and the fallback's
// channel) is named after the logged-in agent, so two agents sharing a browser (a shared desk, a
// supervisor testing two logins) each get their own popping tab, while an agent's second tab
// leaves the pops to the first.

import { agentKey, session } from './session.js';
import { $, h } from './util.js';

const LOCK_PREFIX = 'crm-bridge-pop-leader';

class Leadership {
  constructor(onChange) {
    this.onChange = onChange;
    this.isLeader = false;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    // Fixed for this login: logout stops, and the next login starts with its own agent's name.
    this.lockName = `${LOCK_PREFIX}:${agentKey()}`;
    this.set(false);
    if (navigator.locks?.request) this.startLocks(false);
    else if ('BroadcastChannel' in window) this.startChannel();
    else this.set(true); // nothing to coordinate with: this tab pops
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    this.release?.();
    this.release = null;
    this.abort?.abort();
    this.abort = null;
    if (this.channel) {
      if (this.isLeader) this.channel.postMessage({ type: 'resign', id: this.id });
      clearInterval(this.timer);
      this.channel.close();
      this.channel = null;
      removeEventListener('pagehide', this.onPageHide);
    }
    this.set(false);
  }

  /** "Pop in this tab instead". */
  takeOver() {
    if (!this.running || this.isLeader) return;
    if (this.mode === 'locks') {
      this.abort?.abort(); // leave the queue, then steal
      this.startLocks(true);
    } else if (this.channel) {
      this.set(true);
      this.channel.postMessage({ type: 'claim', id: this.id, force: true });
    }
  }

  set(v) {
    if (this.isLeader === v && this.announced) return;
    this.announced = true;
    this.isLeader = v;
    this.onChange(v);
  }

  // Web Locks: the lock is held for the tab's life (released when it closes or crashes); the
  // other tabs queue for it. A steal hands it over at once; the old holder queues again.
  startLocks(steal) {
    this.mode = 'locks';
    const abort = steal ? null : new AbortController();
    this.abort = abort;
    const opts = steal ? { mode: 'exclusive', steal: true } : { mode: 'exclusive', signal: abort.signal };
    const attempt = {};
    this.attempt = attempt;
    navigator.locks
      .request(this.lockName, opts, () => {
        if (!this.running || this.attempt !== attempt) return undefined;
        this.set(true);
        return new Promise((resolve) => {
          this.release = resolve;
        });
      })
      .catch(() => {
        // Aborted (we left the queue or logged out) or stolen by another tab.
        if (!this.running || this.attempt !== attempt) return;
        this.release = null;
        this.set(false);
        this.startLocks(false);
      });
  }

  // BroadcastChannel fallback (no Web Locks, e.g. a plain-http bridge that is not localhost):
  // the leader sends a heartbeat every second; when none is heard for 3 s a tab claims; when two
  // claim at once the forced claim, else the older tab (smaller id), wins.
  startChannel() {
    this.mode = 'channel';
    this.id = `${Date.now().toString(36).padStart(10, '0')}-${Math.random().toString(36).slice(2, 10)}`;
    this.startedAt = Date.now();
    this.leaderSeenAt = 0;
    this.channel = new BroadcastChannel(this.lockName);
    this.channel.onmessage = (e) => {
      const m = e.data;
      if (!m || typeof m !== 'object' || typeof m.id !== 'string' || m.id === this.id) return;
      if (m.type === 'heartbeat' || m.type === 'claim') {
        if (this.isLeader) {
          if (m.force || m.id < this.id) this.set(false);
          else {
            this.channel.postMessage({ type: 'heartbeat', id: this.id });
            return;
          }
        }
        this.leaderId = m.id;
        this.leaderSeenAt = Date.now();
      } else if (m.type === 'resign' && m.id === this.leaderId) {
        this.leaderSeenAt = 0;
        setTimeout(() => this.tick(), Math.random() * 300);
      }
    };
    this.onPageHide = () => {
      if (this.isLeader) this.channel?.postMessage({ type: 'resign', id: this.id });
    };
    addEventListener('pagehide', this.onPageHide);
    this.timer = setInterval(() => this.tick(), 1000);
  }

  tick() {
    if (!this.channel) return;
    if (this.isLeader) {
      this.channel.postMessage({ type: 'heartbeat', id: this.id });
      return;
    }
    const now = Date.now();
    if (now - this.startedAt > 2500 && now - this.leaderSeenAt > 3000) {
      this.set(true);
      this.channel.postMessage({ type: 'claim', id: this.id });
    }
  }
}

export const leadership = new Leadership(renderLeader);

export function renderLeader(isLeader) {
  const el = $('leader');
  // Plain words: agents need to know where their CRM records will open, not how tabs coordinate.
  el.textContent = isLeader ? 'Pops open here' : 'Pops open in another tab';
  el.dataset.role = isLeader ? 'leader' : 'follower';
  el.title = isLeader ? 'This tab opens your CRM records when a call comes in' : 'Another tab of yours already opens your CRM records, so each opens once';
  el.hidden = !session.me;
  let note = $('follower-note');
  const show = Boolean(session.me) && leadership.running && !isLeader;
  if (show && !note) {
    note = h(
      'p',
      { id: 'follower-note', class: 'notice', role: 'status' },
      'Another tab of yours opens your CRM records — only one tab does, so each record opens once. ',
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => leadership.takeOver() }, 'Open them in this tab instead'),
    );
    $('notices').prepend(note);
  } else if (!show && note) {
    note.remove();
  }
}
