/**
 * Scoring a model folder on prediction data: the model (model.onnx, loaded by path with its external
 * data) is opened with onnxruntime-node through `openOnnxModel` (bounded chunks, tensor outputs
 * only). A window forecaster (features.json next to model.onnx) turns a table into windows with
 * `includeNext`, so its last prediction is the forecast for the row after the table; tensors feed
 * the model's inputs directly, by name (or the only input, unnamed); a table for a model without
 * features.json feeds its numeric columns as one [rows, columns] tensor (one input), or column by
 * column (several inputs named like the columns), as MLflow's ONNX pyfunc does. The result is a
 * predictions table (predictions.csv) and MLflow serving's `{"predictions": ...}` (predictions.json).
 */
import { capForEcho, RunwardenError } from '../errors/index.js';
import { readFeatureSpec } from './features.js';
import { openOnnxModel } from './onnx-session.js';
import { type Feed, type GivenTensor, type PredictInput, tableTensor, toFeed } from './request-shapes.js';
import type { Table } from './table.js';
import { windowsFromTable } from './windows.js';

export interface Prediction {
  /** One row per prediction: the window's key (forecasters) or the outputs' columns. */
  table: Table;
  /** MLflow serving's answer: `{"predictions": ...}`. */
  json: { predictions: unknown };
  rows: number;
  /** True when the model is a window forecaster (features.json). */
  windows: boolean;
}

type Out = { data: ArrayLike<number | bigint>; dims: readonly number[] };

const num = (x: number | bigint): number | null => {
  const n = typeof x === 'bigint' ? Number(x) : x;
  return Number.isFinite(n) ? n : null;
};

/** Nested list of an output tensor (for the serving JSON's dict form). */
function nested(o: Out): unknown {
  const dims = o.dims.length ? o.dims : [o.data.length];
  const build = (d: number, off: number): unknown => {
    const size = dims.slice(d + 1).reduce((a, b) => a * b, 1);
    if (d === dims.length - 1) return Array.from({ length: dims[d]! }, (_, i) => num(o.data[off + i]!));
    return Array.from({ length: dims[d]! }, (_, i) => build(d + 1, off + i * size));
  };
  return build(0, 0);
}

/**
 * Output tensors → a table: one row per batch entry, one column per output element. Every output
 * must be batched (first dim = `rows`, the input's rows); an output that is not (a fixed summary,
 * a scalar) has no row per input, so it is MODEL_INVALID naming the output and its shape.
 */
function outputsTable(outs: Record<string, Out>, rows: number): Table {
  const names = Object.keys(outs);
  for (const name of names) {
    const o = outs[name]!;
    if (o.dims.length === 0 || o.dims[0] !== rows)
      throw new RunwardenError(
        'MODEL_INVALID',
        `output '${capForEcho(name, 80)}' has shape [${o.dims.join(', ')}] for ${rows} input rows: prediction needs every output batched on its first dimension (one row per input row); export the model with a dynamic batch dimension on its outputs`,
      );
  }
  const n = rows;
  const columns: string[] = [];
  const per: { o: Out; width: number }[] = [];
  for (const name of names) {
    const o = outs[name]!;
    const width = n ? Math.round(o.data.length / n) : 0;
    per.push({ o, width });
    if (width === 1) columns.push(name);
    else for (let k = 0; k < width; k++) columns.push(`${name}_${k}`);
  }
  const table = Array.from({ length: n }, (_, i) =>
    per.flatMap(({ o, width }) => Array.from({ length: width }, (_, k) => num(o.data[i * width + k]!))),
  );
  return { columns, rows: table };
}

/** Score `input` with the model in `dir` (a downloaded model folder). */
export async function predictWithModel(
  dir: string,
  input: PredictInput,
  opts: { field?: string; chunkRows?: number; threads?: number; signal?: AbortSignal } = {},
): Promise<Prediction> {
  const field = opts.field ?? 'data';
  const features = await readFeatureSpec(dir);
  opts.signal?.throwIfAborted();
  const model = await openOnnxModel(dir, { threads: opts.threads });
  // An abort (cancel, timeout) closes the model: its worker thread ends and a pending run rejects.
  const onAbort = () => void model.close().catch(() => undefined);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    opts.signal?.throwIfAborted();
    const inputs = model.inputs;
    const named = (name: string) => {
      const i = inputs.find((x) => x.name === name);
      if (!i)
        throw new RunwardenError(
          'MODEL_INPUT_MISMATCH',
          `input '${capForEcho(name, 80)}': the model has no such input; it takes ${inputs.map((x) => `'${x.name}'`).join(', ')}`,
        );
      return i;
    };
    if (features && input.kind === 'table') {
      const w = windowsFromTable(input.table, features, { includeNext: true });
      const feed = toFeed(named(features.input), { values: Array.from(w.x), dims: [...w.dims] });
      const out = (await model.run({ [features.input]: feed }, { chunkRows: opts.chunkRows }))[
        features.output
      ];
      if (!out)
        throw new RunwardenError(
          'MODEL_INVALID',
          `the model gave no output '${capForEcho(features.output, 80)}' (features.json output)`,
        );
      if (out.dims[0] !== w.keys.length || out.data.length !== w.keys.length)
        throw new RunwardenError(
          'MODEL_INVALID',
          `output '${capForEcho(features.output, 80)}' has shape [${out.dims.join(', ')}] for ${w.keys.length} windows; a forecaster gives one value per window ([-1] or [-1, 1])`,
        );
      const key = features.time_column ?? 'row';
      const rows = w.keys.map((k, i) => [
        k,
        num(out.data[i]!),
        Number.isFinite(w.targets[i]!) ? w.targets[i]! : null,
      ]);
      const table: Table = { columns: [key, 'prediction', 'actual'], rows };
      const records = rows.map((r) => ({ [key]: r[0], [features.output]: r[1] }));
      return { table, json: { predictions: records }, rows: rows.length, windows: true };
    }
    const feeds: Record<string, Feed> = Object.create(null);
    if (input.kind === 'table') {
      if (inputs.length === 1) {
        feeds[inputs[0]!.name] = toFeed(inputs[0]!, tableTensor(field, input.table));
      } else {
        for (const i of inputs) {
          const col = tableTensor(field, input.table, [i.name]);
          const given: GivenTensor = i.dims.length === 1 ? { values: col.values, dims: [col.dims[0]!] } : col;
          feeds[i.name] = toFeed(i, given);
        }
      }
    } else {
      if (input.unnamed) {
        if (inputs.length !== 1)
          throw new RunwardenError(
            'MODEL_INPUT_MISMATCH',
            `${field}: the model takes ${inputs.length} inputs (${inputs.map((x) => `'${x.name}'`).join(', ')}); give {input_name: nested list}`,
          );
        feeds[inputs[0]!.name] = toFeed(inputs[0]!, input.unnamed);
      } else {
        for (const [name, t] of Object.entries(input.tensors)) feeds[name] = toFeed(named(name), t);
        const missing = inputs.filter((i) => !(i.name in feeds));
        if (missing.length)
          throw new RunwardenError(
            'MODEL_INPUT_MISMATCH',
            `input '${capForEcho(missing[0]!.name, 80)}': not given; the model takes ${inputs.map((x) => `'${x.name}'`).join(', ')}`,
          );
      }
    }
    const outs = (await model.run(feeds, { chunkRows: opts.chunkRows })) as Record<string, Out>;
    const table = outputsTable(outs, Object.values(feeds)[0]?.dims[0] ?? 0);
    const json =
      input.kind === 'table'
        ? { predictions: table.rows.map((r) => Object.fromEntries(table.columns.map((c, j) => [c, r[j]]))) }
        : { predictions: Object.fromEntries(Object.entries(outs).map(([k, o]) => [k, nested(o)])) };
    return { table, json, rows: table.rows.length, windows: false };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await model.close().catch(() => undefined);
  }
}

/** A table as CSV text (header, then rows; quoted where needed). */
export function tableCsv(table: Table): string {
  const cell = (v: unknown) => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[table.columns.map(cell).join(','), ...table.rows.map((r) => r.map(cell).join(','))].join('\n')}\n`;
}
