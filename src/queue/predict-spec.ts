/**
 * Enqueue-side handling of prediction specs (`{predict: {model, data}}`, schema in
 * src/model/task-spec.ts). `normalizePredictSpec` parses the spec (errors name the field; inline
 * data nested deeper than 34 levels is refused before anything walks it). `preparePredictTask` then
 * refuses what must not run before anything is queued: a malformed reference (MODEL_REF_INVALID), a
 * model that must not be used (PREDICT_REFUSED: failed training run, no model, no such version),
 * data that is unreadable, too big, or not in a request shape; and gives the task its id: the hash
 * of the RESOLVED model (source run, version, model id, artifact URI: an alias that moved names
 * another model) and of the data (inline: the sha256 of its canonical JSON; a URI: the URI itself,
 * so a file changed in place at the same URI needs `force`). `dedupPredictTask` never returns a
 * failed or cancelled task for a new request: it moves on to `<id>-r1`, `-r2`, ….
 */
import { createHash, randomBytes } from 'node:crypto';
import { ValidationError } from '../errors/index.js';
import { checkDepth, parseRequest } from '../eval/request-shapes.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { MAX_INLINE_TABLE_BYTES, type NormalizedTask, PredictSpecSchema } from '../model/task-spec.js';
import type { InputPolicy } from '../runners/input-policy.js';
import { checkInputs } from '../runners/inputs.js';
import { canonicalJson, configHash } from '../tracking/lineage.js';
import { parseModelRef, resolveModelRef } from '../tracking/model-ref.js';
import { artifactEntry } from './predict-data.js';
import type { TaskState } from './records.js';

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
/** A parsed prediction task before preparePredictTask: `force` asks for a new task id. */
export type PredictTaskDraft = NormalizedTask & { force?: boolean };

export function normalizePredictSpec(raw: unknown): PredictTaskDraft {
  // Before zod or JSON.stringify touch it: a hostile depth would overflow their recursion.
  const rawData = (raw as { predict?: { data?: unknown } } | null)?.predict?.data;
  if (typeof rawData === 'object' && rawData !== null) checkDepth('predict.data', rawData);
  const r = PredictSpecSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ValidationError(i.path.join('.') || 'spec', i.message);
  }
  const spec = r.data;
  parseModelRef(spec.predict.model);
  if (typeof spec.predict.data !== 'string') {
    const bytes = Buffer.byteLength(canonicalJson(spec.predict.data));
    if (bytes > MAX_INLINE_TABLE_BYTES)
      throw new ValidationError(
        'predict.data',
        `inline data is ${bytes} bytes, more than ${MAX_INLINE_TABLE_BYTES}; store it (a CSV or JSON file, or an MLflow artifact) and pass its URI`,
      );
  }
  // A provisional id (the reference as given); preparePredictTask sets the real one.
  const hash = configHash({ predict: { model: spec.predict.model, data: dataDigest(spec.predict.data) } });
  return {
    taskId: `p-${hash.slice(0, 16)}`,
    force: spec.force,
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
  draft: PredictTaskDraft,
  opts: { inputs: InputPolicy; maxRows: number },
): Promise<NormalizedTask> {
  const { force, ...task } = draft;
  const p = task.predict!;
  const model = await resolveModelRef(client, p.model);
  if (typeof p.data === 'string') {
    await checkInputs(client, { data: p.data }, opts.inputs);
    if (p.data.startsWith('runs:/') || p.data.startsWith('mlflow-artifacts:'))
      await artifactEntry(client, p.data);
  } else parseRequest('predict.data', p.data, opts.maxRows);
  const exp = await ok(
    client.api.GET('/api/2.0/mlflow/experiments/get', {
      params: { query: { experiment_id: model.experimentId } },
    }),
  );
  const hash = configHash({
    predict: {
      model: {
        source_run: model.sourceRunId,
        artifact_uri: model.artifactUri,
        version: model.version ?? null,
        name: model.name ?? null,
        model_id: model.modelId ?? null,
      },
      data: dataDigest(p.data),
    },
  });
  return {
    ...task,
    taskId: `p-${hash.slice(0, 16)}${force ? `-${randomBytes(3).toString('hex')}` : ''}`,
    configHash: hash,
    runName: task.runName.startsWith('predict-') ? `predict-${hash.slice(0, 6)}` : task.runName,
    experiment: exp.experiment.name ?? model.experimentId,
    predict: { ...p, sourceRunId: model.sourceRunId },
  };
}

/** What the task id hashes of the data: a URI as given, inline data by its canonical JSON's sha256. */
function dataDigest(data: NonNullable<NormalizedTask['predict']>['data']): string {
  return typeof data === 'string'
    ? `uri:${data}`
    : `sha256:${createHash('sha256').update(canonicalJson(data)).digest('hex')}`;
}

/** States a new request must not be deduplicated onto: it gets a new task instead. */
const RETRYABLE: ReadonlySet<TaskState> = new Set(['failed', 'cancelled']);

/**
 * The task a request maps to: its own id when no task has it, the existing task when one is
 * waiting, running or completed, else (failed or cancelled) the first of `<id>-r1`, `<id>-r2`, …
 * (at most 50, then a random suffix) that is free or not failed/cancelled.
 */
export async function dedupPredictTask(
  task: NormalizedTask,
  stateOf: (taskId: string) => Promise<TaskState | undefined>,
): Promise<{ task: NormalizedTask; existing: boolean }> {
  for (let n = 0; n <= 50; n++) {
    const id = n === 0 ? task.taskId : `${task.taskId}-r${n}`;
    const state = await stateOf(id);
    if (state === undefined) return { task: { ...task, taskId: id }, existing: false };
    if (!RETRYABLE.has(state)) return { task: { ...task, taskId: id }, existing: true };
  }
  return { task: { ...task, taskId: `${task.taskId}-${randomBytes(3).toString('hex')}` }, existing: false };
}
