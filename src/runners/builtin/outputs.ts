/**
 * The files a built-in trainer leaves in its output folder (contract §1): `model/model.onnx`,
 * `model/features.json` (how to window a table for it), `model/input_example.json` (the first
 * test windows, raw, as a nested list), `predictions.csv` (week, actual and predicted cases on the
 * test split) and `plots/loss_curve.png` (train and validation loss per step).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FeatureSpec } from '../../eval/features.js';
import type { Forecaster } from './model.js';
import { forecasterToOnnx } from './onnx-export.js';
import { lineChartPng } from './plots.js';
import type { Step } from './trainers.js';

/** Nested list [count][lookback][columns] of the first `count` raw windows. */
export function windowsAsList(
  raw: Float32Array,
  lookback: number,
  columns: number,
  count: number,
): number[][][] {
  const out: number[][][] = [];
  for (let i = 0; i < count && (i + 1) * lookback * columns <= raw.length; i++) {
    const w: number[][] = [];
    for (let l = 0; l < lookback; l++) {
      const off = (i * lookback + l) * columns;
      w.push(Array.from(raw.subarray(off, off + columns), (v) => Number(v.toPrecision(7))));
    }
    out.push(w);
  }
  return out;
}

export async function writeModelFolder(
  dir: string,
  f: Forecaster,
  spec: FeatureSpec,
  example: Float32Array,
  docString: string,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.onnx'), forecasterToOnnx(f, { docString }));
  await writeFile(path.join(dir, 'features.json'), `${JSON.stringify(spec, null, 2)}\n`);
  const list = windowsAsList(example, f.lookback, f.columns.length, 2);
  await writeFile(path.join(dir, 'input_example.json'), `${JSON.stringify(list)}\n`);
}

export async function writePredictions(
  file: string,
  keys: string[],
  actual: ArrayLike<number>,
  predicted: ArrayLike<number>,
): Promise<void> {
  const lines = ['week,actual_cases,predicted_cases'];
  keys.forEach((k, i) => {
    lines.push(`${k},${Number(actual[i]!.toFixed(3))},${Number(predicted[i]!.toFixed(3))}`);
  });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${lines.join('\n')}\n`);
}

export async function writeLossCurve(file: string, steps: Step[], title: string, xlabel: string) {
  const png = await lineChartPng(
    [
      { name: 'train_loss', values: steps.map((s) => s.trainLoss), x: steps.map((s) => s.step) },
      { name: 'val_loss', values: steps.map((s) => s.valLoss), x: steps.map((s) => s.step) },
    ],
    { title, xlabel, ylabel: 'MSE (standardised cases)' },
  );
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, png);
}
