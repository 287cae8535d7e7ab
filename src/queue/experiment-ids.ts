/**
 * Experiment ids by name, remembered per MLflow client: a worker saves a round trip per task, and
 * two clients in one process (two tracking servers) never see each other's ids. The cache lives in
 * a WeakMap keyed by the client, so it goes away with the client; a name is forgotten when a run
 * could not be started in it (the experiment may have been deleted or renamed).
 */
import type { MlflowClient } from '../mlflow/client.js';
import { getOrCreateExperiment } from '../tracking/experiments.js';

const byClient = new WeakMap<MlflowClient, Map<string, string>>();

function idsOf(client: MlflowClient): Map<string, string> {
  let ids = byClient.get(client);
  if (!ids) {
    ids = new Map();
    byClient.set(client, ids);
  }
  return ids;
}

/** The id of experiment `name` on `client`'s server, created if missing; cached per client. */
export async function experimentIdFor(client: MlflowClient, name: string): Promise<string> {
  const ids = idsOf(client);
  const known = ids.get(name);
  if (known) return known;
  const { experimentId } = await getOrCreateExperiment(client, name);
  ids.set(name, experimentId);
  return experimentId;
}

/** Drop `name` from `client`'s cache (the next call asks MLflow again). */
export function forgetExperimentId(client: MlflowClient, name: string): void {
  byClient.get(client)?.delete(name);
}
