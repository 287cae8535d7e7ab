/**
 * Forecast error metrics, the one definition runwarden uses everywhere: RMSE, MAE, MSE of
 * (actual − predicted) / scale, and the composite 0.5·RMSE + 0.3·MAE + 0.2·MSE. Pairs where either
 * value is NaN are skipped (a window past the end of the data has no actual).
 */
import { ValidationError } from '../errors/index.js';

/** Weights of the composite forecast error. */
export const COMPOSITE_WEIGHTS = { rmse: 0.5, mae: 0.3, mse: 0.2 } as const;

export interface ErrorMetrics {
  rmse: number;
  mae: number;
  mse: number;
  composite: number;
}

export function composite(m: { rmse: number; mae: number; mse: number }): number {
  return COMPOSITE_WEIGHTS.rmse * m.rmse + COMPOSITE_WEIGHTS.mae * m.mae + COMPOSITE_WEIGHTS.mse * m.mse;
}

/** Errors of `predicted` against `actual`, divided by `scale` (default 1). Needs ≥ 1 usable pair. */
export function errorMetrics(
  actual: ArrayLike<number>,
  predicted: ArrayLike<number>,
  scale = 1,
): ErrorMetrics {
  if (actual.length !== predicted.length) {
    throw new ValidationError(
      'predicted',
      `${predicted.length} predictions for ${actual.length} actual values; they must match.`,
    );
  }
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new ValidationError('scale', 'must be a finite number > 0.');
  let n = 0;
  let se = 0;
  let ae = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const p = Number(predicted[i]);
    if (Number.isNaN(a) || Number.isNaN(p)) continue;
    const e = (a - p) / scale;
    se += e * e;
    ae += Math.abs(e);
    n++;
  }
  if (n === 0) throw new ValidationError('actual', 'no pair of actual and predicted values to score.');
  const mse = se / n;
  const m = { rmse: Math.sqrt(mse), mae: ae / n, mse };
  return { ...m, composite: composite(m) };
}

/** Number of pairs errorMetrics would use. */
export function scoredCount(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < actual.length; i++)
    if (!Number.isNaN(Number(actual[i])) && !Number.isNaN(Number(predicted[i]))) n++;
  return n;
}
