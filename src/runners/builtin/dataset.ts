/**
 * The data side of the built-in trainers, the same as the Python templates' (tasks/_shared/
 * forecast/data.py): the weekly series sorted by week, a chronological split (the last 52 rows
 * test, the 52 before validation, the rest training), per-column standardisation fitted on the
 * training rows (population std), and one window per predicted row from src/eval/windows.ts (the
 * code the judge re-scores with), so training and evaluation window the data identically.
 */
import type { FeatureSpec } from '../../eval/features.js';
import { columnIndex, type Table } from '../../eval/table.js';
import { windowsFromTable } from '../../eval/windows.js';

export const COLUMNS = ['cases', 'rainfall', 'temperature'] as const;
export const TARGET = 'cases';
export const TIME_COLUMN = 'week';
export const VAL_WEEKS = 52;
export const TEST_WEEKS = 52;
export const MIN_TRAIN_WEEKS = 26;

/** Mean and population std per column, fitted on the training rows (std 0 becomes 1). */
export interface Scaler {
  mean: number[];
  std: number[];
}

/** Windows of one split: standardised flat inputs (count × lookback·columns) and scaled targets. */
export interface SplitData {
  /** Raw windows as the ONNX model takes them: float32 [count, lookback, columns]. */
  raw: Float32Array;
  /** Standardised, flattened windows (float64, count × lookback·columns, row-major). */
  x: Float64Array;
  /** Standardised targets. */
  y: Float64Array;
  /** Raw targets (cases). */
  actual: Float64Array;
  /** The week each window predicts. */
  keys: string[];
  count: number;
}

export interface Dataset {
  spec: FeatureSpec;
  scaler: Scaler;
  train: SplitData;
  val: SplitData;
  test: SplitData;
  sizes: { n_train: number; n_val: number; n_test: number };
  /** Number of inputs of the flat window (lookback · columns). */
  width: number;
}

/** Thrown for input the trainer cannot use (the entry prints it and exits 1). */
export class InputError extends Error {}

/** The table sorted by week, checked for the columns, numeric cells and enough rows. */
export function checkSeries(table: Table, source: string): Table {
  const missing = [TIME_COLUMN, ...COLUMNS].filter((c) => !table.columns.includes(c));
  if (missing.length)
    throw new InputError(
      `${source}: missing column(s) ${missing.join(', ')}; has ${table.columns.join(', ').slice(0, 300)}`,
    );
  const w = columnIndex(table, TIME_COLUMN);
  const rows = [...table.rows].sort((a, b) => {
    const [x, y] = [String(a[w]), String(b[w])];
    return x < y ? -1 : x > y ? 1 : 0;
  });
  for (const c of COLUMNS) {
    const j = columnIndex(table, c);
    const bad = rows.findIndex((r) => typeof r[j] !== 'number' || !Number.isFinite(r[j]));
    if (bad >= 0)
      throw new InputError(
        `${source}: week ${String(rows[bad]![w]).slice(0, 40)} has no numeric ${c}; every row needs numbers in ${COLUMNS.join(', ')}`,
      );
  }
  const need = VAL_WEEKS + TEST_WEEKS + MIN_TRAIN_WEEKS;
  if (rows.length < need) throw new InputError(`${source}: ${rows.length} rows; need at least ${need}`);
  return { columns: table.columns, rows };
}

function fitScaler(table: Table, trainRows: number): Scaler {
  const mean: number[] = [];
  const std: number[] = [];
  for (const c of COLUMNS) {
    const j = columnIndex(table, c);
    let s = 0;
    for (let r = 0; r < trainRows; r++) s += table.rows[r]![j] as number;
    const m = s / trainRows;
    let v = 0;
    for (let r = 0; r < trainRows; r++) v += ((table.rows[r]![j] as number) - m) ** 2;
    mean.push(m);
    std.push(Math.sqrt(v / trainRows) || 1);
  }
  return { mean, std };
}

/** Standardises raw float32 windows [count, lookback, C] into flat float64 rows. */
export function standardise(raw: Float32Array, scaler: Scaler): Float64Array {
  const c = scaler.mean.length;
  const x = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) x[i] = (raw[i]! - scaler.mean[i % c]!) / scaler.std[i % c]!;
  return x;
}

/** Splits, scales and windows a checked series for a `lookback`-week forecaster. */
export function buildDataset(table: Table, lookback: number): Dataset {
  const n = table.rows.length;
  const valStart = n - TEST_WEEKS - VAL_WEEKS;
  const testStart = n - TEST_WEEKS;
  if (lookback >= valStart)
    throw new InputError(`lookback ${lookback} leaves no training window (${valStart} training rows)`);
  const scaler = fitScaler(table, valStart);
  const t = COLUMNS.indexOf(TARGET);
  const spec: FeatureSpec = {
    kind: 'window',
    time_column: TIME_COLUMN,
    columns: [...COLUMNS],
    target: TARGET,
    lookback,
    input: 'window',
    output: 'forecast',
    target_scale: { mean: scaler.mean[t]!, std: scaler.std[t]! },
    // The test split (the last TEST_WEEKS rows): the judge's claim check re-scores these.
    test_rows: TEST_WEEKS,
  };
  const all = windowsFromTable(table, spec);
  const width = lookback * COLUMNS.length;
  // Window i predicts row lookback + i.
  const slice = (lo: number, hi: number): SplitData => {
    const a = Math.max(lo, lookback) - lookback;
    const b = hi - lookback;
    const raw = all.x.slice(a * width, b * width);
    const actual = all.targets.slice(a, b);
    const y = actual.map((v) => (v - spec.target_scale.mean) / spec.target_scale.std);
    return { raw, x: standardise(raw, scaler), y, actual, keys: all.keys.slice(a, b), count: b - a };
  };
  return {
    spec,
    scaler,
    train: slice(0, valStart),
    val: slice(valStart, testStart),
    test: slice(testStart, n),
    sizes: { n_train: valStart, n_val: testStart - valStart, n_test: n - testStart },
    width,
  };
}
