// Statistics for the results: rounding, percentiles, latency summaries, a least-squares slope.

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Nearest-rank percentile of an ascending array. */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(xs: number[]): number {
  return pct([...xs].sort((a, b) => a - b), 50);
}

export type Stats = { n: number; mean: number; min: number; p50: number; p90: number; p95: number; p99: number; p999: number; max: number };

export function latencyStats(values: ArrayLike<number>): Stats {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    mean: s.length ? round(sum / s.length, 2) : Number.NaN,
    min: s.length ? (s[0] as number) : Number.NaN,
    p50: pct(s, 50),
    p90: pct(s, 90),
    p95: pct(s, 95),
    p99: pct(s, 99),
    p999: pct(s, 99.9),
    max: s.length ? (s[s.length - 1] as number) : Number.NaN,
  };
}

/** p50/p99/max of `xs`, rounded to 0.01 (a pacer's tick gaps or lateness). */
export function spreadMs(xs: number[]): { p50: number; p99: number; max: number } {
  const s = Float64Array.from(xs).sort();
  return { p50: round(pct(s, 50), 2), p99: round(pct(s, 99), 2), max: round(pct(s, 100), 2) };
}

/** n, p50, p99, max of the values of each 5-s window (`windowOf` gives a value's window, or null). */
export function per5s(lat: number[], windowOf: (i: number) => number | null): Array<{ fromS: number; n: number; p50: number; p99: number; max: number }> {
  const by = new Map<number, number[]>();
  lat.forEach((l, i) => {
    const w = windowOf(i);
    if (w === null) return;
    const xs = by.get(w);
    if (xs) xs.push(l);
    else by.set(w, [l]);
  });
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([w, xs]) => {
      const s = latencyStats(xs);
      return { fromS: w * 5, n: s.n, p50: s.p50, p99: s.p99, max: s.max };
    });
}

/** Least-squares slope of y over x (NaN for fewer than two points). */
export function slope(xs: number[], ys: number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return Number.NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i] as number;
    my += ys[i] as number;
  }
  mx /= n;
  my /= n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    num += dx * ((ys[i] as number) - my);
    den += dx * dx;
  }
  return den === 0 ? Number.NaN : num / den;
}
