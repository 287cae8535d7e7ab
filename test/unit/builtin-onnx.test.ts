// The built-in trainers' ONNX graphs (run by onnxruntime-node) give the same forecasts as the
// TypeScript models they were exported from, on every training window, for both trainers; and the
// ridge solver gets a small case right that can be worked out by hand.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/eval/table.js';
import { predictRaw } from '../../src/runners/builtin/model.js';
import { forecasterToOnnx } from '../../src/runners/builtin/onnx-export.js';
import { fitRidge } from '../../src/runners/builtin/ridge.js';
import { type Trained, trainForecaster } from '../../src/runners/builtin/trainers.js';

const series = parseCsv(readFileSync(path.resolve('tasks/data/weekly_cases.csv'), 'utf8'));

/** Largest |onnx − ts| / max(1, |ts|) over the training windows, and the largest absolute gap. */
async function onnxGap(t: Trained) {
  const { raw, count } = t.data.train;
  const session = await ort.InferenceSession.create(forecasterToOnnx(t.forecaster));
  try {
    const dims = [count, t.forecaster.lookback, t.forecaster.columns.length];
    const out = await session.run({ window: new ort.Tensor('float32', raw, dims) });
    const onnx = out.forecast!.data as Float32Array;
    expect(out.forecast!.dims).toEqual([count]);
    const ts = predictRaw(t.forecaster, raw);
    let rel = 0;
    let abs = 0;
    for (let i = 0; i < count; i++) {
      abs = Math.max(abs, Math.abs(onnx[i]! - ts[i]!));
      rel = Math.max(rel, Math.abs(onnx[i]! - ts[i]!) / Math.max(1, Math.abs(ts[i]!)));
    }
    return { rel, abs, count };
  } finally {
    await session.release();
  }
}

describe('built-in trainers exported to ONNX', () => {
  it('ridge-forecast: the ONNX graph forecasts every training window as the TypeScript model does, to a relative gap of 1e-5 (|onnx - ts| / max(1, |ts|))', async () => {
    const t = trainForecaster('ridge-forecast', {}, series);
    const gap = await onnxGap(t);
    expect(gap.count).toBe(148);
    console.log(
      `ridge-forecast ONNX vs TypeScript: relative ${gap.rel.toExponential(2)}, absolute ${gap.abs.toExponential(2)} cases`,
    );
    expect(gap.rel).toBeLessThan(1e-5);
  });

  it('mlp-forecast: the ONNX graph forecasts every training window as the TypeScript model does, to a relative gap of 1e-5 (|onnx - ts| / max(1, |ts|))', async () => {
    const t = trainForecaster('mlp-forecast', { epochs: 40, hidden_size: 12, lookback: 6 }, series);
    const gap = await onnxGap(t);
    expect(gap.count).toBe(150);
    console.log(
      `mlp-forecast ONNX vs TypeScript: relative ${gap.rel.toExponential(2)}, absolute ${gap.abs.toExponential(2)} cases`,
    );
    expect(gap.rel).toBeLessThan(1e-5);
  });

  it('mlp-forecast: the same seed trains the same weights, another seed different ones', () => {
    const a = trainForecaster('mlp-forecast', { epochs: 5, seed: 7 }, series).forecaster.head;
    const b = trainForecaster('mlp-forecast', { epochs: 5, seed: 7 }, series).forecaster.head;
    const c = trainForecaster('mlp-forecast', { epochs: 5, seed: 8 }, series).forecaster.head;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('ridge solution', () => {
  it('fitRidge: y = 2x with alpha 0 gives w = 2, b = 0; with alpha 2 the slope halves and the intercept is not penalised', () => {
    const x = Float64Array.from([1, 2, 3]);
    const y = Float64Array.from([2, 4, 6]);
    // Centred x is (-1, 0, 1): Σx² = 2, Σxy = 4, so w = 4 / (2 + α) and b = ȳ − x̄·w = 4 − 2w.
    const free = fitRidge(x, y, 1, 0 + 1e-12);
    expect(free.w[0]).toBeCloseTo(2, 9);
    expect(free.b).toBeCloseTo(0, 9);
    const shrunk = fitRidge(x, y, 1, 2);
    expect(shrunk.w[0]).toBeCloseTo(1, 12);
    expect(shrunk.b).toBeCloseTo(2, 12);
  });

  it('fitRidge: two exact features are recovered with their intercept', () => {
    // y = 3 + 1.5·a − 0.5·b on 5 rows.
    const rows = [
      [0, 1],
      [1, 0],
      [2, 3],
      [3, 1],
      [4, 4],
    ];
    const x = Float64Array.from(rows.flat());
    const y = Float64Array.from(rows.map(([a, b]) => 3 + 1.5 * a! - 0.5 * b!));
    const fit = fitRidge(x, y, 2, 1e-10);
    expect(fit.w[0]).toBeCloseTo(1.5, 6);
    expect(fit.w[1]).toBeCloseTo(-0.5, 6);
    expect(fit.b).toBeCloseTo(3, 6);
  });
});
