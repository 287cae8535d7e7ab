/**
 * Task inputs by reference (claim-check). `checkInputs` proves each URI is allowed and resolves
 * before a task is queued, so a bad input fails at enqueue with the input named;
 * `materializeInputs` checks again and brings them into the workspace when the task runs.
 * Supported: file:// (inside the input roots, see input-policy.ts), runs:/<run_id>/<path>,
 * mlflow-artifacts:/<path> (the tracking server's own, never another host), http(s):// from
 * allow-listed hosts (redirects not followed), and small inline tables ({columns, data}) as CSV.
 */
import { constants, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { capForEcho, redactUri, redactUrisIn } from '../errors/echo.js';
import { RunwardenError, ValidationError } from '../errors/index.js';
import { artifactBaseUrl, downloadFile, downloadTree, listArtifacts } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import type { InlineTable } from '../model/task-spec.js';
import { checkHttpInput, type InputPolicy, insideRoots, resolveLocalInput } from './input-policy.js';

type Input = string | InlineTable;

/**
 * Template default inputs (name → file URI written by the spec from task.yaml): trusted to lie in
 * the tasks folder, so they are confined to `root` instead of the input roots.
 */
export interface TemplateDefaults {
  root: string;
  uris: Record<string, string>;
}

/** The roots a local input must resolve into: the tasks folder for a template's own default. */
function rootsFor(name: string, uri: string, policy: InputPolicy, defaults?: TemplateDefaults): string[] {
  return defaults && defaults.uris[name] === uri ? [defaults.root] : policy.roots;
}

function parseRunsUri(uri: string): { runId: string; path: string } {
  const m = /^runs:\/\/?([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error('expected runs:/<run_id>/<path>');
  return { runId: m[1]!, path: normalizeArtifactPath(m[2]!) };
}

async function runArtifactEntry(client: MlflowClient, uri: string) {
  const { runId, path: rel } = parseRunsUri(uri);
  const run = (await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } })))
    .run;
  const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
  const entry = (await listArtifacts(client, runId, dir)).find((f) => f.path === rel);
  return { runId, rel, artifactUri: run?.info?.artifact_uri ?? '', entry };
}

/** The proxy URL of an mlflow-artifacts: input; another host than the tracking server is refused. */
function proxiedUrl(client: MlflowClient, field: string, uri: string): string {
  try {
    return artifactBaseUrl(client, uri);
  } catch (err) {
    if (err instanceof RunwardenError && err.code === 'UNSUPPORTED_ARTIFACT_URI') {
      throw new ValidationError(field, err.message);
    }
    throw err;
  }
}

/** GET without following redirects: a redirect could leave the allow-listed host. */
async function fetchNoRedirect(field: string, url: URL, init: RequestInit): Promise<Response> {
  const res = await fetch(url, { ...init, redirect: 'manual' });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    const to = res.headers.get('location') ?? '?';
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(url.href))} answered a redirect (HTTP ${res.status} to ${capForEcho(redactUri(to))}); redirects are not ` +
        'followed: pass the final URL (its host must be in RUNWARDEN_HTTP_INPUT_HOSTS)',
    );
  }
  return res;
}

async function checkOne(
  client: MlflowClient,
  name: string,
  input: Input,
  policy: InputPolicy,
  defaults?: TemplateDefaults,
): Promise<void> {
  const field = `inputs.${name}`;
  if (typeof input !== 'string') return;
  try {
    if (input.startsWith('file://')) {
      await resolveLocalInput(field, input, policy, rootsFor(name, input, policy, defaults));
    } else if (input.startsWith('runs:/')) {
      const { entry } = await runArtifactEntry(client, input);
      if (!entry) throw new Error('no such artifact in that run');
    } else if (input.startsWith('mlflow-artifacts:/')) {
      const url = proxiedUrl(client, field, input);
      await client.transport
        .send(
          () => ({ url, init: { method: 'GET', headers: { range: 'bytes=0-0' } } }),
          // A server that ignores Range would send the whole file: read one byte of it.
          { retry: true, timeoutMs: 15_000, maxBodyBytes: 1 },
        )
        .then((r) => r.body?.cancel());
    } else {
      const url = checkHttpInput(field, input, policy);
      const res = await fetchNoRedirect(field, url, { method: 'HEAD', signal: AbortSignal.timeout(15_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    }
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(input))} cannot be read (${capForEcho(redactUrisIn((err as Error).message))}); fix the URI or upload the data first`,
    );
  }
}

/** Prove every input is allowed and resolves; throws ValidationError naming the first that does not. */
export async function checkInputs(
  client: MlflowClient,
  inputs: Record<string, Input>,
  policy: InputPolicy,
  defaults?: TemplateDefaults,
): Promise<void> {
  for (const [name, input] of Object.entries(inputs)) await checkOne(client, name, input, policy, defaults);
}

function csvCell(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Copy one local file that was proved inside `roots`, safely against a swap after the check: the
 * last component is opened without following a symlink, and (on Linux) the open descriptor's own
 * path is checked against the roots again, so a folder replaced by a symlink is caught too.
 */
async function copyConfined(field: string, real: string, roots: string[], target: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new ValidationError(
      field,
      `${capForEcho(redactUri(real))} changed after it was checked (${(err as NodeJS.ErrnoException).code ?? 'error'}); refused`,
    );
  }
  try {
    if (!(await fh.stat()).isFile())
      throw new ValidationError(field, `${capForEcho(redactUri(real))} is not a regular file`);
    const opened = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => undefined);
    if (opened !== undefined && !(await insideRoots(opened, roots))) {
      throw new ValidationError(
        field,
        `${capForEcho(redactUri(real))} now resolves to ${capForEcho(redactUri(opened))}, outside the input roots; refused`,
      );
    }
    await pipeline(fh.createReadStream({ autoClose: false }), createWriteStream(target));
  } finally {
    await fh.close();
  }
}

/** Copy a folder input file by file; symlinks must stay inside the roots and lead to files. */
async function copyFolderConfined(
  field: string,
  dir: string,
  roots: string[],
  target: string,
): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const name of await readdir(dir)) {
    const src = path.join(dir, name);
    const dest = path.join(target, name);
    const st = await lstat(src);
    if (st.isDirectory()) {
      await copyFolderConfined(field, src, roots, dest);
    } else if (st.isSymbolicLink()) {
      const real = await realpath(src).catch(() => undefined);
      if (!real || !(await insideRoots(real, roots))) {
        throw new ValidationError(
          field,
          `${capForEcho(redactUri(src))} is a symlink leading outside the input roots (or nowhere); refused`,
        );
      }
      const lst = await lstat(real);
      if (!lst.isFile()) {
        throw new ValidationError(
          field,
          `${capForEcho(redactUri(src))} is a symlink to a folder; not followed, refused`,
        );
      }
      await copyConfined(field, real, roots, dest);
    } else if (st.isFile()) {
      await copyConfined(field, src, roots, dest);
    }
  }
}

/**
 * Bring each input into its own folder, `dir/<name>/` (two inputs with the same file name never
 * overwrite each other), checking each against the policy again; returns name → local path.
 */
export async function materializeInputs(
  client: MlflowClient,
  inputs: Record<string, Input>,
  dir: string,
  policy: InputPolicy,
  opts: { signal?: AbortSignal; defaults?: TemplateDefaults } = {},
): Promise<Record<string, string>> {
  const { signal, defaults } = opts;
  await mkdir(dir, { recursive: true });
  const out: Record<string, string> = {};
  for (const [name, input] of Object.entries(inputs)) {
    const field = `inputs.${name}`;
    const own = path.join(dir, name);
    await mkdir(own, { recursive: true });
    if (typeof input !== 'string') {
      const file = path.join(own, `${name}.csv`);
      const lines = [
        input.columns.map(csvCell).join(','),
        ...input.data.map((row) => row.map(csvCell).join(',')),
      ];
      await writeFile(file, `${lines.join('\n')}\n`);
      out[name] = file;
      continue;
    }
    if (input.startsWith('file://')) {
      const roots = rootsFor(name, input, policy, defaults);
      const local = await resolveLocalInput(field, input, policy, roots);
      const target = path.join(own, path.basename(local.real));
      if (local.isDir) await copyFolderConfined(field, local.real, roots, target);
      else await copyConfined(field, local.real, roots, target);
      out[name] = target;
    } else if (input.startsWith('runs:/')) {
      const { runId, rel, artifactUri, entry } = await runArtifactEntry(client, input);
      const target = path.join(own, path.posix.basename(rel));
      if (entry?.is_dir) await downloadTree(client, runId, artifactUri, rel, target);
      else await downloadFile(client, artifactUri, rel, target, { signal });
      out[name] = target;
    } else if (input.startsWith('mlflow-artifacts:/')) {
      proxiedUrl(client, field, input);
      const target = path.join(own, path.posix.basename(input));
      // Folder URI + file name, so the download gets downloadFile's temp file, rename and timeout.
      const slash = input.lastIndexOf('/');
      await downloadFile(client, input.slice(0, slash), input.slice(slash + 1), target, { signal });
      out[name] = target;
    } else {
      const url = checkHttpInput(field, input, policy);
      const target = path.join(own, path.posix.basename(url.pathname) || name);
      const res = await fetchNoRedirect(field, url, { signal });
      if (!res.ok || !res.body)
        throw new ValidationError(field, `${capForEcho(redactUri(input))} answered HTTP ${res.status}`);
      await pipeline(Readable.fromWeb(res.body as WebReadableStream), createWriteStream(target));
      out[name] = target;
    }
  }
  return out;
}
