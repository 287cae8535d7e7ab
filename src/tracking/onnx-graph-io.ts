/**
 * Reads an ONNX model's graph inputs and outputs (names, element types, shapes) from `model.onnx`
 * WITHOUT onnxruntime and without decoding the weights: the ModelProto's fields are walked by their
 * protobuf wire format, the initializers (graph field 5) are skipped by length (only their names
 * are read, since a graph input that has an initializer is not a model input, as onnxruntime counts
 * them), and only the small ValueInfoProto messages of the inputs and outputs are decoded with
 * onnx-proto. The file is read asynchronously; the walk touches a few bytes per field, so a
 * 268 MB single-file model costs no event-loop stall of note. A file that is not a well-formed
 * ModelProto with a graph throws (the caller turns it into MODEL_INVALID).
 */
import { readFile } from 'node:fs/promises';
import pb from 'onnx-proto';

export interface GraphValue {
  name: string;
  /** Tensor element type as onnxruntime names it (`float32`, `int64`, ...), or undefined for non-tensors. */
  type?: string;
  /** Dimensions: a number for a fixed size, -1 for a symbolic or unknown one. */
  dims: number[];
}

/** ONNX TensorProto.DataType → onnxruntime-node's type names. */
const ELEM_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
};

/** One protobuf field: its number and, for length-delimited fields, its bytes. */
interface Field {
  no: number;
  bytes?: Uint8Array;
}

/** The fields of one protobuf message in `buf`, values of non-length-delimited fields skipped. */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (no === 0) throw new Error('field number 0');
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      if (pos + len > buf.length) throw new Error(`field ${no} runs past the end`);
      yield { no, bytes: buf.subarray(pos, pos + len) };
      pos += len;
      continue;
    } else throw new Error(`wire type ${wire} (field ${no}) is not valid protobuf`);
    if (pos > buf.length) throw new Error(`field ${no} runs past the end`);
    yield { no };
  }
}

const utf8 = new TextDecoder('utf-8');

function graphValue(bytes: Uint8Array): GraphValue {
  const v = pb.onnx.ValueInfoProto.decode(bytes);
  const t = v.type?.tensorType;
  const dims = (t?.shape?.dim ?? []).map((d) => {
    const n = d.dimValue == null ? Number.NaN : Number(d.dimValue);
    // The oneof's name (`dimValue` | `dimParam`): set only for the member present on the wire.
    const which = (d as pb.onnx.TensorShapeProto.Dimension).value;
    return which === 'dimValue' && Number.isFinite(n) && n >= 0 ? n : -1;
  });
  return {
    name: v.name ?? '',
    type: t ? (ELEM_TYPES[t.elemType ?? 0] ?? `elem_type ${t.elemType}`) : undefined,
    dims,
  };
}

/** The model inputs (graph inputs without an initializer) and outputs of the ONNX file at `file`. */
export async function readGraphIo(file: string): Promise<{ inputs: GraphValue[]; outputs: GraphValue[] }> {
  const buf = await readFile(file);
  let graph: Uint8Array | undefined;
  for (const f of fields(buf)) if (f.no === 7 && f.bytes) graph = f.bytes; // ModelProto.graph
  if (!graph) throw new Error('no graph in the ModelProto (is it an ONNX model?)');
  const inputs: Uint8Array[] = [];
  const outputs: Uint8Array[] = [];
  const initialized = new Set<string>();
  for (const f of fields(graph)) {
    if (!f.bytes) continue;
    if (f.no === 11) inputs.push(f.bytes);
    else if (f.no === 12) outputs.push(f.bytes);
    else if (f.no === 5) {
      // TensorProto.name is field 8; the data fields are skipped by length, never decoded.
      for (const t of fields(f.bytes)) if (t.no === 8 && t.bytes) initialized.add(utf8.decode(t.bytes));
    }
  }
  if (!outputs.length) throw new Error('the graph declares no outputs');
  return {
    inputs: inputs.map(graphValue).filter((v) => !initialized.has(v.name)),
    outputs: outputs.map(graphValue),
  };
}
