// The built-in trainers (runner: builtin, no Python) through a real worker process against the real
// MLflow server and Redis: ridge-forecast and mlp-forecast end in a FINISHED run with per-step
// history, test metrics and composite, the ONNX model folder, the loss-curve PNG and
// workspace.zip; a long builtin task is cancelled like a shell one (its run ends KILLED). And the
// exported model, made an MLflow model folder, predicts through Python's mlflow.pyfunc.load_model
// exactly what the TypeScript model predicts, and the judge's re-score on the holdout backs the
// metrics each run reported.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { rescoreRun } from '../../src/eval/rescore.js';
import { parseCsv } from '../../src/eval/table.js';
import { downloadFile, listArtifacts } from '../../src/index.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { loadTemplate } from '../../src/queue/templates.js';
import { predictRaw } from '../../src/runners/builtin/model.js';
import { windowsAsList, writeModelFolder } from '../../src/runners/builtin/outputs.js';
import { trainForecaster } from '../../src/runners/builtin/trainers.js';
import { verifyZip } from '../../src/runners/zip.js';
import { writeMlflowModel } from '../../src/tracking/mlflow-model.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyMetricHistory, runPythonMlflow } from '../support/python.js';
import { repoRoot } from '../support/services.js';
import {
  startWorkerProcess,
  stopAllWorkers,
  type WorkerEnv,
  waitFor,
  waitForAttemptRun,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const tasksDir = path.join(repoRoot, 'tasks');
const seriesFile = path.join(tasksDir, 'data', 'weekly_cases.csv');

describe('built-in trainers through a worker', () => {
  const prefix = uniqueName('q-builtin');
  let workDir = '';
  let env: WorkerEnv;
  let queue: TaskQueue;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'rw-builtin-'));
    env = { mlflowUrl, redisUrl, prefix, workDir, env: { RUNWARDEN_TASKS_DIR: tasksDir } };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir, client });
    await startWorkerProcess(env);
  });

  afterAll(async () => {
    await stopAllWorkers();
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const cases: [string, Record<string, number | string>, number, string][] = [
    ['ridge-forecast', { alphas: '0.1,1,10' }, 3, 'best_step'],
    ['mlp-forecast', { epochs: 40, hidden_size: 8 }, 40, 'best_epoch'],
  ];

  it.each(cases)(
    "%s: runs through a worker into a FINISHED run with per-step history, test metrics, the ONNX MLflow model, loss curve and workspace.zip, and the judge's holdout re-score backs its metrics",
    async (template, params, steps, bestKey) => {
      const { task } = await queue.enqueue({
        template,
        params,
        experiment: uniqueName(`builtin-${template}`),
      });
      const info = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 300_000);
      expect(info.state, info.reason).toBe('completed');
      const runId = info.runs.at(-1)!.run_id;
      const run = await pyGetRun(mlflowUrl, runId);
      expect(run.status).toBe('FINISHED');
      for (const [k, v] of Object.entries(params)) expect(run.params[k]).toBe(String(v));
      expect(run.params.n_test).toBe('52');
      expect(run.tags['runwarden.model_exists']).toBe('true');
      expect(run.tags.trainer).toBe(`builtin:${template}`);
      const { test_rmse: rmse, test_mae: mae, test_mse: mse, composite } = run.metrics;
      expect([rmse, mae, mse, composite].every((x) => typeof x === 'number' && Number.isFinite(x))).toBe(
        true,
      );
      expect(composite).toBeCloseTo(0.5 * rmse! + 0.3 * mae! + 0.2 * mse!, 6);
      expect(run.metrics[bestKey]).toBeGreaterThanOrEqual(1);
      const val = await pyMetricHistory(mlflowUrl, runId, 'val_loss');
      expect(val.map((p) => p.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
      expect((await pyMetricHistory(mlflowUrl, runId, 'train_loss')).length).toBe(steps);

      const files = (await listArtifacts(client, runId, '', { recursive: true })).map((f) => f.path);
      expect(files).toEqual(
        expect.arrayContaining([
          'workspace.zip',
          'plots/loss_curve.png',
          'predictions/predictions.csv',
          'model/model.onnx',
          'model/MLmodel',
          'model/features.json',
          'model/input_example.json',
        ]),
      );
      const png = path.join(workDir, `${template}.png`);
      await downloadFile(client, run.artifact_uri, 'plots/loss_curve.png', png);
      expect((await readFile(png)).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      const features = path.join(workDir, `${template}.features.json`);
      await downloadFile(client, run.artifact_uri, 'model/features.json', features);
      expect(JSON.parse(await readFile(features, 'utf8'))).toMatchObject({
        kind: 'window',
        columns: ['cases', 'rainfall', 'temperature'],
        target: 'cases',
        lookback: 8,
        input: 'window',
        output: 'forecast',
      });
      // The judge's re-score of the stored ONNX model on the 104 holdout weeks backs what it reported.
      const rescore = await rescoreRun(client, {
        run: {
          runId,
          artifactUri: run.artifact_uri,
          metrics: run.metrics as Record<string, number>,
          tags: run.tags,
        },
        def: loadTemplate(tasksDir, template).review!.rescore!,
        tasksDir,
        timestamp: Date.now(),
      });
      expect(rescore.status, rescore.reason).toBe('ok');
      expect(rescore.flag).toBeUndefined();
      expect(rescore.rows).toBe(96);
      expect(rescore.worstGap).toBeLessThan(1);
      // The claim check: the model on its own 52 test rows of the training input equals what it reported.
      expect(rescore.claim?.status, rescore.claim?.reason).toBe('ok');
      expect(rescore.claim?.rows).toBe(52);
      expect(Math.abs(rescore.claim!.worstGap!)).toBeLessThan(1e-3);
      const zip = path.join(workDir, `${template}.zip`);
      await downloadFile(client, run.artifact_uri, 'workspace.zip', zip);
      await expect(
        verifyZip(zip, Number(run.tags['runwarden.workspace_zip_entries'])),
      ).resolves.toBeUndefined();
    },
    400_000,
  );

  it('mlp-forecast: a running builtin task that is cancelled stops, and its run ends KILLED', async () => {
    const { task } = await queue.enqueue({
      template: 'mlp-forecast',
      params: { epochs: 5000, hidden_size: 256, lookback: 52 },
      experiment: uniqueName('builtin-cancel'),
    });
    const { runId } = await waitForAttemptRun(queue, task.taskId, 1, 120_000);
    // Training has started: the first epochs are in MLflow.
    await waitFor(
      'the first val_loss points',
      async () => (await pyMetricHistory(mlflowUrl, runId, 'val_loss')).length > 0,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    await queue.cancel(task.taskId, 'enough');
    const info = await waitForTaskState(queue, task.taskId, ['cancelled', 'completed', 'failed'], 120_000);
    expect(info.state).toBe('cancelled');
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('KILLED');
    expect((await pyMetricHistory(mlflowUrl, runId, 'val_loss')).length).toBeLessThan(5000);
  }, 300_000);
});

describe('built-in models in Python', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['ridge-forecast', {}],
    ['mlp-forecast', { epochs: 30 }],
  ] as const)(
    '%s: the exported MLflow model predicts through mlflow.pyfunc.load_model what the TypeScript model predicts, to 1e-5',
    async (trainer, params) => {
      dir = await mkdtemp(path.join(tmpdir(), 'rw-builtin-pyfunc-'));
      const t = trainForecaster(trainer, params, parseCsv(await readFile(seriesFile, 'utf8')));
      const modelDir = path.join(dir, 'model');
      await writeModelFolder(modelDir, t.forecaster, t.data.spec, t.data.test.raw, 'test');
      await writeMlflowModel(modelDir);
      const { raw, count } = t.data.train;
      const lookback = t.forecaster.lookback;
      const windows = path.join(dir, 'windows.json');
      await writeFile(windows, JSON.stringify(windowsAsList(raw, lookback, 3, count)));
      const py = await runPythonMlflow<{ predictions: number[]; shape: number[] }>(
        `
import json, sys
import numpy as np
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
x = np.asarray(json.load(open(sys.argv[2])), dtype=np.float32)
out = model.predict(x)
pred = out["forecast"] if isinstance(out, dict) else out["forecast"].to_numpy()
pred = np.asarray(pred, dtype=np.float64).reshape(-1)
print(json.dumps({"predictions": pred.tolist(), "shape": list(x.shape)}))
`,
        { trackingUri: mlflowUrl, args: [modelDir, windows], timeoutMs: 120_000 },
      );
      expect(py.shape).toEqual([count, lookback, 3]);
      // The windows went through JSON at float32 precision (7 significant digits): the same values.
      const ts = predictRaw(t.forecaster, Float32Array.from(windowsAsList(raw, lookback, 3, count).flat(2)));
      expect(py.predictions.length).toBe(count);
      let worst = 0;
      for (let i = 0; i < count; i++)
        worst = Math.max(worst, Math.abs(py.predictions[i]! - ts[i]!) / Math.max(1, Math.abs(ts[i]!)));
      expect(worst).toBeLessThan(1e-5);
    },
    180_000,
  );
});
