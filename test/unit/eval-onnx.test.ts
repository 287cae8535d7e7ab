import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors/index.js';
import { openOnnxModel } from '../../src/eval/onnx-session.js';
import {
  argmaxOnnx,
  linearWindowOnnx,
  mlpOnnx,
  sequenceOnlyOnnx,
  writeExternalDataModel,
} from './eval-onnx-models.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rw-eval-onnx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function modelDir(name: string, bytes: Uint8Array): Promise<string> {
  const d = path.join(dir, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(d, { recursive: true }));
  await writeFile(path.join(d, 'model.onnx'), bytes);
  return d;
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Largest gap between 5 ms ticks on this thread, minus the 5 ms: how long the event loop was blocked. */
function driftProbe(): { stop(): Promise<number> } {
  let last = performance.now();
  let max = 0;
  const t = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last - 5);
    last = now;
  }, 5);
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 20)); // let a tick delayed by the last block land
      clearInterval(t);
      return max;
    },
  };
}

describe('openOnnxModel', () => {
  it('scores a window forecaster and returns its tensor output by name', async () => {
    const m = await openOnnxModel(await modelDir('lin', linearWindowOnnx(2, 1, [0.25, 0.75], 1)));
    try {
      expect(m.inputs).toEqual([{ name: 'window', type: 'float32', dims: ['batch', 2, 1] }]);
      const out = await m.run({ window: { data: Float32Array.from([1, 2, 3, 5]), dims: [2, 2, 1] } });
      expect(Array.from(out.forecast!.data as Float32Array)).toEqual([2.75, 5.5]);
      // Chunked: the same answer, rows stitched back in order.
      const big = Float32Array.from({ length: 2 * 7 }, (_, i) => i);
      const whole = await m.run({ window: { data: big, dims: [7, 2, 1] } });
      const chunked = await m.run({ window: { data: big, dims: [7, 2, 1] } }, { chunkRows: 3 });
      expect(Array.from(chunked.forecast!.data as Float32Array)).toEqual(
        Array.from(whole.forecast!.data as Float32Array),
      );
      expect(chunked.forecast!.dims).toEqual([7]);
    } finally {
      await m.close();
    }
  });

  it('a malformed ONNX file is MODEL_INVALID naming the file', async () => {
    const d = await modelDir('bad', new TextEncoder().encode('this is not protobuf at all'));
    const err = await caught(openOnnxModel(d));
    expect(hasCode(err, 'MODEL_INVALID')).toBe(true);
    expect((err as Error).message).toContain(path.join(d, 'model.onnx'));
  });

  it('a folder without model.onnx is MODEL_INVALID saying the file does not exist', async () => {
    const err = await caught(openOnnxModel(path.join(dir, 'nothing-here')));
    expect(hasCode(err, 'MODEL_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/does not exist/);
  });

  it('a shape mismatch is MODEL_INPUT_MISMATCH with expected vs given by input name', async () => {
    const m = await openOnnxModel(await modelDir('lin8', linearWindowOnnx(8, 3, new Array(24).fill(0.1))));
    try {
      const err = await caught(m.run({ window: { data: new Float32Array(10 * 4 * 3), dims: [10, 4, 3] } }));
      expect(hasCode(err, 'MODEL_INPUT_MISMATCH')).toBe(true);
      expect((err as Error).message).toContain(
        "input 'window': expected float32 [-1, 8, 3], given float32 [10, 4, 3]",
      );
      const dtype = await caught(m.run({ window: { data: new Float64Array(8 * 3), dims: [1, 8, 3] } }));
      expect((dtype as Error).message).toContain(
        "input 'window': expected float32 [-1, 8, 3], given float64 [1, 8, 3]",
      );
      const extra = await caught(
        m.run({
          window: { data: new Float32Array(24), dims: [1, 8, 3] },
          other: { data: new Float32Array(1), dims: [1] },
        }),
      );
      expect((extra as Error).message).toMatch(
        /input 'other': expected no such input \(the model takes 'window'\)/,
      );
      const missing = await caught(m.run({}));
      expect((missing as Error).message).toMatch(
        /input 'window': expected float32 \[-1, 8, 3\], given nothing/,
      );
    } finally {
      await m.close();
    }
  });

  it('an int64 output comes back as a BigInt64Array', async () => {
    const m = await openOnnxModel(await modelDir('argmax', argmaxOnnx()));
    try {
      const out = await m.run({ x: { data: Float32Array.from([0, 1, 0, 5, 1, 2]), dims: [2, 3] } });
      expect(out.label!.data).toBeInstanceOf(BigInt64Array);
      expect(Array.from(out.label!.data as BigInt64Array, Number)).toEqual([1, 0]);
    } finally {
      await m.close();
    }
  });

  it('a model whose only output is a sequence is MODEL_INVALID: no tensor output', async () => {
    const err = await caught(openOnnxModel(await modelDir('seq', sequenceOnlyOnnx())));
    expect(hasCode(err, 'MODEL_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/no tensor output/);
  });

  it('loads a model whose weights are in an external-data file with a random name, by path', async () => {
    const d = path.join(dir, 'ext');
    await import('node:fs/promises').then((fs) => fs.mkdir(d, { recursive: true }));
    writeExternalDataModel(d, '874dde32-eaf5-11f1-84c1-02fc00000001.data', 3, [1, 2, 3]);
    const m = await openOnnxModel(d);
    try {
      const out = await m.run({ window: { data: Float32Array.from([1, 1, 1]), dims: [1, 3, 1] } });
      expect(Array.from(out.forecast!.data as Float32Array)).toEqual([6]);
    } finally {
      await m.close();
    }
  });

  it('scoring 200k rows keeps the main event loop responsive (max delay far below one blocking run)', async () => {
    const m = await openOnnxModel(await modelDir('mlp', mlpOnnx(32, 256, 128)));
    try {
      const rows = 200_000;
      const x = new Float32Array(rows * 32).map((_, i) => ((i * 7919) % 1000) / 1000);
      await m.run({ x: { data: x.subarray(0, 32 * 1000), dims: [1000, 32] } }); // warm-up
      const t0 = performance.now();
      const probe = driftProbe();
      const out = await m.run({ x: { data: x, dims: [rows, 32] } });
      const maxDelayMs = await probe.stop();
      const took = performance.now() - t0;
      console.log(
        `200k-row re-score: ${took.toFixed(0)} ms in all, main-thread max event-loop delay ${maxDelayMs.toFixed(1)} ms`,
      );
      expect(out.y!.dims).toEqual([rows, 1]);
      expect(took).toBeGreaterThan(150); // the work is big enough to matter (360 ms unloaded, reference)
      // A one-shot run on this thread blocks it for the whole run (measured: 1,366 ms of 1,394 ms).
      // 100 ms, or a fifth of the run when a loaded machine makes the run itself slow.
      expect(maxDelayMs).toBeLessThan(Math.max(100, took / 5));
    } finally {
      await m.close();
    }
  }, 120_000);
});
