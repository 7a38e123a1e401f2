// Splits a template string into literal text and the names it reads. Runs once per template, at
// compile time; rendering only walks the result.
import { closest, type TemplateProblem } from './errors.js';
import { CRM_VAR_PREFIX, isKnownName, KNOWN_NAMES, WORLDSMART_KEYS } from './vars.js';

export type Part = { kind: 'text'; text: string } | { kind: 'name'; name: string };

export interface Parsed {
  parts: Part[];
  /** Distinct names read, in first-use order (`<%KEY%>` keys as the names they read). */
  names: string[];
  problems: TemplateProblem[];
}

const WORLDSMART_KEY_LIST = Object.keys(WORLDSMART_KEYS);

/**
 * `{name}` holders, `<%KEY%>` WorldSmart keys, `{{` / `}}` for a literal brace; everything else is
 * literal text, kept as written. A lone `}` is literal too; an unclosed `{` or `<%` is a problem.
 */
export function parseTemplate(source: string): Parsed {
  const parts: Part[] = [];
  const problems: TemplateProblem[] = [];
  let text = '';
  const pushName = (name: string): void => {
    parts.push({ kind: 'text', text }, { kind: 'name', name });
    text = '';
  };
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === '{' && next === '{') {
      text += '{';
      i += 2;
    } else if (c === '}' && next === '}') {
      text += '}';
      i += 2;
    } else if (c === '{') {
      const close = source.indexOf('}', i + 1);
      if (close < 0) {
        problems.push({ path: [], message: `'{' at position ${i} has no closing '}' (write '{{' for a literal '{')` });
        text += source.slice(i);
        break;
      }
      const inner = source.slice(i + 1, close);
      const problem = checkName(inner);
      if (problem) problems.push(problem);
      pushName(inner);
      i = close + 1;
    } else if (c === '<' && next === '%') {
      const close = source.indexOf('%>', i + 2);
      if (close < 0) {
        problems.push({ path: [], message: `'<%' at position ${i} has no closing '%>'` });
        text += source.slice(i);
        break;
      }
      const key = source.slice(i + 2, close);
      const name = Object.hasOwn(WORLDSMART_KEYS, key) ? WORLDSMART_KEYS[key] : undefined;
      if (name === undefined) {
        const guess = closest(key.trim(), WORLDSMART_KEY_LIST);
        const suggestion = guess === null ? null : `<%${guess}%>`;
        problems.push({
          path: [],
          message: `unknown WorldSmart key <%${key}%>: ${suggestion ? `did you mean ${suggestion}?` : `known keys are ${WORLDSMART_KEY_LIST.map((k) => `<%${k}%>`).join(', ')}`}`,
          name: `<%${key}%>`,
          suggestion,
        });
      }
      pushName(name ?? key);
      i = close + 2;
    } else {
      text += c;
      i += 1;
    }
  }
  parts.push({ kind: 'text', text });
  const names: string[] = [];
  for (const p of parts) if (p.kind === 'name' && !names.includes(p.name)) names.push(p.name);
  return { parts, names, problems };
}

/** A problem for a `{…}` holder or `from:` whose content is not a known name, else null. */
/**
 * `holder`: shown and suggested as `{name}`; `param` (a `from:` value): shown as `'name'`,
 * suggested bare, as it is written there.
 */
export function checkName(written: string, style: 'holder' | 'param' = 'holder'): TemplateProblem | null {
  if (isKnownName(written)) return null;
  const bare = written.trim().replace(/^\{(.*)\}$/s, '$1').trim();
  let guess: string | null;
  if (isKnownName(bare)) guess = bare;
  else if (bare.toLowerCase().startsWith(CRM_VAR_PREFIX.toLowerCase()) && isKnownName(CRM_VAR_PREFIX + bare.slice(CRM_VAR_PREFIX.length))) {
    // Dialplan variables are case-sensitive: omlcrmcustomerid is not Omlcrmcustomerid.
    guess = CRM_VAR_PREFIX + bare.slice(CRM_VAR_PREFIX.length);
  } else guess = closest(bare, KNOWN_NAMES);
  const show = (n: string): string => (style === 'holder' ? `{${n}}` : `'${n}'`);
  const suggestion = guess === null ? null : style === 'holder' ? show(guess) : guess;
  return {
    path: [],
    message: `unknown name ${show(written)}: ${guess === null ? 'not a template variable (docs/templates.md lists them; dialplan variables start with Omlcrm)' : `did you mean ${show(guess)}?`}`,
    name: written,
    suggestion,
  };
}
