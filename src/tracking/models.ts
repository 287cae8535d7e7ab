/**
 * Model registration. `registerModel` creates the registered model if missing (race-safe, like
 * experiments), creates a version from the run's artifact location, waits until it is READY and
 * moves the alias. Version creation is not idempotent: a per-call request tag lets a retry find
 * the earlier attempt's version and a late-landing duplicate be deleted (version-create.ts), and
 * an optional `idempotencyKey` makes repeated calls return the
 * same version, concurrent ones too: after creating, a caller re-reads every version carrying the
 * key, keeps the lowest number, deletes the rest, and returns the kept one (every racer agrees).
 * The run must have the artifact path (checked first). With `modelId` the version is registered
 * from the run's MLflow 3 logged model instead (source `models:/<model_id>`, `model_id` set, the model
 * checked READY and produced by the run first). Concurrent registrations leave the alias on the
 * highest version registered for it.
 */
import { randomUUID } from 'node:crypto';
import { capForEcho, isMlflowError, RunwardenError, ValidationError } from '../errors/index.js';
import { type MlflowClient, type ModelVersion, ok } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import { sleep, withRetry } from '../mlflow/retry.js';
import { isTransientUnretried } from '../mlflow/transport.js';
import { requireArtifact } from './artifact-check.js';
import { getLoggedModel } from './logged-model.js';
import { IDEMPOTENCY_TAG, keepLowest, tagOf, versionsOfModel, versionsWithKey } from './model-versions.js';
import { RW_TAGS } from './tags.js';
import { LIMITS, validateName } from './validation.js';
import { createVersionOnce, type VersionSweepOutcome } from './version-create.js';

export interface RegisterModelOptions {
  runId: string;
  /** Run-relative folder holding the model, e.g. `model` (unused when `modelId` is given). */
  artifactPath: string;
  /** Register from this logged model of the run (`m-…`): source `models:/<model_id>`. */
  modelId?: string;
  /** Registered model name. */
  name: string;
  /** Alias to point at the new version (e.g. `champion`); omitted = no alias change. */
  alias?: string;
  tags?: Record<string, string>;
  description?: string;
  /** Calls with the same key return the version the first one created. */
  idempotencyKey?: string;
  /** How long to wait for READY (default 5 min). */
  readyTimeoutMs?: number;
  /** Wait past a timed-out create's deadline before the late-duplicate sweep (default 60 s). */
  lateCreateMarginMs?: number;
  /** Called with the late-duplicate sweep's outcome, when a create timed out (version-create.ts). */
  onCreateSweep?: (outcome: VersionSweepOutcome) => void;
}

export interface RegisterModelResult {
  name: string;
  version: string;
  source: string;
  alias?: string;
  /** True when this call created the version (false when an idempotent repeat found it). */
  created: boolean;
  modelVersion: ModelVersion;
}

const ALIAS_RE = /^[\w-]+$/;

/** Refuse aliases MLflow rejects or reserves, with the same words wherever they are set. */
export function validateAlias(alias: string): void {
  if (!ALIAS_RE.test(alias) || alias.length > 255) {
    throw new ValidationError(
      'alias',
      `'${capForEcho(alias)}' is not a valid alias: use letters, digits, '_' and '-' (≤255)`,
    );
  }
  if (/^latest$/i.test(alias) || /^v\d+$/i.test(alias)) {
    throw new ValidationError(
      'alias',
      `'${alias}' is reserved by MLflow ('latest' and 'v<number>'); choose another`,
    );
  }
}

/** Create the registered model unless it exists (race-safe). Returns true when this call made it. */
export async function ensureRegisteredModel(
  client: MlflowClient,
  name: string,
  opts: { description?: string; tags?: Record<string, string> } = {},
): Promise<boolean> {
  return withRetry(
    client.retry,
    async () => {
      try {
        await ok(client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name } } }));
        return false;
      } catch (err) {
        if (!isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')) throw err;
      }
      try {
        await ok(
          client.api.POST('/api/2.0/mlflow/registered-models/create', {
            body: {
              name,
              description: opts.description,
              tags: Object.entries(opts.tags ?? {}).map(([key, value]) => ({ key, value })),
            },
          }),
        );
        return true;
      } catch (err) {
        if (isMlflowError(err, 'RESOURCE_ALREADY_EXISTS')) return false;
        throw err;
      }
    },
    { retryable: isTransientUnretried },
  );
}

async function waitReady(client: MlflowClient, name: string, version: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    const mv = (
      await ok(client.api.GET('/api/2.0/mlflow/model-versions/get', { params: { query: { name, version } } }))
    ).model_version;
    if (!mv.status || mv.status === 'READY') return mv;
    if (mv.status === 'FAILED_REGISTRATION') {
      throw new RunwardenError(
        'MLFLOW_API_ERROR',
        `model ${name} version ${version} failed registration: ${mv.status_message ?? ''}`,
      );
    }
    if (Date.now() > deadline) {
      throw new RunwardenError(
        'MLFLOW_API_ERROR',
        `model ${name} version ${version} not READY after ${timeoutMs} ms (${mv.status})`,
      );
    }
    await sleep(delay);
  }
}

/**
 * Point `alias` at the highest version registered for it. Repeats until a re-read shows nothing
 * newer appeared meanwhile, so concurrent registrations converge on the newest version.
 */
export async function settleAlias(client: MlflowClient, name: string, alias: string): Promise<string> {
  for (let round = 0; round < 20; round++) {
    const intended = (await versionsOfModel(client, name))
      .filter((v) => tagOf(v, RW_TAGS.aliasIntent) === alias)
      .map((v) => Number(v.version))
      .filter(Number.isFinite);
    if (!intended.length)
      throw new RunwardenError('MLFLOW_API_ERROR', `no version of ${name} is registered for alias ${alias}`);
    const target = String(Math.max(...intended));
    try {
      await ok(
        client.api.POST('/api/2.0/mlflow/registered-models/alias', {
          body: { name, alias, version: target },
        }),
      );
    } catch (err) {
      // Lost a race: the version was deleted meanwhile (a duplicate removed by an idempotent
      // caller), or another caller created the alias row at the same moment (MLflow answers
      // BAD_REQUEST for its unique constraint). Read again and retry after a short random pause.
      if (!isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') && !isMlflowError(err, 'BAD_REQUEST')) throw err;
      await sleep(20 + Math.random() * 80 * (round + 1));
      continue;
    }
    const again = (await versionsOfModel(client, name))
      .filter((v) => tagOf(v, RW_TAGS.aliasIntent) === alias)
      .map((v) => Number(v.version));
    if (String(Math.max(...again)) === target) return target;
  }
  throw new RunwardenError('MLFLOW_API_ERROR', `alias ${alias} on ${name} did not settle after 20 rounds`);
}

export async function registerModel(
  client: MlflowClient,
  opts: RegisterModelOptions,
): Promise<RegisterModelResult> {
  validateName('name', opts.name, 'registered model name', LIMITS.maxModelNameLength);
  if (!opts.runId) throw new ValidationError('runId', 'the run holding the model is required');
  if (opts.alias !== undefined) validateAlias(opts.alias);
  const source = opts.modelId ? await loggedModelSource(client, opts) : await runArtifactSource(client, opts);

  await ensureRegisteredModel(client, opts.name);

  if (opts.idempotencyKey) {
    const [prior] = await versionsWithKey(client, opts.name, opts.runId, opts.idempotencyKey);
    if (prior) return finish(client, opts, prior, source, false);
  }

  const requestId = randomUUID();
  const tags = {
    ...opts.tags,
    [RW_TAGS.requestId]: requestId,
    ...(opts.alias ? { [RW_TAGS.aliasIntent]: opts.alias } : {}),
    ...(opts.idempotencyKey ? { [IDEMPOTENCY_TAG]: opts.idempotencyKey } : {}),
  };
  const mv = await createVersionOnce(client, {
    name: opts.name,
    runId: opts.runId,
    requestId,
    body: {
      name: opts.name,
      source,
      run_id: opts.runId,
      description: opts.description,
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      ...(opts.modelId ? { model_id: opts.modelId } : {}),
    },
    alias: opts.alias,
    lateCreateMarginMs: opts.lateCreateMarginMs,
    onSweep: opts.onCreateSweep,
    settleAlias,
  });
  if (!opts.idempotencyKey) return finish(client, opts, mv, source, true);
  const kept = await keepLowest(client, opts.name, opts.runId, opts.idempotencyKey, mv);
  return finish(client, opts, kept, source, kept.version === mv.version);
}

/** `<run artifact URI>/<artifactPath>`, after checking the run has that folder. */
async function runArtifactSource(client: MlflowClient, opts: RegisterModelOptions): Promise<string> {
  const rel = normalizeArtifactPath(opts.artifactPath);
  if (!rel)
    throw new ValidationError('artifactPath', "the model's folder inside the run is required, e.g. 'model'");
  const run = (
    await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: opts.runId } } }))
  ).run;
  const artifactUri = run.info.artifact_uri;
  if (!artifactUri) throw new ValidationError('runId', `run ${opts.runId} has no artifact URI`);
  await requireArtifact(client, opts.runId, rel);
  return `${artifactUri.replace(/\/+$/, '')}/${rel}`;
}

/** `models:/<model_id>`, after checking the logged model is READY and was produced by the run. */
async function loggedModelSource(client: MlflowClient, opts: RegisterModelOptions): Promise<string> {
  const id = opts.modelId ?? '';
  if (!/^m-[0-9a-zA-Z]{1,64}$/.test(id))
    throw new ValidationError(
      'modelId',
      `'${capForEcho(id)}' is not a logged model id (m-<hex>, e.g. from runwarden.model_id)`,
    );
  let model: Awaited<ReturnType<typeof getLoggedModel>>;
  try {
    model = await getLoggedModel(client, id);
  } catch (err) {
    if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST'))
      throw new ValidationError('modelId', `logged model ${id} does not exist (deleted, or another server)`);
    throw err;
  }
  if (model.status !== 'READY')
    throw new ValidationError(
      'modelId',
      `logged model ${id} is ${model.status}, not READY: log it again (logModel)`,
    );
  if (model.sourceRunId && model.sourceRunId !== opts.runId)
    throw new ValidationError(
      'modelId',
      `logged model ${id} comes from run ${model.sourceRunId}, not ${opts.runId}`,
    );
  return `models:/${id}`;
}

async function finish(
  client: MlflowClient,
  opts: RegisterModelOptions,
  mv: ModelVersion,
  source: string,
  created: boolean,
): Promise<RegisterModelResult> {
  const ready = await waitReady(client, opts.name, mv.version, opts.readyTimeoutMs ?? 300_000);
  if (opts.alias) await settleAlias(client, opts.name, opts.alias);
  return {
    name: opts.name,
    version: ready.version,
    source,
    alias: opts.alias,
    created,
    modelVersion: ready,
  };
}
