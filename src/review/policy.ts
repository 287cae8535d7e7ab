/**
 * The policy judge's rule: MLflow's `MetricThreshold` semantics (mlflow/models/evaluation/
 * validation.py), so a verdict here matches what `mlflow.validate_evaluation_results` would say.
 * Per metric, with `greater_is_better` choosing ≥ or ≤:
 *  - a metric the candidate lacks fails;
 *  - `threshold`: candidate ≥ threshold (≤ when lower is better);
 *  - `min_absolute_change` / `min_relative_change` compare with the champion (baseline): a metric
 *    the champion lacks fails the comparison ("Model comparison failed"); candidate ≥ base + abs;
 *    (candidate − base) / base ≥ rel (lower is better: (base − candidate) / base ≥ rel), and when
 *    base is 0 the relative check falls back to candidate ≥ base + 1e-10 (≤ base − 1e-10).
 *  - With no champion at all, only thresholds apply (the rule; MLflow's own code would fail
 *    the comparison gates against an empty baseline, its docstring says thresholds only).
 * `composite` (0.5·RMSE + 0.3·MAE + 0.2·MSE) is derived from a run's rmse/mae/mse when it did not
 * log one itself.
 */
import { COMPOSITE_WEIGHTS } from '../eval/metrics.js';
import type { MetricThresholdDef } from '../model/template.js';
import type { PolicyCheck } from './types.js';

export type Gates = Record<string, MetricThresholdDef>;

/** Relative-change fallback step when the baseline is 0 (MLflow's constant). */
export const ZERO_BASELINE_EPSILON = 1e-10;

/** Weights of the composite forecast error (defined once, in src/eval/metrics.ts). */
export { COMPOSITE_WEIGHTS } from '../eval/metrics.js';

/**
 * `composite` from the run's rmse/mae/mse (tried bare, then `test_`-, then `val_`-prefixed), or
 * undefined when one of the three is missing.
 */
export function compositeOf(metrics: Record<string, number>): number | undefined {
  for (const prefix of ['', 'test_', 'val_']) {
    const [rmse, mae, mse] = (['rmse', 'mae', 'mse'] as const).map((k) => metrics[`${prefix}${k}`]);
    if (rmse !== undefined && mae !== undefined && mse !== undefined)
      return COMPOSITE_WEIGHTS.rmse * rmse + COMPOSITE_WEIGHTS.mae * mae + COMPOSITE_WEIGHTS.mse * mse;
  }
  return undefined;
}

/** The run's metrics plus `composite` when it can be derived and was not logged. */
export function withComposite(metrics: Record<string, number>): Record<string, number> {
  if (metrics.composite !== undefined) return metrics;
  const c = compositeOf(metrics);
  return c === undefined ? metrics : { ...metrics, composite: c };
}

/** One metric's check, in MLflow's words. `baseline` undefined = no champion. */
export function checkMetric(
  metric: string,
  gate: MetricThresholdDef,
  candidate: Record<string, number>,
  baseline: Record<string, number> | undefined,
): PolicyCheck {
  const value = candidate[metric];
  if (value === undefined) {
    return {
      metric,
      passed: false,
      why: `Metric validation failed: metric ${metric} was missing from the evaluation result of the candidate model.`,
    };
  }
  const better = (a: number, b: number) => (gate.greater_is_better ? a >= b : a <= b);
  const step = (base: number, d: number) => (gate.greater_is_better ? base + d : base - d);
  const fails: string[] = [];
  if (gate.threshold !== undefined && !better(value, gate.threshold)) {
    fails.push(
      `Metric ${metric} value threshold check failed: candidate model ${metric} = ${value}, ${metric} threshold = ${gate.threshold}.`,
    );
  }
  const compares = gate.min_absolute_change !== undefined || gate.min_relative_change !== undefined;
  if (compares && baseline !== undefined) {
    const base = baseline[metric];
    if (base === undefined) {
      fails.push(
        `Model comparison failed: metric ${metric} was missing from the evaluation result of the baseline model.`,
      );
    } else {
      if (gate.min_absolute_change !== undefined && !better(value, step(base, gate.min_absolute_change))) {
        fails.push(
          `Metric ${metric} minimum absolute change check failed: candidate model ${metric} = ${value}, baseline model ${metric} = ${base}, ${metric} minimum absolute change threshold = ${gate.min_absolute_change}.`,
        );
      }
      if (gate.min_relative_change !== undefined) {
        const failed =
          base === 0
            ? !better(value, step(base, ZERO_BASELINE_EPSILON))
            : (gate.greater_is_better ? (value - base) / base : (base - value) / base) <
              gate.min_relative_change;
        if (failed) {
          fails.push(
            `Metric ${metric} minimum relative change check failed: candidate model ${metric} = ${value}, baseline model ${metric} = ${base}, ${metric} minimum relative change threshold = ${gate.min_relative_change}.`,
          );
        }
      }
    }
  }
  return fails.length
    ? { metric, passed: false, why: fails.join(' ') }
    : { metric, passed: true, why: `Metric ${metric} passed the validation.` };
}

/**
 * Every gate checked (in the order given). `baseline` undefined = no champion: thresholds only.
 * No gates at all passes nothing: the caller decides what an empty policy means.
 */
export function evaluatePolicy(
  gates: Gates,
  candidate: Record<string, number>,
  baseline: Record<string, number> | undefined,
): { passed: boolean; checks: PolicyCheck[] } {
  const cand = withComposite(candidate);
  const base = baseline && withComposite(baseline);
  const checks = Object.entries(gates).map(([m, g]) => checkMetric(m, g, cand, base));
  return { passed: checks.length > 0 && checks.every((c) => c.passed), checks };
}

/**
 * The gates a template's review applies: its `review.policy`, or, when that is empty, its primary
 * metric must not be worse than the champion's (`min_relative_change: 0`, so with no champion any
 * value passes). No policy and no primary metric: no gates (the policy judge rejects, saying so).
 */
export function gatesFor(
  policy: Gates | undefined,
  primary: { name: string; direction: 'min' | 'max' } | undefined,
): Gates {
  if (policy && Object.keys(policy).length) return policy;
  if (!primary) return {};
  return { [primary.name]: { min_relative_change: 0, greater_is_better: primary.direction === 'max' } };
}
