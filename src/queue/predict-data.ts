/**
 * The data side of a prediction task: bringing the data in (a URI by the task-input rules, capped
 * in bytes, then parsed: `.json` as a request body of mlflow serving, anything else as CSV; or the
 * inline request), its digest (sha256 of the file's bytes, or of the inline request's canonical
 * JSON), and the bounded summary a task's result carries (at most 20 rows and 20 columns, text
 * cells capped at 100 characters).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { capForEcho, ValidationError } from '../errors/index.js';
import { type PredictInput, parseRequest } from '../eval/request-shapes.js';
import { parseCsv } from '../eval/table.js';
import type { MlflowClient } from '../mlflow/client.js';
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
  const local = (await materializeInputs(client, { data }, dir, settings.inputs, { signal })).data!;
  const size = (await stat(local)).size;
  if (size > maxBytes)
    throw new ValidationError(
      'predict.data',
      `the file is ${size} bytes, more than ${maxBytes} (RUNWARDEN_PREDICT_MAX_BYTES); split it into several predictions`,
    );
  const bytes = await readFile(local);
  const text = bytes.toString('utf8');
  if (/\.json$/i.test(local)) {
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

export const inputRows = (i: PredictInput) =>
  i.kind === 'table' ? i.table.rows.length : ((i.unnamed ?? Object.values(i.tensors)[0])?.dims[0] ?? 0);
