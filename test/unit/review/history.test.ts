// The promotion history kept in a registered model's description and tags: the table rebuilt
// from the records (each once, whatever order they come in), the original description kept, the
// description within its bound with a pointer at the full history, notes that cannot break or fake
// a row, and the tag value within its bound.
import { describe, expect, it } from 'vitest';
import {
  HISTORY_TABLE_MAX,
  PROMOTION_TAG_MAX,
  promotionJson,
  withHistoryTable,
} from '../../../src/review/history.js';
import type { PromotionRecord } from '../../../src/review/types.js';

const rec = (reviewId: string, version: string, previousVersion?: string, at = 0): PromotionRecord => ({
  at: Date.UTC(2026, 10, 28, 12, 0, 0) + at,
  name: 'm',
  alias: 'champion',
  version,
  previousVersion,
  judge: 'policy',
  reviewId,
  runId: `run-${version}`,
  taskId: `t-${version}`,
  notes: 'all | gates\npassed',
  metrics: { rmse: 1 },
});

const rowsOf = (d: string) => d.split('\n').filter((l) => l.startsWith('| 2026'));

describe('promotion history', () => {
  it('withHistoryTable: keeps the original text, one table, one row per record, oldest first', () => {
    const one = withHistoryTable('Forecast model for the weekly series.', [rec('r-a', '1')]);
    expect(one.startsWith('Forecast model for the weekly series.\n\n## Promotion history')).toBe(true);
    const two = withHistoryTable(one, [rec('r-b', '2', '1', 1000), rec('r-a', '1')]);
    expect(withHistoryTable(two, [rec('r-a', '1'), rec('r-b', '2', '1', 1000)])).toBe(two);
    expect(two.match(/## Promotion history/g)).toHaveLength(1);
    const rows = rowsOf(two);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toContain('| 2 | 1 | policy | r-b |');
    // A pipe or newline in the notes cannot break the table.
    expect(rows[0]).toContain('all \\| gates passed');
  });

  it('withHistoryTable: text written after the table by hand is kept', () => {
    const edited = `${withHistoryTable('', [rec('r-a', '1')])}\nSome note added by hand.\n`;
    const next = withHistoryTable(edited, [rec('r-a', '1'), rec('r-b', '2', '1', 1000)]);
    expect(next).toContain('Some note added by hand.');
    expect(rowsOf(next)).toHaveLength(2);
  });

  it('withHistoryTable: 200 promotions stay under the description bound, newest kept, with a pointer at the full history', () => {
    const many = Array.from({ length: 200 }, (_, i) => ({
      ...rec(`r-${i}`, String(i + 1), i ? String(i) : undefined, i * 1000),
      notes: 'n'.repeat(5_000),
    }));
    const d = withHistoryTable('x'.repeat(10_000), many);
    expect(d.length).toBeLessThanOrEqual(HISTORY_TABLE_MAX);
    expect(d.length).toBeLessThan(5_000);
    const rows = rowsOf(d);
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.at(-1)).toContain('| r-199 |');
    expect(d).toContain(`_Newest ${rows.length} of 200 promotions shown`);
    expect(d).toContain('runwarden history');
  });

  it('cells: backslashes and Markdown in notes are escaped, so notes cannot end a cell, link, or fake a row', () => {
    const evil = {
      ...rec('r-a', '1'),
      notes: 'trailing \\| r-b | [click](http://x) ![img](http://y) <b>x</b> `code`',
    };
    const d = withHistoryTable('', [evil]);
    const [row] = rowsOf(d);
    // Exactly 10 unescaped pipes (9 cells), so the notes stay inside their cell.
    expect(row!.match(/(?<!\\)\|/g)).toHaveLength(10);
    expect(row).not.toContain('| r-b |');
    expect(row).not.toMatch(/(?<!\\)\[click/);
    expect(row).not.toMatch(/(?<!\\)<b>/);
  });

  it('promotionJson: stays within the tag bound with huge notes and many metrics', () => {
    const big = {
      ...rec('r-x', '3'),
      notes: 'n'.repeat(50_000),
      metrics: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`metric_${i}`, i])),
    };
    const json = promotionJson(big);
    expect(json.length).toBeLessThanOrEqual(PROMOTION_TAG_MAX);
    expect(JSON.parse(json).reviewId).toBe('r-x');
  });
});
