/**
 * The data side of a prediction task: bringing the data in (a URI by the task-input rules, capped
 * in bytes, then parsed: `.json` as a request body of mlflow serving, anything else as CSV; or the
 * inline request), its digest (sha256 of the file's bytes, or of the inline request's canonical
 * JSON), and the bounded summary a task's result carries (at most 20 rows and 20 columns, text
 * cells capped at 100 characters).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { capForEcho, redactUri, ValidationError } from '../errors/index.js';
import { type PredictInput, parseRequest } from '../eval/request-shapes.js';
import { parseCsv } from '../eval/table.js';
import { artifactBaseUrl, listArtifacts, readArtifact } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { materializeInputs } from '../runners/inputs.js';
import { canonicalJson } from '../tracking/lineage.js';
import type { AttemptSettings } from './attempt-types.js';
import { DEFAULT_PREDICT_MAX_BYTES, DEFAULT_PREDICT_MAX_ROWS } from './predict-spec.js';

/** Rows of the predictions table shown in a task's result (and by the MCP tool). */
export const PREVIEW_ROWS = 20;
const PREVIEW_COLUMNS = 20;
const PREVIEW_CELL_CHARS = 100;

export interface PredictionSummary {
  rows: number;
  columns: string[];
  /** At most 20 rows: the last ones for a forecaster (its forecast is the last row), else the first. */
  preview: (number | string | null)[][];
  preview_of: 'first' | 'last' | 'all';
  artifact: string;
  json_artifact: string;
  model: { ref: string; source_run: string; version?: string; name?: string; model_id?: string };
  input_digest: string;
}

const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

export function preview(table: { columns: string[]; rows: (number | string | null)[][] }, last: boolean) {
  const cap = (v: number | string | null) => (typeof v === 'string' ? capForEcho(v, PREVIEW_CELL_CHARS) : v);
  const pick =
    table.rows.length <= PREVIEW_ROWS
      ? table.rows
      : last
        ? table.rows.slice(-PREVIEW_ROWS)
        : table.rows.slice(0, PREVIEW_ROWS);
  return {
    columns: table.columns.slice(0, PREVIEW_COLUMNS),
    preview: pick.map((r) => r.slice(0, PREVIEW_COLUMNS).map(cap)),
    preview_of: (table.rows.length <= PREVIEW_ROWS
      ? 'all'
      : last
        ? 'last'
        : 'first') as PredictionSummary['preview_of'],
  };
}

/** Brings the data in: a URI as a file (capped in bytes, then parsed: .json as a request, else CSV). */
export async function loadData(
  client: MlflowClient,
  settings: AttemptSettings,
  data: NonNullable<NormalizedTask['predict']>['data'],
  dir: string,
  signal: AbortSignal,
): Promise<{ input: PredictInput; digest: string }> {
  const maxRows = settings.predict?.maxRows ?? DEFAULT_PREDICT_MAX_ROWS;
  const maxBytes = settings.predict?.maxBytes ?? DEFAULT_PREDICT_MAX_BYTES;
  if (typeof data !== 'string')
    return { input: parseRequest('predict.data', data, maxRows), digest: sha256(canonicalJson(data)) };
  const { bytes, name } = await fetchData(client, settings, data, dir, signal, maxBytes);
  const text = bytes.toString('utf8');
  if (/\.json$/i.test(name)) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new ValidationError('predict.data', `is not JSON: ${capForEcho((err as Error).message, 200)}`);
    }
    return { input: parseRequest('predict.data', body, maxRows), digest: sha256(bytes) };
  }
  return { input: { kind: 'table', table: parseCsv(text, { maxRows }) }, digest: sha256(bytes) };
}

const tooBig = (size: number | undefined, maxBytes: number) =>
  new ValidationError(
    'predict.data',
    `the file is ${size === undefined ? '' : `${size} bytes, `}more than ${maxBytes} bytes (RUNWARDEN_PREDICT_MAX_BYTES); split it into several predictions`,
  );
const aFolder = (uri: string) =>
  new ValidationError(
    'predict.data',
    `${capForEcho(redactUri(uri), 200)} is a folder (a model folder?); give one CSV or JSON file`,
  );

/**
 * Where an artifact data URI (runs:/ or mlflow-artifacts:) lives and what its listing says; a
 * folder (a model folder given as data) is refused here, at enqueue and again when the task runs.
 */
export async function artifactEntry(
  client: MlflowClient,
  uri: string,
): Promise<{ base: string; rel: string; entry?: { is_dir?: boolean; file_size?: number | string } }> {
  let base: string;
  let rel: string;
  let entry: { is_dir?: boolean; file_size?: number | string } | undefined;
  if (uri.startsWith('runs:/')) {
    const m = /^runs:\/+([^/]+)\/(.+)$/.exec(uri);
    if (!m) throw new ValidationError('predict.data', 'a runs:/ URI is runs:/<run_id>/<path to a file>');
    rel = normalizeArtifactPath(m[2]!);
    const run = await ok(
      client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: m[1]! } } }),
    );
    base = run.run?.info?.artifact_uri ?? '';
    const parent = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    entry = (await listArtifacts(client, m[1]!, parent)).find((f) => f.path === rel);
    if (!entry)
      throw new ValidationError('predict.data', `${capForEcho(redactUri(uri), 200)} does not exist`);
  } else {
    const slash = uri.replace(/\/+$/, '').lastIndexOf('/');
    base = uri.slice(0, slash);
    rel = uri.slice(slash + 1);
    // Listing the URI itself: a folder has entries, a file none.
    const m = /^mlflow-artifacts:(\/\/[^/]+)?\/?(.*)$/.exec(uri);
    artifactBaseUrl(client, uri);
    const page = await ok(
      client.api.GET('/api/2.0/mlflow-artifacts/artifacts', {
        params: { query: { path: normalizeArtifactPath(m?.[2] ?? '') } },
      }),
    );
    if ((page.files ?? []).length > 0) entry = { is_dir: true };
  }
  if (entry?.is_dir) throw aFolder(uri);
  return { base, rel, entry };
}

/**
 * The data file's bytes, never more than `maxBytes` read: an MLflow artifact (runs:/ or
 * mlflow-artifacts:) is listed first (a folder or a listed size past the cap is refused before any
 * download) and read with the cap as the body limit; a file:// or http(s) input is brought in by
 * the task-input rules, a folder refused, and its size checked before it is read.
 */
async function fetchData(
  client: MlflowClient,
  settings: AttemptSettings,
  uri: string,
  dir: string,
  signal: AbortSignal,
  maxBytes: number,
): Promise<{ bytes: Buffer; name: string }> {
  if (uri.startsWith('runs:/') || uri.startsWith('mlflow-artifacts:')) {
    const { base, rel, entry } = await artifactEntry(client, uri);
    if (entry?.file_size !== undefined && Number(entry.file_size) > maxBytes)
      throw tooBig(Number(entry.file_size), maxBytes);
    signal.throwIfAborted();
    const got = await readArtifact(client, base, rel, maxBytes);
    if (got.truncated) throw tooBig(undefined, maxBytes);
    return { bytes: got.bytes, name: rel };
  }
  const local = (await materializeInputs(client, { data: uri }, dir, settings.inputs, { signal })).data!;
  const st = await stat(local);
  if (st.isDirectory()) throw aFolder(uri);
  if (st.size > maxBytes) throw tooBig(st.size, maxBytes);
  return { bytes: await readFile(local), name: local };
}

export const inputRows = (i: PredictInput) =>
  i.kind === 'table' ? i.table.rows.length : ((i.unnamed ?? Object.values(i.tensors)[0])?.dims[0] ?? 0);
