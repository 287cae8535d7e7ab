/**
 * Downloading a whole model folder from MLflow's artifact proxy: every file under the artifact URI,
 * recursively, keeping the tree. The whole folder, because ONNX external data (MLflow saves large
 * tensors into a file named by a random uuid) must sit next to model.onnx, which is then loaded by
 * path. The total size is bounded (RUNWARDEN_EVAL_MAX_MODEL_BYTES) before and during the download;
 * an abort signal stops it between files and inside the running file's transfer.
 */
import path from 'node:path';
import { RunwardenError } from '../errors/index.js';
import { artifactBaseUrl, downloadFile } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';

export const DEFAULT_MAX_MODEL_BYTES = 512 * 1024 * 1024;

/** The path of an `mlflow-artifacts:` URI inside the artifact store. */
function storePath(client: MlflowClient, artifactUri: string): string {
  artifactBaseUrl(client, artifactUri); // refuses other schemes and other hosts
  const m = /^mlflow-artifacts:(\/\/[^/]+)?\/?(.*)$/.exec(artifactUri);
  return normalizeArtifactPath(m?.[2] ?? '');
}

async function listTree(
  client: MlflowClient,
  root: string,
  rel: string,
  out: { rel: string; size: number }[],
  depth = 0,
): Promise<void> {
  if (depth > 20)
    throw new RunwardenError('MODEL_INVALID', `model folder ${root} nests deeper than 20 levels`);
  const dir = rel ? `${root}/${rel}` : root;
  const page = await ok(
    client.api.GET('/api/2.0/mlflow-artifacts/artifacts', { params: { query: { path: dir } } }),
  );
  for (const f of page.files ?? []) {
    const name = path.posix.basename(f.path ?? '');
    if (!name) continue;
    const child = rel ? `${rel}/${name}` : name;
    if (f.is_dir) await listTree(client, root, child, out, depth + 1);
    else out.push({ rel: child, size: Number(f.file_size ?? 0) });
  }
}

/**
 * Downloads every file under `artifactUri` (an `mlflow-artifacts:` URI, e.g. a run's
 * `…/artifacts/model` or a logged model's `…/models/m-…/artifacts`) into `dest`.
 */
export async function downloadModelDir(
  client: MlflowClient,
  artifactUri: string,
  dest: string,
  opts: { maxBytes?: number; signal?: AbortSignal } = {},
): Promise<{ files: string[]; bytes: number }> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  const root = storePath(client, artifactUri);
  const files: { rel: string; size: number }[] = [];
  await listTree(client, root, '', files);
  opts.signal?.throwIfAborted();
  if (files.length === 0)
    throw new RunwardenError(
      'MODEL_INVALID',
      `the model folder ${artifactUri.slice(0, 300)} is empty or missing`,
    );
  const listed = files.reduce((s, f) => s + f.size, 0);
  const tooBig = (n: number) =>
    new RunwardenError(
      'MODEL_INVALID',
      `the model folder ${artifactUri.slice(0, 300)} holds ${n} bytes, more than RUNWARDEN_EVAL_MAX_MODEL_BYTES (${maxBytes}); raise the setting or export a smaller model`,
    );
  if (listed > maxBytes) throw tooBig(listed);
  let bytes = 0;
  for (const f of files) {
    const target = path.join(dest, ...f.rel.split('/'));
    opts.signal?.throwIfAborted();
    bytes += (await downloadFile(client, artifactUri, f.rel, target, { signal: opts.signal })).bytes;
    if (bytes > maxBytes) throw tooBig(bytes);
  }
  return { files: files.map((f) => f.rel), bytes };
}
