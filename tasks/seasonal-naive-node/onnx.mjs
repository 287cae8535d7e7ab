/**
 * Writes a fixed linear window forecaster as an ONNX model: forecast = window · weights.
 *
 * Hand-written on purpose: a template is copied into a workspace with no node_modules, so this
 * template uses no npm packages, and ONNX files are plain protobuf. Only the few ModelProto fields
 * this graph needs are encoded (onnx/onnx.proto field numbers; proto2 wire format: varints and
 * length-delimited fields; tensors as raw little-endian data).
 *
 * The graph follows runwarden's window-forecaster contract (docs/models.md): input `window`
 * float32 [batch, lookback, 1] of RAW values (oldest row first), output `forecast` float32
 * [batch]. It computes in float64 (Cast, Reshape to [batch, lookback], MatMul with the weights,
 * Reshape to [batch], Cast back), so the float32 output is the rounding of the exact forecast.
 * IR version 8, default-domain opset 17.
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const FLOAT = 1; // TensorProto.DataType
const INT64 = 7;
const DOUBLE = 11;
const ATTR_INT = 2; // AttributeProto.AttributeType

function varint(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`varint: ${n} is not a non-negative safe integer`);
  const out = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

const key = (field, wire) => varint(field * 8 + wire);
const int = (field, n) => Buffer.concat([key(field, WIRE_VARINT), varint(n)]);
const bytes = (field, buf) => Buffer.concat([key(field, WIRE_LEN), varint(buf.length), buf]);
const str = (field, s) => bytes(field, Buffer.from(s, 'utf8'));
const msg = (field, parts) => bytes(field, Buffer.concat(parts));

/** TensorProto: dims (1), data_type (2), name (8), raw_data (9). */
function tensor(field, name, type, dims, raw) {
  return msg(field, [...dims.map((d) => int(1, d)), int(2, type), str(8, name), bytes(9, raw)]);
}

function float64Raw(values) {
  const b = Buffer.alloc(8 * values.length);
  for (const [i, v] of values.entries()) b.writeDoubleLE(v, i * 8);
  return b;
}

function int64Raw(values) {
  const b = Buffer.alloc(8 * values.length);
  for (const [i, v] of values.entries()) b.writeBigInt64LE(BigInt(v), i * 8);
  return b;
}

/** ValueInfoProto name (1), type (2) → TypeProto.tensor_type (1) → elem_type (1), shape (2) → dim (1). */
function valueInfo(field, name, elemType, dims) {
  const dim = (d) => msg(1, [typeof d === 'string' ? str(2, d) : int(1, d)]);
  const tensorType = msg(1, [int(1, elemType), msg(2, dims.map(dim))]);
  return msg(field, [str(1, name), msg(2, [tensorType])]);
}

/** NodeProto input (1), output (2), name (3), op_type (4), attribute (5: name 1, i 3, type 20). */
function node(op, inputs, outputs, attrs = {}) {
  return msg(1, [
    ...inputs.map((i) => str(1, i)),
    ...outputs.map((o) => str(2, o)),
    str(3, `${op.toLowerCase()}_${outputs[0]}`),
    str(4, op),
    ...Object.entries(attrs).map(([k, v]) => msg(5, [str(1, k), int(3, v), int(20, ATTR_INT)])),
  ]);
}

/**
 * The ONNX bytes of forecast[b] = Σ_k window[b, k, 0] · weights[k] (k = 0 oldest row).
 * `docString` lands in the graph's doc_string (what the model is, in words).
 */
export function linearWindowModel(weights, { docString = '', producerVersion = '1' } = {}) {
  const lookback = weights.length;
  if (!lookback || weights.some((w) => !Number.isFinite(w)))
    throw new Error('linearWindowModel: weights must be a non-empty list of finite numbers');
  const graph = [
    node('Cast', ['window'], ['window_f64'], { to: DOUBLE }),
    node('Reshape', ['window_f64', 'rows_shape'], ['rows']),
    node('MatMul', ['rows', 'weights'], ['forecast_col']),
    node('Reshape', ['forecast_col', 'flat_shape'], ['forecast_f64']),
    node('Cast', ['forecast_f64'], ['forecast'], { to: FLOAT }),
    str(2, 'linear_window_forecaster'),
    tensor(5, 'weights', DOUBLE, [lookback, 1], float64Raw(weights)),
    tensor(5, 'rows_shape', INT64, [2], int64Raw([-1, lookback])),
    tensor(5, 'flat_shape', INT64, [1], int64Raw([-1])),
    str(10, docString),
    valueInfo(11, 'window', FLOAT, ['batch', lookback, 1]),
    valueInfo(12, 'forecast', FLOAT, ['batch']),
  ];
  return Buffer.concat([
    int(1, 8), // ir_version
    str(2, 'runwarden seasonal-naive-node'),
    str(3, producerVersion),
    msg(7, graph),
    msg(8, [str(1, ''), int(2, 17)]), // opset_import: default domain, opset 17
  ]);
}
