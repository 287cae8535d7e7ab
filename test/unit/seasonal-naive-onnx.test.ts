// The seasonal-naive-node template's ONNX export (tasks/seasonal-naive-node/onnx.mjs, a hand-written
// protobuf writer): onnxruntime-node loads the bytes and, on every window of the shipped series,
// predicts what train.mjs's forecast() predicts, for both methods over a grid of windows and
// seasons (overlapping weights included), to 1e-5 relative.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

interface NaiveModel {
  method: 'moving_average' | 'seasonal_naive';
  window: number;
  season: number;
}
interface TrainModule {
  forecast(y: number[], t: number, model: NaiveModel): number;
  linearWeights(model: NaiveModel): number[];
}
interface OnnxModule {
  linearWindowModel(weights: number[], opts?: { docString?: string }): Buffer;
}

const dir = path.resolve(import.meta.dirname, '../../tasks/seasonal-naive-node');
const load = async <T>(file: string) => (await import(pathToFileURL(path.join(dir, file)).href)) as T;

function weeklyCases(): number[] {
  const csv = path.resolve(import.meta.dirname, '../../tasks/data/weekly_cases.csv');
  const [header, ...rows] = readFileSync(csv, 'utf8').trim().split('\n');
  const ci = header!.split(',').indexOf('cases');
  return rows.map((r) => Number(r.split(',')[ci]));
}

const grid: NaiveModel[] = [1, 2, 3, 8, 16, 52].flatMap((window) =>
  (['moving_average', 'seasonal_naive'] as const).flatMap((method) =>
    [52, 4].map((season) => ({ method, window, season })),
  ),
);

describe('seasonal-naive-node ONNX export', () => {
  it('onnx.mjs graph: onnxruntime-node predicts what forecast() predicts on every window, for every grid point, to 1e-5', async () => {
    const train = await load<TrainModule>('train.mjs');
    const { linearWindowModel } = await load<OnnxModule>('onnx.mjs');
    const y = weeklyCases();
    for (const model of grid) {
      const weights = train.linearWeights(model);
      const lookback = weights.length;
      const session = await ort.InferenceSession.create(linearWindowModel(weights));
      try {
        expect(session.inputNames).toEqual(['window']);
        expect(session.outputNames).toEqual(['forecast']);
        const ts = Array.from({ length: y.length - lookback }, (_, i) => lookback + i);
        const x = new Float32Array(ts.length * lookback);
        ts.forEach((t, i) => {
          x.set(y.slice(t - lookback, t), i * lookback);
        });
        const out = await session.run({ window: new ort.Tensor('float32', x, [ts.length, lookback, 1]) });
        const got = out.forecast!;
        expect(got.dims).toEqual([ts.length]);
        const worst = ts.reduce((acc, t, i) => {
          const want = train.forecast(y, t, model);
          expect(Number.isFinite(want)).toBe(true);
          return Math.max(acc, Math.abs(Number(got.data[i]) - want) / Math.max(1, Math.abs(want)));
        }, 0);
        expect(worst, `${model.method}(${model.window}, season ${model.season})`).toBeLessThanOrEqual(1e-5);
      } finally {
        await session.release();
      }
    }
  });

  it('onnx.mjs: refuses weights that are empty or not finite, naming the argument', async () => {
    const { linearWindowModel } = await load<OnnxModule>('onnx.mjs');
    expect(() => linearWindowModel([])).toThrow(/weights must be a non-empty list of finite numbers/);
    expect(() => linearWindowModel([1, Number.NaN])).toThrow(/weights/);
  });
});
