/**
 * Reading and pruning model versions for registration: all versions of a model or of one run
 * (every page), the ones carrying an idempotency key, and `keepLowest`, which makes concurrent
 * registrations under one key converge on a single version.
 */
import { isMlflowError } from '../errors/index.js';
import { type MlflowClient, type ModelVersion, ok } from '../mlflow/client.js';

export const IDEMPOTENCY_TAG = 'runwarden.idempotency_key';

/** Every version of `name` from `runId` (all pages). */
export async function versionsOfRun(
  client: MlflowClient,
  name: string,
  runId: string,
): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  let pageToken: string | undefined;
  do {
    const page = await ok(
      client.api.GET('/api/2.0/mlflow/model-versions/search', {
        params: {
          query: {
            filter: `name = '${esc(name)}' AND run_id = '${esc(runId)}'`,
            max_results: 1000,
            page_token: pageToken,
          },
        },
      }),
    );
    out.push(...(page.model_versions ?? []));
    pageToken = page.next_page_token;
  } while (pageToken);
  return out;
}

export async function versionsOfModel(client: MlflowClient, name: string): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  let pageToken: string | undefined;
  do {
    const page = await ok(
      client.api.GET('/api/2.0/mlflow/model-versions/search', {
        params: { query: { filter: `name = '${esc(name)}'`, max_results: 1000, page_token: pageToken } },
      }),
    );
    out.push(...(page.model_versions ?? []));
    pageToken = page.next_page_token;
  } while (pageToken);
  return out;
}

const esc = (s: string) => s.replace(/'/g, "\\'");
export const tagOf = (v: ModelVersion, key: string) => v.tags?.find((t) => t.key === key)?.value;
/** Versions of `name` from `runId` carrying the idempotency key, lowest version first. */
export async function versionsWithKey(
  client: MlflowClient,
  name: string,
  runId: string,
  key: string,
): Promise<ModelVersion[]> {
  return (await versionsOfRun(client, name, runId))
    .filter((v) => tagOf(v, IDEMPOTENCY_TAG) === key)
    .sort((a, b) => Number(a.version) - Number(b.version));
}

/**
 * After creating `mine` under an idempotency key: concurrent callers with the same key may have
 * created versions too. Keep the lowest (created first, so every caller sees it and keeps the
 * same one), delete the others (a version another caller deleted already is fine).
 */
export async function keepLowest(
  client: MlflowClient,
  name: string,
  runId: string,
  key: string,
  mine: ModelVersion,
): Promise<ModelVersion> {
  const all = await versionsWithKey(client, name, runId, key);
  const kept = all[0] ?? mine;
  for (const extra of all.slice(1)) {
    try {
      await ok(
        client.api.DELETE('/api/2.0/mlflow/model-versions/delete', {
          body: { name, version: extra.version },
        }),
      );
    } catch (err) {
      if (!isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')) throw err;
    }
  }
  if (all.length > 1) {
    client.logger?.info(
      { name, kept: kept.version, removed: all.slice(1).map((v) => v.version) },
      'registerModel: concurrent calls with one idempotency key; kept the lowest version',
    );
  }
  return kept;
}
