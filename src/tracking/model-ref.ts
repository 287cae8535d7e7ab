/**
 * Model references for prediction, resolved to where the model's files are and which training run
 * made them: `models:/<name>@<alias>`, `models:/<name>/<version>`, `models:/<model_id>` (an MLflow 3
 * logged model, `m-` + 32 hex digits) and `runs:/<run_id>/<path>`. Nothing is guessed: a registered
 * name without a version or alias, `latest` and stages are refused (MODEL_REF_INVALID), and a
 * model whose training run FAILED or was KILLED, whose workspace says no model exists
 * (`runwarden.model_exists=false`), or that does not exist is refused with the reason
 * (PREDICT_REFUSED).
 */
import { capForEcho, isMlflowError, RunwardenError } from '../errors/index.js';
import { type MlflowClient, type ModelVersion, ok, type Run } from '../mlflow/client.js';
import { getLoggedModel } from './logged-model.js';

export interface ResolvedModel {
  /** Where the model folder is (its MLmodel and model.onnx), as an artifact URI. */
  artifactUri: string;
  /** MLflow 3 logged model id (`m-…`), when the model is one. */
  modelId?: string;
  /** The training run that produced the model: the prediction run nests under it. */
  sourceRunId: string;
  /** That run's experiment (where the prediction run goes). */
  experimentId: string;
  /** Registered model name and version, for registry references. */
  name?: string;
  version?: string;
  /** The reference as given. */
  ref: string;
}

export type ParsedModelRef =
  | { kind: 'alias'; name: string; alias: string }
  | { kind: 'version'; name: string; version: string }
  | { kind: 'model-id'; modelId: string }
  | { kind: 'run'; runId: string; path: string };

/** MLflow 3 logged model ids: `m-` and a uuid4's 32 hex digits (mlflow/store/tracking/sqlalchemy_store.py). */
export const MODEL_ID_RE = /^m-[0-9a-f]{32}$/;
const FORMS =
  'models:/<name>@<alias> (e.g. models:/forecaster@champion), models:/<name>/<version>, ' +
  'models:/<model_id> (m- and 32 hex digits) or runs:/<run_id>/<path> (e.g. runs:/<run_id>/model)';

function invalid(ref: string, why: string): RunwardenError {
  return new RunwardenError(
    'MODEL_REF_INVALID',
    `model: ${JSON.stringify(capForEcho(ref, 120))} ${why}; use ${FORMS}`,
  );
}

export function refused(ref: string, why: string): RunwardenError {
  return new RunwardenError('PREDICT_REFUSED', `prediction with ${capForEcho(ref, 200)} refused: ${why}`);
}

/** Parse a reference without any call; throws MODEL_REF_INVALID naming the accepted forms. */
export function parseModelRef(ref: string): ParsedModelRef {
  if (typeof ref !== 'string' || !ref.trim()) throw invalid(String(ref ?? ''), 'is empty');
  if (ref.length > 1000) throw invalid(ref, 'is longer than 1000 characters');
  if (/\p{Cc}/u.test(ref)) throw invalid(ref, 'contains control characters');
  const run = /^runs:\/\/?([A-Za-z0-9_-]{1,64})\/(.+)$/.exec(ref);
  if (ref.startsWith('runs:')) {
    if (!run) throw invalid(ref, 'is not a runs:/ reference with a run id and a path');
    const p = run[2]!.replace(/\/+$/, '');
    if (!p || p.split('/').some((s) => s === '..' || s === '.' || s === ''))
      throw invalid(ref, 'has an artifact path with empty, "." or ".." parts');
    return { kind: 'run', runId: run[1]!, path: p };
  }
  if (!ref.startsWith('models:/')) throw invalid(ref, 'is neither a models:/ nor a runs:/ reference');
  const rest = ref.slice('models:/'.length);
  const parts = rest.split('/');
  if (parts.length === 2) {
    const [name, suffix] = parts as [string, string];
    if (!name.trim()) throw invalid(ref, 'has no model name');
    if (/^[1-9]\d{0,9}$/.test(suffix)) return { kind: 'version', name, version: suffix };
    if (suffix.toLowerCase() === 'latest')
      throw invalid(ref, "asks for 'latest': nothing is guessed, name the version or an alias");
    throw invalid(
      ref,
      `ends in ${JSON.stringify(capForEcho(suffix, 40))}, not a version number (stages are not supported)`,
    );
  }
  if (parts.length !== 1 || !rest) throw invalid(ref, 'has too many or too few path parts');
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const name = rest.slice(0, at);
    const alias = rest.slice(at + 1);
    if (!name.trim() || !/^[\w-]{1,255}$/.test(alias))
      throw invalid(ref, 'needs a model name and an alias (letters, digits, _ or -)');
    return { kind: 'alias', name, alias };
  }
  if (MODEL_ID_RE.test(rest)) return { kind: 'model-id', modelId: rest };
  throw invalid(
    ref,
    'names neither a logged model id (m- and 32 hex digits) nor a version or alias of a registered model: nothing is guessed (no latest)',
  );
}

const tagOf = (run: Run, key: string) => run.data?.tags?.find((t) => t.key === key)?.value;

async function getRun(client: MlflowClient, ref: string, runId: string, what: string): Promise<Run> {
  try {
    return (await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } })))
      .run;
  } catch (err) {
    if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') || isMlflowError(err, 'INVALID_PARAMETER_VALUE'))
      throw refused(ref, `${what} run ${runId} does not exist on this tracking server`);
    throw err;
  }
}

/** The training run must have ended FINISHED and must not say its model is missing. */
export function checkSourceRun(ref: string, run: Run): void {
  const id = run.info.run_id;
  if (run.info.lifecycle_stage === 'deleted')
    throw refused(ref, `its training run ${id} is deleted; restore it or use another model`);
  const status = run.info.status;
  if (status === 'FAILED' || status === 'KILLED') {
    const why = tagOf(run, 'runwarden.close_reason');
    throw refused(
      ref,
      `its training run ${id} ended ${status}${why ? ` (${capForEcho(why, 300)})` : ''}; a model from a run that did not finish is not used. Train again, or name a model from a FINISHED run`,
    );
  }
  if (status !== 'FINISHED')
    throw refused(ref, `its training run ${id} is still ${status}; wait for it to finish`);
  if (tagOf(run, 'runwarden.model_exists') === 'false')
    throw refused(
      ref,
      `the workspace of training run ${id} says no model exists (runwarden.model_exists=false); the template wrote no model folder`,
    );
}

async function fromVersion(client: MlflowClient, ref: string, v: ModelVersion): Promise<ResolvedModel> {
  if (v.status && v.status !== 'READY')
    throw refused(ref, `version ${v.version} of '${capForEcho(v.name, 200)}' is ${v.status}, not READY`);
  const uri = await ok(
    client.api.GET('/api/2.0/mlflow/model-versions/get-download-uri', {
      params: { query: { name: v.name, version: v.version } },
    }),
  );
  // A version registered from a logged model: its model_id, or its source `models:/<model_id>`.
  const fromSource = v.source?.startsWith('models:/') ? v.source.slice('models:/'.length) : undefined;
  const modelId = v.model_id || (fromSource && MODEL_ID_RE.test(fromSource) ? fromSource : undefined);
  let sourceRunId = v.run_id;
  if (!sourceRunId && modelId) sourceRunId = (await getLoggedModel(client, modelId)).sourceRunId;
  if (!sourceRunId)
    throw refused(
      ref,
      `version ${v.version} of '${capForEcho(v.name, 200)}' names no training run to check and nest under`,
    );
  const artifactUri = uri.artifact_uri || v.source;
  if (!artifactUri) throw refused(ref, `version ${v.version} has no storage location`);
  return {
    artifactUri,
    modelId,
    sourceRunId,
    experimentId: '',
    name: v.name,
    version: v.version,
    ref,
  };
}

/**
 * Resolve a reference to its model folder and training run, and refuse what must not be used.
 * Throws MODEL_REF_INVALID (malformed) or PREDICT_REFUSED (the reason); MLflow outages pass through.
 */
export async function resolveModelRef(client: MlflowClient, ref: string): Promise<ResolvedModel> {
  const parsed = parseModelRef(ref);
  let resolved: ResolvedModel;
  if (parsed.kind === 'alias') {
    let v: ModelVersion;
    try {
      v = (
        await ok(
          client.api.GET('/api/2.0/mlflow/registered-models/alias', {
            params: { query: { name: parsed.name, alias: parsed.alias } },
          }),
        )
      ).model_version;
    } catch (err) {
      if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') || isMlflowError(err, 'INVALID_PARAMETER_VALUE'))
        throw refused(
          ref,
          `registered model '${capForEcho(parsed.name, 200)}' has no alias '${capForEcho(parsed.alias, 100)}' (or does not exist); get_model_version shows its versions and aliases`,
        );
      throw err;
    }
    resolved = await fromVersion(client, ref, v);
  } else if (parsed.kind === 'version') {
    let v: ModelVersion;
    try {
      v = (
        await ok(
          client.api.GET('/api/2.0/mlflow/model-versions/get', {
            params: { query: { name: parsed.name, version: parsed.version } },
          }),
        )
      ).model_version;
    } catch (err) {
      if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') || isMlflowError(err, 'INVALID_PARAMETER_VALUE'))
        throw refused(
          ref,
          `registered model '${capForEcho(parsed.name, 200)}' has no version ${parsed.version} (or does not exist)`,
        );
      throw err;
    }
    resolved = await fromVersion(client, ref, v);
  } else if (parsed.kind === 'model-id') {
    let m: Awaited<ReturnType<typeof getLoggedModel>>;
    try {
      m = await getLoggedModel(client, parsed.modelId);
    } catch (err) {
      if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') || isMlflowError(err, 'INVALID_PARAMETER_VALUE'))
        throw refused(ref, `logged model ${parsed.modelId} does not exist on this tracking server`);
      throw err;
    }
    if (m.status !== 'READY') throw refused(ref, `logged model ${parsed.modelId} is ${m.status}, not READY`);
    if (!m.sourceRunId) throw refused(ref, `logged model ${parsed.modelId} names no training run`);
    resolved = {
      artifactUri: m.artifactUri,
      modelId: m.modelId,
      sourceRunId: m.sourceRunId,
      experimentId: '',
      ref,
    };
  } else {
    const run = await getRun(client, ref, parsed.runId, 'the');
    checkSourceRun(ref, run);
    const modelId = parsed.path === 'model' ? tagOf(run, 'runwarden.model_id') : undefined;
    return {
      artifactUri: `${run.info.artifact_uri.replace(/\/+$/, '')}/${parsed.path}`,
      ...(modelId ? { modelId } : {}),
      sourceRunId: run.info.run_id,
      experimentId: run.info.experiment_id,
      ref,
    };
  }
  const source = await getRun(client, ref, resolved.sourceRunId, 'its training');
  checkSourceRun(ref, source);
  return { ...resolved, experimentId: source.info.experiment_id };
}
