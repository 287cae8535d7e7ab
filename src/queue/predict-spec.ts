/**
 * Enqueue-side handling of prediction specs (`{predict: {model, data}}`, schema in
 * src/model/task-spec.ts). `normalizePredictSpec` parses the spec (errors name the field) and gives
 * the task its id, the hash of the model reference and the data as given (a URI, or the inline
 * request's canonical JSON), so the same prediction dedups. `preparePredictTask` then refuses what
 * must not run before anything is queued: a malformed reference (MODEL_REF_INVALID), a model that
 * must not be used (PREDICT_REFUSED: failed training run, no model, no such version), data that is
 * unreadable, too big, or not in a request shape.
 */
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../errors/index.js';
import { parseRequest } from '../eval/request-shapes.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { MAX_INLINE_TABLE_BYTES, type NormalizedTask, PredictSpecSchema } from '../model/task-spec.js';
import type { InputPolicy } from '../runners/input-policy.js';
import { checkInputs } from '../runners/inputs.js';
import { configHash } from '../tracking/lineage.js';
import { parseModelRef, resolveModelRef } from '../tracking/model-ref.js';

/** The template name prediction tasks carry (no task template has it: a spec with `predict`). */
export const PREDICT_TEMPLATE = 'predict';
/** Default most rows one prediction scores (RUNWARDEN_PREDICT_MAX_ROWS). */
export const DEFAULT_PREDICT_MAX_ROWS = 100_000;
/** Default most bytes of one prediction data file (RUNWARDEN_PREDICT_MAX_BYTES). */
export const DEFAULT_PREDICT_MAX_BYTES = 32 * 1024 * 1024;
/** Default bound of one prediction attempt (seconds). */
export const PREDICT_TIMEOUT_SECONDS = 600;

/** True when `spec` asks for a prediction rather than a template's training. */
export function isPredictSpec(spec: unknown): boolean {
  return typeof spec === 'object' && spec !== null && 'predict' in spec;
}

/** Parse a prediction spec into its task (no MLflow call; the model ref is parsed, not resolved). */
export function normalizePredictSpec(raw: unknown): NormalizedTask {
  const r = PredictSpecSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ValidationError(i.path.join('.') || 'spec', i.message);
  }
  const spec = r.data;
  parseModelRef(spec.predict.model);
  if (typeof spec.predict.data !== 'string') {
    const bytes = Buffer.byteLength(JSON.stringify(spec.predict.data));
    if (bytes > MAX_INLINE_TABLE_BYTES)
      throw new ValidationError(
        'predict.data',
        `inline data is ${bytes} bytes, more than ${MAX_INLINE_TABLE_BYTES}; store it (a CSV or JSON file, or an MLflow artifact) and pass its URI`,
      );
  }
  const hash = configHash({ predict: { model: spec.predict.model, data: spec.predict.data } });
  const taskId = `p-${hash.slice(0, 16)}${spec.force ? `-${randomBytes(3).toString('hex')}` : ''}`;
  return {
    taskId,
    configHash: hash,
    template: PREDICT_TEMPLATE,
    params: { model: spec.predict.model },
    inputs: {},
    experiment: '',
    runName: spec.run_name ?? `predict-${hash.slice(0, 6)}`,
    priority: spec.priority,
    timeoutSeconds: spec.timeout_seconds ?? PREDICT_TIMEOUT_SECONDS,
    attempts: spec.attempts,
    review: 'none',
    retryOnFailure: true,
    enqueuedAt: Date.now(),
    predict: { model: spec.predict.model, data: spec.predict.data, sourceRunId: '' },
  };
}

/**
 * Resolve the model (refusing what must not be used), check the data, and fill in the training run
 * and its experiment. Throws before anything is queued.
 */
export async function preparePredictTask(
  client: MlflowClient,
  task: NormalizedTask,
  opts: { inputs: InputPolicy; maxRows: number },
): Promise<NormalizedTask> {
  const p = task.predict!;
  const model = await resolveModelRef(client, p.model);
  if (typeof p.data === 'string') await checkInputs(client, { data: p.data }, opts.inputs);
  else parseRequest('predict.data', p.data, opts.maxRows);
  const exp = await ok(
    client.api.GET('/api/2.0/mlflow/experiments/get', {
      params: { query: { experiment_id: model.experimentId } },
    }),
  );
  return {
    ...task,
    experiment: exp.experiment.name ?? model.experimentId,
    predict: { ...p, sourceRunId: model.sourceRunId },
  };
}
