/**
 * The two built-in trainers as pure functions over a table: their parameters (defaults, checks
 * naming the parameter), the fit, and the resulting `Forecaster` with its per-step losses. The
 * entry (main.ts) adds the protocol lines and the files; tests call `trainForecaster` directly.
 *
 * - `ridge-forecast`: closed-form ridge on the `lookback` rows of every column, one step per α
 *   of `alphas`, α chosen by validation MSE.
 * - `mlp-forecast`: one tanh hidden layer (`hidden_size`), full-batch Adam for `epochs` epochs at
 *   `learning_rate` from seed `seed`, best-validation weights kept.
 */

import type { Table } from '../../eval/table.js';
import type { BuiltinTrainer } from '../../model/template.js';
import { buildDataset, COLUMNS, checkSeries, type Dataset, InputError, TARGET } from './dataset.js';
import { trainMlp } from './mlp.js';
import type { Forecaster } from './model.js';
import { fitRidgePath, parseAlphas } from './ridge.js';

export type ParamInput = Record<string, unknown>;

export const DEFAULTS: Record<BuiltinTrainer, Record<string, string | number>> = {
  'ridge-forecast': { lookback: 8, alphas: '0.01,0.1,1,10,100' },
  'mlp-forecast': { lookback: 8, hidden_size: 16, epochs: 200, learning_rate: 0.01, seed: 42 },
};

export interface Step {
  step: number;
  trainLoss: number;
  valLoss: number;
  /** What the step is (ridge: its α). */
  label?: string;
}

export interface Trained {
  trainer: BuiltinTrainer;
  params: Record<string, string | number>;
  data: Dataset;
  forecaster: Forecaster;
  steps: Step[];
  best: Step;
  /** Extra params to report (ridge: the selected α). */
  selected: Record<string, string | number>;
}

function intParam(p: ParamInput, key: string, min: number, max: number): number {
  const v = Number(p[key]);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new InputError(
      `param ${key}: expected an integer ${min}..${max}, got ${String(p[key]).slice(0, 40)}`,
    );
  return v;
}

function floatParam(p: ParamInput, key: string, min: number, max: number): number {
  const v = Number(p[key]);
  if (!Number.isFinite(v) || v < min || v > max)
    throw new InputError(
      `param ${key}: expected a number ${min}..${max}, got ${String(p[key]).slice(0, 40)}`,
    );
  return v;
}

/** Template defaults overlaid with the given params (only the trainer's own keys). */
export function resolveParams(trainer: BuiltinTrainer, given: ParamInput): Record<string, string | number> {
  const out: Record<string, string | number> = { ...DEFAULTS[trainer] };
  for (const k of Object.keys(out)) {
    const v = given[k];
    if (v !== undefined && v !== null) out[k] = typeof v === 'number' ? v : String(v);
  }
  return out;
}

export function trainForecaster(
  trainer: BuiltinTrainer,
  given: ParamInput,
  table: Table,
  opts: { source?: string; onStep?: (s: Step, total: number) => void } = {},
): Trained {
  const params = resolveParams(trainer, given);
  const lookback = intParam(params, 'lookback', 1, 52);
  const data = buildDataset(checkSeries(table, opts.source ?? 'series'), lookback);
  const base = {
    lookback,
    columns: [...COLUMNS],
    scaler: data.scaler,
    target: data.spec.target_scale,
  };
  if (trainer === 'ridge-forecast') {
    let alphas: number[];
    try {
      alphas = parseAlphas(String(params.alphas));
    } catch (err) {
      throw new InputError(`param ${(err as Error).message}`);
    }
    const fit = fitRidgePath(data.train, data.val, data.width, alphas, (s) =>
      opts.onStep?.(
        { step: s.step, trainLoss: s.trainLoss, valLoss: s.valLoss, label: `alpha=${s.alpha}` },
        alphas.length,
      ),
    );
    const steps = fit.steps.map((s) => ({
      step: s.step,
      trainLoss: s.trainLoss,
      valLoss: s.valLoss,
      label: `alpha=${s.alpha}`,
    }));
    return {
      trainer,
      params,
      data,
      forecaster: { ...base, head: fit.head },
      steps,
      best: steps[fit.best.step - 1]!,
      selected: { selected_alpha: fit.best.alpha },
    };
  }
  const epochs = intParam(params, 'epochs', 1, 5000);
  const fit = trainMlp(
    data.train,
    data.val,
    data.width,
    {
      hidden: intParam(params, 'hidden_size', 1, 256),
      epochs,
      learningRate: floatParam(params, 'learning_rate', 1e-6, 1),
      seed: intParam(params, 'seed', 0, 2147483647),
      // The last row of the window, the target's column.
      skip: (lookback - 1) * COLUMNS.length + COLUMNS.indexOf(TARGET),
    },
    (s) => opts.onStep?.({ step: s.epoch, trainLoss: s.trainLoss, valLoss: s.valLoss }, epochs),
  );
  const steps = fit.steps.map((s) => ({ step: s.epoch, trainLoss: s.trainLoss, valLoss: s.valLoss }));
  return {
    trainer,
    params,
    data,
    forecaster: { ...base, head: fit.head },
    steps,
    best: steps[fit.best.epoch - 1]!,
    selected: {},
  };
}
