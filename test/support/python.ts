// Reads MLflow through MLflow's own Python client (from the repo's .venv), as an independent
// reader for integration tests: what runwarden wrote over REST must look right to the client
// people actually use. A script prints one JSON document as its last stdout line.
// Non-finite floats travel as the strings 'NaN', 'Infinity' and '-Infinity' and are turned back
// into numbers by the readers below.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './services.js';

export const pythonBin = join(repoRoot, '.venv', 'bin', 'python');

export interface PythonOptions {
  trackingUri: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Extra arguments after `-c script` (the script reads them from sys.argv). */
  args?: readonly string[];
}

const tail = (text: string, lines = 30) => text.trimEnd().split('\n').slice(-lines).join('\n');

/** Runs `script` with .venv's python and MLFLOW_TRACKING_URI set; returns its last stdout line, parsed. */
export function runPythonMlflow<T>(script: string, opts: PythonOptions): Promise<T> {
  if (!existsSync(pythonBin)) {
    return Promise.reject(
      new Error('MLflow is not installed in .venv: run `npm run setup` (installs mlflow 3.17.2 into .venv)'),
    );
  }
  const env = { ...process.env, ...opts.env, MLFLOW_TRACKING_URI: opts.trackingUri, PYTHONUNBUFFERED: '1' };
  return new Promise<T>((resolveRun, reject) => {
    execFile(
      pythonBin,
      ['-c', script, ...(opts.args ?? [])],
      { env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `killed after ${opts.timeoutMs ?? 60_000} ms` : `exit ${String(err.code)}`;
          reject(new Error(`python script failed (${how}):\n${tail(stderr) || tail(stdout)}`));
          return;
        }
        const last = stdout.trimEnd().split('\n').at(-1) ?? '';
        try {
          resolveRun(JSON.parse(last) as T);
        } catch {
          reject(
            new Error(
              `python script did not end with a JSON line; stdout:\n${tail(stdout)}\nstderr:\n${tail(stderr)}`,
            ),
          );
        }
      },
    );
  });
}

/** Python prelude shared by the readers: JSON-safe floats. */
const PRELUDE = `
import json, math, os
from mlflow.tracking import MlflowClient

def num(v):
    if v is None or math.isfinite(v):
        return v
    return 'NaN' if math.isnan(v) else ('Infinity' if v > 0 else '-Infinity')

client = MlflowClient()
`;

type WireNumber = number | 'NaN' | 'Infinity' | '-Infinity';
const toNumber = (v: WireNumber): number => (typeof v === 'string' ? Number(v) : v);

export interface PyRun {
  status: string;
  params: Record<string, string>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
  end_time: number | null;
  artifact_uri: string;
}

/** `MlflowClient().get_run(runId)`: status, params, latest metrics, tags, end time, artifact URI. */
export async function pyGetRun(trackingUri: string, runId: string): Promise<PyRun> {
  const script = `${PRELUDE}
run = client.get_run(os.environ['RW_RUN_ID'])
print(json.dumps({
    'status': run.info.status,
    'params': dict(run.data.params),
    'metrics': {k: num(v) for k, v in run.data.metrics.items()},
    'tags': dict(run.data.tags),
    'end_time': run.info.end_time,
    'artifact_uri': run.info.artifact_uri,
}))
`;
  const raw = await runPythonMlflow<Omit<PyRun, 'metrics'> & { metrics: Record<string, WireNumber> }>(
    script,
    {
      trackingUri,
      env: { RW_RUN_ID: runId },
    },
  );
  const metrics: Record<string, number> = {};
  for (const [key, value] of Object.entries(raw.metrics)) metrics[key] = toNumber(value);
  return { ...raw, metrics };
}

export interface PyMetricPoint {
  step: number;
  value: number;
  timestamp: number;
}

/** `MlflowClient().get_metric_history(runId, key)`, in the order MLflow returns it. */
export async function pyMetricHistory(
  trackingUri: string,
  runId: string,
  key: string,
): Promise<PyMetricPoint[]> {
  const script = `${PRELUDE}
history = client.get_metric_history(os.environ['RW_RUN_ID'], os.environ['RW_METRIC_KEY'])
print(json.dumps([{'step': m.step, 'value': num(m.value), 'timestamp': m.timestamp} for m in history]))
`;
  const raw = await runPythonMlflow<Array<{ step: number; value: WireNumber; timestamp: number }>>(script, {
    trackingUri,
    env: { RW_RUN_ID: runId, RW_METRIC_KEY: key },
  });
  return raw.map((m) => ({ ...m, value: toNumber(m.value) }));
}

export interface PyArtifact {
  path: string;
  is_dir: boolean;
  file_size: number | null;
}

/** `MlflowClient().list_artifacts(runId, path)`: one level, like MLflow's own listing. */
export function pyListArtifacts(trackingUri: string, runId: string, path?: string): Promise<PyArtifact[]> {
  const script = `${PRELUDE}
path = os.environ.get('RW_ARTIFACT_PATH') or None
items = client.list_artifacts(os.environ['RW_RUN_ID'], path)
print(json.dumps([{'path': f.path, 'is_dir': f.is_dir, 'file_size': f.file_size} for f in items]))
`;
  const env: Record<string, string> = { RW_RUN_ID: runId };
  if (path !== undefined) env.RW_ARTIFACT_PATH = path;
  return runPythonMlflow<PyArtifact[]>(script, { trackingUri, env });
}
