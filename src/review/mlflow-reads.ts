/**
 * The few MLflow reads the review system needs, tolerant where absence is an answer: a run's
 * latest metrics, params and tags; the version an alias points at (none when the model or the
 * alias does not exist: MLflow answers RESOURCE_DOES_NOT_EXIST or INVALID_PARAMETER_VALUE).
 */
import { isMlflowError } from '../errors/index.js';
import { type MlflowClient, type ModelVersion, ok, type Run } from '../mlflow/client.js';

export interface RunView {
  run: Run;
  metrics: Record<string, number>;
  params: Record<string, string>;
  tags: Record<string, string>;
}

export async function readRun(client: MlflowClient, runId: string): Promise<RunView> {
  const { run } = await ok(
    client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
  );
  const metrics: Record<string, number> = {};
  for (const m of run.data?.metrics ?? []) if (typeof m.value === 'number') metrics[m.key] = m.value;
  const params: Record<string, string> = {};
  for (const p of run.data?.params ?? []) params[p.key] = p.value ?? '';
  const tags: Record<string, string> = {};
  for (const t of run.data?.tags ?? []) tags[t.key] = t.value ?? '';
  return { run, metrics, params, tags };
}

export async function versionByAlias(
  client: MlflowClient,
  name: string,
  alias: string,
): Promise<ModelVersion | undefined> {
  try {
    return (
      await ok(
        client.api.GET('/api/2.0/mlflow/registered-models/alias', { params: { query: { name, alias } } }),
      )
    ).model_version;
  } catch (err) {
    if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') || isMlflowError(err, 'INVALID_PARAMETER_VALUE'))
      return undefined;
    throw err;
  }
}
