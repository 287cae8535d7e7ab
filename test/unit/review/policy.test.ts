// The policy judge's rule against MLflow's MetricThreshold semantics (validation.py), table-driven:
// threshold, absolute and relative change, greater_is_better both ways, the zero-baseline fallback,
// a metric missing from the candidate or the champion, and no champion at all.
import { describe, expect, it } from 'vitest';
import type { MetricThresholdDef } from '../../../src/model/template.js';
import { TemplateSchema } from '../../../src/model/template.js';
import { checkMetric, compositeOf, evaluatePolicy, gatesFor } from '../../../src/review/policy.js';

type Row = [
  string,
  MetricThresholdDef,
  number | undefined,
  number | undefined | 'no-champion',
  boolean,
  RegExp?,
];

const rows: Row[] = [
  // name, gate, candidate, baseline, passes, message
  [
    'threshold, greater is better, above',
    { threshold: 0.8, greater_is_better: true },
    0.85,
    'no-champion',
    true,
  ],
  [
    'threshold, greater is better, equal passes (>=)',
    { threshold: 0.8, greater_is_better: true },
    0.8,
    'no-champion',
    true,
  ],
  [
    'threshold, greater is better, below',
    { threshold: 0.8, greater_is_better: true },
    0.79,
    'no-champion',
    false,
    /value threshold check failed/,
  ],
  [
    'threshold, lower is better, equal passes (<=)',
    { threshold: 2, greater_is_better: false },
    2,
    'no-champion',
    true,
  ],
  [
    'threshold, lower is better, above',
    { threshold: 2, greater_is_better: false },
    2.1,
    'no-champion',
    false,
    /threshold = 2/,
  ],
  [
    'abs change, greater: base + abs reached',
    { min_absolute_change: 0.05, greater_is_better: true },
    0.75,
    0.7,
    true,
  ],
  [
    'abs change, greater: short of base + abs',
    { min_absolute_change: 0.05, greater_is_better: true },
    0.74,
    0.7,
    false,
    /minimum absolute change check failed/,
  ],
  [
    'abs change, lower: base - abs reached',
    { min_absolute_change: 1, greater_is_better: false },
    9,
    10,
    true,
  ],
  [
    'abs change, lower: not enough lower',
    { min_absolute_change: 1, greater_is_better: false },
    9.5,
    10,
    false,
  ],
  [
    'rel change, greater: +10% of base reached',
    { min_relative_change: 0.1, greater_is_better: true },
    1.1,
    1,
    true,
  ],
  [
    'rel change, greater: +5% is short',
    { min_relative_change: 0.1, greater_is_better: true },
    1.05,
    1,
    false,
    /minimum relative change check failed/,
  ],
  ['rel change, lower: -20% reached', { min_relative_change: 0.2, greater_is_better: false }, 8, 10, true],
  ['rel change, lower: -10% is short', { min_relative_change: 0.2, greater_is_better: false }, 9, 10, false],
  [
    'rel change 0 (not worse), lower: equal passes',
    { min_relative_change: 0, greater_is_better: false },
    10,
    10,
    true,
  ],
  ['rel change 0, lower: worse fails', { min_relative_change: 0, greater_is_better: false }, 10.1, 10, false],
  [
    'zero baseline, greater: must beat 0 by 1e-10',
    { min_relative_change: 0.5, greater_is_better: true },
    1e-9,
    0,
    true,
  ],
  [
    'zero baseline, greater: 0 itself fails',
    { min_relative_change: 0.5, greater_is_better: true },
    0,
    0,
    false,
  ],
  [
    'zero baseline, lower: must be below -1e-10',
    { min_relative_change: 0.5, greater_is_better: false },
    -1e-9,
    0,
    true,
  ],
  [
    'zero baseline, lower: 0 itself fails',
    { min_relative_change: 0.5, greater_is_better: false },
    0,
    0,
    false,
  ],
  [
    'candidate lacks the metric: fails',
    { threshold: 1, greater_is_better: true },
    undefined,
    'no-champion',
    false,
    /missing from the evaluation result of the candidate model/,
  ],
  [
    'champion lacks the metric: comparison fails',
    { min_absolute_change: 0.1, greater_is_better: true },
    5,
    undefined,
    false,
    /Model comparison failed: metric m was missing from the evaluation result of the baseline model/,
  ],
  [
    'champion lacks the metric, threshold only: passes',
    { threshold: 1, greater_is_better: true },
    5,
    undefined,
    true,
  ],
  [
    'no champion: comparison gates do not apply',
    { min_absolute_change: 100, greater_is_better: true },
    5,
    'no-champion',
    true,
  ],
  [
    'no champion: threshold still applies',
    { threshold: 10, min_absolute_change: 1, greater_is_better: true },
    5,
    'no-champion',
    false,
  ],
  [
    'threshold and comparison both fail: both reported',
    { threshold: 10, min_absolute_change: 1, greater_is_better: true },
    5,
    4.5,
    false,
    /threshold check failed.*absolute change check failed/,
  ],
  [
    'negative baseline, greater: relative change as MLflow computes it',
    { min_relative_change: 0.1, greater_is_better: true },
    -0.5,
    -1,
    false,
  ],
  [
    'NaN candidate fails every comparison',
    { threshold: 0, greater_is_better: true },
    Number.NaN,
    'no-champion',
    false,
  ],
];

describe('policy: MLflow MetricThreshold semantics', () => {
  it.each(rows)('%s', (_name, gate, cand, base, passes, message) => {
    const candidate: Record<string, number> = cand === undefined ? {} : { m: cand };
    const baseline: Record<string, number> | undefined =
      base === 'no-champion' ? undefined : base === undefined ? { other: 1 } : { m: base };
    const r = checkMetric('m', gate, candidate, baseline);
    expect(r.passed).toBe(passes);
    if (message) expect(r.why).toMatch(message);
  });

  it('evaluatePolicy: passes only when every gate passes, and reports each', () => {
    const gates = {
      acc: { threshold: 0.8, greater_is_better: true },
      loss: { min_absolute_change: 0.1, greater_is_better: false },
    };
    const ok = evaluatePolicy(gates, { acc: 0.9, loss: 0.5 }, { acc: 0.7, loss: 0.7 });
    expect(ok.passed).toBe(true);
    const bad = evaluatePolicy(gates, { acc: 0.9, loss: 0.65 }, { acc: 0.7, loss: 0.7 });
    expect(bad.passed).toBe(false);
    expect(bad.checks.map((c) => [c.metric, c.passed])).toEqual([
      ['acc', true],
      ['loss', false],
    ]);
  });

  it('evaluatePolicy: no gates passes nothing', () => {
    expect(evaluatePolicy({}, { a: 1 }, undefined).passed).toBe(false);
  });

  it('composite: 0.5·RMSE + 0.3·MAE + 0.2·MSE from the run, bare or test_-prefixed, and gateable', () => {
    expect(compositeOf({ rmse: 2, mae: 1, mse: 4 })).toBeCloseTo(0.5 * 2 + 0.3 * 1 + 0.2 * 4);
    expect(compositeOf({ test_rmse: 1, test_mae: 1, test_mse: 1 })).toBeCloseTo(1);
    expect(compositeOf({ rmse: 1, mae: 1 })).toBeUndefined();
    const gate = { composite: { min_relative_change: 0, greater_is_better: false } };
    expect(evaluatePolicy(gate, { rmse: 1, mae: 1, mse: 1 }, { rmse: 2, mae: 2, mse: 2 }).passed).toBe(true);
    expect(evaluatePolicy(gate, { rmse: 4, mae: 1, mse: 1 }, { rmse: 2, mae: 2, mse: 2 }).passed).toBe(false);
    // A logged composite wins over the derived one.
    expect(evaluatePolicy(gate, { composite: 0.1, rmse: 9, mae: 9, mse: 9 }, { composite: 0.2 }).passed).toBe(
      true,
    );
  });

  it('gatesFor: the template policy, else the primary metric not worse than the champion, else none', () => {
    const policy = { a: { threshold: 1, greater_is_better: true } };
    expect(gatesFor(policy, { name: 'x', direction: 'min' })).toBe(policy);
    expect(gatesFor({}, { name: 'val_loss', direction: 'min' })).toEqual({
      val_loss: { min_relative_change: 0, greater_is_better: false },
    });
    expect(gatesFor(undefined, undefined)).toEqual({});
  });

  it('a template gate with no threshold at all is refused, as MLflow refuses it', () => {
    const base = { name: 't', description: 'd', runner: 'shell', command: ['x'] };
    const bad = TemplateSchema.safeParse({
      ...base,
      review: { mode: 'policy', policy: { m: { greater_is_better: true } } },
    });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toMatch(/no threshold was specified/);
    const relTooBig = TemplateSchema.safeParse({
      ...base,
      review: { policy: { m: { min_relative_change: 1.5, greater_is_better: true } } },
    });
    expect(relTooBig.success).toBe(false);
  });
});
