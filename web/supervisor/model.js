// The floor as the server last described it (src/supervisor/types.ts): a snapshot replaces it all,
// a patch replaces whole objects by key. What changed is kept in `dirty` until the next frame
// renders it, so a burst of patches costs one render touching only the rows they named.

import { isStr } from './util.js';

export const MISSED_REASONS = ['abandoned', 'no_answer', 'busy', 'unavailable', 'timeout'];

export const floor = {
  loaded: false,
  day: '',
  timeZone: '',
  queues: new Map(),
  agents: new Map(),
  calls: new Map(),
  /** 96 slots (index = position). */
  chart: [],
  missed: new Map(),
  /** Server clock minus ours, in ms: durations count from the server's instants. */
  offset: 0,
};

export const dirty = newDirty(true);

function newDirty(all) {
  return { all, queues: new Set(), agents: new Set(), calls: new Set(), chart: false, missed: new Set() };
}

export function takeDirty() {
  const d = { ...dirty };
  Object.assign(dirty, newDirty(false));
  return d;
}

/** The server's "now", as well as we can tell. */
export const serverNow = () => Date.now() + floor.offset;

function syncClock(now) {
  const t = Date.parse(now);
  if (Number.isFinite(t)) floor.offset = t - Date.now();
}

const keyed = (list, key) => (Array.isArray(list) ? list.filter((x) => x && typeof x === 'object' && isStr(x[key])) : []);

export function applySnapshot(s) {
  if (!s || typeof s !== 'object') return;
  syncClock(s.now);
  floor.loaded = true;
  floor.day = isStr(s.day) ? s.day : '';
  floor.timeZone = isStr(s.timeZone) ? s.timeZone : floor.timeZone;
  floor.queues = new Map(keyed(s.queues, 'name').map((q) => [q.name, q]));
  floor.agents = new Map(keyed(s.agents, 'id').map((a) => [a.id, a]));
  floor.calls = new Map(keyed(s.calls, 'callId').map((c) => [c.callId, c]));
  floor.chart = Array.isArray(s.chart) ? s.chart.slice(0, 96) : [];
  floor.missed = new Map(keyed(s.missed, 'id').map((m) => [m.id, m]));
  Object.assign(dirty, newDirty(true));
}

export function applyPatch(p) {
  if (!p || typeof p !== 'object') return;
  syncClock(p.now);
  for (const q of keyed(p.queues, 'name')) {
    floor.queues.set(q.name, q);
    dirty.queues.add(q.name);
  }
  for (const a of keyed(p.agents, 'id')) {
    floor.agents.set(a.id, a);
    dirty.agents.add(a.id);
  }
  for (const c of keyed(p.calls, 'callId')) {
    floor.calls.set(c.callId, c);
    dirty.calls.add(c.callId);
  }
  for (const id of Array.isArray(p.callsEnded) ? p.callsEnded.filter(isStr) : []) {
    floor.calls.delete(id);
    dirty.calls.add(id);
  }
  for (const slot of Array.isArray(p.chart) ? p.chart : []) {
    if (!slot || !Number.isInteger(slot.index) || slot.index < 0 || slot.index > 95) continue;
    const { index, ...rest } = slot;
    floor.chart[index] = rest;
    dirty.chart = true;
  }
  for (const m of keyed(p.missed, 'id')) {
    floor.missed.set(m.id, m);
    dirty.missed.add(m.id);
  }
}

export function clearFloor() {
  floor.loaded = false;
  floor.queues.clear();
  floor.agents.clear();
  floor.calls.clear();
  floor.chart = [];
  floor.missed.clear();
  Object.assign(dirty, newDirty(true));
}
