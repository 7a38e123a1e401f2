// Template problems are found when a template is compiled (at start, by the config layer), never
// while rendering: a render cannot fail.

/** One problem in a template, at `path` relative to the template's own config key. */
export interface TemplateProblem {
  /** Where inside the template's config value: `[]` for a string template, `['data', 0]` for a body leaf, `[2, 'from']` in a params list. */
  path: (string | number)[];
  /** One line, e.g. `unknown name {callerNumbr}: did you mean {callerNumber}?`. */
  message: string;
  /** The offending name or key as written (`callerNumbr`, `<%CALLID%>`), when the problem is one. */
  name?: string;
  /** The closest valid spelling, written the way it would be used (`{callerNumber}`), or null. */
  suggestion?: string | null;
}

/** Every problem in one template (or body, or params list): thrown by the compile functions. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  readonly problems: readonly TemplateProblem[];

  constructor(problems: readonly TemplateProblem[]) {
    super(problems.map(describeProblem).join('; '));
    this.problems = problems;
  }
}

function describeProblem(p: TemplateProblem): string {
  if (p.path.length === 0) return p.message;
  const at = p.path.map((seg) => (typeof seg === 'number' ? `[${seg}]` : `.${seg}`)).join('');
  return `${at.startsWith('.') ? at.slice(1) : at}: ${p.message}`;
}

/** Prepends `prefix` to each problem's path. */
export function under(prefix: readonly (string | number)[], problems: readonly TemplateProblem[]): TemplateProblem[] {
  return problems.map((p) => ({ ...p, path: [...prefix, ...p.path] }));
}

/**
 * The candidate closest to `wanted`: an exact case-insensitive match first, then the smallest
 * edit distance, if it is small enough for the typo to be plausible; else null.
 */
export function closest(wanted: string, candidates: readonly string[]): string | null {
  const w = wanted.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.ceil(w.length * 0.4)) ? best : null;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = row;
  }
  return previous[b.length]!;
}
