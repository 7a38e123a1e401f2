// Keyed DOM: one node per queue, agent, call or missed call, created once and updated in place,
// so a patch touches only the rows it names. Rows in view are tracked (IntersectionObserver) so
// the one-second timer updates the counting-up durations of what can be seen, not of 1,000 tiles.

import { serverNow } from './model.js';
import { duration, setText } from './util.js';

const visible = new Set();
const observer = 'IntersectionObserver' in window
  ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          visible.add(e.target);
          tickNode(e.target, serverNow());
        } else visible.delete(e.target);
      }
    })
  : null;

/** Elements with data-since (ms) show the time since then; data-prefix goes before it. */
function tickNode(node, now) {
  for (const el of node.querySelectorAll('[data-since]')) {
    const since = Number(el.dataset.since);
    setText(el, Number.isFinite(since) && el.dataset.since !== '' ? `${el.dataset.prefix ?? ''}${duration((now - since) / 1000)}` : el.dataset.empty ?? '—');
  }
}

/** The one timer's work: the durations of the rows on screen. */
export function tickVisible() {
  const now = serverNow();
  if (observer) for (const n of visible) tickNode(n, now);
  else for (const n of document.querySelectorAll('[data-ticks]')) tickNode(n, now);
}

/** Points a ticker at an ISO instant (null: shows its data-empty text) and shows it now. */
export function setSince(el, iso) {
  const ms = iso ? Date.parse(iso) : NaN;
  el.dataset.since = Number.isFinite(ms) ? String(ms) : '';
  setText(el, Number.isFinite(ms) ? `${el.dataset.prefix ?? ''}${duration((serverNow() - ms) / 1000)}` : el.dataset.empty ?? '—');
}

export class KeyedList {
  /**
   * @param container the parent of the rows
   * @param create (item) => element, built once per key
   * @param update (element, item) => void, on every change of the item
   * @param compare (a, b) => number, the rows' order
   */
  constructor(container, { create, update, compare, ticks = false, onRemove = null }) {
    this.container = container;
    this.create = create;
    this.update = update;
    this.compare = compare;
    this.ticks = ticks;
    this.onRemove = onRemove;
    this.nodes = new Map(); // key -> { el, item, json }
  }

  get size() {
    return this.nodes.size;
  }

  /** `keys` null: everything (a snapshot); else only the keys a patch named. */
  sync(items, keys) {
    if (keys === null) {
      for (const k of [...this.nodes.keys()]) if (!items.has(k)) this.remove(k);
      for (const [k, item] of items) this.put(k, item, false);
      // A snapshot may reorder anything: lay the rows out once in order.
      const ordered = [...this.nodes.values()].sort((a, b) => this.compare(a.item, b.item));
      this.container.append(...ordered.map((n) => n.el));
      return;
    }
    for (const k of keys) {
      const item = items.get(k);
      if (item === undefined) this.remove(k);
      else this.put(k, item, true);
    }
  }

  put(key, item, place) {
    const json = JSON.stringify(item);
    let n = this.nodes.get(key);
    if (n && n.json === json) return;
    if (!n) {
      const el = this.create(item);
      if (this.ticks) {
        el.dataset.ticks = '';
        observer?.observe(el);
      }
      n = { el, item, json };
      this.nodes.set(key, n);
      this.update(el, item);
      if (place) this.insertSorted(n);
      return;
    }
    const moved = this.compare(n.item, item) !== 0;
    n.item = item;
    n.json = json;
    this.update(n.el, item);
    if (moved) this.insertSorted(n);
  }

  /** Before the first row that sorts after it: new rows and moved rows only, never a full reorder. */
  insertSorted(n) {
    let before = null;
    for (const other of this.nodes.values()) {
      if (other === n || !other.el.isConnected) continue;
      if (this.compare(n.item, other.item) < 0 && (!before || this.compare(other.item, before.item) < 0)) before = other;
    }
    if (before) {
      if (n.el.nextSibling !== before.el) this.container.insertBefore(n.el, before.el);
    } else if (this.container.lastElementChild !== n.el) this.container.append(n.el);
  }

  /** Updates these rows although their items did not change (what they show depends on others). */
  refresh(keys) {
    for (const k of keys) {
      const n = this.nodes.get(k);
      if (n) this.update(n.el, n.item);
    }
  }

  remove(key) {
    const n = this.nodes.get(key);
    if (!n) return;
    observer?.unobserve(n.el);
    visible.delete(n.el);
    n.el.remove();
    this.nodes.delete(key);
    this.onRemove?.(key);
  }

  clear() {
    for (const k of [...this.nodes.keys()]) this.remove(k);
  }

  each(fn) {
    for (const n of this.nodes.values()) fn(n.el, n.item);
  }
}
