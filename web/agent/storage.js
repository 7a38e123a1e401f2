// Storage: the token (this tab only), the pops already done and the CRM origins that refuse to be
// framed (every tab of this browser, bounded).

import { isStr } from './util.js';

const TOKEN_KEY = 'crm-bridge.token';
const POPPED_KEY = 'crm-bridge.popped';
const POPPED_MAX = 500;
const POPPED_TTL_MS = 24 * 3600 * 1000;
const NOFRAME_KEY = 'crm-bridge.noframe';
const NOFRAME_MAX = 50;

function storageOf(name) {
  try {
    const s = window[name];
    s.setItem('crm-bridge.probe', '1');
    s.removeItem('crm-bridge.probe');
    return s;
  } catch {
    return null;
  }
}
const tabStore = storageOf('sessionStorage');
const sharedStore = storageOf('localStorage');
let memoryPopped = {};

export function readToken() {
  return tabStore?.getItem(TOKEN_KEY) || null;
}
export function writeToken(token) {
  try {
    if (token) tabStore?.setItem(TOKEN_KEY, token);
    else tabStore?.removeItem(TOKEN_KEY);
  } catch {
    /* storage full or disabled: the token lives in memory for this page only */
  }
}

/** `?token=` in the address: take it, and remove it from the address bar (and history). */
export function takeTokenFromUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.has('token')) return null;
  const token = (params.get('token') || '').trim();
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  return token || null;
}

function loadPopped() {
  if (!sharedStore) return memoryPopped;
  try {
    const o = JSON.parse(sharedStore.getItem(POPPED_KEY) || '{}');
    return o && typeof o === 'object' && !Array.isArray(o) ? o : {};
  } catch {
    return {};
  }
}

function savePopped(all) {
  const now = Date.now();
  let entries = Object.entries(all).filter(([, v]) => v && typeof v.t === 'number' && now - v.t < POPPED_TTL_MS);
  if (entries.length > POPPED_MAX) {
    entries.sort((a, b) => a[1].t - b[1].t);
    entries = entries.slice(-POPPED_MAX);
  }
  const out = Object.fromEntries(entries);
  if (!sharedStore) {
    memoryPopped = out;
    return;
  }
  try {
    sharedStore.setItem(POPPED_KEY, JSON.stringify(out));
  } catch {
    memoryPopped = out;
  }
}

/**
 * Claims the right to pop `key` for event `ev`; false when it was popped already. Read and write
 * happen in one synchronous step, so two tabs cannot both claim it. A (call, rule) pop that a
 * closeOn event took down may pop again for a *later* event of the call (the queue rings the agent
 * again, or the call is transferred back to them); a replay of the same or an older event never.
 */
export function claimPop(key, ev) {
  const all = loadPopped();
  const prev = all[key];
  if (prev) {
    if (prev.ev === ev.id) return false;
    const again = prev.closed === true && typeof prev.closedSeq === 'number' && typeof ev.seq === 'number' && ev.seq > prev.closedSeq;
    if (!again) return false;
  }
  all[key] = { t: Date.now(), ev: ev.id, seq: typeof ev.seq === 'number' ? ev.seq : null, closed: false };
  savePopped(all);
  return true;
}

export function markClosed(key, seq) {
  const all = loadPopped();
  const prev = all[key] || { ev: null, seq: null };
  const closedSeq = typeof seq === 'number' ? Math.max(seq, typeof prev.closedSeq === 'number' ? prev.closedSeq : 0) : prev.closedSeq ?? null;
  all[key] = { ...prev, t: Date.now(), closed: true, closedSeq };
  savePopped(all);
}

/** Origins of CRMs that refuse to be framed (learned, or said by the agent): embedded → new tab. */
export function noFrameOrigins() {
  try {
    const list = JSON.parse(sharedStore?.getItem(NOFRAME_KEY) || '[]');
    return new Set(Array.isArray(list) ? list.filter(isStr) : []);
  } catch {
    return new Set();
  }
}

export function setNoFrame(origin, on) {
  const set = noFrameOrigins();
  set.delete(origin);
  if (on) set.add(origin);
  try {
    sharedStore?.setItem(NOFRAME_KEY, JSON.stringify([...set].slice(-NOFRAME_MAX)));
  } catch {
    /* ignore */
  }
}
