/**
 * DNS-rebinding checks for `runwarden serve`: which Host headers and browser Origins may reach the
 * MCP endpoint. Addresses are parsed with WHATWG URL (so `127.1` and `0x7f.0.0.1` are the same
 * address), never matched by prefix: loopback means the hostname IS `localhost`, `[::1]` or an IPv4
 * literal in 127.0.0.0/8. `127.0.0.1.evil.example` and `127.evil.example` are names under
 * someone's DNS, and are refused unless configured.
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** True for `localhost`, `::1` / `[::1]`, and IPv4 literals 127.0.0.0/8 (as URL normalises them). */
export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '[::1]') return true;
  const m = IPV4.exec(h);
  return !!m && m.slice(1).every((o) => Number(o) <= 255) && m[1] === '127';
}

/** Host header: a hostname or IP literal and an optional port, nothing else (no userinfo, path). */
const HOST_HEADER = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?$/i;

/**
 * The canonical hostname of a Host header (`127.1:7341` → `127.0.0.1`, `[::1]:80` → `[::1]`,
 * `Example.COM.` → `example.com.`), or undefined when it is not a plain host[:port].
 */
export function hostOfHeader(header: string | undefined): string | undefined {
  const h = (header ?? '').trim();
  if (!HOST_HEADER.test(h)) return undefined;
  try {
    return new URL(`http://${h}`).hostname;
  } catch {
    return undefined;
  }
}

/** The canonical hostname of a configured host name (lower case, IPs normalised). */
export function canonicalHost(name: string): string {
  return hostOfHeader(name.includes(':') && !name.startsWith('[') ? `[${name}]` : name) ?? name.toLowerCase();
}

/**
 * Whether a browser Origin may call: no Origin (non-browser clients send none), an exact match of
 * a configured origin, or an http(s) origin whose hostname is loopback.
 */
export function originAllowed(origin: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  if (allowed.has(origin)) return true;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '')) return false;
  return isLoopbackHostname(u.hostname);
}
