// Prediction against real MLflow and Redis, with `runwarden worker` and `runwarden serve` running
// as their own processes: a model registered (alias champion, version, logged model id) or stored
// in a run (runs:/) predicts on future data; the predictions equal onnxruntime run directly on the
// same windows; the prediction run nests under the training run with its lineage tags, params,
// metric and predictions.csv/json (read back with MLflow's Python client). A model from a FAILED
// training run, or one whose workspace says no model exists, is refused with the reason and opens
// no run; a malformed reference is MODEL_REF_INVALID; a tensor of the wrong shape is
// MODEL_INPUT_MISMATCH naming the input.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCode } from '../../src/errors/index.js';
import { parseFeatureSpec } from '../../src/eval/features.js';
import { parseCsv } from '../../src/eval/table.js';
import { windowsFromTable } from '../../src/eval/windows.js';
import { readArtifact } from '../../src/mlflow/artifacts.js';
import type { AttemptSettings } from '../../src/queue/attempt-types.js';
import type { PredictionSummary } from '../../src/queue/predict-attempt.js';
import { loadData } from '../../src/queue/predict-data.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { getOrCreateExperiment } from '../../src/tracking/experiments.js';
import { logModel } from '../../src/tracking/logged-model.js';
import { writeMlflowModel } from '../../src/tracking/mlflow-model.js';
import { registerModel } from '../../src/tracking/models.js';
import { searchRuns } from '../../src/tracking/search.js';
import { startRun } from '../../src/tracking/start-run.js';
import { testClient, uniqueName } from '../support/clients.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { call, callError, httpClient, type ServeProcess, startServe } from '../support/mcp.js';
import { writeTinyForecaster } from '../support/onnx-model.js';
import { pyGetRun, pyListArtifacts } from '../support/python.js';
import {
  fixtureTasksDir,
  runCli,
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  type WorkerEnv,
  type WorkerProcess,
  waitFor,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const TOKEN = 'predict-mcp-token-0123456789';
const prefix = uniqueName('q-predict');

const SPEC = {
  lookback: 4,
  columns: ['cases', 'rain'],
  weights: [0.1, -0.2, 0.3, 0.05, -0.4, 0.25, 0.6, -0.1],
  bias: 0.5,
};
// 12 weeks: 9 windows (rows 5..12, and the row after the table).
const CSV = `week,cases,rain\n${Array.from({ length: 12 }, (_, i) => `${i + 1},${10 + 3 * i + (i % 3)},${(i * 7) % 5}.5`).join('\n')}\n`;

let workDir = '';
let workerEnv: WorkerEnv;
let dataFile = '';
let dataDir = '';
let serve: ServeProcess | undefined;
let worker: WorkerProcess | undefined;
let mcp: Client;
let queue: TaskQueue;
let experimentId = '';
let trainRunId = '';
let failedRunId = '';
let noModelRunId = '';
let modelId = '';
const modelName = uniqueName('predict-model');
let expected: number[] = [];

async function finishedTask(taskId: string) {
  return waitFor(
    `task ${taskId} to end`,
    async () => {
      const info = await queue.get(taskId);
      return info && ['completed', 'failed', 'cancelled'].includes(info.state) ? info : undefined;
    },
    { timeoutMs: 120_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nworker stderr:\n${worker?.stderr() ?? ''}`);
  });
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'rw-predict-'));
  dataDir = join(workDir, 'data');
  const modelDir = join(workDir, 'model-src');
  await mkdir(dataDir, { recursive: true });
  await mkdir(modelDir, { recursive: true });
  dataFile = join(dataDir, 'future.csv');
  await writeFile(dataFile, CSV);
  await writeTinyForecaster(modelDir, SPEC);
  await writeMlflowModel(modelDir);

  // What onnxruntime gives on the same windows, run directly.
  const features = parseFeatureSpec(JSON.parse(await readFile(join(modelDir, 'features.json'), 'utf8')));
  const w = windowsFromTable(parseCsv(CSV), features, { includeNext: true });
  const session = await ort.InferenceSession.create(join(modelDir, 'model.onnx'));
  const out = await session.run({ window: new ort.Tensor('float32', w.x, w.dims) });
  expected = Array.from(out.forecast!.data as Float32Array);
  await session.release();

  experimentId = (await getOrCreateExperiment(client, uniqueName('predict-exp'))).experimentId;
  const train = await startRun(client, { experimentId, runName: 'train', handleSignals: false });
  trainRunId = train.runId;
  await train.logArtifact(modelDir, 'model');
  const logged = await logModel(client, { runId: train.runId, experimentId }, modelDir);
  modelId = logged.modelId;
  await train.setTags({ 'runwarden.model_exists': 'true', 'runwarden.model_id': modelId });
  await train.end('FINISHED');
  await registerModel(client, {
    runId: trainRunId,
    artifactPath: 'model',
    modelId,
    name: modelName,
    alias: 'champion',
  });

  const failed = await startRun(client, { experimentId, runName: 'failed-train', handleSignals: false });
  failedRunId = failed.runId;
  await failed.logArtifact(modelDir, 'model');
  await failed.end('FAILED', { reason: 'loss diverged at epoch 3' });
  // Version 2 comes from the FAILED run.
  await registerModel(client, { runId: failedRunId, artifactPath: 'model', name: modelName });

  const noModel = await startRun(client, { experimentId, runName: 'no-model', handleSignals: false });
  noModelRunId = noModel.runId;
  await noModel.logArtifact(modelDir, 'model');
  await noModel.setTags({ 'runwarden.model_exists': 'false' });
  await noModel.end('FINISHED');

  const env: WorkerEnv = { mlflowUrl, redisUrl, prefix, workDir, env: { RUNWARDEN_INPUT_ROOTS: dataDir } };
  workerEnv = env;
  queue = new TaskQueue({
    redisUrl,
    prefix,
    tasksDir: fixtureTasksDir,
    client,
    inputs: { roots: [dataDir], allowDirs: false, httpHosts: [] },
  });
  const [s, wk] = await Promise.allSettled([
    startServe({ ...taskEnv(env), RUNWARDEN_HTTP_TOKEN: TOKEN }),
    startWorkerProcess(env),
  ]);
  if (s.status === 'fulfilled') serve = s.value;
  if (wk.status === 'fulfilled') worker = wk.value;
  if (s.status === 'rejected') throw s.reason;
  if (wk.status === 'rejected') throw wk.reason;
  mcp = (await httpClient(s.value.url, TOKEN)).client;
}, 180_000);

afterAll(async () => {
  await mcp?.close().catch(() => undefined);
  await Promise.all([stopAllWorkers(), serve?.stop()]);
  await queue?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface PredictOut {
  task_id: string;
  state: string;
  run_url?: string;
  rows?: number;
  preview?: (number | string | null)[][];
}

const predictions = (preview: (number | string | null)[][]) => preview.map((r) => Number(r[1]));

describe('predict', () => {
  it('predict: by alias after promotion (models:/<name>@champion) on a CSV file, predictions equal onnxruntime on the same windows, in a run nested under the training run with lineage tags, params, metric and artifacts', async () => {
    const ref = `models:/${modelName}@champion`;
    const out = await call<PredictOut>(mcp, 'predict', {
      model: ref,
      data: pathToFileURL(dataFile).href,
      wait_seconds: 120,
    });
    expect(out.state, JSON.stringify(out)).toBe('completed');
    expect(out.rows).toBe(9);
    // The header row, then the rows.
    expect(out.preview![0]).toEqual(['week', 'prediction', 'actual']);
    const got = predictions(out.preview!.slice(1));
    expect(got).toHaveLength(expected.length);
    for (const [i, v] of got.entries()) expect(v).toBeCloseTo(expected[i]!, 5);
    // The last prediction is the forecast for the row after the table.
    expect(out.preview!.at(-1)![0]).toBe('after:12');

    const runId = out.run_url!.split('/').at(-1)!;
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('FINISHED');
    const rest = await client.api.GET('/api/2.0/mlflow/runs/get', {
      params: { query: { run_id: runId } },
    });
    expect(rest.data?.run.info.experiment_id).toBe(experimentId);
    expect(run.tags['mlflow.parentRunId']).toBe(trainRunId);
    expect(run.tags['runwarden.predict.model_ref']).toBe(ref);
    expect(run.tags['runwarden.predict.source_run']).toBe(trainRunId);
    expect(run.tags['runwarden.predict.model_version']).toBe(`${modelName}/1`);
    expect(run.tags['runwarden.predict.model_id']).toBe(modelId);
    expect(run.tags['runwarden.predict.input_digest']).toBe(createHash('sha256').update(CSV).digest('hex'));
    expect(run.params['predict.model']).toBe(ref);
    expect(run.params['predict.rows']).toBe('12');
    expect(run.metrics['predict.rows']).toBe(9);
    const files = (await pyListArtifacts(mlflowUrl, runId)).map((a) => a.path);
    expect(files).toEqual(expect.arrayContaining(['predictions.csv', 'predictions.json']));
    const json = JSON.parse(
      (await readArtifact(client, run.artifact_uri, 'predictions.json', 1_000_000)).bytes.toString('utf8'),
    ) as { predictions: Record<string, number>[] };
    expect(json.predictions).toHaveLength(9);
    expect(json.predictions.at(-1)!.forecast).toBeCloseTo(expected.at(-1)!, 5);
  }, 180_000);

  it('predict: by version, by logged model id and by runs:/, with inline data in dataframe_split, dataframe_records and inputs shapes, gives the same predictions', async () => {
    const table = parseCsv(CSV);
    const split = { dataframe_split: { columns: table.columns, data: table.rows } };
    const records = {
      dataframe_records: table.rows.map((r) => Object.fromEntries(table.columns.map((c, j) => [c, r[j]]))),
    };
    const cases: [string, Record<string, unknown>][] = [
      [`models:/${modelName}/1`, split],
      [`models:/${modelId}`, records],
      [`runs:/${trainRunId}/model`, split],
    ];
    for (const [ref, data] of cases) {
      const { task } = await queue.enqueue({ predict: { model: ref, data } });
      const info = await finishedTask(task.taskId);
      expect(info.state, `${ref}: ${info.reason}`).toBe('completed');
      const p = (info.result as { prediction: PredictionSummary }).prediction;
      const got = predictions(p.preview);
      for (const [i, v] of got.entries()) expect(v, ref).toBeCloseTo(expected[i]!, 5);
      const run = await pyGetRun(mlflowUrl, info.runs.at(-1)!.run_id);
      expect(run.tags['mlflow.parentRunId'], ref).toBe(trainRunId);
      expect(run.tags['runwarden.predict.model_ref']).toBe(ref);
    }
    // Tensor input (the input_example form) feeds the model directly: one window → one prediction.
    const w = windowsFromTable(table, parseFeatureSpec({ ...featuresOf(), lookback: 4 }), {
      includeNext: true,
    });
    const window = Array.from({ length: 4 }, (_, l) => [w.x[(8 * 4 + l) * 2]!, w.x[(8 * 4 + l) * 2 + 1]!]);
    const { task } = await queue.enqueue({
      predict: { model: `models:/${modelId}`, data: { inputs: [window] } },
    });
    const info = await finishedTask(task.taskId);
    expect(info.state, info.reason).toBe('completed');
    const p = (info.result as { prediction: PredictionSummary }).prediction;
    expect(p.columns).toEqual(['forecast']);
    expect(Number(p.preview[0]![0])).toBeCloseTo(expected.at(-1)!, 5);
  }, 300_000);

  it('predict: the same model and data again returns the existing task (dedup on model ref + input)', async () => {
    const data = {
      inputs: {
        window: [
          [
            [1, 2],
            [3, 4],
            [5, 6],
            [7, 8],
          ],
        ],
      },
    };
    const first = await queue.enqueue({ predict: { model: `models:/${modelName}/1`, data } });
    const again = await queue.enqueue({ predict: { model: `models:/${modelName}/1`, data } });
    expect(again.existing).toBe(true);
    expect(again.task.taskId).toBe(first.task.taskId);
    await finishedTask(first.task.taskId);
  }, 180_000);

  it('predict: a model from a FAILED training run, or from a run whose workspace says no model exists, is refused with the reason and opens no run', async () => {
    for (const ref of [`runs:/${failedRunId}/model`, `models:/${modelName}/2`]) {
      const err = await queue.enqueue({ predict: { model: ref, data: pathToFileURL(dataFile).href } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(hasCode(err, 'PREDICT_REFUSED'), String(err)).toBe(true);
      expect((err as Error).message).toContain(`${failedRunId} ended FAILED`);
      expect((err as Error).message).toContain('loss diverged at epoch 3');
    }
    const text = await callError(mcp, 'predict', {
      model: `runs:/${noModelRunId}/model`,
      data: pathToFileURL(dataFile).href,
    });
    expect(text).toContain('runwarden.model_exists=false');
    expect(text).toContain('get_model_version'); // how to recover
    for (const parent of [failedRunId, noModelRunId]) {
      const nested = await searchRuns(client, {
        experimentIds: [experimentId],
        filter: `tags.\`mlflow.parentRunId\` = '${parent}'`,
      });
      expect(nested, parent).toHaveLength(0);
    }
  }, 120_000);

  it('predict: a malformed model reference is MODEL_REF_INVALID naming the accepted forms, and nothing is queued', async () => {
    const before = await queue.counts();
    for (const ref of [
      `models:/${modelName}`,
      `models:/${modelName}/latest`,
      'champion',
      `runs:/${trainRunId}`,
    ]) {
      const err = await queue.enqueue({ predict: { model: ref, data: { inputs: [[1]] } } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(hasCode(err, 'MODEL_REF_INVALID'), `${ref}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toContain('models:/<name>@<alias>');
    }
    expect(await queue.counts()).toEqual(before);
  });

  it('predict: a tensor whose shape does not fit the model is MODEL_INPUT_MISMATCH naming the input, expected and given shapes', async () => {
    const text = await callError(mcp, 'predict', {
      model: `models:/${modelName}@champion`,
      data: {
        inputs: {
          window: [
            [
              [1, 2, 3],
              [1, 2, 3],
              [1, 2, 3],
              [1, 2, 3],
            ],
          ],
        },
      },
      wait_seconds: 120,
    });
    expect(text).toContain("input 'window'");
    expect(text).toMatch(/\[-1, 4, 2\]/);
    expect(text).toContain('[1, 4, 3]');
  }, 180_000);
});

describe('runwarden predict', () => {
  it('runwarden predict: a local CSV sent inline with --wait prints the predictions and exits 0; a model from a FAILED run exits 1 with PREDICT_REFUSED and the reason', async () => {
    const ok = await runCli(
      ['predict', `models:/${modelName}@champion`, '--data', dataFile, '--wait', '--force'],
      taskEnv(workerEnv),
      180_000,
    );
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/completed: 9 predictions → .*predictions\.csv/);
    expect(ok.out).toContain('week,prediction,actual');
    const last = ok.out.trimEnd().split('\n').at(-1)!.split(',');
    expect(last[0]).toBe('after:12');
    expect(Number(last[1])).toBeCloseTo(expected.at(-1)!, 5);

    const refused = await runCli(
      ['predict', `runs:/${failedRunId}/model`, '--data', dataFile],
      taskEnv(workerEnv),
      60_000,
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('PREDICT_REFUSED');
    expect(refused.err).toContain('loss diverged at epoch 3');
  }, 240_000);
});

describe('predict under faults', () => {
  it('predict: a model download MLflow never answers does not leave the prediction run open: cancelling the task ends its run KILLED and the task cancelled', async () => {
    const proxy = await startFaultProxy(mlflowUrl);
    const fprefix = uniqueName('q-predict-fault');
    const fenv: WorkerEnv = {
      mlflowUrl: proxy.url,
      redisUrl,
      prefix: fprefix,
      workDir,
      env: { RUNWARDEN_INPUT_ROOTS: dataDir },
    };
    const fqueue = new TaskQueue({
      redisUrl,
      prefix: fprefix,
      tasksDir: fixtureTasksDir,
      client,
      inputs: { roots: [dataDir], allowDirs: false, httpHosts: [] },
    });
    let release: () => void = () => undefined;
    const until = new Promise<void>((r) => {
      release = r;
    });
    const w = await startWorkerProcess(fenv);
    try {
      // Only the download of model.onnx is held; everything else passes.
      await proxy.setMode('delay', {
        onlyRequests: /^GET \S*mlflow-artifacts\/artifacts\/\S*model\.onnx/,
        until,
      });
      const { task } = await fqueue.enqueue({
        predict: {
          model: `models:/${modelName}/1`,
          data: {
            inputs: [
              [
                [9, 9],
                [9, 9],
                [9, 9],
                [9, 9],
              ],
            ],
          },
        },
      });
      const runId = await waitFor(
        'the prediction run',
        async () => (await fqueue.get(task.taskId))?.runs.at(-1)?.run_id,
        {
          timeoutMs: 60_000,
        },
      );
      await waitFor('the held model download', async () => (proxy.stats().held > 0 ? true : undefined), {
        timeoutMs: 60_000,
      });
      await fqueue.cancel(task.taskId, 'the test cancels a stuck prediction');
      const info = await waitFor(
        'the task to be cancelled',
        async () => {
          const i = await fqueue.get(task.taskId);
          return i?.state === 'cancelled' ? i : undefined;
        },
        { timeoutMs: 60_000 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nworker stderr:\n${w.stderr()}`);
      });
      expect(info.reason).toContain('the test cancels a stuck prediction');
      const run = await pyGetRun(mlflowUrl, runId);
      expect(run.status).toBe('KILLED');
      expect(run.tags['runwarden.close_reason']).toContain('cancelled');
    } finally {
      release();
      await w.stop();
      await fqueue.close();
      await proxy.close();
    }
  }, 240_000);
});

describe('predict dedup and data', () => {
  it('predict: a data artifact larger than RUNWARDEN_PREDICT_MAX_BYTES is refused from its listed size before any download, and a folder is refused when the task runs', async () => {
    const settings = {
      predict: { maxBytes: 64 },
      inputs: { roots: [dataDir], allowDirs: false, httpHosts: [] },
    } as unknown as AttemptSettings;
    const at = join(workDir, 'load-data');
    const big = await loadData(
      client,
      settings,
      `runs:/${trainRunId}/model/model.onnx`,
      at,
      AbortSignal.timeout(60_000),
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(hasCode(big, 'VALIDATION_ERROR'), String(big)).toBe(true);
    expect(big!.message).toMatch(
      /^predict\.data: the file is \d+ bytes, more than 64 bytes \(RUNWARDEN_PREDICT_MAX_BYTES\)/,
    );
    const folder = await loadData(
      client,
      settings,
      `runs:/${trainRunId}/model`,
      at,
      AbortSignal.timeout(60_000),
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(folder!.message).toMatch(/is a folder \(a model folder\?\)/);
  }, 60_000);

  it('predict: the same alias after it moved to another version is a new task scored with the new version; a failed prediction asked again runs a new task', async () => {
    const data = pathToFileURL(dataFile).href;
    const ref = `models:/${modelName}@champion`;
    const before = await queue.enqueue({ predict: { model: ref, data } });
    await finishedTask(before.task.taskId);
    // The alias moves to a new version (same training run): the same request is another prediction.
    const moved = await registerModel(client, {
      runId: trainRunId,
      artifactPath: 'model',
      modelId,
      name: modelName,
      alias: 'champion',
    });
    const after = await queue.enqueue({ predict: { model: ref, data } });
    expect(after.existing).toBe(false);
    expect(after.task.taskId).not.toBe(before.task.taskId);
    const info = await finishedTask(after.task.taskId);
    expect(info.state).toBe('completed');
    const p = (info.result as { prediction: PredictionSummary }).prediction;
    expect(p.model.version).toBe(String(moved.version));

    // A prediction that failed (a shape the model does not take) is never the answer to a new request.
    const bad = { inputs: { window: [[[1, 2, 3]]] } };
    const first = await queue.enqueue({ predict: { model: ref, data: bad } });
    expect((await finishedTask(first.task.taskId)).state).toBe('failed');
    const again = await queue.enqueue({ predict: { model: ref, data: bad } });
    expect(again.existing).toBe(false);
    expect(again.task.taskId).toBe(`${first.task.taskId}-r1`);
    await finishedTask(again.task.taskId);
  }, 300_000);

  it('predict: a model folder given as data (runs:/<run>/model) is refused at enqueue with a clear error, and nothing is queued', async () => {
    const err = await queue
      .enqueue({ predict: { model: `models:/${modelName}@champion`, data: `runs:/${trainRunId}/model` } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(hasCode(err, 'VALIDATION_ERROR'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(
      /^predict\.data: runs:\/.*\/model is a folder \(a model folder\?\); give one CSV or JSON file/,
    );
  }, 60_000);
});

function featuresOf() {
  return {
    kind: 'window',
    time_column: 'week',
    columns: SPEC.columns,
    target: 'cases',
    lookback: SPEC.lookback,
    input: 'window',
    output: 'forecast',
    target_scale: { mean: 0, std: 1 },
  };
}
