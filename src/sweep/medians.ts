/**
 * The median-stopping rule as pure functions, with no I/O: a finished sibling's metric history
 * (sorted steps and values), the sibling's value at a step, the median of several, and the
 * decision for one child at its latest step. The rule is Optuna's `MedianPruner` (the "pruned
 * trial" of Optuna users): after `warmupSteps`, a child whose best value so far is worse than the
 * median of its finished siblings' values at the same step is stopped. A sibling's value at step
 * `s` is its last value logged at a step ≤ `s`; a sibling whose history ends before `s` (or whose
 * value there is NaN) does not count. Fewer than `minSiblings` counted → never stop. A child that
 * logged only NaN is stopped once the siblings are there (as Optuna prunes NaN-only trials).
 * Ties do not stop. src/sweep/early-stop.ts feeds it from the worker.
 */
import { EARLY_STOP_PREFIX } from './early-stop-reason.js';

export type Direction = 'min' | 'max';

/** One finished sibling's history of the watched metric, in step order. */
export interface SiblingHistory {
  runId: string;
  steps: Float64Array;
  values: Float64Array;
}

/**
 * A history from MLflow's points (any order): sorted by step, then timestamp, so the last point of
 * a step is the one logged last.
 */
export function siblingHistory(
  runId: string,
  points: readonly { step?: number; value?: number | string; timestamp?: number }[],
): SiblingHistory {
  const sorted = points
    .map((p) => ({ step: Number(p.step ?? 0), value: Number(p.value), ts: Number(p.timestamp ?? 0) }))
    .sort((a, b) => a.step - b.step || a.ts - b.ts);
  return {
    runId,
    steps: Float64Array.from(sorted, (p) => p.step),
    values: Float64Array.from(sorted, (p) => p.value),
  };
}

/** The sibling's last value at a step ≤ `step`; undefined if its history ends before `step` or is empty. */
export function valueAtStep(h: SiblingHistory, step: number): number | undefined {
  const n = h.steps.length;
  if (!n || h.steps[n - 1]! < step) return undefined;
  // Binary search for the last index with steps[i] <= step.
  let lo = 0;
  let hi = n - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (h.steps[mid]! <= step) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found < 0 ? undefined : h.values[found];
}

/** The median (the mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (!values.length) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** True if `a` is strictly worse than `b` for this direction. */
export function worse(a: number, b: number, direction: Direction): boolean {
  return direction === 'min' ? a > b : a < b;
}

/** The child's best non-NaN value so far (undefined while it has none). */
export function better(best: number | undefined, value: number, direction: Direction): number | undefined {
  if (Number.isNaN(value)) return best;
  if (best === undefined) return value;
  return worse(best, value, direction) ? value : best;
}

export interface RuleInput {
  direction: Direction;
  warmupSteps: number;
  minSiblings: number;
  /** The child's latest step. */
  step: number;
  /** The child's best non-NaN value at steps ≤ `step`; undefined if it logged only NaN. */
  best: number | undefined;
  siblings: Iterable<SiblingHistory>;
}

export type RuleDecision =
  | { stop: false; why: 'warmup' | 'too-few-siblings' | 'not-worse' }
  | { stop: true; step: number; value: number; median: number; siblings: number };

/** Whether the child is stopped at its latest step (see the module comment for the rule). */
export function decide(r: RuleInput): RuleDecision {
  if (r.step < r.warmupSteps) return { stop: false, why: 'warmup' };
  const at: number[] = [];
  for (const h of r.siblings) {
    const v = valueAtStep(h, r.step);
    if (v !== undefined && !Number.isNaN(v)) at.push(v);
  }
  if (at.length < Math.max(1, r.minSiblings)) return { stop: false, why: 'too-few-siblings' };
  const m = median(at);
  if (r.best === undefined)
    return { stop: true, step: r.step, value: Number.NaN, median: m, siblings: at.length };
  if (!worse(r.best, m, r.direction)) return { stop: false, why: 'not-worse' };
  return { stop: true, step: r.step, value: r.best, median: m, siblings: at.length };
}

/** A number short enough for a close reason (6 significant digits). */
const short = (v: number) => (Number.isFinite(v) ? String(Number(v.toPrecision(6))) : String(v));

/** Longest metric name quoted in a reason (MLflow allows 250 characters). */
const METRIC_NAME_MAX = 120;

/** `early-stopped: <metric> <value> at step <s> worse than the median <m> of <n> finished siblings`. */
export function stopReasonText(metric: string, d: Extract<RuleDecision, { stop: true }>): string {
  const name = metric.length > METRIC_NAME_MAX ? `${metric.slice(0, METRIC_NAME_MAX)}…` : metric;
  const n = d.siblings === 1 ? '1 finished sibling' : `${d.siblings} finished siblings`;
  return `${EARLY_STOP_PREFIX} ${name} ${short(d.value)} at step ${d.step} worse than the median ${short(d.median)} of ${n}`;
}
