// Small helpers of the wallboard: DOM without HTML parsing, durations, times in the floor's zone.

// The agent page's helpers, shared rather than copied: $, isStr, sleep, backoff, and h (DOM
// without HTML parsing: attribute values through setAttribute, children through text nodes).
export { $, backoff, h, isStr, sleep } from '/agent/assets/util.js';
import { isStr } from '/agent/assets/util.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** Sets text only when it changed: a wallboard rewrites the same figures all day. */
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

/** 0:07, 12:45, 1:02:03 */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export const percent = (ratio) => (ratio === null || ratio === undefined || !Number.isFinite(ratio) ? '—' : `${Math.round(ratio * 100)} %`);

const timeFormats = new Map();
/** HH:MM in the floor's time zone (the server's supervisor.timeZone), the browser's if unknown. */
export function clockIn(timeZone, iso, seconds = false) {
  const ms = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  const key = `${timeZone}|${seconds}`;
  let f = timeFormats.get(key);
  if (!f) {
    const opts = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', ...(seconds ? { second: '2-digit' } : {}) };
    try {
      f = new Intl.DateTimeFormat([], { ...opts, timeZone: timeZone || undefined });
    } catch {
      f = new Intl.DateTimeFormat([], opts); // an unknown zone name: the browser's own
    }
    timeFormats.set(key, f);
  }
  return f.format(ms);
}

/** A caller as people read it: "Name (number)", the number alone, or "unknown". */
export function partyText(p) {
  if (!p || typeof p !== 'object') return 'unknown';
  const name = isStr(p.name) ? p.name : '';
  const num = isStr(p.number) ? p.number : '';
  if (name && num && name !== num) return `${name} (${num})`;
  return name || num || 'unknown';
}
