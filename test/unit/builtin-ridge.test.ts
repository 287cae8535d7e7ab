import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/runners/builtin/dataset.js';
import { fitRidge, fitRidgePath } from '../../src/runners/builtin/ridge.js';

/** Lag-like features: column k is the series shifted by k, plus an exact copy (collinear, singular Gram). */
function collinear(count: number, width: number) {
  const x = new Float64Array(count * width);
  const y = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < width - 1; k++) x[i * width + k] = Math.sin((i + k) / 7) * 3 + 50;
    x[i * width + width - 1] = x[i * width]!; // an exact duplicate of column 0
    y[i] = Math.sin((i + width) / 7) * 3 + 50;
  }
  return { x, y };
}

describe('builtin ridge', () => {
  it('ridge: alpha 1e-300 on collinear lag features is floored relative to the trace and fits (no "not positive definite")', () => {
    const { x, y } = collinear(120, 20);
    const head = fitRidge(x, y, 20, 1e-300);
    expect(Array.from(head.w).every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(head.b)).toBe(true);
    const steps: number[] = [];
    const fit = fitRidgePath({ x, y }, { x, y }, 20, [1e-300, 1], (s) => steps.push(s.alpha));
    expect(steps).toEqual([1e-300, 1]);
    expect(Number.isFinite(fit.best.valLoss)).toBe(true);
  });

  it('ridge: a system the floor cannot save (NaN in the features) is an InputError naming alphas, not a stack trace', () => {
    const { x, y } = collinear(40, 5);
    x[3] = Number.NaN;
    let err: unknown;
    try {
      fitRidge(x, y, 5, 1e-300);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/^alphas: .*use larger alphas/);
  });
});
