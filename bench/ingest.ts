// Metric ingestion benchmark: how many metric points per second reach one MLflow run, runwarden
// versus MLflow's own Python client, against the same local MLflow server (SQLite backend store,
// 2 workers) started by this script and stopped at the end. Every workload logs one metric key
// `loss` with steps 0..N-1 into a fresh run of one experiment; each is timed from its first logging
// call to the end of closing the run (run creation and, for Python, interpreter start and imports
// are not timed), then checked by reading the metric history back: a point lost fails the bench.
// The baseline is Python's `MlflowClient.log_batch` with 1000 metrics per call, the fastest way
// MLflow's client offers; the target is runwarden's `RunHandle.logMetric` at >= 1.0x of it.
// Also shown: a raw runwarden log-batch loop (1000 per call, sequential; the floor of what the
// HTTP path itself costs) and Python's fluent `mlflow.log_metric` (one request per point; measured
// on a smaller count, N/50 by default, and reported as points/s, a rate, so it compares).
// Workloads repeat --repeat times in alternating order after one untimed warm-up round; the table
// shows medians. Usage: npm run bench:ingest -- [--points N] [--repeat R] [--fluent-points M]

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  createMlflowClient,
  getMetricHistory,
  getOrCreateExperiment,
  type MlflowClient,
  startRun,
} from '../src/index.js';
import { type MlflowServer, startMlflowServer } from '../test/support/services.js';
import { fmtInt, formatTable, median, positiveInt, requireVenv, runPython } from './support.js';

const PER_CALL = 1000;
const KEY = 'loss';
/** The value logged at step i, by every workload (Python computes the same double). */
const valueAt = (i: number) => 1 / (1 + i);

interface Timed {
  runId: string;
  seconds: number;
}

interface PyTimed extends Timed {
  mlflow: string;
}

interface Ctx {
  client: MlflowClient;
  trackingUri: string;
  experimentId: string;
  label: string;
}

interface Workload {
  id: 'runwarden' | 'raw' | 'pyBatch' | 'pyFluent';
  label: string;
  /** Points per repetition. */
  points: number;
  run(ctx: Ctx, points: number): Promise<Timed>;
}

const PY_LOG_BATCH = `
import json, sys, time
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

exp_id, n, per_call, run_name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
client = MlflowClient()
run_id = client.create_run(exp_id, run_name=run_name).info.run_id
t0 = time.perf_counter()
for start in range(0, n, per_call):
    metrics = [Metric('${KEY}', 1.0 / (1 + i), int(time.time() * 1000), i)
               for i in range(start, min(n, start + per_call))]
    client.log_batch(run_id, metrics=metrics)
client.set_terminated(run_id)
elapsed = time.perf_counter() - t0
print(json.dumps({'runId': run_id, 'seconds': elapsed, 'mlflow': mlflow.__version__}))
`;

const PY_FLUENT = `
import json, sys, time
import mlflow

exp_id, n, run_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
    t0 = time.perf_counter()
    for i in range(n):
        mlflow.log_metric('${KEY}', 1.0 / (1 + i), step=i)
    run_id = run.info.run_id
# leaving the with-block ends the run (set_terminated): timed, like the other workloads' end
elapsed = time.perf_counter() - t0
print(json.dumps({'runId': run_id, 'seconds': elapsed, 'mlflow': mlflow.__version__}))
`;

let mlflowVersion = 'unknown';

const workloads = (n: number, fluentN: number): Workload[] => [
  {
    id: 'runwarden',
    label: 'runwarden RunHandle.logMetric',
    points: n,
    async run(ctx, points) {
      const run = await startRun(ctx.client, {
        experimentId: ctx.experimentId,
        runName: ctx.label,
        handleSignals: false,
      });
      const t0 = performance.now();
      try {
        for (let i = 0; i < points; i++) await run.logMetric(KEY, valueAt(i), { step: i });
      } catch (err) {
        await run.end('FAILED', { error: err }).catch(() => undefined);
        throw err;
      }
      await run.end();
      return { runId: run.runId, seconds: (performance.now() - t0) / 1000 };
    },
  },
  {
    id: 'raw',
    label: 'runwarden raw log-batch (1000/call)',
    points: n,
    async run(ctx, points) {
      const { data } = await ctx.client.api.POST('/api/2.0/mlflow/runs/create', {
        body: { experiment_id: ctx.experimentId, run_name: ctx.label, start_time: Date.now() },
      });
      const runId = data?.run?.info?.run_id;
      if (!runId) throw new Error('runs/create returned no run id');
      const t0 = performance.now();
      for (let start = 0; start < points; start += PER_CALL) {
        const metrics: { key: string; value: number; step: number; timestamp: number }[] = [];
        for (let i = start; i < Math.min(points, start + PER_CALL); i++) {
          metrics.push({ key: KEY, value: valueAt(i), step: i, timestamp: Date.now() });
        }
        await ctx.client.api.POST('/api/2.0/mlflow/runs/log-batch', { body: { run_id: runId, metrics } });
      }
      await ctx.client.api.POST('/api/2.0/mlflow/runs/update', {
        body: { run_id: runId, status: 'FINISHED', end_time: Date.now() },
      });
      return { runId, seconds: (performance.now() - t0) / 1000 };
    },
  },
  {
    id: 'pyBatch',
    label: 'python MlflowClient.log_batch',
    points: n,
    async run(ctx, points) {
      const out = await runPython<PyTimed>(
        PY_LOG_BATCH,
        [ctx.experimentId, String(points), String(PER_CALL), ctx.label],
        { trackingUri: ctx.trackingUri },
      );
      mlflowVersion = out.mlflow;
      return out;
    },
  },
  {
    id: 'pyFluent',
    label: `python fluent log_metric (${fluentN})`,
    points: fluentN,
    async run(ctx, points) {
      const out = await runPython<PyTimed>(PY_FLUENT, [ctx.experimentId, String(points), ctx.label], {
        trackingUri: ctx.trackingUri,
      });
      mlflowVersion = out.mlflow;
      return out;
    },
  },
];

/** Reads the run's `loss` history back; throws unless it holds exactly steps 0..points-1. */
async function verify(client: MlflowClient, runId: string, points: number, label: string): Promise<void> {
  const history = await getMetricHistory(client, runId, KEY);
  const steps = new Set(history.map((m) => m.step));
  const complete = steps.size === points && steps.has(0) && steps.has(points - 1);
  if (history.length !== points || !complete) {
    throw new Error(
      `${label}: run ${runId} holds ${history.length} '${KEY}' points (${steps.size} distinct steps), ` +
        `expected ${points} (steps 0..${points - 1}); points were lost or duplicated`,
    );
  }
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      points: { type: 'string' },
      repeat: { type: 'string' },
      'fluent-points': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:ingest -- [--points N (100000)] [--repeat R (3)] [--fluent-points M (N/50)]',
    );
    process.exit(0);
  }
  const points = positiveInt('points', values.points, 100_000);
  const repeat = positiveInt('repeat', values.repeat, 3);
  const fluentPoints = positiveInt(
    'fluent-points',
    values['fluent-points'],
    Math.max(1, Math.floor(points / 50)),
  );
  return { points, repeat, fluentPoints };
}

/** 1.2345 -> '1.23x'; small ratios keep a significant digit: 0.0043 -> '0.004x'. */
const fmtRatio = (r: number): string => `${r >= 0.1 ? r.toFixed(2) : r.toFixed(3)}x`;

const log = (line: string) => process.stderr.write(`${line}\n`);

async function bench(server: MlflowServer, opts: ReturnType<typeof parseCli>): Promise<void> {
  const { points, repeat, fluentPoints } = opts;
  const client = createMlflowClient({ trackingUri: server.url });
  const { experimentId } = await getOrCreateExperiment(client, `ingest-bench-${Date.now()}`);
  const all = workloads(points, fluentPoints);
  const rates = new Map<Workload['id'], number[]>(all.map((w) => [w.id, []]));

  const once = async (w: Workload, n: number, tag: string): Promise<number> => {
    const label = `${w.id}-${tag}`;
    const { runId, seconds } = await w.run({ client, trackingUri: server.url, experimentId, label }, n);
    await verify(client, runId, n, w.label);
    const rate = n / seconds;
    log(
      `  ${tag.padEnd(7)} ${w.label.padEnd(36)} ${fmtInt(n).padStart(9)} points ${seconds.toFixed(2).padStart(7)} s ${fmtInt(rate).padStart(8)} points/s  (verified)`,
    );
    return rate;
  };

  log('warm-up (untimed in results): each workload once on a small count');
  for (const w of all) await once(w, Math.min(w.points, w.id === 'pyFluent' ? 200 : 2_000), 'warmup');

  for (let r = 0; r < repeat; r++) {
    const order = r % 2 === 0 ? all : [...all].reverse();
    log(`repetition ${r + 1}/${repeat}: ${order.map((w) => w.id).join(', ')}`);
    for (const w of order) rates.get(w.id)!.push(await once(w, w.points, `rep${r + 1}`));
  }

  const medians = new Map(all.map((w) => [w.id, median(rates.get(w.id)!)]));
  const baseline = medians.get('pyBatch')!;
  const rows = all.map((w) => {
    const m = medians.get(w.id)!;
    const ratio = `${fmtRatio(m / baseline)}${w.id === 'pyBatch' ? ' (baseline)' : ''}`;
    return [w.label, fmtInt(m), ratio, rates.get(w.id)!.map(fmtInt).join(' / ')];
  });
  const runwardenRatio = medians.get('runwarden')! / baseline;

  console.log('');
  console.log(
    `ingest benchmark: ${points} points, MLflow ${mlflowVersion} (sqlite, 2 workers), median of ${repeat}`,
  );
  console.log(
    formatTable(['workload', 'points/s', 'vs python log_batch', 'each repetition (points/s)'], rows, [
      'l',
      'r',
      'l',
      'l',
    ]),
  );
  console.log(
    `note: python fluent log_metric was measured on ${fluentPoints} points (not ${points}); ` +
      'points/s is a rate, so the rows compare.',
  );
  console.log(
    `target runwarden >= 1.0x python log_batch: ${runwardenRatio >= 1 ? 'MET' : 'NOT MET'} ` +
      `(${fmtRatio(runwardenRatio)})`,
  );
}

async function main(): Promise<void> {
  const opts = parseCli();
  requireVenv();
  let server: MlflowServer | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= server?.stop() ?? Promise.resolve();
    return stopping;
  };
  // Ctrl-C or a kill: stop the server's process group first. During startup there is no handle
  // yet; process.exit then runs services.ts's exit hook, which kills the groups it started.
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the MLflow server`);
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  log('starting MLflow server (can take 30-40 s) ...');
  const started = performance.now();
  server = await startMlflowServer();
  log(`MLflow server at ${server.url} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  try {
    await bench(server, opts);
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:ingest failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
