/**
 * Run artifacts through MLflow's artifact proxy: files and folders uploaded and downloaded as
 * streams (never whole in memory, downloads to a temp name then renamed), small reads capped,
 * listings paged and optionally recursive. Paths are normalised so none escapes the run's root, and
 * an artifact URI that names another host than the tracking server is refused.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { RunwardenError } from '../errors/index.js';
import { type FileInfo, type MlflowClient, ok } from './client.js';
import { encodePath, joinArtifactPath, normalizeArtifactPath } from './paths.js';

/** Where a run's artifacts live, as the proxy URL prefix (without trailing slash). */
export function artifactBaseUrl(client: MlflowClient, artifactUri: string): string {
  const m = /^mlflow-artifacts:(\/\/[^/]+)?\/?(.*)$/.exec(artifactUri);
  if (!m) {
    throw new RunwardenError(
      'UNSUPPORTED_ARTIFACT_URI',
      `artifact URI ${artifactUri} is not served through the tracking server. runwarden writes artifacts only ` +
        "through MLflow's artifact proxy: start the server with --serve-artifacts (the default) and no " +
        '--default-artifact-root, so runs get mlflow-artifacts:/ URIs.',
    );
  }
  if (m[1]) {
    // An authority must be the tracking server's own: artifacts (and the credentials sent with
    // them) never go to another host, whatever a run or an input names.
    const tracking = new URL(client.trackingUri);
    let named: URL | undefined;
    try {
      named = new URL(`${tracking.protocol}${m[1]}`);
    } catch {
      // not a host: refused below
    }
    if (named?.host !== tracking.host || named.username || named.password) {
      throw new RunwardenError(
        'UNSUPPORTED_ARTIFACT_URI',
        `artifact URI names host ${m[1].slice(2, 202)}, not the tracking server (${tracking.host}); runwarden ` +
          'reaches artifacts only through MLFLOW_TRACKING_URI and sends credentials only there. Use a ' +
          'mlflow-artifacts:/<path> URI (no host) or runs:/<run_id>/<path>.',
      );
    }
  }
  const rest = normalizeArtifactPath(m[2] ?? '');
  return `${client.trackingUri}/api/2.0/mlflow-artifacts/artifacts/${encodePath(rest)}`;
}

function guessContentType(file: string): string {
  const ext = path.extname(file).toLowerCase();
  const known: Record<string, string> = {
    '.json': 'application/json',
    '.txt': 'text/plain',
    '.log': 'text/plain',
    '.csv': 'text/csv',
    '.png': 'image/png',
    '.html': 'text/html',
    '.yaml': 'application/yaml',
    '.yml': 'application/yaml',
  };
  return known[ext] ?? 'application/octet-stream';
}

export interface UploadOptions {
  /** Run-relative folder to put the file(s) under ('' = root). */
  artifactPath?: string;
  signal?: AbortSignal;
  /** Called after each file with bytes done so far and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Parallel file uploads for directories (default 4). */
  concurrency?: number;
}

/** Upload one file, streamed from disk; retried (with a fresh stream) on transient failures. */
export async function uploadFile(
  client: MlflowClient,
  artifactUri: string,
  localFile: string,
  opts: UploadOptions & { fileName?: string } = {},
): Promise<{ path: string; bytes: number }> {
  const st = await stat(localFile);
  if (!st.isFile()) throw new RunwardenError('VALIDATION_ERROR', `localPath: ${localFile} is not a file`);
  const rel = joinArtifactPath(opts.artifactPath, opts.fileName ?? path.basename(localFile));
  const url = `${artifactBaseUrl(client, artifactUri)}/${encodePath(rel)}`;
  await client.transport.putFile(
    url,
    { path: localFile, size: st.size, contentType: guessContentType(localFile) },
    { timeoutMs: client.artifactTimeoutMs, signal: opts.signal },
  );
  opts.onProgress?.(st.size, st.size);
  return { path: rel, bytes: st.size };
}

/** Upload bytes or text held in memory (small content only: notes, configs, long param values). */
export async function uploadBytes(
  client: MlflowClient,
  artifactUri: string,
  artifactPath: string,
  content: string | Uint8Array,
  opts: { signal?: AbortSignal } = {},
): Promise<{ path: string; bytes: number }> {
  const rel = normalizeArtifactPath(artifactPath);
  if (!rel)
    throw new RunwardenError('VALIDATION_ERROR', 'artifactPath: a file path is required, e.g. "notes.txt"');
  const body = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const res = await client.transport.send(
    () => ({
      url: `${artifactBaseUrl(client, artifactUri)}/${encodePath(rel)}`,
      init: { method: 'PUT', headers: { 'content-type': guessContentType(rel) }, body },
    }),
    { retry: true, timeoutMs: client.artifactTimeoutMs, signal: opts.signal },
  );
  await res.arrayBuffer().catch(() => undefined); // tiny `{}`; reading it frees the socket
  return { path: rel, bytes: body.byteLength };
}

async function walk(dir: string, base = ''): Promise<{ abs: string; rel: string; size: number }[]> {
  const out: { abs: string; rel: string; size: number }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    const rel = base ? `${base}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await walk(abs, rel)));
    else if (entry.isFile()) out.push({ abs, rel, size: (await stat(abs)).size });
  }
  return out;
}

/** Upload a file, or a directory tree file by file (streamed, a few in parallel). */
export async function uploadPath(
  client: MlflowClient,
  artifactUri: string,
  localPath: string,
  opts: UploadOptions = {},
): Promise<{ files: number; bytes: number }> {
  const st = await stat(localPath);
  if (st.isFile()) {
    const r = await uploadFile(client, artifactUri, localPath, opts);
    return { files: 1, bytes: r.bytes };
  }
  const files = await walk(localPath);
  const total = files.reduce((s, f) => s + f.size, 0);
  let done = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++]!;
      const dir = path.posix.dirname(f.rel);
      await uploadFile(client, artifactUri, f.abs, {
        artifactPath: joinArtifactPath(opts.artifactPath, dir === '.' ? '' : dir),
        signal: opts.signal,
      });
      done += f.size;
      opts.onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, files.length) }, worker));
  return { files: files.length, bytes: total };
}

/** Download one artifact file, streamed to `localFile` (written to a temp name, then renamed). */
export async function downloadFile(
  client: MlflowClient,
  artifactUri: string,
  artifactPath: string,
  localFile: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ bytes: number }> {
  const rel = normalizeArtifactPath(artifactPath);
  await mkdir(path.dirname(localFile), { recursive: true });
  const tmp = `${localFile}.part-${process.pid}-${Date.now()}`;
  try {
    await client.transport.getToFile(`${artifactBaseUrl(client, artifactUri)}/${encodePath(rel)}`, tmp, {
      timeoutMs: client.artifactTimeoutMs,
      signal: opts.signal,
    });
    await rename(tmp, localFile);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { bytes: (await stat(localFile)).size };
}

/** Read a small artifact into memory, refusing anything larger than `maxBytes`. */
export async function readArtifact(
  client: MlflowClient,
  artifactUri: string,
  artifactPath: string,
  maxBytes: number,
): Promise<{ bytes: Buffer; truncated: boolean }> {
  const rel = normalizeArtifactPath(artifactPath);
  // One byte past the cap is enough to know the file is longer; the rest is never read.
  const res = await client.transport.send(
    () => ({ url: `${artifactBaseUrl(client, artifactUri)}/${encodePath(rel)}`, init: { method: 'GET' } }),
    { retry: true, timeoutMs: client.artifactTimeoutMs, maxBodyBytes: maxBytes + 1 },
  );
  const all = Buffer.from(await res.arrayBuffer());
  return all.length > maxBytes
    ? { bytes: all.subarray(0, maxBytes), truncated: true }
    : { bytes: all, truncated: false };
}

/** List a run's artifacts under `artifactPath`, recursing into folders when `recursive`. */
export async function listArtifacts(
  client: MlflowClient,
  runId: string,
  artifactPath = '',
  opts: { recursive?: boolean } = {},
): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  const rel = normalizeArtifactPath(artifactPath);
  let pageToken: string | undefined;
  do {
    const page = await ok(
      client.api.GET('/api/2.0/mlflow/artifacts/list', {
        params: { query: { run_id: runId, path: rel || undefined, page_token: pageToken } },
      }),
    );
    for (const f of page.files ?? []) {
      out.push(f);
      if (opts.recursive && f.is_dir && f.path) {
        out.push(...(await listArtifacts(client, runId, f.path, opts)));
      }
    }
    pageToken = page.next_page_token;
  } while (pageToken);
  return out;
}

/** Download everything under `artifactPath` into `localDir`, keeping the tree. */
export async function downloadTree(
  client: MlflowClient,
  runId: string,
  artifactUri: string,
  artifactPath: string,
  localDir: string,
): Promise<{ files: number; bytes: number }> {
  const rel = normalizeArtifactPath(artifactPath);
  const files = (await listArtifacts(client, runId, rel, { recursive: true })).filter((f) => !f.is_dir);
  let bytes = 0;
  for (const f of files) {
    const p = normalizeArtifactPath(f.path ?? '');
    const inside = rel ? p.slice(rel.length + 1) : p;
    const target = path.join(localDir, ...inside.split('/'));
    bytes += (await downloadFile(client, artifactUri, p, target)).bytes;
  }
  return { files: files.length, bytes };
}
