// Today's calls per 15 minutes: an inline SVG stacked bar per slot (answered, then missed by
// reason), a legend, and the same in words for screen readers (the chart itself is one image).

import { MISSED_REASONS, floor, serverNow } from './model.js';
import { $, h, setText, svg } from './util.js';

export const REASON_TEXT = { abandoned: 'Abandoned', no_answer: 'No answer', busy: 'Busy', unavailable: 'Unavailable', timeout: 'Queue timeout' };
const SERIES = [['answered', 'Answered'], ...MISSED_REASONS.map((r) => [r, REASON_TEXT[r]])];
const W = 960;
const H = 180;
const TOP = 10;
const AXIS = 18;
const SLOT = W / 96;

const missedOf = (slot) => MISSED_REASONS.reduce((n, r) => n + (Number(slot?.missed?.[r]) || 0), 0);
const totalOf = (slot) => (Number(slot?.answered) || 0) + missedOf(slot);

let built = false;
let scale = 0;

function build() {
  const chart = $('chart');
  chart.setAttribute('viewBox', `0 0 ${W} ${H + AXIS}`);
  const grid = svg('g', { class: 'grid' });
  const bars = svg('g', { class: 'bars' });
  for (let i = 0; i < 96; i++) {
    const g = svg('g', { 'data-testid': 'chart-slot', 'data-index': i }, svg('title'));
    for (const [key] of SERIES) g.append(svg('rect', { class: `bar bar-${key}`, x: (i * SLOT + 1).toFixed(1), width: (SLOT - 2).toFixed(1), y: H, height: 0 }));
    bars.append(g);
  }
  const axis = svg('g', { class: 'axis' });
  for (let hour = 0; hour <= 24; hour += 3) {
    const x = Math.min(W - 14, Math.max(14, hour * 4 * SLOT));
    axis.append(svg('text', { x, y: H + AXIS - 4, 'text-anchor': 'middle' }, `${String(hour).padStart(2, '0')}h`));
    grid.append(svg('line', { x1: hour * 4 * SLOT, x2: hour * 4 * SLOT, y1: TOP, y2: H }));
  }
  chart.append(grid, svg('line', { class: 'baseline', x1: 0, x2: W, y1: H, y2: H }), bars, axis, svg('text', { class: 'scale', x: 4, y: TOP + 10 }, ''));
  const legend = $('chart-legend');
  legend.replaceChildren(...SERIES.map(([key, text]) => h('li', { class: `legend-${key}` }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), text)));
  built = true;
}

function drawSlot(g, slot, i) {
  let y = H;
  const unit = scale > 0 ? (H - TOP - 12) / scale : 0;
  const values = SERIES.map(([key]) => (key === 'answered' ? Number(slot?.answered) || 0 : Number(slot?.missed?.[key]) || 0));
  values.forEach((v, k) => {
    const rect = g.children[k + 1];
    const hgt = v * unit;
    y -= hgt;
    rect.setAttribute('y', y.toFixed(1));
    rect.setAttribute('height', hgt.toFixed(1));
  });
  g.dataset.answered = String(values[0]);
  g.dataset.missed = String(missedOf(slot));
  const label = slot?.label ?? `${String(Math.floor(i / 4)).padStart(2, '0')}:${String((i % 4) * 15).padStart(2, '0')}`;
  setText(g.firstChild, `${label}: ${values[0]} answered, ${missedOf(slot)} missed`);
}

/** The slot holding the server's "now", in the floor's time zone. */
function currentIndex() {
  let parts;
  try {
    // en-GB for the digits: the page's own locale may write them otherwise.
    parts = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: floor.timeZone || undefined }).formatToParts(serverNow());
  } catch {
    return -1;
  }
  const part = (type) => Number(parts.find((p) => p.type === type)?.value);
  const hh = part('hour');
  const mm = part('minute');
  return Number.isFinite(hh) && Number.isFinite(mm) ? hh * 4 + Math.floor(mm / 15) : -1;
}

export function renderChart() {
  if (!built) build();
  const slots = floor.chart;
  const max = Math.max(1, ...slots.map(totalOf));
  // A round scale. Every bar is redrawn (96 × 6 attributes, at most once a frame): a new maximum
  // rescales them all anyway.
  const nice = max <= 5 ? 5 : max <= 10 ? 10 : Math.ceil(max / 10) * 10;
  scale = nice;
  const bars = $('chart').querySelector('.bars');
  for (let i = 0; i < 96; i++) drawSlot(bars.children[i], slots[i], i);
  setText($('chart').querySelector('.scale'), `${scale} calls`);
  markNow();
  renderSummary(slots);
}

export function markNow() {
  const bars = $('chart')?.querySelector('.bars');
  if (!bars) return;
  const now = currentIndex();
  for (const g of bars.querySelectorAll('.now')) if (Number(g.dataset.index) !== now) g.classList.remove('now');
  bars.children[now]?.classList.add('now');
}

function renderSummary(slots) {
  const answered = slots.reduce((n, s) => n + (Number(s?.answered) || 0), 0);
  const byReason = MISSED_REASONS.map((r) => [r, slots.reduce((n, s) => n + (Number(s?.missed?.[r]) || 0), 0)]).filter(([, n]) => n > 0);
  const missed = byReason.reduce((n, [, v]) => n + v, 0);
  let busiest = -1;
  slots.forEach((s, i) => {
    if (totalOf(s) > 0 && (busiest < 0 || totalOf(s) > totalOf(slots[busiest]))) busiest = i;
  });
  const parts = [`Today: ${answered} answered, ${missed} missed${byReason.length ? ` (${byReason.map(([r, n]) => `${n} ${REASON_TEXT[r].toLowerCase()}`).join(', ')})` : ''}.`];
  if (busiest >= 0) parts.push(`Busiest quarter hour: ${slots[busiest]?.label ?? busiest} with ${totalOf(slots[busiest])} calls.`);
  setText($('chart-summary'), parts.join(' '));
}
