/**
 * Writes a built-in forecaster as an ONNX model (IR 8, opset 17: both onnxruntime-node 1.30 and
 * Python onnxruntime 1.31 load it) with onnx-proto's protobuf messages. The graph takes RAW
 * windows and returns RAW cases (contract §1), with the standardisation folded in as explicit
 * nodes rather than into the first layer's weights (so the weights stay the trained ones and the
 * float32 arithmetic does not cancel large raw terms):
 *
 *   window float32 [batch, lookback, C] → Sub(mean) → Div(std) → Reshape [batch, lookback·C]
 *   ridge: MatMul(w) → Add(b)
 *   mlp:   MatMul(W1) → Add(b1) → Tanh → MatMul(w2) → Add(b2), plus MatMul(one-hot) (last week's
 *          scaled cases, the residual's base) → Add
 *   → Mul(target std) → Add(target mean) → Reshape [batch] → forecast float32 [batch]
 *
 * Weights are stored as float32 raw_data initializers inside the one file (no external data).
 */
import pb from 'onnx-proto';
import type { Forecaster } from './model.js';

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

const FLOAT = 1;
const INT64 = 7;

type Tensor = pb.onnx.ITensorProto;
type Node = pb.onnx.INodeProto;

function floatTensor(name: string, dims: number[], values: ArrayLike<number>): Tensor {
  const f = Float32Array.from(values as ArrayLike<number>);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) };
}

function int64Tensor(name: string, values: number[]): Tensor {
  const b = BigInt64Array.from(values.map(BigInt));
  return { name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(b.buffer) };
}

const node = (opType: string, input: string[], output: string[]): Node => ({
  opType,
  input,
  output,
  name: `${opType.toLowerCase()}_${output[0]}`,
});

/** The serialised ONNX model of `f` (input `window`, output `forecast`). */
export function forecasterToOnnx(f: Forecaster, opts: { docString?: string } = {}): Uint8Array {
  const C = f.columns.length;
  const L = f.lookback;
  const width = L * C;
  const inits: Tensor[] = [
    floatTensor('input_mean', [C], f.scaler.mean),
    floatTensor('input_std', [C], f.scaler.std),
    int64Tensor('flat_shape', [-1, width]),
    floatTensor('target_std', [1], [f.target.std]),
    floatTensor('target_mean', [1], [f.target.mean]),
    int64Tensor('out_shape', [-1]),
  ];
  const nodes: Node[] = [
    node('Sub', ['window', 'input_mean'], ['centred']),
    node('Div', ['centred', 'input_std'], ['scaled']),
    node('Reshape', ['scaled', 'flat_shape'], ['flat']),
  ];
  const h = f.head;
  if (h.kind === 'linear') {
    inits.push(floatTensor('w', [width, 1], h.w), floatTensor('b', [1], [h.b]));
    nodes.push(node('MatMul', ['flat', 'w'], ['linear']), node('Add', ['linear', 'b'], ['y_scaled']));
  } else {
    const skip = new Float32Array(width);
    skip[h.skip] = 1;
    inits.push(
      floatTensor('w1', [width, h.hidden], h.w1),
      floatTensor('b1', [h.hidden], h.b1),
      floatTensor('w2', [h.hidden, 1], h.w2),
      floatTensor('b2', [1], [h.b2]),
      floatTensor('last_target', [width, 1], skip),
    );
    nodes.push(
      node('MatMul', ['flat', 'w1'], ['hidden_lin']),
      node('Add', ['hidden_lin', 'b1'], ['hidden_pre']),
      node('Tanh', ['hidden_pre'], ['hidden']),
      node('MatMul', ['hidden', 'w2'], ['out_lin']),
      node('Add', ['out_lin', 'b2'], ['correction']),
      node('MatMul', ['flat', 'last_target'], ['last_scaled']),
      node('Add', ['last_scaled', 'correction'], ['y_scaled']),
    );
  }
  nodes.push(
    node('Mul', ['y_scaled', 'target_std'], ['y_times_std']),
    node('Add', ['y_times_std', 'target_mean'], ['y_raw']),
    node('Reshape', ['y_raw', 'out_shape'], ['forecast']),
  );
  const tensorType = (dims: (number | string)[]): pb.onnx.ITypeProto => ({
    tensorType: {
      elemType: FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
    },
  });
  const model: pb.onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'runwarden',
    producerVersion: '1',
    docString: opts.docString ?? '',
    graph: {
      name: h.kind === 'linear' ? 'ridge_forecast' : 'mlp_forecast',
      node: nodes,
      initializer: inits,
      input: [{ name: 'window', type: tensorType(['batch', L, C]) }],
      output: [{ name: 'forecast', type: tensorType(['batch']) }],
    },
  };
  return pb.onnx.ModelProto.encode(pb.onnx.ModelProto.create(model)).finish();
}
