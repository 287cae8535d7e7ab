/**
 * Prediction data in the request shapes `mlflow models serve` accepts (mlflow
 * pyfunc/scoring_server): `dataframe_split` {columns, data}, `dataframe_records` [{...}], `inputs`
 * and `instances` (a nested list, or {name: nested list}; `instances` also as a list of
 * {name: value} objects), or a CSV table. Each becomes a table (columns and rows) or named tensors
 * (flat values and dims), checked and capped: at most `maxRows` rows, every error names the field.
 */
import { capForEcho, RunwardenError, ValidationError } from '../errors/index.js';
import type { Table } from './table.js';

export type Cell = number | string | boolean | null;

/** A tensor as given: its values flattened row-major and its shape. */
export interface GivenTensor {
  values: number[];
  dims: number[];
}

export type PredictInput =
  | { kind: 'table'; table: Table }
  | { kind: 'tensors'; tensors: Record<string, GivenTensor>; unnamed?: GivenTensor };

/** The four request keys, as in mlflow's scoring server. */
export const REQUEST_KEYS = ['dataframe_split', 'dataframe_records', 'inputs', 'instances'] as const;

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deepest nesting a request may have (the body's object, its key, then up to 32 list levels). */
export const MAX_REQUEST_DEPTH = 34;

/**
 * Refuses a value nested deeper than `max` levels, walking it without recursion (so a hostile
 * 100,000-level list is a ValidationError naming the field, not a stack overflow later).
 */
export function checkDepth(field: string, v: unknown, max = MAX_REQUEST_DEPTH): void {
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= max)
      throw new ValidationError(
        field,
        `is nested more than ${max} levels deep; a request is {key: nested list} with at most ${max - 2} list levels`,
      );
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, depth + 1]);
  }
}

function tooMany(field: string, rows: number, maxRows: number): ValidationError {
  return new ValidationError(
    field,
    `${rows} rows is more than ${maxRows} (RUNWARDEN_PREDICT_MAX_ROWS); split the data into several predictions`,
  );
}

function cellOf(field: string, v: unknown): number | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') return v;
  throw new ValidationError(
    field,
    `is ${Array.isArray(v) ? 'a list' : typeof v}; cells are numbers, strings, booleans or null`,
  );
}

/** A nested list of numbers → flat values and dims; rectangular, finite-or-null numbers only. */
export function flattenNested(field: string, v: unknown, maxRows: number): GivenTensor {
  const dims: number[] = [];
  let probe: unknown = v;
  while (Array.isArray(probe)) {
    dims.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  if (dims.length === 0) dims.push(1);
  if ((dims[0] ?? 0) > maxRows) throw tooMany(field, dims[0] ?? 0, maxRows);
  const values: number[] = [];
  const walk = (node: unknown, depth: number, at: string) => {
    if (depth === dims.length) {
      if (Array.isArray(node))
        throw new ValidationError(
          at,
          `is nested deeper than the first element; a tensor is rectangular (shape [${dims.join(', ')}])`,
        );
      if (typeof node === 'number') values.push(node);
      else if (typeof node === 'boolean') values.push(node ? 1 : 0);
      else if (node === null) values.push(Number.NaN);
      else throw new ValidationError(at, `is ${typeof node}; tensor values are numbers`);
      return;
    }
    if (!Array.isArray(node) || node.length !== dims[depth])
      throw new ValidationError(
        at,
        `has ${Array.isArray(node) ? `${node.length} elements` : 'a single value'} where the first has ${dims[depth]}; a tensor is rectangular (shape [${dims.join(', ')}])`,
      );
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${at}[${i}]`);
  };
  walk(v, Array.isArray(v) ? 0 : dims.length, field);
  return { values, dims: Array.isArray(v) ? dims : [] };
}

function tensors(field: string, v: unknown, maxRows: number): PredictInput {
  if (Array.isArray(v)) {
    // `instances` as a list of {name: value} objects: one row per instance, stacked per name.
    if (v.length > 0 && isObj(v[0])) {
      const names = Object.keys(v[0]);
      if (v.length > maxRows) throw tooMany(field, v.length, maxRows);
      // No prototype: an input named `__proto__` is a key like any other.
      const out: Record<string, GivenTensor> = Object.create(null);
      for (const n of names) {
        const stacked = v.map((inst, i) => {
          if (!isObj(inst) || !Object.hasOwn(inst, n))
            throw new ValidationError(
              `${field}[${i}]`,
              `lacks '${capForEcho(n, 80)}', which the first instance has`,
            );
          return inst[n];
        });
        out[n] = flattenNested(`${field}[*].${capForEcho(n, 80)}`, stacked, maxRows);
      }
      return { kind: 'tensors', tensors: out };
    }
    return { kind: 'tensors', tensors: {}, unnamed: flattenNested(field, v, maxRows) };
  }
  if (isObj(v)) {
    const names = Object.keys(v);
    if (!names.length) throw new ValidationError(field, 'is an empty object; give {input_name: nested list}');
    const out: Record<string, GivenTensor> = Object.create(null);
    for (const n of names) out[n] = flattenNested(`${field}.${capForEcho(n, 80)}`, v[n], maxRows);
    return { kind: 'tensors', tensors: out };
  }
  throw new ValidationError(field, 'must be a nested list of numbers, or {input_name: nested list}');
}

/**
 * Parse a request body (the JSON object `mlflow models serve` takes) into a table or tensors.
 * `field` prefixes every error (e.g. `data`). Throws ValidationError naming the field.
 */
export function parseRequest(field: string, body: unknown, maxRows: number): PredictInput {
  checkDepth(field, body);
  if (Array.isArray(body)) return tensors(field, body, maxRows); // a bare nested list, as input_example.json
  if (!isObj(body))
    throw new ValidationError(field, `must be an object with one of ${REQUEST_KEYS.join(', ')}, or a URI`);
  const given = REQUEST_KEYS.filter((k) => k in body);
  const other = Object.keys(body).filter(
    (k) => !(REQUEST_KEYS as readonly string[]).includes(k) && k !== 'params',
  );
  if (given.length !== 1 || other.length)
    throw new ValidationError(
      field,
      `needs exactly one of ${REQUEST_KEYS.join(', ')} (the request shapes of mlflow models serve)${other.length ? `; unknown key '${capForEcho(other[0]!, 60)}'` : ''}`,
    );
  const key = given[0]!;
  const v = body[key];
  const f = `${field}.${key}`;
  if (key === 'dataframe_split') {
    if (!isObj(v) || !Array.isArray(v.columns) || !Array.isArray(v.data))
      throw new ValidationError(f, 'must be {"columns": [...], "data": [[...], ...]}');
    const columns = v.columns.map((c, j) => {
      if (typeof c !== 'string' || !c)
        throw new ValidationError(`${f}.columns[${j}]`, 'must be a non-empty string');
      return c;
    });
    if (v.data.length > maxRows) throw tooMany(`${f}.data`, v.data.length, maxRows);
    const rows = v.data.map((r, i) => {
      if (!Array.isArray(r) || r.length !== columns.length)
        throw new ValidationError(
          `${f}.data[${i}]`,
          `must be a list of ${columns.length} cells, one per column`,
        );
      return r.map((c, j) => cellOf(`${f}.data[${i}][${j}]`, c));
    });
    return { kind: 'table', table: { columns, rows } };
  }
  if (key === 'dataframe_records') {
    if (!Array.isArray(v) || !v.length || !isObj(v[0]))
      throw new ValidationError(f, 'must be a non-empty list of {column: value} objects');
    if (v.length > maxRows) throw tooMany(f, v.length, maxRows);
    const columns = Object.keys(v[0]);
    const rows = v.map((r, i) => {
      if (!isObj(r)) throw new ValidationError(`${f}[${i}]`, 'must be a {column: value} object');
      return columns.map((c) => cellOf(`${f}[${i}].${capForEcho(c, 80)}`, r[c]));
    });
    return { kind: 'table', table: { columns, rows } };
  }
  return tensors(f, v, maxRows);
}

/** The element type a model input takes, from onnxruntime's type name (`float32` or `tensor(float)`). */
export function dtypeOf(type: string): 'float32' | 'float64' | 'int32' | 'int64' {
  const t = type.replace(/^tensor\((.*)\)$/, '$1');
  if (t === 'float' || t === 'float32') return 'float32';
  if (t === 'double' || t === 'float64') return 'float64';
  if (t === 'int32') return 'int32';
  if (t === 'int64') return 'int64';
  throw new RunwardenError(
    'MODEL_INPUT_MISMATCH',
    `the model takes ${capForEcho(type, 40)} input; prediction feeds float32, float64, int32 or int64 tensors`,
  );
}

export type Feed = { data: Float32Array | Float64Array | Int32Array | BigInt64Array; dims: number[] };

/**
 * A given tensor as the feed for one model input: its shape checked against the input's (rank and
 * every fixed dimension), its values converted to the input's element type.
 */
export function toFeed(
  input: { name: string; type: string; dims: (number | string)[] },
  given: GivenTensor,
): Feed {
  const dtype = dtypeOf(input.type);
  const fits =
    given.dims.length === input.dims.length &&
    input.dims.every((d, i) => typeof d !== 'number' || d < 0 || d === given.dims[i]);
  if (!fits)
    throw new RunwardenError(
      'MODEL_INPUT_MISMATCH',
      `input '${capForEcho(input.name, 80)}': the model expects ${dtype} [${input.dims.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)).join(', ')}], given [${given.dims.join(', ')}]`,
    );
  const v = given.values;
  if (dtype === 'float32') return { data: Float32Array.from(v), dims: given.dims };
  if (dtype === 'float64') return { data: Float64Array.from(v), dims: given.dims };
  const bad = v.findIndex((x) => !Number.isInteger(x));
  if (bad >= 0)
    throw new RunwardenError(
      'MODEL_INPUT_MISMATCH',
      `input '${capForEcho(input.name, 80)}': the model expects ${dtype}, value ${bad} is ${capForEcho(String(v[bad]), 40)}`,
    );
  if (dtype === 'int32') return { data: Int32Array.from(v), dims: given.dims };
  return { data: BigInt64Array.from(v.map((x) => BigInt(x))), dims: given.dims };
}

/** A table's numeric columns as one [rows, columns] tensor (a model that takes the table whole). */
export function tableTensor(field: string, table: Table, columns = table.columns): GivenTensor {
  const idx = columns.map((c) => {
    const j = table.columns.indexOf(c);
    if (j < 0)
      throw new ValidationError(
        field,
        `has no column '${capForEcho(c, 80)}'; it has ${capForEcho(table.columns.join(', '), 300)}`,
      );
    return j;
  });
  const values: number[] = [];
  table.rows.forEach((r, i) => {
    for (const j of idx) {
      const c = r[j];
      if (typeof c === 'string')
        throw new ValidationError(
          `${field} row ${i + 1}`,
          `column '${capForEcho(table.columns[j]!, 80)}' holds text; the model takes numbers`,
        );
      values.push(c === null || c === undefined ? Number.NaN : c);
    }
  });
  return { values, dims: [table.rows.length, idx.length] };
}
