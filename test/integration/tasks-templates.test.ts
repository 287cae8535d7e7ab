// Every shipped template runs for real through a worker process against the real MLflow server
// and Redis: GRU and LSTM (PyTorch), the AutoETS baseline and the Node.js seasonal-naive model.
// Each run is checked through MLflow's Python client: status, params, per-epoch history, the test
// metrics with the composite score, the model folder, the loss-curve PNG and workspace.zip. The
// ONNX templates' stored model.onnx, fed windows built from the series by their features.json
// (runwarden's own windowing), is run with onnxruntime-node: it must predict what the template
// wrote in predictions.csv, and its scaled errors must be the test metrics the run reported. ETS
// stores no ONNX model (by design, see tasks/ets-baseline/README.md).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseFeatureSpec } from '../../src/eval/features.js';
import { errorMetrics } from '../../src/eval/metrics.js';
import { parseCsv } from '../../src/eval/table.js';
import { windowsFromTable } from '../../src/eval/windows.js';
import { downloadFile, listArtifacts } from '../../src/index.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { verifyZip } from '../../src/runners/zip.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyMetricHistory, runPythonMlflow } from '../support/python.js';
import { repoRoot } from '../support/services.js';
import { sleep, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const prefix = uniqueName('q-templates');
const tasksDir = path.join(repoRoot, 'tasks');
const env = {
  ...process.env,
  MLFLOW_TRACKING_URI: mlflowUrl,
  REDIS_URL: redisUrl,
  RUNWARDEN_QUEUE_PREFIX: prefix,
  RUNWARDEN_TASKS_DIR: tasksDir,
  RUNWARDEN_LOG_LEVEL: 'warn',
};
let worker: ChildProcess;
let queue: TaskQueue;
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rw-templates-'));
  // Build (or confirm) the templates' Python environments first: minutes on a fresh machine.
  const prepare = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/cli/index.ts'), 'prepare'],
    {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  prepare.stdout.on('data', (d) => {
    out += d;
  });
  prepare.stderr.on('data', (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((r) => prepare.on('exit', r));
  if (code !== 0) throw new Error(`runwarden prepare failed:\n${out}`);
  worker = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/index.ts'), 'worker'], {
    cwd: repoRoot,
    env: { ...env, RUNWARDEN_WORKER_CONCURRENCY: '2' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  queue = new TaskQueue({ redisUrl, prefix, tasksDir, client });
}, 1_800_000);

afterAll(async () => {
  // SIGTERM, and SIGKILL if the worker has not exited 30 s later (no task runs by now).
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(30_000).then(() => 'timeout' as const)])) === 'timeout') {
      worker.kill('SIGKILL');
      await exited;
    }
  }
  await queue?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * The ONNX model folder of a finished run, checked from the outside: features.json parses, the
 * input example has 1-5 windows of the right shape, and model.onnx on every window of the series
 * predicts predictions.csv (written with 3 decimals; the Python templates check ONNX against torch
 * to 1e-3 themselves) with errors equal to the run's reported test metrics; and Python's
 * mlflow.pyfunc loads the run's model/ and predicts the input example as onnxruntime-node does.
 */
async function checkOnnxModel(
  template: string,
  runId: string,
  artifactUri: string,
  metrics: Record<string, number | undefined>,
): Promise<void> {
  const local = path.join(dir, `${template}-model`);
  for (const f of ['model.onnx', 'features.json', 'input_example.json'])
    await downloadFile(client, artifactUri, `model/${f}`, path.join(local, f));
  await downloadFile(client, artifactUri, 'predictions/predictions.csv', path.join(local, 'predictions.csv'));
  const spec = parseFeatureSpec(JSON.parse(await readFile(path.join(local, 'features.json'), 'utf8')));
  expect(spec.input).toBe('window');
  expect(spec.output).toBe('forecast');
  expect(spec.target).toBe('cases');
  const example = JSON.parse(await readFile(path.join(local, 'input_example.json'), 'utf8')) as number[][][];
  expect(example.length).toBeGreaterThanOrEqual(1);
  expect(example.length).toBeLessThanOrEqual(5);
  for (const w of example) {
    expect(w.length).toBe(spec.lookback);
    for (const row of w) expect(row.length).toBe(spec.columns.length);
  }

  const series = parseCsv(await readFile(path.join(tasksDir, 'data', 'weekly_cases.csv'), 'utf8'));
  const windows = windowsFromTable(series, spec);
  const session = await ort.InferenceSession.create(path.join(local, 'model.onnx'));
  let predicted: Float32Array;
  try {
    const out = await session.run({ [spec.input]: new ort.Tensor('float32', windows.x, windows.dims) });
    predicted = out[spec.output]!.data as Float32Array;
  } finally {
    await session.release();
  }
  expect(predicted.length).toBe(windows.dims[0]);
  const byWeek = new Map(windows.keys.map((k, i) => [k, i]));
  const written = parseCsv(await readFile(path.join(local, 'predictions.csv'), 'utf8'));
  expect(written.rows.length).toBe(52);
  const actual: number[] = [];
  const onnx: number[] = [];
  let worst = 0;
  for (const [week, want, pred] of written.rows) {
    const i = byWeek.get(String(week));
    expect(i, `week ${week} has a window`).toBeDefined();
    worst = Math.max(worst, Math.abs(predicted[i!]! - Number(pred)));
    actual.push(Number(want));
    onnx.push(predicted[i!]!);
  }
  expect(worst, `${template}: max |onnx - predictions.csv| in cases`).toBeLessThanOrEqual(2e-3);
  const m = errorMetrics(actual, onnx, spec.target_scale.std);
  expect(m.rmse).toBeCloseTo(metrics.test_rmse!, 4);
  expect(m.mae).toBeCloseTo(metrics.test_mae!, 4);
  expect(m.composite).toBeCloseTo(metrics.composite!, 4);

  // The stored folder is an MLflow model: Python's pyfunc loads runs:/<run>/model and predicts the
  // input example as onnxruntime-node does.
  const session2 = await ort.InferenceSession.create(path.join(local, 'model.onnx'));
  let fromNode: Float32Array;
  try {
    const flat = Float32Array.from(example.flat(2));
    const out = await session2.run({
      [spec.input]: new ort.Tensor('float32', flat, [example.length, spec.lookback, spec.columns.length]),
    });
    fromNode = out[spec.output]!.data as Float32Array;
  } finally {
    await session2.release();
  }
  const py = await runPythonMlflow<{ predictions: number[] }>(
    `
import json, sys
import numpy as np
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(f"runs:/{sys.argv[1]}/model")
x = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
out = model.predict(x)
pred = out[sys.argv[3]] if isinstance(out, dict) else out[sys.argv[3]].to_numpy()
print(json.dumps({"predictions": np.asarray(pred, dtype=np.float64).reshape(-1).tolist()}))
`,
    { trackingUri: mlflowUrl, args: [runId, JSON.stringify(example), spec.output], timeoutMs: 180_000 },
  );
  expect(py.predictions.length).toBe(example.length);
  py.predictions.forEach((p, i) => {
    expect(
      Math.abs(p - fromNode[i]!),
      `${template}: pyfunc vs onnxruntime-node, example ${i}`,
    ).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(fromNode[i]!)));
  });
}

const onnxTemplates = new Set(['gru-forecast', 'lstm-forecast', 'seasonal-naive-node']);

const cases: [string, Record<string, number | string>, string][] = [
  ['gru-forecast', { epochs: 3 }, 'val_loss'],
  ['lstm-forecast', { epochs: 3 }, 'val_loss'],
  ['ets-baseline', {}, 'val_loss'],
  ['seasonal-naive-node', {}, 'val_loss'],
];

describe('shipped templates', () => {
  it.each(cases)(
    '%s: runs through a worker into a FINISHED run with history, test metrics, model (ONNX and an MLflow model predicting what the run reported, where the family allows), loss curve and workspace.zip',
    async (template, params, lossKey) => {
      const { task } = await queue.enqueue({ template, params, experiment: uniqueName(`tpl-${template}`) });
      const info = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 600_000);
      expect(info.state, info.reason).toBe('completed');
      const runId = info.runs.at(-1)!.run_id;
      const run = await pyGetRun(mlflowUrl, runId);
      expect(run.status).toBe('FINISHED');
      for (const [k, v] of Object.entries(params)) expect(run.params[k]).toBe(String(v));
      expect(run.tags['runwarden.task_id']).toBe(task.taskId);
      expect(run.tags['runwarden.config_hash']).toBe(task.configHash);
      expect(run.tags['runwarden.model_exists']).toBe('true');
      const { test_rmse: rmse, test_mae: mae, test_mse: mse, composite } = run.metrics;
      expect([rmse, mae, mse, composite].every((x) => typeof x === 'number' && Number.isFinite(x))).toBe(
        true,
      );
      expect(composite).toBeCloseTo(0.5 * rmse! + 0.3 * mae! + 0.2 * mse!, 4);
      const history = await pyMetricHistory(mlflowUrl, runId, lossKey);
      expect(history.length).toBeGreaterThanOrEqual(2);
      expect((await pyMetricHistory(mlflowUrl, runId, 'train_loss')).length).toBe(history.length);

      const files = (await listArtifacts(client, runId, '', { recursive: true })).map((f) => f.path);
      expect(files).toEqual(
        expect.arrayContaining(['workspace.zip', 'plots/loss_curve.png', 'logs/stdout.log']),
      );
      expect(files.some((f) => f?.startsWith('model/') && f !== 'model/')).toBe(true);
      if (onnxTemplates.has(template)) {
        expect(files).toEqual(
          expect.arrayContaining(['model/model.onnx', 'model/features.json', 'model/input_example.json']),
        );
        expect(run.tags.onnx_export).toBe('ok');
        expect(run.tags['runwarden.model_format']).toBe('onnx');
        expect(run.tags['runwarden.model_id']).toMatch(/^m-/);
        await checkOnnxModel(template, runId, run.artifact_uri, run.metrics);
      } else {
        expect(files).not.toContain('model/model.onnx');
        expect(run.tags['runwarden.model_id']).toBeUndefined();
      }
      const png = path.join(dir, `${template}.png`);
      await downloadFile(client, run.artifact_uri, 'plots/loss_curve.png', png);
      expect((await readFile(png)).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      const zip = path.join(dir, `${template}.zip`);
      await downloadFile(client, run.artifact_uri, 'workspace.zip', zip);
      await expect(
        verifyZip(zip, Number(run.tags['runwarden.workspace_zip_entries'])),
      ).resolves.toBeUndefined();
    },
    900_000,
  );
});
