/**
 * Loading and running an ONNX model with onnxruntime-node, off the main thread: the session lives
 * in a worker thread (onnx-worker.ts), because `InferenceSession.create/run` are synchronous native
 * calls that would block the event loop (and with it lock renewal, heartbeats and MCP). The model is
 * loaded by path (its external-data files sit next to it). Only tensor outputs are asked for (Node
 * cannot return map/sequence outputs); int64 outputs come back as BigInt64Array. Feeds are checked
 * before running: missing or extra input names, dtype, rank and fixed dimensions, each mismatch a
 * `MODEL_INPUT_MISMATCH` naming the input with expected vs given. A file onnxruntime refuses is
 * `MODEL_INVALID` naming the file. Large inputs are sent in chunks of `chunkRows` along dim 0 when
 * every output's first dim is dynamic (batched); otherwise in one call. `close()` never terminates
 * the thread inside a native run (that can crash the process): callers are released at once, and a
 * busy thread ends after the chunk it is running.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ModelInputMismatchError, ModelInvalidError, RunwardenError } from '../errors/index.js';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array;
export interface TensorValue {
  data: TensorData;
  dims: number[];
}
export interface ValueInfo {
  name: string;
  type: string;
  dims: (number | string)[];
}

export interface OnnxModel {
  inputs: ValueInfo[];
  /** Tensor outputs only (the ones run() returns). */
  outputs: ValueInfo[];
  run(
    feeds: Record<string, TensorValue>,
    opts?: { chunkRows?: number },
  ): Promise<Record<string, TensorValue>>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** onnxruntime intra-op threads (default 1: the machine is shared with the worker's tasks). */
  threads?: number;
  /** Rows per run call when the input is larger (default 16,384). */
  chunkRows?: number;
  /** How long loading may take (default 60 s). */
  loadTimeoutMs?: number;
  /** Called with the worker thread once started (supervision and tests: terminating it mid-run). */
  onWorker?: (worker: Worker) => void;
}

export const DEFAULT_CHUNK_ROWS = 16_384;

const TYPE_OF: Record<string, string> = {
  Float32Array: 'float32',
  Float64Array: 'float64',
  Int32Array: 'int32',
  BigInt64Array: 'int64',
};

const shape = (type: string, dims: readonly (number | string)[]) =>
  `${type} [${dims.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d ? -1 : -1)).join(', ')}]`;

/**
 * Starts the worker: the .js next to us in dist; under tsx or vitest (this file is .ts) a small
 * bootstrap registers tsx's loader inside the worker first, then imports the .ts worker.
 */
function startWorker(workerData: unknown): Worker {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return new Worker(new URL('./onnx-worker.js', import.meta.url), { workerData });
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(path.join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  const entry = new URL('./onnx-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** Checks feeds against the model's inputs; throws MODEL_INPUT_MISMATCH naming the input. */
export function checkFeeds(inputs: ValueInfo[], feeds: Record<string, TensorValue>): void {
  const names = new Set(inputs.map((i) => i.name));
  for (const i of inputs) {
    const f = feeds[i.name];
    if (!f)
      throw new ModelInputMismatchError(i.name, shape(i.type, i.dims), 'nothing', 'feed every model input');
    const type = TYPE_OF[f.data.constructor.name] ?? f.data.constructor.name;
    const given = shape(type, f.dims);
    const expected = shape(i.type, i.dims);
    const mismatch =
      type !== i.type ||
      (i.dims.length > 0 && i.dims.length !== f.dims.length) ||
      i.dims.some((d, k) => typeof d === 'number' && d > 0 && f.dims[k] !== d);
    if (mismatch) throw new ModelInputMismatchError(i.name, expected, given);
    const count = f.dims.reduce((a, b) => a * b, 1);
    if (count !== f.data.length)
      throw new ModelInputMismatchError(
        i.name,
        given,
        `${f.data.length} values`,
        'data length must be the product of dims',
      );
  }
  for (const name of Object.keys(feeds)) {
    if (!names.has(name))
      throw new ModelInputMismatchError(
        name,
        `no such input (the model takes ${inputs.map((i) => `'${i.name}'`).join(', ')})`,
        'a feed',
        'name feeds after the model inputs',
      );
  }
}

/**
 * postMessage structured-clones a typed array's WHOLE backing buffer, even for a small view into
 * it (a chunk, a caller's batch): send a copy of just the view's bytes instead (bench:onnx).
 */
function compact(d: TensorData): TensorData {
  return d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : (d.slice() as TensorData);
}

/** A dimension onnxruntime reports as fixed (a positive number; symbolic names and -1 are dynamic). */
const fixedDim = (d: number | string | undefined) => typeof d === 'number' && d > 0;

function sliceRows(v: TensorValue, from: number, to: number): TensorValue {
  const per = v.dims.slice(1).reduce((a, b) => a * b, 1);
  return { data: v.data.subarray(from * per, to * per) as TensorData, dims: [to - from, ...v.dims.slice(1)] };
}

function concatRows(parts: TensorValue[]): TensorValue {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const total = parts.reduce((s, p) => s + p.data.length, 0);
  const Ctor = first.data.constructor as new (n: number) => TensorData;
  const out = new Ctor(total);
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p.data as Float32Array, off);
    off += p.data.length;
  }
  return { data: out, dims: [parts.reduce((s, p) => s + (p.dims[0] ?? 0), 0), ...first.dims.slice(1)] };
}

/** Opens `dir/model.onnx` (or `dir` itself when it is a file) in a worker thread. */
export async function openOnnxModel(dirOrFile: string, opts: OpenOptions = {}): Promise<OnnxModel> {
  const file = dirOrFile.endsWith('.onnx') ? dirOrFile : path.join(dirOrFile, 'model.onnx');
  if (!existsSync(file))
    throw new ModelInvalidError(file, 'the file does not exist (a model folder holds model.onnx)');
  const worker = startWorker({ file, threads: opts.threads ?? 1 });
  opts.onWorker?.(worker);
  const pending = new Map<
    number,
    { resolve: (v: Record<string, TensorValue>) => void; reject: (e: Error) => void }
  >();
  let failed: Error | undefined;
  const failAll = (err: Error) => {
    failed ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  type Meta = ValueInfo & { isTensor: boolean };
  const ready = await new Promise<{ inputs: Meta[]; outputs: Meta[] }>((resolve, reject) => {
    const t = setTimeout(() => {
      void worker.terminate();
      reject(new ModelInvalidError(file, `loading took longer than ${opts.loadTimeoutMs ?? 60_000} ms`));
    }, opts.loadTimeoutMs ?? 60_000);
    worker.once('error', (err) => {
      clearTimeout(t);
      reject(
        new RunwardenError(
          'MODEL_INVALID',
          `the ONNX worker thread failed while loading ${file}: ${err.message}`,
        ),
      );
    });
    const early = (code: number) => {
      clearTimeout(t);
      reject(new ModelInvalidError(file, `the ONNX worker thread exited (code ${code}) while loading`));
    };
    worker.once('exit', early);
    worker.once('message', (m: { op: string; error?: string; inputs: Meta[]; outputs: Meta[] }) => {
      clearTimeout(t);
      worker.off('exit', early);
      if (m.error) {
        void worker.terminate();
        reject(new ModelInvalidError(file, m.error));
      } else resolve(m);
    });
  });
  worker.on(
    'message',
    (m: { id?: number; ok?: boolean; outputs?: Record<string, TensorValue>; error?: string }) => {
      if (m.id === undefined) return;
      inflight--;
      // A close() during a run ends the thread only now, between native calls.
      if (closing && inflight === 0) void worker.terminate();
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok && m.outputs) p.resolve(m.outputs);
      else
        p.reject(
          new RunwardenError(
            'MODEL_INVALID',
            `onnxruntime failed to run ${path.basename(file)}: ${m.error ?? 'no output'}`,
          ),
        );
    },
  );
  worker.on('error', (err) =>
    failAll(new RunwardenError('MODEL_INVALID', `the ONNX worker thread failed: ${err.message}`)),
  );
  worker.on('exit', () => failAll(new RunwardenError('MODEL_INVALID', 'the ONNX worker thread exited')));
  worker.unref();

  const inputs = ready.inputs.map(({ name, type, dims }) => ({ name, type, dims }));
  const tensorOutputs = ready.outputs
    .filter((o) => o.isTensor)
    .map(({ name, type, dims }) => ({ name, type, dims }));
  if (tensorOutputs.length === 0) {
    await worker.terminate();
    throw new ModelInvalidError(
      file,
      `no tensor output (outputs ${ready.outputs.map((o) => `'${o.name}'`).join(', ')} are maps or sequences, which onnxruntime-node cannot return; export classifiers with zipmap off)`,
    );
  }
  let nextId = 0;
  // Runs posted to the thread and not answered yet (each is at most one chunk of native work).
  let inflight = 0;
  let closing = false;
  const call = (feeds: Record<string, TensorValue>) =>
    new Promise<Record<string, TensorValue>>((resolve, reject) => {
      if (failed) return reject(failed);
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.ref();
      inflight++;
      worker.postMessage({
        op: 'run',
        id,
        outputs: tensorOutputs.map((o) => o.name),
        feeds: Object.fromEntries(
          Object.entries(feeds).map(([k, v]) => [
            k,
            { type: TYPE_OF[v.data.constructor.name], data: compact(v.data), dims: v.dims },
          ]),
        ),
      });
    }).finally(() => {
      if (pending.size === 0) worker.unref();
    });

  return {
    inputs,
    outputs: tensorOutputs,
    async run(feeds, runOpts = {}) {
      checkFeeds(inputs, feeds);
      const chunk = Math.max(1, runOpts.chunkRows ?? opts.chunkRows ?? DEFAULT_CHUNK_ROWS);
      const rows = Object.values(feeds)[0]?.dims[0] ?? 0;
      const batched = Object.values(feeds).every((f) => f.dims.length > 0 && f.dims[0] === rows);
      // Chunks are joined along dim 0: only when every output is batched (its first dim dynamic);
      // an output with a fixed first dim (a summary, a scalar) is computed over the whole input.
      const outputsBatched = tensorOutputs.every((o) => o.dims.length > 0 && !fixedDim(o.dims[0]));
      if (!batched || !outputsBatched || rows <= chunk) return call(feeds);
      const parts: Record<string, TensorValue>[] = [];
      for (let from = 0; from < rows; from += chunk) {
        const to = Math.min(rows, from + chunk);
        const part = await call(
          Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, sliceRows(v, from, to)])),
        );
        for (const o of tensorOutputs) {
          const got = part[o.name];
          if (!got || got.dims[0] !== to - from)
            throw new RunwardenError(
              'MODEL_INVALID',
              `output '${o.name}' gave shape [${got?.dims.join(', ') ?? ''}] for a chunk of ${to - from} rows: it is not batched on its first dimension, so the input cannot be scored in chunks; score at most ${chunk} rows at a time`,
            );
        }
        parts.push(part);
      }
      return Object.fromEntries(tensorOutputs.map((o) => [o.name, concatRows(parts.map((p) => p[o.name]!))]));
    },
    async close() {
      failAll(new RunwardenError('MODEL_INVALID', 'the model was closed'));
      closing = true;
      // Terminating a thread inside onnxruntime's native run can take the whole process down:
      // an idle thread ends now; a busy one ends when its current chunk answers (bounded work).
      if (inflight === 0) await worker.terminate();
      else worker.unref();
    },
  };
}
