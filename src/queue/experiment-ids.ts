/**
 * Experiment ids by name, remembered per MLflow client: a worker saves a round trip per task, and
 * two clients in one process (two tracking servers) never see each other's ids. The cache is the
 * client's own `experimentIds` map, so it lives and goes with the client (no module-level state);
 * a name is forgotten when a run could not be started in it (the experiment may have been
 * deleted or renamed).
 */
import type { MlflowClient } from '../mlflow/client.js';
import { getOrCreateExperiment } from '../tracking/experiments.js';

/** The id of experiment `name` on `client`'s server, created if missing; cached on the client. */
export async function experimentIdFor(client: MlflowClient, name: string): Promise<string> {
  const known = client.experimentIds.get(name);
  if (known) return known;
  const { experimentId } = await getOrCreateExperiment(client, name);
  client.experimentIds.set(name, experimentId);
  return experimentId;
}

/** Drop `name` from `client`'s cache (the next call asks MLflow again). */
export function forgetExperimentId(client: MlflowClient, name: string): void {
  client.experimentIds.delete(name);
}
