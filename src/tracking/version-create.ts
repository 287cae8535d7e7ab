/**
 * model-versions/create made idempotent, as runs/create is (run-create.ts). Each registration sends
 * a client-generated request id (version tag `runwarden.request_id`). A retry first looks for the
 * earlier attempt's version; after a retry the versions carrying the id are checked at once and the
 * extras deleted. A create that timed out may still be committed later (held in a proxy, a slow
 * server), so once its deadline has passed (send time + the client's timeout +
 * `lateCreateMarginMs`) a background sweep looks once more and deletes every version with the id
 * except the one handed to the caller (or all of them when the registration failed). A deleted
 * version takes its aliases with it; when the registration moved an alias and the alias is gone
 * afterwards, it is settled again on the highest version registered for it. The sweep runs only
 * when an attempt failed without an answer; its outcome is logged and given to `onSweep`.
 */
import { isMlflowError } from '../errors/index.js';
import { type MlflowClient, type ModelVersion, ok } from '../mlflow/client.js';
import { isTransient, withRetry } from '../mlflow/retry.js';
import { isTransientUnretried } from '../mlflow/transport.js';
import { tagOf, versionsOfRun } from './model-versions.js';
import { RW_TAGS } from './tags.js';

/** Default wait past a timed-out create's deadline before the final sweep (60 s). */
const DEFAULT_LATE_CREATE_MARGIN_MS = 60_000;

export interface VersionSweepOutcome {
  name: string;
  requestId: string;
  /** The version kept (the caller's), or undefined when the registration failed. */
  keptVersion?: string;
  /** Late-landing versions deleted. */
  removedVersions: string[];
  /** The alias the registration moved, settled again because a removed version held it. */
  resettledAlias?: string;
  /** Set when the sweep could not finish. */
  error?: unknown;
}

export interface VersionCreateOptions {
  name: string;
  runId: string;
  requestId: string;
  /** The model-versions/create body; its tags must include `runwarden.request_id` = requestId. */
  body: {
    name: string;
    source: string;
    run_id: string;
    description?: string;
    tags: { key: string; value: string }[];
    /** MLflow 3 logged model id, when registering from one (source `models:/<model_id>`). */
    model_id?: string;
  };
  /** The alias this registration moves (settled again if a removed late version took it along). */
  alias?: string;
  /** Wait past a timed-out create's deadline before the final sweep (default 60 s). */
  lateCreateMarginMs?: number;
  /** Called once with the final sweep's outcome (when one was needed). */
  onSweep?: (outcome: VersionSweepOutcome) => void;
  /** Moves the alias to the highest version registered for it (models.ts `settleAlias`). */
  settleAlias: (client: MlflowClient, name: string, alias: string) => Promise<string>;
}

/** Versions of the run carrying `requestId`, lowest first. */
async function versionsWithRequestId(client: MlflowClient, opts: VersionCreateOptions) {
  return (await versionsOfRun(client, opts.name, opts.runId))
    .filter((v) => tagOf(v, RW_TAGS.requestId) === opts.requestId)
    .sort((a, b) => Number(a.version) - Number(b.version));
}

/** Delete every version in `versions` except `keep`; a version already gone is fine. */
async function removeAllBut(
  client: MlflowClient,
  name: string,
  versions: ModelVersion[],
  keep: string | undefined,
): Promise<string[]> {
  const removed: string[] = [];
  for (const v of versions) {
    if (v.version === keep) continue;
    try {
      await ok(
        client.api.DELETE('/api/2.0/mlflow/model-versions/delete', { body: { name, version: v.version } }),
      );
    } catch (err) {
      if (!isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')) throw err;
    }
    removed.push(v.version);
  }
  return removed;
}

/** The versions the registered model's aliases point at, by alias. */
async function aliasesOf(client: MlflowClient, name: string): Promise<Map<string, string>> {
  const rm = (
    await ok(client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name } } }))
  ).registered_model;
  return new Map((rm.aliases ?? []).map((a) => [a.alias ?? '', a.version ?? '']));
}

async function finalSweep(
  client: MlflowClient,
  opts: VersionCreateOptions,
  keep: string | undefined,
): Promise<VersionSweepOutcome> {
  const outcome: VersionSweepOutcome = {
    name: opts.name,
    requestId: opts.requestId,
    keptVersion: keep,
    removedVersions: [],
  };
  try {
    const found = await versionsWithRequestId(client, opts);
    const extras = found.filter((v) => v.version !== keep);
    if (!extras.length) {
      client.logger?.debug(
        { requestId: opts.requestId },
        'model-versions/create: final sweep found no duplicate',
      );
      return outcome;
    }
    const heldBefore = opts.alias ? (await aliasesOf(client, opts.name)).get(opts.alias) : undefined;
    outcome.removedVersions = await removeAllBut(client, opts.name, extras, undefined);
    if (opts.alias && heldBefore && outcome.removedVersions.includes(heldBefore)) {
      await opts.settleAlias(client, opts.name, opts.alias);
      outcome.resettledAlias = opts.alias;
    }
    client.logger?.warn(
      { name: opts.name, requestId: opts.requestId, kept: keep, removed: outcome.removedVersions },
      'model-versions/create: late-landing duplicate versions deleted',
    );
  } catch (err) {
    outcome.error = err;
    client.logger?.warn(
      { err, name: opts.name, requestId: opts.requestId, kept: keep },
      'model-versions/create: final duplicate sweep failed; a late duplicate version may remain',
    );
  }
  return outcome;
}

function scheduleSweep(client: MlflowClient, opts: VersionCreateOptions, at: number, keep?: string): void {
  const run = async () => opts.onSweep?.(await finalSweep(client, opts, keep));
  // Unref'd: a process that ends sooner leaves a late duplicate in place (logged nowhere).
  setTimeout(() => void run(), Math.max(0, at - Date.now())).unref();
}

/**
 * Create the version exactly once. Returns the version the caller keeps; extras found now are
 * deleted at once, extras landing later by the background sweep.
 */
export async function createVersionOnce(
  client: MlflowClient,
  opts: VersionCreateOptions,
): Promise<ModelVersion> {
  const margin = opts.lateCreateMarginMs ?? DEFAULT_LATE_CREATE_MARGIN_MS;
  /** Send time of the latest create that failed without a clear answer (it may still land). */
  let unansweredAt = 0;
  let mv: ModelVersion;
  try {
    mv = await withRetry(
      client.retry,
      async (attempt) => {
        if (attempt > 0) {
          const found = await versionsWithRequestId(client, opts);
          const [lowest] = found;
          if (lowest) {
            await removeAllBut(client, opts.name, found, lowest.version);
            return lowest;
          }
        }
        const sentAt = Date.now();
        let created: ModelVersion;
        try {
          created = (await ok(client.api.POST('/api/2.0/mlflow/model-versions/create', { body: opts.body })))
            .model_version;
        } catch (err) {
          if (isTransient(err)) unansweredAt = sentAt;
          throw err;
        }
        if (attempt > 0)
          await removeAllBut(client, opts.name, await versionsWithRequestId(client, opts), created.version);
        return created;
      },
      { retryable: isTransientUnretried },
    );
  } catch (err) {
    if (unansweredAt) scheduleSweep(client, opts, unansweredAt + client.timeoutMs + margin, undefined);
    throw err;
  }
  if (unansweredAt) scheduleSweep(client, opts, unansweredAt + client.timeoutMs + margin, mv.version);
  return mv;
}
