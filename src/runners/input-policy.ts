/**
 * The input boundary: which local files and which web hosts a task may name as inputs. A local
 * input (`file://`) must resolve, with every symlink followed, inside one of the configured roots
 * (`RUNWARDEN_INPUT_ROOTS`, default the tasks folder's `data/`); a `..` segment is refused outright;
 * a folder only when `RUNWARDEN_INPUT_DIRS` allows it. An `http(s)://` input only from a host that
 * `RUNWARDEN_HTTP_INPUT_HOSTS` names (default: none). The queue applies these at enqueue and the
 * worker again when it brings the input in. Every refusal is a `ValidationError` naming the input,
 * the allowed values and the setting to change, with the offending value capped and its
 * credentials (userinfo, token-like query values) redacted (src/errors/echo.ts).
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capForEcho, redactUri } from '../errors/echo.js';
import { ValidationError } from '../errors/index.js';

export interface InputPolicy {
  /** Absolute folders local inputs must resolve into. */
  roots: string[];
  /** Whether a local input may be a folder (copied file by file, each checked). */
  allowDirs: boolean;
  /** Hosts (`host` or `host:port`, lowercase) http(s) inputs may come from. */
  httpHosts: string[];
}

/** The safe default: files under `<tasksDir>/data`, no folders, no web hosts. */
export function defaultInputPolicy(tasksDir: string): InputPolicy {
  return { roots: [path.join(path.resolve(tasksDir), 'data')], allowDirs: false, httpHosts: [] };
}

function inside(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

async function realRoots(roots: string[]): Promise<string[]> {
  return Promise.all(roots.map((r) => realpath(r).catch(() => path.resolve(r))));
}

/** Whether `real` (already a realpath) lies inside one of `roots` (their realpaths are taken). */
export async function insideRoots(real: string, roots: string[]): Promise<boolean> {
  return (await realRoots(roots)).some((r) => inside(real, r));
}

export interface LocalInput {
  /** The input's realpath, proved inside a root. */
  real: string;
  isDir: boolean;
}

/**
 * Resolve a `file://` input and prove it may be read: no `..`, realpath inside a root, a regular
 * file (or a folder where allowed). `roots` defaults to the policy's (a template's own default
 * input is checked against the tasks folder instead).
 */
export async function resolveLocalInput(
  field: string,
  uri: string,
  policy: InputPolicy,
  roots: string[] = policy.roots,
): Promise<LocalInput> {
  const rawPath = uri.slice('file://'.length).split(/[?#]/)[0] ?? '';
  let decoded: string[];
  try {
    decoded = rawPath.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(uri))} is not a valid file:// URI (bad %-escape)`,
    );
  }
  if (decoded.includes('..')) {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(uri))} has a '..' segment; give the file's own absolute path`,
    );
  }
  let abs: string;
  try {
    abs = fileURLToPath(uri);
  } catch (err) {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(uri))} is not a local file URI (${(err as Error).message}); use file:///absolute/path`,
    );
  }
  let real: string;
  try {
    real = await realpath(abs);
  } catch (err) {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(uri))} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); fix the URI or upload the data first`,
    );
  }
  if (!(await insideRoots(real, roots))) {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(abs))}${real !== abs ? ` (resolves to ${capForEcho(redactUri(real))})` : ''} is outside the input roots ` +
        `(${roots.map((r) => capForEcho(r)).join(', ') || 'none'}); put the file under one of them, or add its folder to ` +
        'RUNWARDEN_INPUT_ROOTS',
    );
  }
  const st = await stat(real);
  if (st.isDirectory()) {
    if (!policy.allowDirs) {
      throw new ValidationError(
        field,
        `${capForEcho(redactUri(abs))} is a folder; folder inputs are off: pass one file, upload the folder as a run artifact ` +
          'and pass runs:/<run_id>/<path>, or set RUNWARDEN_INPUT_DIRS=true',
      );
    }
    return { real, isDir: true };
  }
  if (!st.isFile()) {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(abs))} is not a regular file (device, FIFO or socket)`,
    );
  }
  return { real, isDir: false };
}

/** Whether the policy names this URL's host (`host`, or `host:port` for one port). */
function httpHostAllowed(url: URL, policy: InputPolicy): boolean {
  const names = [url.hostname.toLowerCase(), url.host.toLowerCase()];
  return policy.httpHosts.some((h) => names.includes(h.toLowerCase()));
}

/** Parse an http(s) input and prove the policy names its host. */
export function checkHttpInput(field: string, uri: string, policy: InputPolicy): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ValidationError(field, `${capForEcho(redactUri(uri))} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationError(field, `${capForEcho(redactUri(uri))} is not an http(s) URL`);
  }
  if (!httpHostAllowed(url, policy)) {
    throw new ValidationError(
      field,
      `http(s) inputs are allowed only from hosts named in RUNWARDEN_HTTP_INPUT_HOSTS ` +
        `(now: ${policy.httpHosts.map((h) => capForEcho(h)).join(', ') || 'none'}); ${capForEcho(redactUri(url.host))} is not one. Upload the data ` +
        'as a run artifact and pass runs:/<run_id>/<path>, or add the host to RUNWARDEN_HTTP_INPUT_HOSTS',
    );
  }
  return url;
}
