/**
 * Builds a window forecaster's input from a table (contract §1): one window per predicted row t,
 * the `lookback` rows before t (oldest first), raw values of the spec's columns in spec order.
 * Rows t run from `lookback` to n−1, plus t = n ("the row after the table", target NaN) when
 * `includeNext` is set, which is what prediction of the next step needs.
 */
import { capForEcho, ValidationError } from '../errors/index.js';
import type { FeatureSpec } from './features.js';
import { columnIndex, type Table } from './table.js';

export interface Windows {
  x: Float32Array;
  dims: [number, number, number];
  targets: Float64Array;
  keys: string[];
}

export function windowsFromTable(
  table: Table,
  spec: FeatureSpec,
  opts: { includeNext?: boolean } = {},
): Windows {
  const n = table.rows.length;
  const L = spec.lookback;
  const cols = spec.columns.map((c) => columnIndex(table, c, 'features.json columns'));
  const tgt = table.columns.indexOf(spec.target);
  const timeIdx = spec.time_column !== undefined ? table.columns.indexOf(spec.time_column) : -1;
  const last = opts.includeNext ? n : n - 1;
  const count = Math.max(0, last - L + 1);
  if (count === 0) {
    throw new ValidationError(
      'table',
      `${n} rows, but the model needs ${L} rows of history${opts.includeNext ? '' : ' plus one row to score'}; give a longer table.`,
    );
  }
  const C = cols.length;
  // Every feature cell of the used rows must be a finite number.
  for (let r = 0; r < Math.min(n, last); r++) {
    const row = table.rows[r]!;
    for (let k = 0; k < C; k++) {
      const v = row[cols[k]!];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ValidationError(
          'table',
          `row ${r + 2}, column '${capForEcho(spec.columns[k]!, 80)}': ${v === null ? 'empty' : `'${capForEcho(String(v), 40)}'`} is not a number; the model's columns must be numeric.`,
        );
      }
    }
  }
  const x = new Float32Array(count * L * C);
  const targets = new Float64Array(count);
  const keys: string[] = [];
  const keyOf = (r: number) => (timeIdx >= 0 ? String(table.rows[r]![timeIdx] ?? r + 1) : String(r + 1));
  for (let i = 0; i < count; i++) {
    const t = L + i;
    for (let l = 0; l < L; l++) {
      const row = table.rows[t - L + l]!;
      const base = (i * L + l) * C;
      for (let k = 0; k < C; k++) x[base + k] = row[cols[k]!] as number;
    }
    if (t < n) {
      const v = tgt >= 0 ? table.rows[t]![tgt] : null;
      targets[i] = typeof v === 'number' ? v : Number.NaN;
      keys.push(keyOf(t));
    } else {
      targets[i] = Number.NaN;
      keys.push(`after:${n > 0 ? keyOf(n - 1) : ''}`);
    }
  }
  return { x, dims: [count, L, C], targets, keys };
}
