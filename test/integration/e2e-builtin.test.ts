// Issue 10's "Done when", end to end against the real MLflow and Redis: the built-in ridge-forecast
// template (TypeScript, no Python) is enqueued, a worker trains it and stores an MLflow model (a
// LoggedModel), the policy judge re-scores its ONNX model on the held-out weeks, approves it and
// points `champion` at it; then `predict` by alias scores the held-out weeks in a run nested under
// the training run, its predictions equal onnxruntime run directly on the downloaded model, and the
// model loads in Python as an MLflow model (`mlflow.pyfunc.load_model("models:/<name>@champion")`)
// and gives the same forecast.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { judgeFromConfig } from '../../src/cli/judge.js';
import { loadConfig } from '../../src/config.js';
import { parseFeatureSpec } from '../../src/eval/features.js';
import { downloadModelDir } from '../../src/eval/model-dir.js';
import { parseCsv } from '../../src/eval/table.js';
import { windowsFromTable } from '../../src/eval/windows.js';
import { createLogger } from '../../src/log.js';
import { readArtifact } from '../../src/mlflow/artifacts.js';
import { taskQueueFromConfig, workerFromConfig } from '../../src/queue/from-config.js';
import type { PredictionSummary } from '../../src/queue/predict-attempt.js';
import type { TaskInfo, TaskQueue } from '../../src/queue/task-queue.js';
import { resolveModelRef } from '../../src/tracking/model-ref.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, runPythonMlflow } from '../support/python.js';
import { pyRegistry, reviewEnv } from '../support/review.js';
import { repoRoot } from '../support/services.js';
import { waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const modelName = uniqueName('e2e-ridge');
const experiment = uniqueName('e2e-builtin');
const logger = createLogger('warn');
let workDir = '';
let tasksDir = '';
let queue: TaskQueue;
let stop: (() => Promise<void>)[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-e2e-builtin-'));
  // The shipped template and data, promoting into a registered model of this test's own.
  tasksDir = await mkdtemp(path.join(tmpdir(), 'rw-e2e-tasks-'));
  await cp(path.join(repoRoot, 'tasks', 'ridge-forecast'), path.join(tasksDir, 'ridge-forecast'), {
    recursive: true,
  });
  await cp(path.join(repoRoot, 'tasks', 'data'), path.join(tasksDir, 'data'), { recursive: true });
  const yaml = path.join(tasksDir, 'ridge-forecast', 'task.yaml');
  const text = await readFile(yaml, 'utf8');
  expect(text).toContain('  mode: policy\n');
  await writeFile(yaml, text.replace('  mode: policy\n', `  mode: policy\n  model_name: ${modelName}\n`));
  const cfg = loadConfig(
    reviewEnv({ mlflowUrl, redisUrl, prefix: uniqueName('q-e2e-builtin'), tasksDir, workDir }),
  );
  queue = taskQueueFromConfig(cfg, client);
  const worker = await workerFromConfig(cfg, client, logger);
  const judge = await judgeFromConfig(cfg, logger);
  stop = [() => worker.close(), () => judge.close(), () => queue.close()];
}, 60_000);

afterAll(async () => {
  for (const s of stop) await s().catch(() => undefined);
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (tasksDir) await rm(tasksDir, { recursive: true, force: true });
});

async function ended(taskId: string, ms: number): Promise<TaskInfo> {
  return waitFor(
    `task ${taskId} to end`,
    async () => {
      const info = await queue.get(taskId);
      return info && ['completed', 'failed', 'cancelled'].includes(info.state) ? info : undefined;
    },
    { timeoutMs: ms },
  );
}

describe('e2e: a model trained without Python is reviewed, re-scored, promoted and used for prediction', () => {
  it('e2e: ridge-forecast (builtin) → worker → policy judge re-scores and approves → champion → predict by alias equals onnxruntime, nested under the training run → loads in Python with mlflow.pyfunc and forecasts the same', async () => {
    const started = Date.now();
    const { task } = await queue.enqueue({ template: 'ridge-forecast', experiment });
    const trained = await ended(task.taskId, 300_000);
    expect(trained.state, trained.reason).toBe('completed');
    const trainRunId = trained.runs.at(-1)!.run_id;
    const trainedMs = Date.now() - started;

    // The judge: re-scored on the holdout, approved, champion points at version 1.
    await waitFor(
      'the judge to promote the model',
      async () =>
        (await pyRegistry(mlflowUrl, modelName).catch(() => undefined))?.aliases.champion ? true : undefined,
      { timeoutMs: 180_000, intervalMs: 1_000 },
    );
    const registry = await pyRegistry(mlflowUrl, modelName);
    expect(registry.aliases.champion).toBe('1');
    const train = await pyGetRun(mlflowUrl, trainRunId);
    expect(train.tags['runwarden.eval.status']).toBe('ok');
    expect(train.metrics['eval.rmse']).toBeGreaterThan(0);
    expect(train.tags['runwarden.model_id']).toMatch(/^m-[0-9a-f]{32}$/);
    const promotedMs = Date.now() - started;

    // Predict by alias on the held-out weeks (a file under the input roots).
    const ref = `models:/${modelName}@champion`;
    const holdout = path.join(tasksDir, 'data', 'weekly_cases_holdout.csv');
    const { task: p } = await queue.enqueue({ predict: { model: ref, data: pathToFileURL(holdout).href } });
    const predicted = await ended(p.taskId, 180_000);
    expect(predicted.state, predicted.reason).toBe('completed');
    const summary = (predicted.result as { prediction: PredictionSummary }).prediction;
    const predictRun = await pyGetRun(mlflowUrl, predicted.runs.at(-1)!.run_id);
    expect(predictRun.status).toBe('FINISHED');
    expect(predictRun.tags['mlflow.parentRunId']).toBe(trainRunId);
    expect(predictRun.tags['runwarden.predict.model_version']).toBe(`${modelName}/1`);
    expect(predictRun.tags['runwarden.predict.model_id']).toBe(train.tags['runwarden.model_id']);

    // The same windows through onnxruntime directly, on the model downloaded from the registry.
    const model = await resolveModelRef(client, ref);
    const dir = path.join(workDir, 'champion');
    await downloadModelDir(client, model.artifactUri, dir);
    const features = parseFeatureSpec(JSON.parse(await readFile(path.join(dir, 'features.json'), 'utf8')));
    const w = windowsFromTable(parseCsv(await readFile(holdout, 'utf8')), features, { includeNext: true });
    const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
    const direct = Array.from(
      (await session.run({ [features.input]: new ort.Tensor('float32', w.x, w.dims) }))[features.output]!
        .data as Float32Array,
    );
    await session.release();
    expect(summary.rows).toBe(direct.length);
    const csv = parseCsv(
      (await readArtifact(client, predictRun.artifact_uri, 'predictions.csv', 10_000_000)).bytes.toString(
        'utf8',
      ),
    );
    expect(csv.rows).toHaveLength(direct.length);
    for (const [i, row] of csv.rows.entries()) expect(Number(row[1])).toBeCloseTo(direct[i]!, 4);
    expect(String(csv.rows.at(-1)![0])).toMatch(/^after:/);

    // Python: the champion loads as an MLflow model and forecasts the row after the table the same.
    const L = features.lookback;
    const C = features.columns.length;
    const last = Array.from({ length: L }, (_, l) =>
      Array.from({ length: C }, (_, k) => w.x[((w.dims[0] - 1) * L + l) * C + k]!),
    );
    const py = await runPythonMlflow<{ pred: number[]; flavors: string[] }>(
      `
import json, os
import numpy as np
import mlflow.pyfunc
m = mlflow.pyfunc.load_model(os.environ['RW_URI'])
out = m.predict(np.array([json.loads(os.environ['RW_X'])], dtype=np.float32))
v = list(out.values())[0] if isinstance(out, dict) else out
print(json.dumps({'pred': np.asarray(v, dtype=float).reshape(-1).tolist(), 'flavors': sorted(m.metadata.flavors.keys())}))
`,
      { trackingUri: mlflowUrl, env: { RW_URI: ref, RW_X: JSON.stringify(last) }, timeoutMs: 120_000 },
    );
    expect(py.flavors).toEqual(expect.arrayContaining(['onnx', 'python_function']));
    expect(py.pred[0]).toBeCloseTo(direct.at(-1)!, 4);
    console.info(
      `e2e builtin: trained in ${Math.round(trainedMs / 100) / 10} s, promoted after ${Math.round(promotedMs / 100) / 10} s, ` +
        `${summary.rows} predictions; eval.rmse ${train.metrics['eval.rmse']} vs test_rmse ${train.metrics.test_rmse}; ` +
        `forecast after the holdout ${direct.at(-1)} (Python ${py.pred[0]})`,
    );
  }, 600_000);
});
