// A tiny window forecaster for prediction tests, built with the .venv's `onnx`: input `window`
// float32 [-1, lookback, columns], output `forecast` float32 [-1] = sum over the window of
// w[l, c] · x[l, c] + bias (weights fixed by the caller), plus the features.json the contract
// describes. Written to `dir` (model.onnx, features.json).

import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pythonBin } from './python.js';

export interface TinyForecaster {
  lookback: number;
  columns: string[];
  weights: number[];
  bias: number;
}

const SCRIPT = `
import json, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
spec = json.loads(sys.argv[2])
L, C = spec['lookback'], len(spec['columns'])
w = numpy_helper.from_array(np.array(spec['weights'], dtype=np.float32).reshape(L * C, 1), 'w')
b = numpy_helper.from_array(np.array([spec['bias']], dtype=np.float32), 'b')
shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), 'shape')
nodes = [
    helper.make_node('Flatten', ['window'], ['flat'], axis=1),
    helper.make_node('MatMul', ['flat', 'w'], ['mm']),
    helper.make_node('Add', ['mm', 'b'], ['sum']),
    helper.make_node('Reshape', ['sum', 'shape'], ['forecast']),
]
graph = helper.make_graph(nodes, 'tiny', [helper.make_tensor_value_info('window', TensorProto.FLOAT, ['batch', L, C])],
    [helper.make_tensor_value_info('forecast', TensorProto.FLOAT, ['batch'])], [w, b, shape])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
print(json.dumps({'ok': True}))
`;

export async function writeTinyForecaster(dir: string, spec: TinyForecaster): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    execFile(pythonBin, ['-c', SCRIPT, join(dir, 'model.onnx'), JSON.stringify(spec)], (err, _o, e) =>
      err ? reject(new Error(`building the ONNX model failed: ${e}`)) : resolve(),
    ),
  );
  await writeFile(
    join(dir, 'features.json'),
    JSON.stringify({
      kind: 'window',
      time_column: 'week',
      columns: spec.columns,
      target: spec.columns[0],
      lookback: spec.lookback,
      input: 'window',
      output: 'forecast',
      target_scale: { mean: 0, std: 1 },
    }),
  );
}
