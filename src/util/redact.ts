// Credentials that live inside URLs, hidden before a URL is logged or shown. Receivers put
// secrets in three places: the user-info (`https://user:password@host`), query or fragment
// parameters (`?apikey=…`, `#access_token=…`), and the path (Zammad's `/api/v1/cti/<token>`,
// Slack's `/services/T…/B…/<secret>`, Discord's `/webhooks/<id>/<token>`). This is the ONE function for
// that: the start-up log (describeConfig), config errors (`(is '…')`), delivery errors and the
// dead letters' error text all go through it. It works on text, not on parsed URLs: a URL
// template (`{callId}` holders) does not parse, and a URL inside an error message must be found.
import { REDACTED } from './secret.js';

/** Parameter names whose values are credentials (matched in the name, any case). */
const SECRET_PARAM = /key|token|secret|passw|pwd|auth|signature|^sig$|credential|session|^sid$/i;

/**
 * Path segments after which the next segment is a credential: Zammad (`/api/v1/cti/<token>`),
 * Discord-style (`/webhooks/<id>/<token>`: the id here, the token by its shape), and the common
 * `/hooks/<token>`, `/token/<token>`, `/key/<key>`.
 */
const SECRET_AFTER = new Set(['cti', 'webhooks', 'webhook', 'hooks', 'hook', 'token', 'tokens', 'key', 'keys', 'secret', 'secrets']);

/**
 * A segment that looks like a generated credential even where no known prefix announces it:
 * 20 or more letters, digits, `-` or `_`, with both letters and digits. Ids of that shape get
 * hidden too; a hidden id costs a look at the config, a shown token costs the CRM account.
 */
function looksLikeToken(segment: string): boolean {
  return segment.length >= 20 && /^[A-Za-z0-9_~.-]+$/.test(segment) && /[A-Za-z]/.test(segment) && /[0-9]/.test(segment);
}

/** A URL (or URL template) and where it ends in surrounding text. */
const URL_IN_TEXT = /\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]+/g;

function redactParams(params: string): string {
  return params
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // A malformed escape: judge the name as written.
      }
      return SECRET_PARAM.test(decoded) && eq < pair.length - 1 ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
}

function redactPath(path: string): string {
  let afterMarker = false;
  return path
    .split('/')
    .map((segment) => {
      const holder = segment.includes('{') || segment.includes('<%');
      const hide = segment !== '' && !holder && (afterMarker || looksLikeToken(segment));
      afterMarker = SECRET_AFTER.has(segment.toLowerCase());
      return hide ? REDACTED : segment;
    })
    .join('/');
}

/**
 * `url` with its credentials replaced by `[redacted]`: the whole user-info, the values of
 * parameters whose name says key/token/secret/password/auth/signature (query and fragment), and
 * path segments that hold a token (after `cti/`, `webhooks/`, `hooks/`…, or shaped like one).
 * Template holders (`{callId}`, `<%CALLERID%>`) are kept: they are not secrets, and they show
 * which template it is. Anything that is not `scheme://…` is returned unchanged.
 */
export function redactUrl(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (!m) return url;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  const host = at < 0 ? authority : `${REDACTED}@${authority.slice(at + 1)}`;
  const hash = rest.indexOf('#');
  const beforeHash = hash < 0 ? rest : rest.slice(0, hash);
  const fragment = hash < 0 ? null : rest.slice(hash + 1);
  const q = beforeHash.indexOf('?');
  const path = q < 0 ? beforeHash : beforeHash.slice(0, q);
  const query = q < 0 ? null : beforeHash.slice(q + 1);
  let out = `${scheme}${host}${redactPath(path)}`;
  if (query !== null) out += `?${redactParams(query)}`;
  if (fragment !== null) {
    // `#/route?token=…` or `#token=…`.
    const fq = fragment.indexOf('?');
    out += fq < 0 ? `#${redactParams(fragment)}` : `#${fragment.slice(0, fq)}?${redactParams(fragment.slice(fq + 1))}`;
  }
  return out;
}

/** `text` with every URL in it redacted (error messages, log text). */
export function redactUrls(text: string): string {
  return text.includes('://') ? text.replace(URL_IN_TEXT, (url) => redactUrl(url)) : text;
}

/** Every string in `value` (objects and arrays walked, in place) with its URLs redacted; returns `value`. */
export function redactUrlsDeep<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactUrls(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = walk(v[i]);
      return v;
    }
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = walk(o[k]);
      return o;
    }
    return v;
  };
  return walk(value) as T;
}
