/**
 * Closed-form ridge regression on flattened standardised windows, with an unpenalised intercept:
 * the inputs and targets are centred on their training means, `(XcᵀXc + αI) w = Xcᵀyc` is solved
 * by Cholesky, and `b = ȳ − x̄·w`. `fitRidgePath` fits one model per α of a grid (one step per α)
 * and keeps the one with the lowest validation MSE (ties: the first, i.e. the smaller α when the
 * grid is ascending). Deterministic: no randomness anywhere. A tiny α on collinear lag features
 * (lookback 52: the Gram matrix is numerically singular) is floored at `ALPHA_FLOOR` × the mean
 * diagonal of `XcᵀXc`, so the system stays positive definite; the α asked for is still reported.
 */
import { InputError } from './dataset.js';
import { mse, solveSpd } from './linalg.js';
import { type LinearHead, predictScaled } from './model.js';

/** Smallest α used, relative to the mean diagonal of the centred Gram matrix (its trace / width). */
export const ALPHA_FLOOR = 1e-10;

/** Ridge fit of `y` on the rows of `x` (count × width) with penalty `alpha` ≥ 0. */
export function fitRidge(x: Float64Array, y: Float64Array, width: number, alpha: number): LinearHead {
  const count = y.length;
  const xm = new Float64Array(width);
  let ym = 0;
  for (let i = 0; i < count; i++) {
    ym += y[i]!;
    for (let k = 0; k < width; k++) xm[k]! += x[i * width + k]!;
  }
  ym /= count;
  for (let k = 0; k < width; k++) xm[k]! /= count;
  const a = new Float64Array(width * width);
  const rhs = new Float64Array(width);
  const row = new Float64Array(width);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < width; k++) row[k] = x[i * width + k]! - xm[k]!;
    const yc = y[i]! - ym;
    for (let k = 0; k < width; k++) {
      rhs[k]! += row[k]! * yc;
      for (let l = 0; l <= k; l++) a[k * width + l]! += row[k]! * row[l]!;
    }
  }
  let trace = 0;
  for (let k = 0; k < width; k++) trace += a[k * width + k]!;
  const used = Math.max(alpha, (ALPHA_FLOOR * trace) / width);
  for (let k = 0; k < width; k++) {
    for (let l = 0; l < k; l++) a[l * width + k] = a[k * width + l]!;
    a[k * width + k]! += used;
  }
  let w: Float64Array;
  try {
    w = solveSpd(a, rhs, width);
  } catch {
    // Only when the floor was not enough (constant inputs, NaN in the data): a clear input error.
    throw new InputError(
      `alphas: alpha ${alpha} leaves the ridge system singular for these lag features (width ${width}); ` +
        'use larger alphas (e.g. "0.01,0.1,1,10,100") or a shorter lookback',
    );
  }
  let b = ym;
  for (let k = 0; k < width; k++) b -= xm[k]! * w[k]!;
  return { kind: 'linear', w, b };
}

export interface RidgeStep {
  step: number;
  alpha: number;
  trainLoss: number;
  valLoss: number;
}

/** Parses "0.01,0.1,1" into ascending-as-given positive finite alphas, or throws naming the value. */
export function parseAlphas(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const alphas = parts.map(Number);
  if (
    !parts.length ||
    parts.length > 50 ||
    parts.some((p, i) => p === '' || !(alphas[i]! > 0) || !Number.isFinite(alphas[i]!))
  )
    throw new Error(
      `alphas "${text.slice(0, 100)}": expected 1 to 50 comma-separated positive numbers, e.g. "0.01,0.1,1,10,100"`,
    );
  return alphas;
}

export function fitRidgePath(
  train: { x: Float64Array; y: Float64Array },
  val: { x: Float64Array; y: Float64Array },
  width: number,
  alphas: number[],
  onStep: (s: RidgeStep) => void,
): { best: RidgeStep; head: LinearHead; steps: RidgeStep[] } {
  let best: { step: RidgeStep; head: LinearHead } | undefined;
  const steps: RidgeStep[] = [];
  alphas.forEach((alpha, i) => {
    const head = fitRidge(train.x, train.y, width, alpha);
    const s: RidgeStep = {
      step: i + 1,
      alpha,
      trainLoss: mse(train.y, predictScaled(head, train.x, width)),
      valLoss: mse(val.y, predictScaled(head, val.x, width)),
    };
    steps.push(s);
    onStep(s);
    if (!best || s.valLoss < best.step.valLoss) best = { step: s, head };
  });
  if (!best) throw new Error('no alpha to fit');
  return { best: best.step, head: best.head, steps };
}
