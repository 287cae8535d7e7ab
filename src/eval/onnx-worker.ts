/**
 * The worker thread that holds an onnxruntime-node session (onnx-session.ts starts it): creating
 * and running a session is synchronous native work on the calling thread (360 ms for 200k rows),
 * so it happens here and the main thread's event loop (lock renewal, heartbeats, MCP) stays free.
 * Messages: `{op:'run', id, feeds, outputs}` → `{id, ok, outputs}` or `{id, ok:false, error}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

type Data = Float32Array | Float64Array | Int32Array | BigInt64Array;
interface Feed {
  type: string;
  data: Data;
  dims: number[];
}

const port = parentPort;
if (!port) throw new Error('onnx-worker runs only as a worker thread');
const { file, threads } = workerData as { file: string; threads: number };

const meta = (m: ort.InferenceSession.ValueMetadata) =>
  m.isTensor
    ? { name: m.name, isTensor: true, type: String(m.type), dims: [...m.shape] }
    : { name: m.name, isTensor: false, type: 'non-tensor', dims: [] };

let session: ort.InferenceSession | undefined;
try {
  session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
  });
  port.postMessage({
    op: 'ready',
    inputs: session.inputMetadata.map(meta),
    outputs: session.outputMetadata.map(meta),
  });
} catch (err) {
  port.postMessage({ op: 'ready', error: (err as Error).message });
}

port.on(
  'message',
  async (msg: { op: string; id: number; feeds: Record<string, Feed>; outputs: string[] }) => {
    if (msg.op === 'close') {
      await session?.release().catch(() => undefined);
      port.close();
      return;
    }
    if (!session) return;
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, f] of Object.entries(msg.feeds))
        feeds[name] = new ort.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
      const res = await session.run(feeds, msg.outputs);
      const out: Record<string, { data: Data; dims: number[] }> = {};
      const transfer: ArrayBuffer[] = [];
      for (const name of msg.outputs) {
        const t = res[name];
        if (!t) continue;
        const data = t.data as Data;
        out[name] = { data, dims: [...t.dims] };
        if (data.buffer instanceof ArrayBuffer) transfer.push(data.buffer);
      }
      port.postMessage({ id: msg.id, ok: true, outputs: out }, transfer);
    } catch (err) {
      port.postMessage({ id: msg.id, ok: false, error: (err as Error).message });
    }
  },
);
