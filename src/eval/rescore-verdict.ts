/**
 * The verdict half of re-scoring: what a re-score is (`RescoreResult`), how it compares with what
 * the run reported (relative gap per metric, worst gap against the tolerance), the flag a judge
 * must read first, and the one-line summary the policy check and the review text carry.
 */

import type { ClaimResult } from './claim-check.js';

/** What the run reported, compared with what the judge measured, per metric. */
export interface RescoreGap {
  metric: string;
  reportedAs: string;
  reported: number;
  rescored: number;
  /** (rescored − reported) / reported; positive = the model is worse than it said. */
  gap: number;
}

export interface RescoreResult {
  status: 'ok' | 'failed';
  holdout: string;
  tolerance: number;
  rows?: number;
  metrics?: { rmse: number; mae: number; mse: number; composite: number };
  gaps: RescoreGap[];
  /** Largest gap (undefined when nothing comparable was reported). */
  worstGap?: number;
  /** Set when the re-score disagrees beyond the tolerance, or could not run: the line a judge reads first. */
  flag?: string;
  /** Why the re-score failed. */
  reason?: string;
  /** Where the model came from (`models:/m-…` or `runs:/<run>/model`). */
  modelUri?: string;
  /** True when this call scored; false when it read an earlier re-score back from MLflow. */
  fresh: boolean;
  /** The claim check: the model re-scored on the run's own test rows (src/eval/claim-check.ts). */
  claim?: ClaimResult;
}

const REPORTED: Record<string, string[]> = {
  rmse: ['test_rmse', 'rmse'],
  mae: ['test_mae', 'mae'],
  mse: ['test_mse', 'mse'],
  composite: ['composite'],
};

const pct = (g: number) =>
  Number.isFinite(g) ? `${g >= 0 ? '+' : ''}${Math.round(g * 100)}%` : `${g > 0 ? '+' : '-'}∞`;
const num = (v: number) => String(Number(v.toPrecision(3)));

/** Compares the re-score with the run's reported metrics. */
export function compare(
  reported: Record<string, number>,
  metrics: { rmse: number; mae: number; mse: number; composite: number },
): RescoreGap[] {
  const out: RescoreGap[] = [];
  for (const [metric, names] of Object.entries(REPORTED)) {
    const reportedAs = names.find((n) => Number.isFinite(reported[n]));
    if (!reportedAs) continue;
    const r = reported[reportedAs]!;
    const e = metrics[metric as keyof typeof metrics];
    const gap = r === 0 ? (e === 0 ? 0 : Number.POSITIVE_INFINITY) : (e - r) / Math.abs(r);
    out.push({ metric, reportedAs, reported: r, rescored: e, gap });
  }
  return out;
}

/** Adds worstGap and flag to a scored result. */
export function judge(res: RescoreResult): RescoreResult {
  if (res.status === 'failed') {
    res.flag = `RE-SCORE FAILED: ${res.reason ?? 'unknown reason'}; nothing independent backs the reported metrics.`;
    return res;
  }
  if (!res.gaps.length) return res;
  const worst = res.gaps.reduce((a, b) => (b.gap > a.gap ? b : a));
  res.worstGap = worst.gap;
  if (worst.gap > res.tolerance) {
    res.flag =
      `RE-SCORE DISAGREES: reported ${worst.reportedAs} ${num(worst.reported)}, re-scored ${num(worst.rescored)} on ` +
      `${res.rows ?? '?'} holdout rows (gap ${pct(worst.gap)} > ${pct(res.tolerance).replace('+', '')}).`;
  }
  return res;
}

/** One sentence for notes and the policy check: the flag first when there is one, then every pair. */
export function describeRescore(r: RescoreResult): string {
  if (!r.metrics) return r.flag ?? 're-score: no metrics';
  const pairs = r.gaps
    .map((g) => `${g.reportedAs} ${num(g.reported)} vs ${num(g.rescored)} (${pct(g.gap)})`)
    .join(', ');
  const within = `within ${pct(r.tolerance).replace('+', '')}`;
  if (r.flag) return `${r.flag} Reported vs re-scored: ${pairs}.`;
  return (
    `re-scored on ${r.rows} rows of ${r.holdout}: rmse ${num(r.metrics.rmse)}, composite ${num(r.metrics.composite)}; ` +
    (pairs ? `reported vs re-scored ${pairs}, ${within}.` : 'the run reported no comparable metric.')
  );
}
