// The promotion history kept in a registered model's description and tags: a row per promotion,
// never twice, the original description kept, and the tag value within its bound.
import { describe, expect, it } from 'vitest';
import { PROMOTION_TAG_MAX, promotionJson, withHistoryRow } from '../../../src/review/history.js';
import type { PromotionRecord } from '../../../src/review/types.js';

const rec = (reviewId: string, version: string, previousVersion?: string): PromotionRecord => ({
  at: Date.UTC(2026, 10, 28, 12, 0, 0),
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

describe('promotion history', () => {
  it('withHistoryRow: keeps the original text, starts the table once, adds each promotion once', () => {
    const one = withHistoryRow('Forecast model for the weekly series.', rec('r-a', '1'));
    expect(one.startsWith('Forecast model for the weekly series.\n\n## Promotion history')).toBe(true);
    const two = withHistoryRow(one, rec('r-b', '2', '1'));
    expect(withHistoryRow(two, rec('r-b', '2', '1'))).toBe(two);
    expect(two.match(/## Promotion history/g)).toHaveLength(1);
    const rows = two.split('\n').filter((l) => l.startsWith('| 2026'));
    expect(rows).toHaveLength(2);
    expect(rows[1]).toContain('| 2 | 1 | policy | r-b |');
    // A pipe or newline in the notes cannot break the table.
    expect(rows[0]).toContain('all \\| gates passed');
  });

  it('withHistoryRow: text written after the table starts a new table rather than a broken one', () => {
    const edited = `${withHistoryRow('', rec('r-a', '1'))}\nSome note added by hand.\n`;
    const next = withHistoryRow(edited, rec('r-b', '2', '1'));
    expect(next).toContain('Some note added by hand.\n\n## Promotion history');
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
