// Small helpers of the agent page: building DOM without HTML parsing, URL checks, timing.

export const $ = (id) => document.getElementById(id);
export const isStr = (v) => typeof v === 'string' && v.length > 0;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
export const backoff = (n) => Math.min(30000, 1000 * 2 ** Math.min(n, 5)) * (0.75 + Math.random() * 0.5);

/**
 * Builds an element. Attribute values go through setAttribute and children through text nodes,
 * so nothing here is ever parsed as HTML. `on*` keys with a function add listeners.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** The URL if it is an absolute http(s) URL, else null (no javascript:, data:, blob: …). */
export function safeUrl(u) {
  if (!isStr(u)) return null;
  try {
    const url = new URL(u, document.baseURI);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

export function hostOf(u) {
  try {
    return new URL(u).host;
  } catch {
    return '';
  }
}

/** A window name that can never mean this page or its parents (_self, _top, _parent…). */
export function windowName(name) {
  const n = isStr(name) ? name : 'crm';
  return n.startsWith('_') ? `crm${n}` : n;
}

export function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), ms))]);
}

export class BoundedSet {
  constructor(max) {
    this.max = max;
    this.set = new Set();
  }
  has(k) {
    return this.set.has(k);
  }
  add(k) {
    if (this.set.has(k)) return;
    this.set.add(k);
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value);
  }
  clear() {
    this.set.clear();
  }
}

export function originOf(u) {
  try {
    return new URL(u).origin;
  } catch {
    return '';
  }
}

/** Copies from a click: the async clipboard API, else a selection copy (of `el`, or a scratch field). */
export async function copyText(text, el = null) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    /* fall back to a selection copy */
  }
  let scratch = null;
  try {
    const sel = getSelection();
    sel.removeAllRanges();
    if (el) {
      const range = document.createRange();
      range.selectNodeContents(el);
      sel.addRange(range);
    } else {
      scratch = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
      scratch.value = text;
      document.body.append(scratch);
      scratch.select();
    }
    return document.execCommand('copy');
  } catch {
    return false;
  } finally {
    scratch?.remove();
  }
}
