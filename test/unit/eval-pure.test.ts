import { describe, expect, it } from 'vitest';
import { parseFeatureSpec } from '../../src/eval/features.js';
import { COMPOSITE_WEIGHTS, errorMetrics } from '../../src/eval/metrics.js';
import { parseCsv } from '../../src/eval/table.js';
import { windowsFromTable } from '../../src/eval/windows.js';
import { COMPOSITE_WEIGHTS as POLICY_WEIGHTS } from '../../src/review/policy.js';

const spec = {
  kind: 'window',
  time_column: 'week',
  columns: ['cases', 'rain'],
  target: 'cases',
  lookback: 2,
  input: 'window',
  output: 'forecast',
  target_scale: { mean: 0, std: 2 },
};

describe('parseCsv', () => {
  it('parses a header, numbers, empty fields as null and quoted fields with commas, quotes and newlines', () => {
    const t = parseCsv('a,b,c\r\n1,"x, ""y""",\n2.5e1,"line\nbreak",-3\n\n');
    expect(t.columns).toEqual(['a', 'b', 'c']);
    expect(t.rows).toEqual([
      [1, 'x, "y"', null],
      [25, 'line\nbreak', -3],
    ]);
  });
  it('names the row when a row has the wrong number of fields', () => {
    expect(() => parseCsv('a,b\n1,2\n3\n')).toThrow(/row 3: 1 fields, the header has 2/);
  });
  it('refuses duplicate and empty header names, naming them', () => {
    expect(() => parseCsv('a,a\n1,2')).toThrow(/column 'a' appears twice/);
    expect(() => parseCsv('a,,b\n1,2,3')).toThrow(/column 2 is empty/);
  });
  it('caps the number of data rows', () => {
    expect(() => parseCsv('a\n1\n2\n3\n', { maxRows: 2 })).toThrow(/more than 2 data rows/);
    expect(parseCsv('a\n1\n2\n', { maxRows: 2 }).rows).toHaveLength(2);
  });
  it('says so when a quoted field is never closed', () => {
    expect(() => parseCsv('a\n"open\n')).toThrow(/row 2: a quoted field is never closed/);
  });
});

describe('parseFeatureSpec', () => {
  it('accepts the contract form and drops unknown keys', () => {
    expect(parseFeatureSpec({ ...spec, extra: 1 })).toEqual(spec);
  });
  it('names the field that is wrong', () => {
    expect(() => parseFeatureSpec({ ...spec, lookback: 0 })).toThrow(/features\.json lookback/);
    expect(() => parseFeatureSpec({ ...spec, kind: 'tabular' })).toThrow(/only kind 'window' is supported/);
    expect(() => parseFeatureSpec({ ...spec, target_scale: { mean: 0, std: 0 } })).toThrow(/std > 0/);
    expect(() => parseFeatureSpec({ ...spec, columns: ['a', 'a'] })).toThrow(/features\.json columns/);
    expect(() => parseFeatureSpec('nope')).toThrow(/features\.json/);
  });
});

describe('windowsFromTable', () => {
  const table = parseCsv('week,cases,rain\nw1,1,10\nw2,2,20\nw3,3,30\nw4,4,40\n');
  it('builds one window per predicted row, oldest first, columns in spec order', () => {
    const w = windowsFromTable(table, parseFeatureSpec(spec));
    expect(w.dims).toEqual([2, 2, 2]);
    expect(Array.from(w.x)).toEqual([1, 10, 2, 20, 2, 20, 3, 30]);
    expect(Array.from(w.targets)).toEqual([3, 4]);
    expect(w.keys).toEqual(['w3', 'w4']);
  });
  it('adds the window for the row after the table when asked, with a NaN target', () => {
    const w = windowsFromTable(table, parseFeatureSpec(spec), { includeNext: true });
    expect(w.dims).toEqual([3, 2, 2]);
    expect(Array.from(w.x.slice(8))).toEqual([3, 30, 4, 40]);
    expect(Number.isNaN(w.targets[2])).toBe(true);
    expect(w.keys[2]).toBe('after:w4');
  });
  it('names a missing column and a non-numeric cell', () => {
    expect(() => windowsFromTable(parseCsv('week,cases\nw1,1\nw2,2\nw3,3'), parseFeatureSpec(spec))).toThrow(
      /no column 'rain'/,
    );
    expect(() =>
      windowsFromTable(parseCsv('week,cases,rain\nw1,1,10\nw2,x,20\nw3,3,30'), parseFeatureSpec(spec)),
    ).toThrow(/row 3, column 'cases': 'x' is not a number/);
  });
  it('says how many rows of history are needed when the table is too short', () => {
    expect(() =>
      windowsFromTable(parseCsv('week,cases,rain\nw1,1,10\nw2,2,20'), parseFeatureSpec(spec)),
    ).toThrow(/needs 2 rows of history/);
  });
});

describe('errorMetrics', () => {
  it('computes rmse, mae, mse and the composite on scaled errors, skipping NaN pairs', () => {
    const m = errorMetrics([1, 3, 5, Number.NaN], [2, 3, 3, 0], 2);
    // scaled errors: -0.5, 0, 1
    expect(m.mse).toBeCloseTo((0.25 + 0 + 1) / 3, 12);
    expect(m.mae).toBeCloseTo(1.5 / 3, 12);
    expect(m.rmse).toBeCloseTo(Math.sqrt(1.25 / 3), 12);
    expect(m.composite).toBeCloseTo(0.5 * m.rmse + 0.3 * m.mae + 0.2 * m.mse, 12);
  });
  it('has one definition of the composite weights, shared with the policy', () => {
    expect(POLICY_WEIGHTS).toBe(COMPOSITE_WEIGHTS);
  });
  it('refuses mismatched lengths and nothing to score', () => {
    expect(() => errorMetrics([1], [1, 2])).toThrow(/must match/);
    expect(() => errorMetrics([Number.NaN], [1])).toThrow(/no pair/);
  });
});
