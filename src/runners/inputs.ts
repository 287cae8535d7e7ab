/**
 * Task inputs by reference (claim-check). `checkInputs` proves each URI resolves before a task is
 * queued, so a missing input fails at enqueue with the input named; `materializeInputs` brings
 * them into the workspace when the task runs. Supported: file://, runs:/<run_id>/<path>,
 * mlflow-artifacts:/<path>, http(s)://, and small inline tables ({columns, data}) written as CSV.
 */
import { createWriteStream } from 'node:fs';
import { copyFile, cp, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../errors/index.js';
import { artifactBaseUrl, downloadFile, downloadTree, listArtifacts } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import type { InlineTable } from '../queue/spec.js';

type Input = string | InlineTable;

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

async function checkOne(client: MlflowClient, name: string, input: Input): Promise<void> {
  const field = `inputs.${name}`;
  if (typeof input !== 'string') return;
  try {
    if (input.startsWith('file://')) {
      await stat(fileURLToPath(input));
    } else if (input.startsWith('runs:/')) {
      const { entry } = await runArtifactEntry(client, input);
      if (!entry) throw new Error('no such artifact in that run');
    } else if (input.startsWith('mlflow-artifacts:/')) {
      await client.transport
        .send(
          () => ({
            url: artifactBaseUrl(client, input),
            init: { method: 'GET', headers: { range: 'bytes=0-0' } },
          }),
          // A server that ignores Range would send the whole file: read one byte of it.
          { retry: true, timeoutMs: 15_000, maxBodyBytes: 1 },
        )
        .then((r) => r.body?.cancel());
    } else {
      const res = await fetch(input, { method: 'HEAD', signal: AbortSignal.timeout(15_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    }
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError(
      field,
      `${input} cannot be read (${(err as Error).message}); fix the URI or upload the data first`,
    );
  }
}

/** Prove every input resolves; throws ValidationError naming the first that does not. */
export async function checkInputs(client: MlflowClient, inputs: Record<string, Input>): Promise<void> {
  for (const [name, input] of Object.entries(inputs)) await checkOne(client, name, input);
}

function csvCell(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Bring each input into its own folder, `dir/<name>/` (two inputs with the same file name never
 * overwrite each other); returns name → local path.
 */
export async function materializeInputs(
  client: MlflowClient,
  inputs: Record<string, Input>,
  dir: string,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  const out: Record<string, string> = {};
  for (const [name, input] of Object.entries(inputs)) {
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
      const src = fileURLToPath(input);
      const target = path.join(own, path.basename(src));
      if ((await stat(src)).isDirectory()) {
        await cp(src, target, { recursive: true });
      } else {
        await copyFile(src, target);
      }
      out[name] = target;
    } else if (input.startsWith('runs:/')) {
      const { runId, rel, artifactUri, entry } = await runArtifactEntry(client, input);
      const target = path.join(own, path.posix.basename(rel));
      if (entry?.is_dir) await downloadTree(client, runId, artifactUri, rel, target);
      else await downloadFile(client, artifactUri, rel, target, { signal });
      out[name] = target;
    } else if (input.startsWith('mlflow-artifacts:/')) {
      const target = path.join(own, path.posix.basename(input));
      // Folder URI + file name, so the download gets downloadFile's temp file, rename and timeout.
      const slash = input.lastIndexOf('/');
      await downloadFile(client, input.slice(0, slash), input.slice(slash + 1), target, { signal });
      out[name] = target;
    } else {
      const target = path.join(own, path.posix.basename(new URL(input).pathname) || name);
      const res = await fetch(input, { signal });
      if (!res.ok || !res.body)
        throw new ValidationError(`inputs.${name}`, `${input} answered HTTP ${res.status}`);
      await pipeline(Readable.fromWeb(res.body as WebReadableStream), createWriteStream(target));
      out[name] = target;
    }
  }
  return out;
}
