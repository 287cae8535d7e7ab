/**
 * The entry of runwarden's built-in trainers, run by the worker as a child process for templates
 * with `runner: builtin` (argv from command.ts):
 *
 *   node <this file> <ridge-forecast|mlp-forecast> --config config.yml
 *
 * It reads the params, the `series` input and `output_dir` from config.yml, trains, and speaks the
 * stdout line protocol: params and tags, train_loss/val_loss per step with progress, best step and
 * validation loss, test metrics (test_rmse, test_mae, test_mse on cases standardised with the
 * training split, composite, and rmse/mae in cases), the artifacts. Files: see outputs.ts. Bad
 * input (unknown trainer, missing column, too few rows, a parameter out of range) ends with exit
 * code 1 and one `task failed: ...` line on stderr; exit 2 is a usage error.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { errorMetrics } from '../../eval/metrics.js';
import { parseCsv } from '../../eval/table.js';
import { BUILTIN_TRAINERS, type BuiltinTrainer } from '../../model/template.js';
import { InputError } from './dataset.js';
import { createEmitter } from './emit.js';
import { predictRaw } from './model.js';
import { writeLossCurve, writeModelFolder, writePredictions } from './outputs.js';
import { resolveParams, trainForecaster } from './trainers.js';

class UsageError extends Error {}

interface Config {
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  output_dir?: string;
}

async function readConfig(file: string): Promise<Config> {
  const raw = (parseYaml(await readFile(file, 'utf8')) ?? {}) as Partial<Config>;
  if (typeof raw !== 'object') throw new InputError(`${file}: not a YAML mapping`);
  return { params: raw.params ?? {}, inputs: raw.inputs ?? {}, output_dir: raw.output_dir };
}

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', default: 'config.yml' },
      data: { type: 'string' },
      out: { type: 'string' },
    },
    allowPositionals: true,
  });
  const trainer = positionals[0] as BuiltinTrainer | undefined;
  if (!trainer || !BUILTIN_TRAINERS.includes(trainer) || positionals.length > 1)
    throw new UsageError(
      `usage: <${BUILTIN_TRAINERS.join('|')}> --config config.yml [--data csv] [--out dir]`,
    );
  const started = performance.now();
  const config = await readConfig(values.config!);
  const series = values.data ?? config.inputs.series;
  if (!series) throw new InputError('no input series: set inputs.series in config.yml or pass --data');
  const outDir = path.resolve(values.out ?? config.output_dir ?? 'output');
  const rw = createEmitter();

  rw.tag('model_family', trainer === 'ridge-forecast' ? 'linear' : 'mlp');
  rw.tag('trainer', `builtin:${trainer}`);
  for (const [k, v] of Object.entries(resolveParams(trainer, config.params))) rw.param(k, v);
  const table = parseCsv(await readFile(series, 'utf8'), { maxRows: 100_000 });
  const every = (total: number) => Math.max(1, Math.floor(total / 100));
  const t = trainForecaster(trainer, config.params, table, {
    source: path.basename(series),
    onStep: (s, total) => {
      rw.metric('train_loss', s.trainLoss, s.step);
      rw.metric('val_loss', s.valLoss, s.step);
      if (s.step % every(total) === 0 || s.step === total)
        rw.progress(s.step / total, `step ${s.step}/${total}${s.label ? ` (${s.label})` : ''}`);
      if (s.step % every(total) === 0 || s.step === total)
        console.log(
          `step ${s.step}/${total} train_loss=${s.trainLoss.toFixed(4)} val_loss=${s.valLoss.toFixed(4)}`,
        );
    },
  });
  const reported = { ...t.selected, ...t.data.sizes, features: t.data.spec.columns.join(',') };
  for (const [k, v] of Object.entries(reported)) rw.param(k, v);

  const { data, forecaster } = t;
  const pred = predictRaw(forecaster, data.test.raw);
  const m = errorMetrics(data.test.actual, pred, data.spec.target_scale.std);
  const bestKey = trainer === 'ridge-forecast' ? 'best_step' : 'best_epoch';
  rw.metric(bestKey, t.best.step);
  rw.metric('best_val_loss', t.best.valLoss);
  const scores = {
    test_rmse: m.rmse,
    test_mae: m.mae,
    test_mse: m.mse,
    composite: m.composite,
    test_rmse_cases: m.rmse * data.spec.target_scale.std,
    test_mae_cases: m.mae * data.spec.target_scale.std,
  };
  for (const [k, v] of Object.entries(scores)) rw.metric(k, v);

  const doc = `runwarden builtin ${trainer}: next week's ${data.spec.target} from ${forecaster.lookback} raw weeks of ${data.spec.columns.join(', ')}`;
  await writeModelFolder(path.join(outDir, 'model'), forecaster, data.spec, data.test.raw, doc);
  rw.tag('onnx_export', 'ok');
  const predictions = path.join(outDir, 'predictions.csv');
  await writePredictions(predictions, data.test.keys, data.test.actual, pred);
  rw.artifact(predictions, 'predictions');
  const plot = path.join(outDir, 'plots', 'loss_curve.png');
  const title =
    trainer === 'ridge-forecast' ? 'ridge forecaster: loss per alpha' : 'MLP forecaster: loss per epoch';
  const xlabel = trainer === 'ridge-forecast' ? `step (alpha ${String(t.params.alphas)})` : 'epoch';
  await writeLossCurve(plot, t.steps, title, xlabel);
  rw.artifact(plot, 'plots');
  const secs = ((performance.now() - started) / 1000).toFixed(2);
  rw.progress(1, `done in ${secs}s; ${bestKey} ${t.best.step}; test composite ${m.composite.toFixed(4)}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error;
  if (!(e instanceof InputError || e instanceof UsageError || (e as { code?: string }).code))
    console.error(e?.stack ?? String(err));
  console.error(`task failed: ${e?.message ?? String(err)}`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
});
