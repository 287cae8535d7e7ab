/**
 * MLflow 3 logged models, the way `mlflow.<flavour>.log_model(name=...)` makes them, over REST:
 * create the LoggedModel (PENDING) with its source run, link it to the run's outputs (the run page's
 * "Logged models"), upload every file of the model folder to the model's own artifact location,
 * finalize READY. Creation is not idempotent in MLflow, so `logModel` makes it create-once per
 * (run, name): the model carries the tag `runwarden.model_key` = `<run_id>/<name>`, and every attempt
 * looks the key up before creating. A retry after a lost create answer finds the model that landed;
 * a crash between create and finalize leaves a PENDING model that the next attempt reuses (uploads
 * again, finalizes). When racing creates leave several (two attempts of one run after a lost
 * lease), the rule is one thing: the OLDEST model of the key is the run's model, whatever its status.
 * A caller that created a newer one adopts the oldest and deletes only its own duplicate (nobody else
 * uploads to it); a newer duplicate of another caller is never deleted: once still PENDING after
 * `ABANDONED_AFTER_MS` it is marked UPLOAD_FAILED, as MLflow's client marks a model whose logging
 * failed. So no caller deletes a model another caller may be uploading to.
 * `logModelMetrics` logs metrics on the run linked to the model (MLflow's `model_id` on a metric).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { capForEcho, isMlflowError, ValidationError } from '../errors/index.js';
import { uploadBytes, uploadPath } from '../mlflow/artifacts.js';
import { type MlflowClient, ok, type Schemas } from '../mlflow/client.js';
import { withRetry } from '../mlflow/retry.js';
import { isTransientUnretried } from '../mlflow/transport.js';

export const MODEL_KEY_TAG = 'runwarden.model_key';
/** Run tag: the id (`m-…`) of the run's logged model. */
export const MODEL_ID_TAG = 'runwarden.model_id';
const MLMODEL_FILE = 'MLmodel';
/** The name a run's model gets when none is given (its artifact folder is `model/` too). */
export const DEFAULT_MODEL_NAME = 'model';
/** A newer duplicate still PENDING this long after its create was abandoned by its caller. */
export const ABANDONED_AFTER_MS = 15 * 60_000;
/** Params sent with the create (MLflow's client sends the first 100 there too); more are dropped. */
const MAX_CREATE_PARAMS = 100;

type LoggedModel = Schemas['LoggedModel'];

export interface LoggedModelRef {
  modelId: string;
  name: string;
  artifactUri: string;
  experimentId: string;
  sourceRunId: string;
}

export type LoggedModelStatus = 'READY' | 'PENDING' | 'UPLOAD_FAILED' | 'UNSPECIFIED';

const statusOf = (m: LoggedModel): LoggedModelStatus =>
  (m.info.status.replace(/^LOGGED_MODEL_(STATUS_)?/, '') as LoggedModelStatus) || 'UNSPECIFIED';

function refOf(m: LoggedModel): LoggedModelRef & { status: LoggedModelStatus } {
  return {
    modelId: m.info.model_id,
    name: m.info.name,
    artifactUri: m.info.artifact_uri,
    experimentId: m.info.experiment_id,
    sourceRunId: m.info.source_run_id ?? '',
    status: statusOf(m),
  };
}

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
const modelKey = (runId: string, name: string) => `${runId}/${name}`;

/** Logged models of the experiment carrying `key`, oldest first (ties by id: every caller agrees). */
async function modelsWithKey(
  client: MlflowClient,
  experimentId: string,
  key: string,
): Promise<LoggedModel[]> {
  const out: LoggedModel[] = [];
  let pageToken: string | undefined;
  do {
    const page = await ok(
      client.api.POST('/api/2.0/mlflow/logged-models/search', {
        body: {
          experiment_ids: [experimentId],
          filter: `tags.\`${MODEL_KEY_TAG}\` = '${esc(key)}'`,
          max_results: 100,
          page_token: pageToken,
        },
      }),
    );
    out.push(...(page.models ?? []));
    pageToken = page.next_page_token;
  } while (pageToken);
  const created = (m: LoggedModel) => m.info.creation_timestamp_ms ?? 0;
  return out.sort((a, b) => created(a) - created(b) || a.info.model_id.localeCompare(b.info.model_id));
}

/**
 * The oldest of `found` (sorted oldest first) is the key's model. Newer duplicates this caller
 * created (`mine`) are deleted (one already gone is fine); another caller's newer duplicate is left
 * alone, or marked UPLOAD_FAILED once it has stayed PENDING for `ABANDONED_AFTER_MS`.
 */
async function keepOldest(
  client: MlflowClient,
  found: LoggedModel[],
  mine: readonly string[] = [],
): Promise<LoggedModel | undefined> {
  const [kept, ...newer] = found;
  for (const extra of newer) {
    const id = extra.info.model_id;
    try {
      if (mine.includes(id)) {
        await ok(
          client.api.DELETE('/api/2.0/mlflow/logged-models/{model_id}', {
            params: { path: { model_id: id } },
          }),
        );
        client.logger?.warn({ kept: kept?.info.model_id, removed: id }, 'logModel: own duplicate deleted');
      } else if (
        statusOf(extra) === 'PENDING' &&
        Date.now() - (extra.info.creation_timestamp_ms ?? 0) > ABANDONED_AFTER_MS
      ) {
        await ok(
          client.api.PATCH('/api/2.0/mlflow/logged-models/{model_id}', {
            params: { path: { model_id: id } },
            body: { model_id: id, status: 'LOGGED_MODEL_UPLOAD_FAILED' },
          }),
        );
        client.logger?.warn(
          { kept: kept?.info.model_id, failed: id },
          'logModel: abandoned duplicate marked FAILED',
        );
      }
    } catch (err) {
      if (!isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')) throw err;
    }
  }
  return kept;
}

/** The run's outputs list the model (read first: MLflow refuses the same link twice). */
async function linkToRun(client: MlflowClient, runId: string, modelId: string, step: number): Promise<void> {
  const linked = async () => {
    const run = (
      await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }))
    ).run;
    return (run.outputs?.model_outputs ?? []).some((o) => o.model_id === modelId);
  };
  await withRetry(
    client.retry,
    async () => {
      if (await linked()) return;
      try {
        await ok(
          client.api.POST('/api/2.0/mlflow/runs/outputs', {
            body: { run_id: runId, models: [{ model_id: modelId, step }] },
          }),
        );
      } catch (err) {
        // A link that landed although its answer was lost (or a racing caller's) is a success.
        if (await linked().catch(() => false)) return;
        throw err;
      }
    },
    { retryable: isTransientUnretried },
  );
}

/** Create the model, or find the one an earlier attempt (whose answer was lost) created. */
async function createOnce(
  client: MlflowClient,
  run: { runId: string; experimentId: string },
  name: string,
  key: string,
  opts: { params?: Record<string, string>; tags?: Record<string, string>; modelType?: string },
): Promise<LoggedModel> {
  const params = Object.entries(opts.params ?? {})
    .slice(0, MAX_CREATE_PARAMS)
    .map(([k, value]) => ({ key: k, value }));
  const tags = Object.entries({ ...opts.tags, [MODEL_KEY_TAG]: key }).map(([k, value]) => ({
    key: k,
    value,
  }));
  const mine = await withRetry(
    client.retry,
    async (attempt) => {
      if (attempt > 0) {
        const [found] = await modelsWithKey(client, run.experimentId, key);
        if (found) return found;
      }
      return (
        await ok(
          client.api.POST('/api/2.0/mlflow/logged-models', {
            body: {
              experiment_id: run.experimentId,
              name,
              source_run_id: run.runId,
              model_type: opts.modelType,
              params,
              tags,
            },
          }),
        )
      ).model;
    },
    { retryable: isTransientUnretried },
  );
  // Another caller (or an earlier create whose answer was lost) may have made an older one: adopt
  // the oldest, delete this caller's own newer duplicate.
  return (
    (await keepOldest(client, await modelsWithKey(client, run.experimentId, key), [mine.info.model_id])) ??
    mine
  );
}

/** MLmodel as uploaded under the logged model: with `model_id` set, as MLflow 3 writes it. */
async function mlmodelWithId(localDir: string, modelId: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(localDir, MLMODEL_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const doc = YAML.parseDocument(text);
  doc.set('model_id', modelId);
  return doc.toString({ lineWidth: 0 });
}

/**
 * Log the model folder `localDir` as the run's logged model `name` (default `model`): create-once
 * per (run, name) across retries and crashes, link to the run's outputs, upload every file,
 * finalize READY. Returns the model already READY for this (run, name) without uploading again.
 */
export async function logModel(
  client: MlflowClient,
  run: { runId: string; experimentId: string },
  localDir: string,
  opts: {
    name?: string;
    params?: Record<string, string>;
    tags?: Record<string, string>;
    modelType?: string;
    /** The step the run's output link records (default 0). */
    step?: number;
  } = {},
): Promise<LoggedModelRef> {
  const name = opts.name ?? DEFAULT_MODEL_NAME;
  if (!name || name.length > 250 || /[/\\]/.test(name))
    throw new ValidationError(
      'name',
      `'${capForEcho(name)}' is not a model name: 1-250 characters, no slashes`,
    );
  const key = modelKey(run.runId, name);
  const existing = await modelsWithKey(client, run.experimentId, key);
  let model = await keepOldest(client, existing);
  if (model && statusOf(model) === 'READY') {
    await linkToRun(client, run.runId, model.info.model_id, opts.step ?? 0);
    const { status: _s, ...ref } = refOf(model);
    return ref;
  }
  model ??= await createOnce(client, run, name, key, opts);
  const modelId = model.info.model_id;
  await linkToRun(client, run.runId, modelId, opts.step ?? 0);
  // A reused PENDING model gets every file again (the crashed attempt may have stopped midway).
  await uploadPath(client, model.info.artifact_uri, localDir);
  const mlmodel = await mlmodelWithId(localDir, modelId);
  if (mlmodel !== undefined) await uploadBytes(client, model.info.artifact_uri, MLMODEL_FILE, mlmodel);
  const done = (
    await ok(
      client.api.PATCH('/api/2.0/mlflow/logged-models/{model_id}', {
        params: { path: { model_id: modelId } },
        body: { model_id: modelId, status: 'LOGGED_MODEL_READY' },
      }),
    )
  ).model;
  const { status: _s, ...ref } = refOf(done);
  return ref;
}

/** The run's READY logged model `name` (default `model`; the oldest READY one), if it has one. */
export async function findRunModel(
  client: MlflowClient,
  runId: string,
  name: string = DEFAULT_MODEL_NAME,
): Promise<LoggedModelRef | undefined> {
  const run = (await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } })))
    .run;
  const found = (await modelsWithKey(client, run.info.experiment_id, modelKey(runId, name))).find(
    (m) => statusOf(m) === 'READY',
  );
  if (!found) return undefined;
  const { status: _s, ...ref } = refOf(found);
  return ref;
}

/** A logged model by id (`m-…`), with its status; RESOURCE_DOES_NOT_EXIST when unknown. */
export async function getLoggedModel(
  client: MlflowClient,
  modelId: string,
): Promise<LoggedModelRef & { status: LoggedModelStatus }> {
  const m = (
    await ok(
      client.api.GET('/api/2.0/mlflow/logged-models/{model_id}', { params: { path: { model_id: modelId } } }),
    )
  ).model;
  return refOf(m);
}

/** MLflow's metric value: a number, or the strings it uses for non-finite doubles. */
const wireValue = (v: number): number | 'NaN' | 'Infinity' | '-Infinity' =>
  Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';

/**
 * Log `metrics` on the model's source run, linked to the model (`model_id`), so the model page and
 * the experiment's models view show them. A retried batch is harmless: MLflow drops identical points.
 */
export async function logModelMetrics(
  client: MlflowClient,
  ref: LoggedModelRef,
  metrics: Record<string, number>,
  opts: { step?: number; timestamp?: number } = {},
): Promise<void> {
  const timestamp = opts.timestamp ?? Date.now();
  const all = Object.entries(metrics).map(([key, value]) => ({
    key,
    value: wireValue(value),
    timestamp,
    step: opts.step ?? 0,
    model_id: ref.modelId,
  }));
  for (let i = 0; i < all.length; i += 1000) {
    await ok(
      client.api.POST('/api/2.0/mlflow/runs/log-batch', {
        body: { run_id: ref.sourceRunId, metrics: all.slice(i, i + 1000) },
      }),
    );
  }
}
