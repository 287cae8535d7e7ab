// runwarden's models as MLflow 3 models against the real MLflow: a model.onnx folder (external
// data in a uuid-named file, as onnx.save writes it) is logged as a LoggedModel that MLflow's own
// client lists READY under the run, with the run's metrics linked, registered from
// models:/<model_id>, and loaded by mlflow.pyfunc predicting what onnxruntime-node predicts.
// Faults go through the fault proxy: a create whose answer is lost and a crash between create and
// finalize still leave exactly one READY model. A malformed model.onnx stored by an attempt fails
// the run with MODEL_INVALID's reason and loses nothing else.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, startRun } from '../../src/index.js';
import { createMlflowClient } from '../../src/mlflow/client.js';
import type { Template } from '../../src/model/template.js';
import { storeResults } from '../../src/queue/store-results.js';
import { logModel, logModelMetrics, MODEL_KEY_TAG } from '../../src/tracking/logged-model.js';
import { writeMlflowModel } from '../../src/tracking/mlflow-model.js';
import { registerModel } from '../../src/tracking/models.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pythonBin, runPythonMlflow } from '../support/python.js';
import { waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);
const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;

const dirs: string[] = [];
const proxies: FaultProxy[] = [];
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rw-logged-'));
  dirs.push(d);
  return d;
}

/** window [batch, 8, 3] → Flatten → MatMul (24×32) → Tanh → MatMul (32×1) → Add → [batch]; w1 goes to a uuid-named external file. */
const BUILD = `
import json, sys
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(7)
w1 = numpy_helper.from_array(rng.normal(size=(24, 32)).astype(np.float32), 'w1')
w2 = numpy_helper.from_array(rng.normal(size=(32, 1)).astype(np.float32) / 4, 'w2')
b = numpy_helper.from_array(np.array([0.25], dtype=np.float32), 'b')
shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), 'shape')
nodes = [helper.make_node('Flatten', ['window'], ['flat'], axis=1), helper.make_node('MatMul', ['flat', 'w1'], ['h']),
  helper.make_node('Tanh', ['h'], ['t']), helper.make_node('MatMul', ['t', 'w2'], ['mm']),
  helper.make_node('Add', ['mm', 'b'], ['sum']), helper.make_node('Reshape', ['sum', 'shape'], ['forecast'])]
g = helper.make_graph(nodes, 'mlp', [helper.make_tensor_value_info('window', TensorProto.FLOAT, ['batch', 8, 3])],
  [helper.make_tensor_value_info('forecast', TensorProto.FLOAT, ['batch'])], [w1, w2, b, shape])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1], save_as_external_data=True, all_tensors_to_one_file=True)
print(json.dumps({'ok': True}))
`;

/** A model folder with model.onnx + its external-data file (name chosen by onnx), and features.json. */
async function modelFolder(): Promise<string> {
  const dir = join(await tempDir(), 'model');
  await mkdir(dir);
  await new Promise<void>((resolve, reject) =>
    execFile(pythonBin, ['-c', BUILD, join(dir, 'model.onnx')], (err, _o, e) =>
      err ? reject(new Error(`building the ONNX model failed: ${e}`)) : resolve(),
    ),
  );
  await writeFile(
    join(dir, 'features.json'),
    JSON.stringify({
      kind: 'window',
      columns: ['cases', 'rainfall', 'temperature'],
      target: 'cases',
      lookback: 8,
      input: 'window',
      output: 'forecast',
      target_scale: { mean: 61.2, std: 23.4 },
    }),
  );
  return dir;
}

async function newRun(prefix: string) {
  const { experimentId } = await getOrCreateExperiment(client, uniqueName(prefix));
  const run = await startRun(client, { experimentId, handleSignals: false });
  return { experimentId, run };
}

interface PyModels {
  models: { id: string; status: string; source_run_id: string; key: string | null }[];
}
function pyModels(experimentId: string): Promise<PyModels> {
  return runPythonMlflow<PyModels>(
    `import json, sys
from mlflow import MlflowClient
c = MlflowClient()
ms = c.search_logged_models(experiment_ids=[sys.argv[1]])
print(json.dumps({"models": [{"id": m.model_id, "status": str(m.status), "source_run_id": m.source_run_id,
  "key": m.tags.get("${MODEL_KEY_TAG}")} for m in ms]}))`,
    { trackingUri: mlflowUrl, args: [experimentId] },
  );
}

describe('logged models', () => {
  it('logModel: a model.onnx folder with external data is a READY MLflow model of the run that pyfunc loads from models:/<id>, predicting what onnxruntime-node predicts (absolute gap < 1e-5)', async () => {
    const dir = await modelFolder();
    const files = await readdir(dir);
    const external = files.filter((f) => !['model.onnx', 'features.json'].includes(f));
    expect(external).toHaveLength(1); // onnx named it with a uuid
    const { experimentId, run } = await newRun('logged');
    await run.logMetric('test_rmse', 0.42);
    await run.flush();
    await writeMlflowModel(dir);
    const ref = await logModel(client, { runId: run.runId, experimentId }, dir);
    await logModelMetrics(client, ref, { 'eval.rmse': 0.43 });
    const reg = await registerModel(client, {
      runId: run.runId,
      artifactPath: 'model',
      modelId: ref.modelId,
      name: uniqueName('logged-reg'),
    });
    await run.end();
    expect(ref.modelId).toMatch(/^m-[0-9a-f]{32}$/);
    expect(ref.artifactUri).toMatch(new RegExp(`/models/${ref.modelId}/artifacts$`));
    expect(reg.source).toBe(`models:/${ref.modelId}`);

    // onnxruntime-node on the folder (by path: the external file loads).
    const x = Float32Array.from({ length: 2 * 8 * 3 }, (_, i) => Math.sin(i) * 3);
    const session = await InferenceSession.create(join(dir, 'model.onnx'));
    const node = Array.from(
      (await session.run({ window: new Tensor('float32', x, [2, 8, 3]) })).forecast!.data as Float32Array,
    );
    await session.release();

    const seen = await runPythonMlflow<{
      models: { id: string; status: string; source_run_id: string }[];
      outputs: string[];
      model_metrics: string[];
      version_source: string;
      model_versions: { name: string; version: number }[];
      mlmodel_model_id: string | null;
      files: string[];
      predicted: number[];
      signature_input: string;
      features_lookback: number;
    }>(
      `import json, sys
import numpy as np, mlflow, mlflow.pyfunc
from mlflow import MlflowClient
c = MlflowClient()
eid, run_id, mid, name, version = sys.argv[1:6]
x = np.array(json.loads(sys.argv[6]), dtype=np.float32).reshape(2, 8, 3)
ms = c.search_logged_models(experiment_ids=[eid])
run = c.get_run(run_id)
lm = c.get_logged_model(mid)
mv = c.get_model_version(name, version)
model = mlflow.pyfunc.load_model(f"models:/{mid}")
out = model.predict(x)
pred = out["forecast"] if isinstance(out, dict) else np.asarray(out)
print(json.dumps({
  "models": [{"id": m.model_id, "status": str(m.status), "source_run_id": m.source_run_id} for m in ms],
  "outputs": [o.model_id for o in (run.outputs.model_outputs if run.outputs else [])],
  "model_metrics": sorted(m.key for m in (lm.metrics or [])),
  "version_source": mv.source,
  "model_versions": json.loads(lm.tags.get("mlflow.modelVersions", "[]")),
  "mlmodel_model_id": model.metadata.model_id,
  "files": sorted(a.path for a in mlflow.artifacts.list_artifacts(f"models:/{mid}")),
  "predicted": [float(v) for v in np.ravel(pred)],
  "signature_input": str(model.metadata.signature.inputs),
  "features_lookback": model.metadata.metadata["runwarden_features"]["lookback"],
}))`,
      {
        trackingUri: mlflowUrl,
        args: [experimentId, run.runId, ref.modelId, reg.name, reg.version, JSON.stringify(Array.from(x))],
        timeoutMs: 120_000,
      },
    );
    expect(seen.models).toEqual([{ id: ref.modelId, status: 'READY', source_run_id: run.runId }]);
    expect(seen.outputs).toEqual([ref.modelId]);
    expect(seen.model_metrics).toEqual(['eval.rmse']);
    // MLflow's SQL registry keeps no model_id column: the link is the source and the model's tag.
    expect(seen.version_source).toBe(`models:/${ref.modelId}`);
    expect(seen.model_versions).toEqual([{ name: reg.name, version: Number(reg.version) }]);
    expect(seen.mlmodel_model_id).toBe(ref.modelId);
    expect(seen.files).toEqual(
      expect.arrayContaining(['MLmodel', 'model.onnx', external[0]!, 'python_env.yaml']),
    );
    expect(seen.signature_input).toContain("'window': Tensor('float32', (-1, 8, 3))");
    expect(seen.features_lookback).toBe(8);
    expect(seen.predicted).toHaveLength(2);
    for (const [i, v] of seen.predicted.entries()) expect(Math.abs(v - node[i]!)).toBeLessThan(1e-5);
  });

  it('logModel: when the answer to the create is lost (MLflow committed it after runwarden gave up), the retry keeps one model and MLflow lists exactly one, READY', async () => {
    const dir = await modelFolder();
    await writeMlflowModel(dir);
    const { experimentId, run } = await newRun('logged-lost');
    const proxy = await startFaultProxy(mlflowUrl);
    proxies.push(proxy);
    // Observation only: when runwarden's create gives up, the proxy lets the held request land.
    let gaveUp!: () => void;
    const createGaveUp = new Promise<void>((r) => {
      gaveUp = r;
    });
    const faulty = createMlflowClient({
      trackingUri: proxy.url,
      timeoutMs: 1_500,
      retry: { baseDelayMs: 50 },
      fetch: async (input, init) => {
        const req = input instanceof Request ? input : new Request(input, init);
        try {
          return await fetch(req);
        } catch (err) {
          if (req.method === 'POST' && new URL(req.url).pathname === '/api/2.0/mlflow/logged-models')
            gaveUp();
          throw err;
        }
      },
    });
    await proxy.setMode('delay', {
      onlyRequests: /^POST \/api\/2\.0\/mlflow\/logged-models HTTP/,
      outliveClient: true,
      until: createGaveUp,
    });
    const logging = logModel(faulty, { runId: run.runId, experimentId }, dir);
    await waitFor('the create held by the proxy', () => proxy.stats().held === 1, { timeoutMs: 30_000 });
    await proxy.setMode('pass'); // the retry's requests pass; the held create lands once runwarden gave up
    const ref = await logging;
    await run.end();
    const seen = await pyModels(experimentId);
    expect(seen.models).toEqual([
      { id: ref.modelId, status: 'READY', source_run_id: run.runId, key: `${run.runId}/model` },
    ]);
  });

  it('logModel: a model left PENDING by an attempt that died between create and finalize is reused by the next call, which uploads and finalizes it', async () => {
    const dir = await modelFolder();
    await writeMlflowModel(dir);
    const { experimentId, run } = await newRun('logged-crash');
    const proxy = await startFaultProxy(mlflowUrl);
    proxies.push(proxy);
    // Uploads hang: the first attempt dies after create and link, before any file and the finalize.
    await proxy.setMode('delay', { onlyRequests: /^PUT /, delayMs: 600_000 });
    const dying = createMlflowClient({
      trackingUri: proxy.url,
      artifactTimeoutMs: 1_000,
      retry: { maxRetries: 0, baseDelayMs: 50 },
    });
    const first = await logModel(dying, { runId: run.runId, experimentId }, dir).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(Error);
    const pending = await pyModels(experimentId);
    expect(pending.models.map((m) => m.status)).toEqual(['PENDING']);

    const ref = await logModel(client, { runId: run.runId, experimentId }, dir);
    await run.end();
    expect(ref.modelId).toBe(pending.models[0]!.id);
    const seen = await pyModels(experimentId);
    expect(seen.models).toEqual([
      { id: ref.modelId, status: 'READY', source_run_id: run.runId, key: `${run.runId}/model` },
    ]);
  });

  it('storeResults: a template that declared an ONNX model and wrote a malformed model.onnx fails with MODEL_INVALID naming the file, and its logs, model folder and workspace.zip are still stored', async () => {
    const ws = await tempDir();
    const outputDir = join(ws, 'outputs');
    const logsDir = join(ws, 'logs');
    await mkdir(join(outputDir, 'model'), { recursive: true });
    await mkdir(logsDir);
    await writeFile(join(outputDir, 'model', 'model.onnx'), 'not an onnx graph');
    await writeFile(join(logsDir, 'stdout.log'), 'trained\n');
    const { experimentId, run } = await newRun('logged-bad');
    const template = { name: 'bad-onnx', model: { path: 'model', format: 'onnx' } } as unknown as Template;
    const stored = await storeResults(
      client,
      run,
      { dir: ws, outputDir, logsDir, inputsDir: join(ws, 'inputs'), configFile: join(ws, 'config.yml') },
      template,
      [],
      0,
      silent,
      { zipInputs: false },
    );
    await run.end('FAILED', { reason: stored.modelError ?? '', tags: stored.tags });
    expect(stored.modelError).toMatch(
      /^the template's ONNX model is unusable: model\.onnx: not a readable ONNX model/,
    );
    expect(stored.tags['runwarden.model_note']).toMatch(/^model\.onnx: /);
    expect(stored.tags['runwarden.model_exists']).toBe('false');
    expect(stored.tags['runwarden.model_id']).toBeUndefined();
    const seen = await runPythonMlflow<{ files: string[]; models: number; status: string; note: string }>(
      `import json, sys, mlflow
from mlflow import MlflowClient
c = MlflowClient()
run_id, eid = sys.argv[1:3]
files = sorted(a.path for a in mlflow.artifacts.list_artifacts(run_id=run_id))
files += sorted(a.path for a in c.list_artifacts(run_id, "model"))
r = c.get_run(run_id)
print(json.dumps({"files": files, "models": len(c.search_logged_models(experiment_ids=[eid])),
  "status": r.info.status, "note": r.data.tags.get("runwarden.model_note", "")}))`,
      { trackingUri: mlflowUrl, args: [run.runId, experimentId] },
    );
    expect(seen.files).toEqual(
      expect.arrayContaining(['logs', 'model', 'workspace.zip', 'model/model.onnx']),
    );
    expect(seen.models).toBe(0);
    expect(seen.status).toBe('FAILED');
    expect(seen.note).toContain('model.onnx');
  });

  it("storeResults: a valid model folder becomes the run's logged model, tagged runwarden.model_id, with the run's test metrics linked at their own step and time", async () => {
    const ws = await tempDir();
    const outputDir = join(ws, 'outputs');
    const logsDir = join(ws, 'logs');
    await mkdir(outputDir, { recursive: true });
    await mkdir(logsDir);
    const folder = await modelFolder();
    await cp(folder, join(outputDir, 'model'), { recursive: true });
    await writeFile(join(logsDir, 'stdout.log'), 'trained\n');
    const { experimentId, run } = await newRun('logged-store');
    await run.logMetric('test_rmse', 0.31, { step: 3 });
    await run.logMetric('train_loss', 1.5);
    const template = { name: 'good-onnx', model: { path: 'model', format: 'onnx' } } as unknown as Template;
    const stored = await storeResults(
      client,
      run,
      { dir: ws, outputDir, logsDir, inputsDir: join(ws, 'inputs'), configFile: join(ws, 'config.yml') },
      template,
      [],
      0,
      silent,
      { zipInputs: false },
    );
    await run.end('FINISHED', { tags: stored.tags });
    expect(stored.modelError).toBeUndefined();
    const modelId = stored.tags['runwarden.model_id'];
    expect(modelId).toMatch(/^m-/);
    expect(stored.tags['runwarden.model_format']).toBe('onnx');
    const seen = await runPythonMlflow<{
      metrics: [string, number, number][];
      history: number;
      status: string;
    }>(
      `import json, sys
from mlflow import MlflowClient
c = MlflowClient()
run_id, mid = sys.argv[1:3]
lm = c.get_logged_model(mid)
print(json.dumps({"metrics": sorted([m.key, m.value, m.step] for m in lm.metrics or []),
  "history": len(c.get_metric_history(run_id, "test_rmse")), "status": str(lm.status)}))`,
      { trackingUri: mlflowUrl, args: [run.runId, modelId!] },
    );
    expect(seen.status).toBe('READY');
    expect(seen.metrics).toEqual([['test_rmse', 0.31, 3]]);
    expect(seen.history).toBe(1); // the link re-logged the same point: no second point in the run
  });

  it('storeResults: a template declaring a non-ONNX format whose folder holds a stray malformed model.onnx keeps its model (model_exists true, the reason in model_note) and only skips the MLflow-model conversion', async () => {
    const ws = await tempDir();
    const outputDir = join(ws, 'outputs');
    const logsDir = join(ws, 'logs');
    await mkdir(join(outputDir, 'model'), { recursive: true });
    await mkdir(logsDir);
    await writeFile(join(outputDir, 'model', 'model.pkl'), 'a pickled model');
    await writeFile(join(outputDir, 'model', 'model.onnx'), 'not an onnx graph');
    await writeFile(join(logsDir, 'stdout.log'), 'trained\n');
    const { run } = await newRun('logged-stray');
    const template = { name: 'pickled', model: { path: 'model', format: 'pickle' } } as unknown as Template;
    const stored = await storeResults(
      client,
      run,
      { dir: ws, outputDir, logsDir, inputsDir: join(ws, 'inputs'), configFile: join(ws, 'config.yml') },
      template,
      [],
      0,
      silent,
      { zipInputs: false },
    );
    await run.end('FINISHED', { tags: stored.tags });
    expect(stored.modelError).toBeUndefined();
    expect(stored.tags['runwarden.model_exists']).toBe('true');
    expect(stored.tags['runwarden.model_format']).toBe('pickle');
    expect(stored.tags['runwarden.model_id']).toBeUndefined();
    expect(stored.tags['runwarden.model_note']).toMatch(
      /^format pickle: a model\.onnx here is not a usable ONNX graph, so no MLflow model was written/,
    );
    const files = await runPythonMlflow<string[]>(
      `import json, sys
from mlflow import MlflowClient
print(json.dumps(sorted(a.path for a in MlflowClient().list_artifacts(sys.argv[1], "model"))))`,
      { trackingUri: mlflowUrl, args: [run.runId] },
    );
    expect(files).toEqual(['model/model.onnx', 'model/model.pkl']);
  });

  it('logModel: the oldest model of a (run, name) is the one kept even when a newer duplicate is READY, so a PENDING model another caller is uploading to is never deleted; the newer duplicate is left alone', async () => {
    const dir = await modelFolder();
    await writeMlflowModel(dir);
    const { experimentId, run } = await newRun('logged-keep');
    const key = `${run.runId}/model`;
    const create = async () =>
      (
        await client.api.POST('/api/2.0/mlflow/logged-models', {
          body: {
            experiment_id: experimentId,
            name: 'model',
            source_run_id: run.runId,
            tags: [{ key: MODEL_KEY_TAG, value: key }],
          },
        })
      ).data!.model!;
    // Caller A created the model and is uploading to it (PENDING); a second create (after a lost
    // lease) made a newer duplicate that reached READY first.
    const uploading = await create();
    await waitFor(
      'a later creation time',
      () => Date.now() > (uploading.info.creation_timestamp_ms ?? 0) + 5,
      {
        timeoutMs: 5_000,
      },
    );
    const newer = await create();
    await client.api.PATCH('/api/2.0/mlflow/logged-models/{model_id}', {
      params: { path: { model_id: newer.info.model_id } },
      body: { model_id: newer.info.model_id, status: 'LOGGED_MODEL_READY' },
    });
    const ref = await logModel(client, { runId: run.runId, experimentId }, dir);
    await run.end();
    expect(ref.modelId).toBe(uploading.info.model_id);
    const seen = await pyModels(experimentId);
    const byId = Object.fromEntries(seen.models.map((m) => [m.id, m.status]));
    expect(byId).toEqual({ [uploading.info.model_id]: 'READY', [newer.info.model_id]: 'READY' });
  });
});
