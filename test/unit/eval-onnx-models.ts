// Small ONNX models for the eval tests, written with onnx-proto: a linear window forecaster (the
// contract's window → forecast), an MLP big enough that one 200k-row run takes hundreds of ms, a
// model with an int64 output, one with its weights in an external-data file, and one whose only
// output is a sequence (which onnxruntime-node cannot return).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pb from 'onnx-proto';

const { onnx } = pb;
const FLOAT = 1;
const INT64 = 7;

type Dim = number | string;
const vi = (name: string, elemType: number, dims: Dim[]) =>
  onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
const f32 = (name: string, dims: number[], values: ArrayLike<number>) =>
  onnx.TensorProto.create({
    name,
    dims,
    dataType: FLOAT,
    rawData: new Uint8Array(Float32Array.from(values).buffer),
  });
const i64 = (name: string, values: number[]) =>
  onnx.TensorProto.create({
    name,
    dims: [values.length],
    dataType: INT64,
    rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
  });
const node = (opType: string, input: string[], output: string[], attribute: object[] = []) =>
  onnx.NodeProto.create({ opType, input, output, name: `${opType}_${output[0]}`, attribute });

function model(graph: object): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'runwarden-test',
      opsetImport: [{ domain: '', version: 17 }],
      graph,
    }),
  ).finish();
}

/** forecast[b] = Σ window[b, l, c] · w[l, c] + bias. */
export function linearWindowOnnx(lookback: number, cols: number, w: number[], bias = 0): Uint8Array {
  return model({
    name: 'linear',
    node: [
      node('Reshape', ['window', 'rows_shape'], ['rows']),
      node('MatMul', ['rows', 'w'], ['col']),
      node('Add', ['col', 'bias'], ['col_b']),
      node('Reshape', ['col_b', 'flat_shape'], ['forecast']),
    ],
    initializer: [
      f32('w', [lookback * cols, 1], w),
      f32('bias', [1], [bias]),
      i64('rows_shape', [-1, lookback * cols]),
      i64('flat_shape', [-1]),
    ],
    input: [vi('window', FLOAT, ['batch', lookback, cols])],
    output: [vi('forecast', FLOAT, ['batch'])],
  });
}

/** x [batch, inDim] → tanh(x·W1) → tanh(·W2) → ·W3 → y [batch, 1]; weights from a fixed LCG. */
export function mlpOnnx(inDim: number, h1: number, h2: number, opts: { external?: string } = {}): Uint8Array {
  let s = 42;
  const rnd = (n: number, scale: number) =>
    Array.from({ length: n }, () => {
      s = (s * 1664525 + 1013904223) % 4294967296;
      return (s / 4294967296 - 0.5) * scale;
    });
  const inits = [
    f32('W1', [inDim, h1], rnd(inDim * h1, 0.3)),
    f32('W2', [h1, h2], rnd(h1 * h2, 0.1)),
    f32('W3', [h2, 1], rnd(h2, 0.1)),
  ];
  return model({
    name: 'mlp',
    node: [
      node('MatMul', ['x', 'W1'], ['a1']),
      node('Tanh', ['a1'], ['h1']),
      node('MatMul', ['h1', 'W2'], ['a2']),
      node('Tanh', ['a2'], ['h2']),
      node('MatMul', ['h2', 'W3'], ['y']),
    ],
    initializer: opts.external ? [] : inits,
    input: [vi('x', FLOAT, ['batch', inDim])],
    output: [vi('y', FLOAT, ['batch', 1])],
  });
}

/** A linear window model whose weight tensor lives in `<dir>/<dataFile>` (ONNX external data). */
export function writeExternalDataModel(dir: string, dataFile: string, lookback: number, w: number[]): void {
  const raw = Buffer.from(Float32Array.from(w).buffer);
  writeFileSync(path.join(dir, dataFile), raw);
  const bytes = model({
    name: 'linear-ext',
    node: [
      node('Reshape', ['window', 'rows_shape'], ['rows']),
      node('MatMul', ['rows', 'w'], ['col']),
      node('Reshape', ['col', 'flat_shape'], ['forecast']),
    ],
    initializer: [
      onnx.TensorProto.create({
        name: 'w',
        dims: [lookback, 1],
        dataType: FLOAT,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: dataFile },
          { key: 'offset', value: '0' },
          { key: 'length', value: String(raw.length) },
        ],
      }),
      i64('rows_shape', [-1, lookback]),
      i64('flat_shape', [-1]),
    ],
    input: [vi('window', FLOAT, ['batch', lookback, 1])],
    output: [vi('forecast', FLOAT, ['batch'])],
  });
  writeFileSync(path.join(dir, 'model.onnx'), bytes);
}

/** x float [batch, 3] → ArgMax over axis 1 → label int64 [batch]. */
export function argmaxOnnx(): Uint8Array {
  return model({
    name: 'argmax',
    node: [
      node(
        'ArgMax',
        ['x'],
        ['label'],
        [
          { name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 },
          { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
        ],
      ),
    ],
    input: [vi('x', FLOAT, ['batch', 3])],
    output: [vi('label', INT64, ['batch'])],
  });
}

/** x float [batch, 2] → SplitToSequence → a sequence output only. */
export function sequenceOnlyOnnx(): Uint8Array {
  return model({
    name: 'seq',
    node: [node('SplitToSequence', ['x'], ['parts'])],
    input: [vi('x', FLOAT, ['batch', 2])],
    output: [
      onnx.ValueInfoProto.create({
        name: 'parts',
        type: { sequenceType: { elemType: { tensorType: { elemType: FLOAT } } } },
      }),
    ],
  });
}

/** x float [batch, 2] → y = x [batch, 2] (batched) and total = Σx [1, 1] (not batched: one value). */
export function summaryOutputOnnx(): Uint8Array {
  return model({
    name: 'summary',
    node: [node('Identity', ['x'], ['y']), node('ReduceSum', ['x'], ['total'])],
    input: [vi('x', FLOAT, ['batch', 2])],
    output: [vi('y', FLOAT, ['batch', 2]), vi('total', FLOAT, [1, 1])],
  });
}
