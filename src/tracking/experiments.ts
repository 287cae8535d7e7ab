/**
 * One experiment per name. `getOrCreateExperiment` is race-safe across processes the way MLflow's
 * own `set_experiment` is: get by name, create if missing, and on RESOURCE_ALREADY_EXISTS (someone
 * else won the race) read again. A deleted experiment holding the name is reported with the way out.
 */
import { ExperimentDeletedError, isMlflowError } from '../errors/index.js';
import { type Experiment, type MlflowClient, ok } from '../mlflow/client.js';
import { withRetry } from '../mlflow/retry.js';
import { isTransientUnretried } from '../mlflow/transport.js';
import { LIMITS, validateKey, validateName, validateTagValue } from './validation.js';

export interface GetOrCreateExperimentOptions {
  /** Tags set when the experiment is created (left alone if it already exists). */
  tags?: Record<string, string>;
  /** Artifact location for a new experiment (default: the server's, `mlflow-artifacts:/<id>`). */
  artifactLocation?: string;
}

export interface GetOrCreateExperimentResult {
  experimentId: string;
  /** True only for the caller whose create request made the experiment. */
  created: boolean;
  experiment: Experiment;
}

/** Look an experiment up by name; `undefined` when none holds it. */
export async function getExperimentByName(
  client: MlflowClient,
  name: string,
): Promise<Experiment | undefined> {
  try {
    const res = await ok(
      client.api.GET('/api/2.0/mlflow/experiments/get-by-name', {
        params: { query: { experiment_name: name } },
      }),
    );
    return res.experiment;
  } catch (err) {
    if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
    throw err;
  }
}

function usable(exp: Experiment, name: string): Experiment {
  if (exp.lifecycle_stage === 'deleted') throw new ExperimentDeletedError(exp.experiment_id, name);
  return exp;
}

export async function getOrCreateExperiment(
  client: MlflowClient,
  name: string,
  opts: GetOrCreateExperimentOptions = {},
): Promise<GetOrCreateExperimentResult> {
  validateName('name', name, 'experiment name', LIMITS.maxExperimentNameLength);
  for (const [k, v] of Object.entries(opts.tags ?? {})) {
    validateKey(`tags.${k}`, k);
    validateTagValue(`tags.${k}`, v, LIMITS.maxExperimentTagValueLength);
  }
  // The whole sequence is idempotent, so a failed create is retried as a unit (the reads inside
  // were retried by the transport already).
  return withRetry(
    client.retry,
    async () => {
      const existing = await getExperimentByName(client, name);
      if (existing) {
        const exp = usable(existing, name);
        return { experimentId: exp.experiment_id, created: false, experiment: exp };
      }
      try {
        const res = await ok(
          client.api.POST('/api/2.0/mlflow/experiments/create', {
            body: {
              name,
              artifact_location: opts.artifactLocation,
              tags: Object.entries(opts.tags ?? {}).map(([key, value]) => ({ key, value })),
            },
          }),
        );
        const experimentId = res.experiment_id;
        const got = await ok(
          client.api.GET('/api/2.0/mlflow/experiments/get', {
            params: { query: { experiment_id: experimentId } },
          }),
        );
        return {
          experimentId,
          created: true,
          experiment: got.experiment,
        };
      } catch (err) {
        if (!isMlflowError(err, 'RESOURCE_ALREADY_EXISTS')) throw err;
        // Lost the race (or a timed-out create of ours landed): the winner's experiment is ours too.
        const winner = await getExperimentByName(client, name);
        if (!winner) throw err;
        const exp = usable(winner, name);
        return { experimentId: exp.experiment_id, created: false, experiment: exp };
      }
    },
    { retryable: isTransientUnretried },
  );
}
