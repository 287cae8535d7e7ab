/**
 * Turns a folder holding `model.onnx` (plus any external-data files next to it) into an MLflow
 * model folder, exactly as `mlflow.onnx.save_model` (MLflow 3.17.2) writes one, so
 * `mlflow.pyfunc.load_model` loads it and the MLflow UI shows its schema: `MLmodel` with the `onnx`
 * and `python_function` flavours and a tensor signature (JSON strings inside the YAML, as MLflow
 * writes them), `conda.yaml`, `python_env.yaml`, `requirements.txt`, `input_example.json` (kept when
 * the trainer wrote one, else zeros with batch 1) and `serving_input_example.json`. The graph's
 * inputs and outputs are read from the ONNX protobuf without its weights (onnx-graph-io.ts), not by
 * creating an onnxruntime session: that blocked the worker's event loop (1.8 s for a 268 MB model)
 * and a model that crashes onnxruntime natively would take the worker down. Whether onnxruntime can
 * run the graph is checked where it is run (the judge's re-score, prediction), off the main thread.
 * The versions written are the ones runwarden pins (`MODEL_ENV`), not detected.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML, { Scalar } from 'yaml';
import { capForEcho, RunwardenError } from '../errors/index.js';
import { type FeatureSpec, readFeatureSpec } from '../eval/features.js';
import { type GraphValue, readGraphIo } from './onnx-graph-io.js';

/** The environment an MLflow model written by runwarden declares (what `.venv` has: scripts/setup.sh). */
export const MODEL_ENV = {
  mlflow: '3.17.2',
  onnx: '1.23.2',
  onnxruntime: '1.31.1',
  python: '3.11.7',
  pip: '23.2.1',
} as const;

export const MLMODEL_FILE = 'MLmodel';
export const ONNX_FILE = 'model.onnx';
const EXAMPLE_FILE = 'input_example.json';
const SERVING_EXAMPLE_FILE = 'serving_input_example.json';
/** Largest input_example.json kept (bytes); a bigger one is replaced by a zeros example. */
const MAX_EXAMPLE_BYTES = 1024 * 1024;

export interface TensorSpecJson {
  name?: string;
  type: 'tensor';
  'tensor-spec': { dtype: string; shape: number[] };
}

export interface MlflowModelInfo {
  /** MLflow's signature fields: JSON strings, as in MLmodel. */
  signature: { inputs: string; outputs: string };
  features?: FeatureSpec;
}

const invalid = (file: string, why: string) =>
  new RunwardenError(
    'MODEL_INVALID',
    `${file}: ${why}. A model folder needs a loadable ONNX graph in model.onnx (external-data files next ` +
      'to it); re-export the model (torch.onnx.export / onnx.save) and run the task again.',
  );

/** ONNX tensor types (onnxruntime's names) → numpy dtype names, as MLflow's TensorSpec writes them. */
const DTYPES: Record<string, string> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  uint16: 'uint16',
  int32: 'int32',
  uint32: 'uint32',
  int64: 'int64',
  uint64: 'uint64',
  bool: 'bool',
  string: 'object',
};

function specOf(m: GraphValue, file: string, what: string): TensorSpecJson | undefined {
  if (m.type === undefined) {
    if (what === 'input') throw invalid(file, `input '${capForEcho(m.name)}' is not a tensor`);
    return undefined; // map/sequence outputs: not part of a tensor signature (and unsupported in Node)
  }
  const dtype = DTYPES[m.type];
  if (!dtype) throw invalid(file, `${what} '${capForEcho(m.name)}' has unsupported type ${m.type}`);
  return { name: m.name, type: 'tensor', 'tensor-spec': { dtype, shape: m.dims } };
}

/** Inputs and outputs of the graph at `file` as MLflow tensor specs; MODEL_INVALID when it does not decode. */
export async function readOnnxSignature(
  file: string,
): Promise<{ inputs: TensorSpecJson[]; outputs: TensorSpecJson[] }> {
  const shown = path.basename(file);
  if (!existsSync(file)) throw invalid(shown, `no ${shown} in ${capForEcho(path.dirname(file))}`);
  let io: Awaited<ReturnType<typeof readGraphIo>>;
  try {
    io = await readGraphIo(file);
  } catch (err) {
    throw invalid(shown, `not a readable ONNX model (${capForEcho((err as Error).message, 300)})`);
  }
  const inputs = io.inputs.map((m) => specOf(m, shown, 'input'));
  const outputs = io.outputs.map((m) => specOf(m, shown, 'output'));
  return {
    inputs: inputs.filter((s): s is TensorSpecJson => !!s),
    outputs: outputs.filter((s): s is TensorSpecJson => !!s),
  };
}

/** A JSON number that stays a float for float dtypes (`0.0`, not `0`), so pyfunc casts nothing. */
function zeros(shape: number[], float: boolean): string {
  const dims = shape.map((d) => (d > 0 ? d : 1));
  const leaf = float ? '0.0' : '0';
  const build = (i: number): string =>
    i === dims.length ? leaf : `[${Array.from({ length: dims[i]! }, () => build(i + 1)).join(', ')}]`;
  return build(0);
}

/** The input example: the trainer's own when present and readable, else zeros with batch 1. */
async function inputExample(dir: string, inputs: TensorSpecJson[]): Promise<string> {
  const file = path.join(dir, EXAMPLE_FILE);
  if (existsSync(file) && (await stat(file)).size <= MAX_EXAMPLE_BYTES) {
    const text = await readFile(file, 'utf8');
    try {
      JSON.parse(text);
      return text;
    } catch {
      // not JSON: replaced below
    }
  }
  const one = (s: TensorSpecJson) =>
    zeros(s['tensor-spec'].shape, s['tensor-spec'].dtype.startsWith('float'));
  const [first] = inputs;
  const text =
    inputs.length === 1 && first
      ? one(first)
      : `{${inputs.map((s) => `${JSON.stringify(s.name)}: ${one(s)}`).join(', ')}}`;
  await writeFile(file, text);
  return text;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    // Dirent.parentPath: Node ≥ 20.12 (package.json engines: ≥ 20.15, for zlib.crc32).
    if (e.isFile() && !(e.parentPath === dir && e.name === MLMODEL_FILE))
      total += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

/** MLflow's `utc_time_created`, single-quoted as MLflow writes it (unquoted, PyYAML reads a datetime). */
function utcNow(): Scalar {
  const s = new Scalar(new Date().toISOString().replace('T', ' ').replace('Z', '000'));
  s.type = Scalar.QUOTE_SINGLE;
  return s;
}

function environmentFiles(): Record<string, string> {
  const pins = [
    `mlflow==${MODEL_ENV.mlflow}`,
    `onnx==${MODEL_ENV.onnx}`,
    `onnxruntime==${MODEL_ENV.onnxruntime}`,
  ];
  return {
    'requirements.txt': pins.join('\n'),
    'conda.yaml': YAML.stringify({
      channels: ['conda-forge'],
      dependencies: [`python=${MODEL_ENV.python}`, `pip<=${MODEL_ENV.pip}`, { pip: pins }],
      name: 'mlflow-env',
    }),
    'python_env.yaml': YAML.stringify({
      python: MODEL_ENV.python,
      build_dependencies: [`pip==${MODEL_ENV.pip}`, 'setuptools', 'wheel'],
      dependencies: ['-r requirements.txt'],
    }),
  };
}

/**
 * Make `dir` an MLflow model folder (see the module comment). An `MLmodel` already there (a template
 * that called `mlflow.onnx.save_model` itself) is kept; the graph is still read to check it.
 * Throws MODEL_INVALID (no model.onnx, a file that is not an ONNX ModelProto, a bad features.json).
 */
export async function writeMlflowModel(
  dir: string,
  opts: { modelId?: string } = {},
): Promise<MlflowModelInfo> {
  const sig = await readOnnxSignature(path.join(dir, ONNX_FILE));
  const features = await readFeatureSpec(dir);
  const signature = { inputs: JSON.stringify(sig.inputs), outputs: JSON.stringify(sig.outputs) };
  const mlmodelFile = path.join(dir, MLMODEL_FILE);
  if (existsSync(mlmodelFile)) {
    if (opts.modelId) await setMlmodelId(dir, opts.modelId);
    return { signature, features };
  }
  const example = await inputExample(dir, sig.inputs);
  await writeFile(
    path.join(dir, SERVING_EXAMPLE_FILE),
    // Built as text so float examples keep their `.0` (MLflow enforces the signature's dtype).
    `{\n  "inputs": ${example}\n}\n`,
  );
  for (const [name, text] of Object.entries(environmentFiles())) {
    if (!existsSync(path.join(dir, name))) await writeFile(path.join(dir, name), text);
  }
  const mlmodel = {
    flavors: {
      onnx: {
        code: null,
        data: ONNX_FILE,
        onnx_session_options: null,
        onnx_version: MODEL_ENV.onnx,
        providers: ['CPUExecutionProvider'],
      },
      python_function: {
        data: ONNX_FILE,
        env: { conda: 'conda.yaml', virtualenv: 'python_env.yaml' },
        loader_module: 'mlflow.onnx',
        python_version: MODEL_ENV.python,
      },
    },
    is_signature_from_type_hint: false,
    ...(features ? { metadata: { runwarden_features: features } } : {}),
    mlflow_version: MODEL_ENV.mlflow,
    model_id: opts.modelId ?? null,
    model_size_bytes: await folderBytes(dir),
    model_uuid: randomUUID().replace(/-/g, ''),
    prompts: null,
    saved_input_example_info: {
      artifact_path: EXAMPLE_FILE,
      serving_input_path: SERVING_EXAMPLE_FILE,
      type: 'ndarray',
    },
    signature: { inputs: signature.inputs, outputs: signature.outputs, params: null },
    type_hint_from_example: false,
    utc_time_created: utcNow(),
  };
  await writeFile(mlmodelFile, YAML.stringify(mlmodel, { lineWidth: 0 }));
  return { signature, features };
}

/** Record the logged model's id in `dir/MLmodel` (MLflow 3 writes it when logging a model). */
export async function setMlmodelId(dir: string, modelId: string): Promise<void> {
  const file = path.join(dir, MLMODEL_FILE);
  const doc = YAML.parseDocument(await readFile(file, 'utf8'));
  if (doc.get('model_id') === modelId) return;
  doc.set('model_id', modelId);
  await writeFile(file, doc.toString({ lineWidth: 0 }));
}
