/**
 * Seasonal-naive and moving-average forecasters of weekly cases, in plain Node (no npm packages),
 * to show that the runwarden runner does not care what language a template is written in.
 *
 *   node train.mjs --data <csv> --out <output_dir> [--windows 1,2,4] [--season-length 52]
 *
 * A grid over window sizes w, one grid point per step (the "epochs" of a model with nothing to
 * train): moving_average(w) forecasts week t as the mean of the w weeks before it;
 * seasonal_naive(w) takes week t - season and shifts it by how much the last w weeks differ from
 * the same w weeks a season earlier. Each step logs train_loss and val_loss (MSE of one-step
 * forecasts, cases standardised on the training split, exactly as the Python templates do); the
 * best val_loss is scored on the last 52 weeks. Writes model/model.json, predictions.csv and
 * plots/loss_curve.png (drawn by png.mjs). Both forecasts are fixed linear functions of the last
 * weeks, so the chosen one is also written as ONNX (onnx.mjs): model/model.onnx with
 * model/features.json and model/input_example.json, runwarden's window-forecaster model folder.
 * Importing this file runs nothing (the exports are for tests); running it trains.
 */
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { linearWindowModel } from './onnx.mjs';
import { lineChart } from './png.mjs';
import * as rw from './rwproto.mjs';

const VAL_WEEKS = 52;
const TEST_WEEKS = 52;

function readSeries(file) {
  const [header, ...rows] = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const cols = header.split(',').map((h) => h.trim());
  const wi = cols.indexOf('week');
  const ci = cols.indexOf('cases');
  if (wi < 0 || ci < 0) throw new Error(`${file}: needs columns week and cases; has ${cols.join(', ')}`);
  const data = rows.map((r) => r.split(',')).map((r) => ({ week: r[wi], cases: Number(r[ci]) }));
  data.sort((a, b) => (a.week < b.week ? -1 : a.week > b.week ? 1 : 0));
  const bad = data.findIndex((d) => !Number.isFinite(d.cases));
  if (bad >= 0) throw new Error(`${file}: week ${data[bad].week} has no numeric cases`);
  if (data.length < VAL_WEEKS + TEST_WEEKS + 26)
    throw new Error(`${file}: ${data.length} rows; need at least ${VAL_WEEKS + TEST_WEEKS + 26}`);
  return data;
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** One-step forecast of y[t] from y[0..t-1], or NaN when there is not enough history. */
export function forecast(y, t, { method, window: w, season }) {
  if (method === 'moving_average') return t >= w ? mean(y.slice(t - w, t)) : Number.NaN;
  if (t < season + w) return Number.NaN;
  return y[t - season] + mean(y.slice(t - w, t)) - mean(y.slice(t - season - w, t - season));
}

/**
 * The same forecast as weights on the `lookback` weeks before t (oldest first): forecast(y, t) =
 * Σ_k y[t - lookback + k] · weights[k]. Moving average: lookback w, each 1/w. Seasonal naive:
 * lookback season + w; +1 on week t - season, +1/w on each of the last w weeks, -1/w on each of
 * the w weeks a season before those (weights add where they overlap, when w > season).
 */
export function linearWeights({ method, window: w, season }) {
  if (method === 'moving_average') return Array(w).fill(1 / w);
  const weights = Array(season + w).fill(0);
  weights[w] += 1;
  for (let k = 0; k < w; k++) {
    weights[season + k] += 1 / w;
    weights[k] -= 1 / w;
  }
  return weights;
}

/** Writes model.onnx, features.json and input_example.json (the first 3 test windows) into dir. */
function writeOnnxFolder(dir, y, model, z, testStart) {
  const weights = linearWeights(model);
  const lookback = weights.length;
  // The weights must be the model: check them against forecast() on every test week first.
  for (let t = testStart; t < y.length; t++) {
    const dot = weights.reduce((acc, wk, k) => acc + wk * y[t - lookback + k], 0);
    const f = forecast(y, t, model);
    if (Math.abs(dot - f) > 1e-9 * Math.max(1, Math.abs(f)))
      throw new Error(
        `ONNX weights disagree with ${model.method}(${model.window}) at row ${t}: ${dot} vs ${f}`,
      );
  }
  const doc = `${model.method}(window=${model.window}, season_length=${model.season}) on weekly cases`;
  writeFileSync(path.join(dir, 'model.onnx'), linearWindowModel(weights, { docString: doc }));
  const features = {
    kind: 'window',
    time_column: 'week',
    columns: ['cases'],
    target: 'cases',
    lookback,
    input: 'window',
    output: 'forecast',
    target_scale: { mean: z.mean, std: z.std },
    // The test split (the last rows from testStart): the judge's claim check re-scores these.
    test_rows: y.length - testStart,
  };
  writeFileSync(path.join(dir, 'features.json'), `${JSON.stringify(features, null, 2)}\n`);
  const example = [0, 1, 2].map((i) => y.slice(testStart + i - lookback, testStart + i).map((v) => [v]));
  writeFileSync(path.join(dir, 'input_example.json'), `${JSON.stringify(example)}\n`);
  return lookback;
}

/** MSE on standardised cases over weeks [lo, hi) that have a forecast. */
function loss(y, lo, hi, model, z) {
  const errs = [];
  for (let t = lo; t < hi; t++) {
    const f = forecast(y, t, model);
    if (Number.isFinite(f)) errs.push(((y[t] - f) / z.std) ** 2);
  }
  return errs.length ? mean(errs) : Number.NaN;
}

function main() {
  const { values: a } = parseArgs({
    options: {
      data: { type: 'string' },
      out: { type: 'string', default: 'output' },
      windows: { type: 'string', default: '1,2,3,4,6,8,12,16' },
      'season-length': { type: 'string', default: '52' },
    },
  });
  if (!a.data) throw new Error('--data <csv> is required');
  const windows = a.windows.split(',').map((s) => Number(s.trim()));
  const season = Number(a['season-length']);
  if (!windows.length || windows.some((w) => !Number.isInteger(w) || w < 1 || w > 52))
    throw new Error(`--windows ${a.windows}: expected comma-separated integers 1..52`);
  if (!Number.isInteger(season) || season < 1)
    throw new Error(`--season-length ${season}: expected a positive integer`);
  const started = Date.now();

  const rows = readSeries(a.data);
  const y = rows.map((r) => r.cases);
  const n = y.length;
  const valStart = n - TEST_WEEKS - VAL_WEEKS;
  const testStart = n - TEST_WEEKS;
  const train = y.slice(0, valStart);
  const z = { mean: mean(train), std: Math.sqrt(mean(train.map((v) => (v - mean(train)) ** 2))) || 1 };

  rw.tag('model_family', 'naive');
  rw.tag('language', `node ${process.version}`);
  for (const [k, v] of Object.entries({
    windows: windows.join(','),
    season_length: season,
    n_train: valStart,
    n_val: VAL_WEEKS,
    n_test: TEST_WEEKS,
    features: 'cases',
  }))
    rw.param(k, v);

  const grid = ['moving_average', 'seasonal_naive'].flatMap((method) =>
    windows.map((w) => ({ method, window: w, season })),
  );
  const trainHist = [];
  const valHist = [];
  let best = null;
  grid.forEach((model, i) => {
    const step = i + 1;
    const trainLoss = loss(y, 0, valStart, model, z);
    const valLoss = loss(y, valStart, testStart, model, z);
    trainHist.push(trainLoss);
    valHist.push(valLoss);
    rw.metric('train_loss', trainLoss, step);
    rw.metric('val_loss', valLoss, step);
    rw.progress(step / grid.length, `grid ${step}/${grid.length}: ${model.method}(${model.window})`);
    console.log(
      `step ${step} ${model.method}(window=${model.window}) train_loss=${trainLoss.toFixed(4)} val_loss=${valLoss.toFixed(4)}`,
    );
    if (Number.isFinite(valLoss) && (!best || valLoss < best.valLoss)) best = { ...model, step, valLoss };
  });
  if (!best) throw new Error('no grid point had enough history to forecast the validation weeks');

  const preds = [];
  for (let t = testStart; t < n; t++) preds.push(forecast(y, t, best));
  const errs = preds.map((f, k) => (y[testStart + k] - f) / z.std);
  const mse = mean(errs.map((e) => e * e));
  const rmse = Math.sqrt(mse);
  const mae = mean(errs.map(Math.abs));
  const scores = {
    test_rmse: rmse,
    test_mae: mae,
    test_mse: mse,
    composite: 0.5 * rmse + 0.3 * mae + 0.2 * mse,
    test_rmse_cases: rmse * z.std,
    test_mae_cases: mae * z.std,
  };
  rw.param('selected_method', best.method);
  rw.param('selected_window', best.window);
  rw.tag('selected_model', `${best.method}(${best.window})`);
  rw.metric('best_step', best.step);
  rw.metric('best_val_loss', best.valLoss);
  for (const [k, v] of Object.entries(scores)) rw.metric(k, v);

  mkdirSync(path.join(a.out, 'model'), { recursive: true });
  mkdirSync(path.join(a.out, 'plots'), { recursive: true });
  const history = y.slice(-(season + best.window));
  const model = {
    method: best.method,
    window: best.window,
    season_length: season,
    target: 'cases',
    scaler: z,
    history_weeks: history.length,
    history,
    last_week: rows[n - 1].week,
    next_week_forecast: forecast([...y], n, best),
    forecast: 'one-step-ahead; see the template README for the formulas',
  };
  writeFileSync(path.join(a.out, 'model', 'model.json'), `${JSON.stringify(model, null, 2)}\n`);
  const lookback = writeOnnxFolder(path.join(a.out, 'model'), y, best, z, testStart);
  rw.tag('onnx_export', 'ok');
  rw.param('onnx_lookback', lookback);
  const csv = [
    'week,actual_cases,predicted_cases',
    ...preds.map((f, k) => `${rows[testStart + k].week},${y[testStart + k]},${f.toFixed(3)}`),
  ];
  writeFileSync(path.join(a.out, 'predictions.csv'), `${csv.join('\n')}\n`);
  rw.artifact(path.relative(process.cwd(), path.join(a.out, 'predictions.csv')), 'predictions');
  const png = lineChart({
    title: 'seasonal naive / moving average: loss per grid step',
    xlabel: `grid step (1-${windows.length} moving average, then seasonal naive)`,
    series: [
      { name: 'train_loss', values: trainHist, color: [31, 119, 180] },
      { name: 'val_loss', values: valHist, color: [255, 127, 14] },
    ],
  });
  writeFileSync(path.join(a.out, 'plots', 'loss_curve.png'), png);
  rw.artifact(path.relative(process.cwd(), path.join(a.out, 'plots', 'loss_curve.png')), 'plots');
  rw.progress(
    1,
    `done in ${((Date.now() - started) / 1000).toFixed(2)}s; selected ${best.method}(${best.window}); test composite ${scores.composite.toFixed(4)}`,
  );
}

// Run as a script (not imported): compare real paths, as Node resolves symlinks of the main module.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  try {
    main();
  } catch (err) {
    console.error(err?.stack ?? String(err));
    console.error(`task failed: ${err?.message ?? err}`);
    process.exitCode = 1;
  }
}
