// ONNX scoring benchmark: rows per second scoring the SAME ONNX model on the SAME data with
// onnxruntime-node through runwarden's path (openOnnxModel from src/eval/onnx-session.ts: the
// session in a worker thread, inputs posted to it, large inputs cut into chunks), with bare
// onnxruntime-node on the main thread (the floor of the Node binding), and with Python onnxruntime
// (.venv, bench/onnx_py.py), all with 1 intra-op and 1 inter-op thread, in one run. The model is an
// MLP 32 -> 256 -> 128 -> 1 (Gemm + Relu) built with .venv's `onnx.helper` into a temporary folder;
// the data are --rows rows of 32 seeded uniform float32 values, written once and read by both
// sides. Modes: `batched` = all rows in --batch-row runs, `full` = all rows in one call (runwarden
// chunks it: 65,536 rows per run by default), `single` = the first --single rows one row per run.
// Each side warms up first (--warmup runs of a batch and of a row, and one full pass), then times
// --repeat passes of each mode; the table shows the median rows/s, its ratio to Python in the
// same mode, and every pass. The outputs of the full set must agree across the three paths
// (max |difference| <= 1e-4) or the bench fails. Target: runwarden batched >= 0.9x Python batched.
// Usage: npm run bench:onnx -- [--rows N] [--batch B] [--single R] [--warmup W] [--repeat K]

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { DEFAULT_CHUNK_ROWS, openOnnxModel } from '../src/eval/onnx-session.js';
import { repoRoot } from '../test/support/services.js';
import { fmtInt, formatTable, median, positiveInt, pythonBin, requireVenv } from './support.js';

const FEATURES = 32;
const TARGET = 0.9;
const pyScript = join(repoRoot, 'bench', 'onnx_py.py');

interface Options {
  rows: number;
  batch: number;
  single: number;
  warmup: number;
  repeat: number;
}
type Mode = 'batched' | 'full' | 'single';
const MODES: readonly Mode[] = ['batched', 'full', 'single'];
type Rates = Record<Mode, number[]>;

const log = (msg: string) => process.stderr.write(`bench:onnx: ${msg}\n`);

function parseCli(): Options {
  const { values: v } = parseArgs({
    options: {
      rows: { type: 'string' },
      batch: { type: 'string' },
      single: { type: 'string' },
      warmup: { type: 'string' },
      repeat: { type: 'string' },
    },
  });
  const o = {
    rows: positiveInt('rows', v.rows, 100_000),
    batch: positiveInt('batch', v.batch, 1_000),
    single: positiveInt('single', v.single, 5_000),
    warmup: positiveInt('warmup', v.warmup, 30),
    repeat: positiveInt('repeat', v.repeat, 3),
  };
  if (o.single > o.rows) throw new Error(`--single ${o.single} must be at most --rows ${o.rows}`);
  return o;
}

function python(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      pythonBin,
      [pyScript, ...args],
      { maxBuffer: 16 << 20, timeout: 30 * 60_000 },
      (err, out, errOut) =>
        err ? reject(new Error(`${pyScript} ${args[0]} failed: ${err.message}\n${errOut}`)) : resolve(out),
    );
  });
}

/** `rows` x 32 uniform values in [-2, 2) from a seeded mulberry32, the same every run. */
function makeData(rows: number, seed = 20261128): Float32Array {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const x = new Float32Array(rows * FEATURES);
  for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
  return x;
}

/** One scorer: run `rows` rows starting at row `from`, resolve to the output values. */
type Score = (x: Float32Array, from: number, rows: number) => Promise<ArrayLike<number>>;

async function timeModes(
  score: Score,
  x: Float32Array,
  o: Options,
  rates: Rates,
): Promise<ArrayLike<number>> {
  const n = x.length / FEATURES;
  const rate = async (rows: number, fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return rows / ((performance.now() - t0) / 1000);
  };
  rates.batched.push(
    await rate(n, async () => {
      for (let i = 0; i < n; i += o.batch) await score(x, i, Math.min(o.batch, n - i));
    }),
  );
  rates.full.push(await rate(n, () => score(x, 0, n)));
  rates.single.push(
    await rate(o.single, async () => {
      for (let i = 0; i < o.single; i++) await score(x, i, 1);
    }),
  );
  return score(x, 0, n);
}

async function warmUp(score: Score, x: Float32Array, o: Options): Promise<void> {
  const n = x.length / FEATURES;
  for (let i = 0; i < o.warmup; i++) {
    const from = (i * o.batch) % n;
    await score(x, from, Math.min(o.batch, n - from));
    await score(x, i % n, 1);
  }
  await score(x, 0, n);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function main(): Promise<void> {
  const o = parseCli();
  requireVenv();
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-onnx-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const model = join(dir, 'model.onnx');
    const dataFile = join(dir, 'data.f32');
    const pyOut = join(dir, 'py-out.f32');
    log('building the model (MLP 32 -> 256 -> 128 -> 1) with .venv onnx.helper');
    await python(['build', model]);
    const x = makeData(o.rows);
    writeFileSync(dataFile, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const load0 = loadavg()[0]!;

    log(`python onnxruntime: ${o.warmup} warm-up runs, ${o.repeat} passes of each mode`);
    const py = JSON.parse(
      (
        await python([
          'time',
          model,
          dataFile,
          pyOut,
          ...['--rows', o.rows, '--batch', o.batch, '--single', o.single, '--warmup', o.warmup]
            .concat(['--repeat', o.repeat])
            .map(String),
        ])
      )
        .trim()
        .split('\n')
        .at(-1)!,
    ) as Rates & { ort: string };
    const pyFull = new Float32Array(readFileSync(pyOut).buffer.slice(0));

    log('onnxruntime-node on the main thread (floor of the binding)');
    const session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      executionProviders: ['cpu'],
    });
    const raw: Score = async (data, from, rows) => {
      const t = new ort.Tensor('float32', data.subarray(from * FEATURES, (from + rows) * FEATURES), [
        rows,
        FEATURES,
      ]);
      return (await session.run({ x: t })).y!.data as Float32Array;
    };
    log("runwarden's path: openOnnxModel (worker thread, chunks)");
    const rw = await openOnnxModel(dir, { threads: 1 });
    const viaRunwarden: Score = async (data, from, rows) => {
      const out = await rw.run({
        x: { data: data.subarray(from * FEATURES, (from + rows) * FEATURES), dims: [rows, FEATURES] },
      });
      return out.y!.data as Float32Array;
    };

    // Diagnostic: the same path, but the caller hands over a copy of just its rows instead of a
    // view into the whole data set. Posting a typed-array view to a worker structured-clones its
    // WHOLE backing buffer (here rows x 32 x 4 bytes per call); the gap between the two rows is that
    // copy.
    const viaRunwardenCopied: Score = async (data, from, rows) => {
      const out = await rw.run({
        x: { data: data.slice(from * FEATURES, (from + rows) * FEATURES), dims: [rows, FEATURES] },
      });
      return out.y!.data as Float32Array;
    };

    const rawRates: Rates = { batched: [], full: [], single: [] };
    const rwRates: Rates = { batched: [], full: [], single: [] };
    const rwCopiedRates: Rates = { batched: [], full: [], single: [] };
    const scorers: [Score, Rates][] = [
      [raw, rawRates],
      [viaRunwarden, rwRates],
      [viaRunwardenCopied, rwCopiedRates],
    ];
    for (const [score] of scorers) await warmUp(score, x, o);
    const fulls = new Map<Rates, ArrayLike<number>>();
    for (let k = 0; k < o.repeat; k++) {
      log(`node pass ${k + 1}/${o.repeat}`);
      // Rotate which Node path goes first, so a slow moment does not always hit the same one.
      for (let j = 0; j < scorers.length; j++) {
        const [score, rates] = scorers[(j + k) % scorers.length]!;
        fulls.set(rates, await timeModes(score, x, o, rates));
      }
    }
    const rawFull = fulls.get(rawRates)!;
    const rwFull = fulls.get(rwRates)!;
    await rw.close();
    await session.release();

    const diffs = { raw: maxDiff(rawFull, pyFull), runwarden: maxDiff(rwFull, pyFull) };
    if (!(diffs.raw <= 1e-4 && diffs.runwarden <= 1e-4))
      throw new Error(
        `outputs disagree with Python's: max |diff| node ${diffs.raw}, runwarden ${diffs.runwarden} (> 1e-4)`,
      );

    const ortNode = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string })
      .version;
    const modeLabel: Record<Mode, string> = {
      batched: `batched (${fmtInt(o.batch)}-row runs)`,
      full: `full set (${fmtInt(o.rows)} rows, one call)`,
      single: `row by row (${fmtInt(o.single)} rows)`,
    };
    const paths: [string, Rates][] = [
      [`runwarden openOnnxModel (worker thread, chunks of ${fmtInt(DEFAULT_CHUNK_ROWS)})`, rwRates],
      ['  same, caller passes a copy of its rows (diagnostic)', rwCopiedRates],
      ['onnxruntime-node, main thread', rawRates],
      ['python onnxruntime (baseline)', py],
    ];
    const rows: string[][] = [];
    for (const mode of MODES) {
      const base = median(py[mode]);
      for (const [name, r] of paths) {
        const m = median(r[mode]);
        rows.push([
          modeLabel[mode],
          name,
          fmtInt(m),
          r === py ? '1.00x (baseline)' : `${(m / base).toFixed(2)}x`,
          r[mode].map(fmtInt).join(' / '),
        ]);
      }
    }
    console.log(
      `ONNX scoring benchmark: MLP 32->256->128->1 float32, ${fmtInt(o.rows)} rows, 1 intra-op thread each, median of ${o.repeat}`,
    );
    console.log(
      `onnxruntime-node ${ortNode}, python onnxruntime ${py.ort}; machine: ${availableParallelism()} CPUs, 1-min load ${load0.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after`,
    );
    console.log(
      formatTable(['mode', 'path', 'rows/s', 'vs python same mode', 'each pass (rows/s)'], rows, [
        'l',
        'l',
        'r',
        'r',
        'l',
      ]),
    );
    console.log(
      `outputs of the full set vs python: max |diff| node ${diffs.raw.toExponential(1)}, runwarden ${diffs.runwarden.toExponential(1)}`,
    );
    for (const mode of ['batched', 'full'] as const) {
      const ratio = median(rwRates[mode]) / median(py[mode]);
      console.log(
        `target runwarden ${modeLabel[mode]} >= ${TARGET}x python: ${ratio >= TARGET ? 'PASS' : 'FAIL'} (${ratio.toFixed(2)}x)`,
      );
    }
  } finally {
    cleanup();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
