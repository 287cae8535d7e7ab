// writeMlflowModel reads the graph's inputs and outputs from the ONNX protobuf, never through an
// onnxruntime session in the worker's process: onnxruntime-node is mocked to throw here, and a graph
// with an operator onnxruntime does not know still gets its signature. A graph input that has an
// initializer is not a model input (as onnxruntime counts them); symbolic dims are -1.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pb from 'onnx-proto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeMlflowModel } from '../../src/tracking/mlflow-model.js';

vi.mock('onnxruntime-node', () => {
  const refuse = () => {
    throw new Error('onnxruntime-node used by writeMlflowModel');
  };
  return { default: { InferenceSession: { create: refuse } }, InferenceSession: { create: refuse } };
});

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const F = pb.onnx.TensorProto.DataType;
const vi4 = (name: string, elemType: number, dims: (number | string)[]) => ({
  name,
  type: {
    tensorType: {
      elemType,
      shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
    },
  },
});

describe('writeMlflowModel without onnxruntime', () => {
  it('writeMlflowModel: reads the signature from the ONNX protobuf without creating an onnxruntime session, even for an operator onnxruntime does not know, leaving out inputs that have an initializer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rw-noort-'));
    dirs.push(dir);
    const weights = new Float32Array(4 * 4).fill(0.5);
    const model = pb.onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.example', version: 1 },
      ],
      graph: {
        name: 'g',
        node: [{ opType: 'NoSuchOp', domain: 'com.example', input: ['window', 'w'], output: ['forecast'] }],
        initializer: [
          { name: 'w', dataType: F.FLOAT, dims: [4, 4], rawData: new Uint8Array(weights.buffer) },
        ],
        input: [vi4('window', F.FLOAT, ['batch', 2, 4]), vi4('w', F.FLOAT, [4, 4])],
        output: [vi4('forecast', F.DOUBLE, ['batch'])],
      },
    });
    await writeFile(join(dir, 'model.onnx'), pb.onnx.ModelProto.encode(model).finish());
    const info = await writeMlflowModel(dir);
    expect(JSON.parse(info.signature.inputs)).toEqual([
      { name: 'window', type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 2, 4] } },
    ]);
    expect(JSON.parse(info.signature.outputs)).toEqual([
      { name: 'forecast', type: 'tensor', 'tensor-spec': { dtype: 'float64', shape: [-1] } },
    ]);
  });
});
