/**
 * The trained model of a built-in trainer, in standardised space: a linear map (ridge) or a
 * one-hidden-layer tanh network with a residual on last week's scaled cases (MLP), applied to a
 * flattened standardised window. `predictRaw` is the model's definition of a forecast from raw
 * windows; the ONNX graph (onnx-export.ts) computes the same thing and is tested against it.
 */
import { type Scaler, standardise } from './dataset.js';

export interface LinearHead {
  kind: 'linear';
  /** One weight per flat input (lookback · columns). */
  w: Float64Array;
  b: number;
}

export interface MlpHead {
  kind: 'mlp';
  hidden: number;
  /** Input → hidden weights, row-major [width][hidden]. */
  w1: Float64Array;
  b1: Float64Array;
  /** Hidden → output weights [hidden]. */
  w2: Float64Array;
  b2: number;
  /** Flat index of last week's target in the window: the output is a residual on it. */
  skip: number;
}

export interface Forecaster {
  lookback: number;
  columns: string[];
  scaler: Scaler;
  target: { mean: number; std: number };
  head: LinearHead | MlpHead;
}

/** Standardised forecasts of standardised flat windows (count × width). */
export function predictScaled(head: LinearHead | MlpHead, x: Float64Array, width: number): Float64Array {
  const count = x.length / width;
  const out = new Float64Array(count);
  if (head.kind === 'linear') {
    for (let i = 0; i < count; i++) {
      let s = head.b;
      for (let k = 0; k < width; k++) s += x[i * width + k]! * head.w[k]!;
      out[i] = s;
    }
    return out;
  }
  const h = new Float64Array(head.hidden);
  for (let i = 0; i < count; i++) {
    hiddenLayer(head, x, i * width, width, h);
    let s = head.b2 + x[i * width + head.skip]!;
    for (let j = 0; j < head.hidden; j++) s += Math.tanh(h[j]!) * head.w2[j]!;
    out[i] = s;
  }
  return out;
}

/** Pre-activations of the hidden layer for the window at `offset` (written into `h`). */
export function hiddenLayer(head: MlpHead, x: Float64Array, offset: number, width: number, h: Float64Array) {
  const H = head.hidden;
  h.set(head.b1);
  for (let k = 0; k < width; k++) {
    const v = x[offset + k]!;
    if (v === 0) continue;
    const row = k * H;
    for (let j = 0; j < H; j++) h[j]! += v * head.w1[row + j]!;
  }
}

/** Forecasts in raw units (cases) of raw windows float32 [count, lookback, columns]. */
export function predictRaw(f: Forecaster, raw: Float32Array): Float64Array {
  const width = f.lookback * f.columns.length;
  const z = predictScaled(f.head, standardise(raw, f.scaler), width);
  return z.map((v) => v * f.target.std + f.target.mean);
}
