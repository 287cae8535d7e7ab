import { describe, expect, it } from 'vitest';
import { compare, describeRescore } from '../../src/eval/rescore.js';
import { describeReview, toReviewOutput } from '../../src/mcp/tools/get-review.js';
import type { Evidence } from '../../src/review/index.js';

const metrics = { rmse: 0.63, mae: 0.5, mse: 0.4, composite: 0.545 };
const gaps = compare({ test_rmse: 0.21, test_mae: 0.5, composite: 0.5 }, metrics);

function evidence(rescore: Evidence['rescore']): Evidence {
  return {
    item: {
      id: 'r-t1',
      taskId: 't1',
      runId: 'run1',
      experimentId: '1',
      template: 'tpl',
      mode: 'agent',
      state: 'pending',
      createdAt: 0,
    },
    runUrl: 'http://mlflow/#/experiments/1/runs/run1',
    metrics: { test_rmse: 0.21 },
    params: {},
    rescore,
  };
}

describe('re-score in the review text', () => {
  it('compare: gap is (re-scored − reported) / reported per metric the run reported, test_ names first', () => {
    expect(gaps.map((g) => [g.metric, g.reportedAs])).toEqual([
      ['rmse', 'test_rmse'],
      ['mae', 'test_mae'],
      ['composite', 'composite'],
    ]);
    expect(gaps[0]!.gap).toBeCloseTo(2, 10);
    expect(gaps[1]!.gap).toBeCloseTo(0, 10);
  });

  it('get_review: a disagreeing re-score heads the text, with both numbers', () => {
    const flag =
      'RE-SCORE DISAGREES: reported test_rmse 0.21, re-scored 0.63 on 52 holdout rows (gap +200% > 50%).';
    const base = {
      status: 'ok' as const,
      holdout: 'data/h.csv',
      tolerance: 0.5,
      rows: 52,
      metrics,
      gaps,
      worstGap: 2,
      flag,
    };
    const out = toReviewOutput(evidence({ ...base, summary: describeRescore({ ...base, fresh: true }) }));
    const text = describeReview(out);
    expect(text.split('\n')[0]).toBe(`⚠ ${flag}`);
    expect(text).toContain('Re-score details: RE-SCORE DISAGREES');
    expect(text).toContain('test_rmse 0.21 vs 0.63 (+200%)');
    expect(out.rescore).toMatchObject({ status: 'ok', rows: 52, worst_gap: 2, flag });
  });

  it('get_review: an agreeing re-score is one line after the candidate model, no warning', () => {
    const base = {
      status: 'ok' as const,
      holdout: 'data/h.csv',
      tolerance: 0.5,
      rows: 52,
      metrics,
      gaps: [],
    };
    const text = describeReview(
      toReviewOutput(evidence({ ...base, summary: describeRescore({ ...base, fresh: true }) })),
    );
    expect(text).not.toContain('⚠');
    expect(text).toMatch(/Re-score: re-scored on 52 rows of data\/h\.csv/);
  });
});
