// writeMlflowModel on a tiny ONNX graph built in Node (onnx-proto): the MLmodel has MLflow's exact
// shape (onnx + python_function flavours, signature as JSON strings), the environment files and
// examples are written, a trainer's own example and MLmodel are kept, and a missing or malformed
// model.onnx or features.json is MODEL_INVALID naming the file.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { RunwardenError } from '../../src/errors/index.js';
import { writeMlflowModel } from '../../src/tracking/mlflow-model.js';
import { writeTinyOnnx } from '../fixtures/models/tiny-onnx.js';

const dirs: string[] = [];
async function modelDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rw-mlmodel-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const FEATURES = {
  kind: 'window',
  time_column: 'week',
  columns: ['cases', 'rainfall', 'temperature'],
  target: 'cases',
  lookback: 2,
  input: 'window',
  output: 'forecast',
  target_scale: { mean: 61.2, std: 23.4 },
};

describe('writeMlflowModel', () => {
  it('writeMlflowModel: for a model.onnx folder, writes MLmodel as mlflow.onnx.save_model does, with the tensor signature as JSON strings', async () => {
    const dir = await modelDir();
    await writeTinyOnnx(join(dir, 'model.onnx'), 2, 3);
    await writeFile(join(dir, 'features.json'), JSON.stringify(FEATURES));
    const info = await writeMlflowModel(dir);
    const text = await readFile(join(dir, 'MLmodel'), 'utf8');
    const mlmodel = YAML.parse(text);
    expect(mlmodel.flavors.onnx).toEqual({
      code: null,
      data: 'model.onnx',
      onnx_session_options: null,
      onnx_version: '1.23.2',
      providers: ['CPUExecutionProvider'],
    });
    expect(mlmodel.flavors.python_function).toEqual({
      data: 'model.onnx',
      env: { conda: 'conda.yaml', virtualenv: 'python_env.yaml' },
      loader_module: 'mlflow.onnx',
      python_version: '3.11.7',
    });
    expect(mlmodel.mlflow_version).toBe('3.17.2');
    expect(mlmodel.model_id).toBeNull();
    expect(mlmodel.model_uuid).toMatch(/^[0-9a-f]{32}$/);
    expect(mlmodel.model_size_bytes).toBeGreaterThan(0);
    expect(text).toMatch(/^utc_time_created: '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}'$/m);
    expect(typeof mlmodel.signature.inputs).toBe('string');
    expect(JSON.parse(mlmodel.signature.inputs)).toEqual([
      { name: 'window', type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 2, 3] } },
    ]);
    expect(JSON.parse(mlmodel.signature.outputs)).toEqual([
      { name: 'forecast', type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1] } },
    ]);
    expect(mlmodel.signature.params).toBeNull();
    expect(mlmodel.saved_input_example_info).toEqual({
      artifact_path: 'input_example.json',
      serving_input_path: 'serving_input_example.json',
      type: 'ndarray',
    });
    expect(mlmodel.metadata.runwarden_features).toEqual(FEATURES);
    expect(info.signature.inputs).toBe(mlmodel.signature.inputs);
    expect(info.features?.lookback).toBe(2);
  });

  it('writeMlflowModel: writes the environment files and a float zeros example with batch 1, and its serving form', async () => {
    const dir = await modelDir();
    await writeTinyOnnx(join(dir, 'model.onnx'), 2, 3);
    await writeMlflowModel(dir);
    expect(await readFile(join(dir, 'requirements.txt'), 'utf8')).toBe(
      'mlflow==3.17.2\nonnx==1.23.2\nonnxruntime==1.31.1',
    );
    expect(YAML.parse(await readFile(join(dir, 'python_env.yaml'), 'utf8')).python).toBe('3.11.7');
    expect(YAML.parse(await readFile(join(dir, 'conda.yaml'), 'utf8')).dependencies[2].pip).toContain(
      'onnxruntime==1.31.1',
    );
    expect(await readFile(join(dir, 'input_example.json'), 'utf8')).toBe(
      '[[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]',
    );
    const serving = await readFile(join(dir, 'serving_input_example.json'), 'utf8');
    expect(serving).toContain('0.0');
    expect(JSON.parse(serving)).toEqual({
      inputs: [
        [
          [0, 0, 0],
          [0, 0, 0],
        ],
      ],
    });
  });

  it("writeMlflowModel: keeps the trainer's own input_example.json and an MLmodel already there", async () => {
    const dir = await modelDir();
    await writeTinyOnnx(join(dir, 'model.onnx'), 2, 3);
    await writeFile(join(dir, 'input_example.json'), '[[[1.5, 2, 3], [4, 5, 6]]]');
    await writeMlflowModel(dir);
    expect(await readFile(join(dir, 'input_example.json'), 'utf8')).toBe('[[[1.5, 2, 3], [4, 5, 6]]]');
    const own = 'flavors: {onnx: {data: model.onnx}}\nmodel_id: null\n';
    const other = await modelDir();
    await writeTinyOnnx(join(other, 'model.onnx'), 2, 3);
    await writeFile(join(other, 'MLmodel'), own);
    const info = await writeMlflowModel(other);
    expect(await readFile(join(other, 'MLmodel'), 'utf8')).toBe(own);
    expect(JSON.parse(info.signature.inputs)[0].name).toBe('window');
  });

  it('writeMlflowModel: when model.onnx is malformed, throws MODEL_INVALID naming the file and the fix', async () => {
    const dir = await modelDir();
    await writeFile(join(dir, 'model.onnx'), 'this is not a protobuf');
    const err = await writeMlflowModel(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunwardenError);
    expect((err as RunwardenError).code).toBe('MODEL_INVALID');
    expect((err as Error).message).toMatch(/^model\.onnx: not a readable ONNX model/);
    expect((err as Error).message).toContain('re-export the model');
  });

  it('writeMlflowModel: when the folder has no model.onnx, throws MODEL_INVALID saying so', async () => {
    const dir = await modelDir();
    await writeFile(join(dir, 'weights.bin'), 'x');
    const err = await writeMlflowModel(dir).catch((e: unknown) => e);
    expect((err as RunwardenError).code).toBe('MODEL_INVALID');
    expect((err as Error).message).toContain('no model.onnx in');
  });

  it('writeMlflowModel: when features.json does not follow the contract, throws MODEL_INVALID naming features.json', async () => {
    const dir = await modelDir();
    await writeTinyOnnx(join(dir, 'model.onnx'), 2, 3);
    await writeFile(join(dir, 'features.json'), JSON.stringify({ ...FEATURES, lookback: 0 }));
    const err = await writeMlflowModel(dir).catch((e: unknown) => e);
    expect((err as RunwardenError).code).toBe('MODEL_INVALID');
    expect((err as Error).message).toMatch(/^features\.json: .*lookback/);
  });
});
