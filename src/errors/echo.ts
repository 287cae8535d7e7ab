/**
 * What runwarden may say back about an input or a setting: values capped to a few hundred
 * characters (an agent that sent 5 MB must not get 5 MB back in its context), and URIs without
 * the credentials they may carry (userinfo, `token`/`password`-like query values). Every error
 * message, UI link, `/health` answer and log line that shows a value or a URI goes through here.
 */

/** Longest value echoed in a message (characters), before the `…(N more)` mark. */
export const ECHO_MAX = 200;

/** Longest whole error text handed to an agent or printed (characters). */
export const ERROR_TEXT_MAX = 2000;

/**
 * `value` as a string of at most `max` characters plus a `…(N more)` mark saying how many were
 * cut. Never splits a UTF-16 surrogate pair, and lone surrogates come back as U+FFFD, so the
 * result is always safe to print, JSON-encode or put in a URL.
 */
export function capForEcho(value: unknown, max: number = ECHO_MAX): string {
  const s = wellFormed(typeof value === 'string' ? value : String(value));
  if (s.length <= max) return s;
  let end = Math.max(0, max);
  const code = s.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1; // keep a pair whole
  return `${s.slice(0, end)}…(${s.length - end} more)`;
}

/** A UTF-16 surrogate without its partner (what makes `encodeURIComponent` throw "URI malformed"). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** True when `s` holds no lone surrogate (`String.prototype.isWellFormed`, which lib ES2023 lacks). */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** The string with lone surrogates replaced by U+FFFD (`String.prototype.toWellFormed`). */
export function wellFormed(s: string): string {
  return isWellFormed(s) ? s : s.replace(LONE_SURROGATES, '\uFFFD');
}

/** Query parameter names whose values are secrets (matched case-insensitively, as substrings). */
const SECRET_PARAM = /token|password|passwd|secret|api[_-]?key|access[_-]?key|signature|credential|auth/i;

/**
 * A URI fit to show: userinfo replaced by `***` (`http://***@host/`, `redis://***@host:6379`) and
 * the values of secret-looking query parameters (`token`, `password`, `secret`, `api_key`,
 * `X-Amz-Signature`, ...) replaced by `***`. A string that is not a URI comes back unchanged.
 */
export function redactUri(uri: string): string {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return uri;
  }
  let changed = false;
  if (u.username || u.password) {
    u.username = '***';
    u.password = '';
    changed = true;
  }
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(key)) {
      u.searchParams.set(key, '***');
      changed = true;
    }
  }
  if (!changed) return uri;
  // URL adds a trailing '/' to a bare origin; keep the caller's form otherwise.
  const out = u.toString().replace(/%2A%2A%2A/g, '***');
  return !uri.endsWith('/') && out.endsWith('/') && u.pathname === '/' && !u.search ? out.slice(0, -1) : out;
}

const URI_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>`]+/gi;

/** Free text (an error message, a log line) with every URI in it passed through `redactUri`. */
export function redactUrisIn(text: string): string {
  return text.replace(URI_IN_TEXT, (m) => redactUri(m));
}
