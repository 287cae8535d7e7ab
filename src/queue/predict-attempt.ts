/**
 * One attempt of a prediction task: resolve the model reference again (a model refused now — its
 * training run FAILED, no model, the alias gone — opens no run: the task fails with the reason),
 * then, in a run NESTED under the model's training run (same experiment, `mlflow.parentRunId`),
 * opened and closed like every task run (leased, heartbeated, FINISHED/FAILED/KILLED, KILLED on
 * cancel/timeout/shutdown, success only while the queue lock is held): download the whole model
 * folder, bring the data in (predict-data.ts), score it with onnxruntime-node, and store
 * predictions.csv and predictions.json (MLflow serving's `{"predictions": ...}`), lineage tags
 * (`runwarden.predict.*`), params and `predict.rows`.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { capForEcho, hasCode, RunwardenError, redactUri } from '../errors/index.js';
import { downloadModelDir } from '../eval/model-dir.js';
import { predictWithModel, tableCsv } from '../eval/predict.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { type ResolvedModel, resolveModelRef } from '../tracking/model-ref.js';
import type { RunHandle } from '../tracking/run-handle.js';
import { startRun } from '../tracking/start-run.js';
import { RW_TAGS, type TerminalStatus } from '../tracking/tags.js';
import { lostTask, stopKind, stopReason } from './attempt-stop.js';
import type { AttemptContext, AttemptOutcome, AttemptSettings } from './attempt-types.js';
import { settleEarlierAttempts } from './earlier-attempts.js';
import { inputRows, loadData, type PredictionSummary, preview } from './predict-data.js';

export type { PredictionSummary } from './predict-data.js';

/** How long a cancelled or timed-out attempt waits for its prediction to stop before cleaning up. */
const SETTLE_MS = 10_000;

export interface PredictOutcome extends AttemptOutcome {
  prediction?: PredictionSummary;
  /** The error code of a failure that is the caller's to fix (refused model, bad data). */
  errorCode?: string;
}

async function predictInRun(
  client: MlflowClient,
  settings: AttemptSettings,
  task: NormalizedTask,
  model: ResolvedModel,
  run: RunHandle,
  dir: string,
  signal: AbortSignal,
): Promise<PredictionSummary> {
  const p = task.predict!;
  const modelDir = path.join(dir, 'model');
  await downloadModelDir(client, model.artifactUri, modelDir, {
    maxBytes: settings.predict?.maxModelBytes,
    signal,
  });
  signal.throwIfAborted();
  const { input, digest } = await loadData(client, settings, p.data, path.join(dir, 'inputs'), signal);
  await run.setTags({
    'runwarden.predict.input_digest': digest,
    'runwarden.predict.input': typeof p.data === 'string' ? capForEcho(redactUri(p.data), 1000) : 'inline',
  });
  await run.logParams({ 'predict.model': p.model, 'predict.rows': inputRows(input) });
  signal.throwIfAborted();
  const out = await predictWithModel(modelDir, input, {
    field: 'predict.data',
    chunkRows: settings.predict?.chunkRows,
    threads: settings.predict?.threads,
    signal,
  });
  signal.throwIfAborted();
  const outDir = path.join(dir, 'out');
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'predictions.csv'), tableCsv(out.table));
  await writeFile(path.join(outDir, 'predictions.json'), JSON.stringify(out.json));
  await run.logArtifact(path.join(outDir, 'predictions.csv'));
  await run.logArtifact(path.join(outDir, 'predictions.json'));
  await run.logMetric('predict.rows', out.rows);
  return {
    rows: out.rows,
    ...preview(out.table, out.windows),
    artifact: `${run.artifactUri}/predictions.csv`,
    json_artifact: `${run.artifactUri}/predictions.json`,
    model: {
      ref: p.model,
      source_run: model.sourceRunId,
      ...(model.version ? { version: model.version, name: model.name } : {}),
      ...(model.modelId ? { model_id: model.modelId } : {}),
    },
    input_digest: digest,
  };
}

export async function runPredictAttempt(
  client: MlflowClient,
  settings: AttemptSettings,
  task: NormalizedTask,
  ctx: AttemptContext,
  log: Logger,
): Promise<PredictOutcome> {
  const p = task.predict!;
  const noRun = (reason: string, errorCode?: string): PredictOutcome => ({
    status: 'FAILED',
    kind: 'failed',
    runId: '',
    experimentId: '',
    exitCode: null,
    reason,
    metrics: {},
    ...(errorCode ? { errorCode } : {}),
  });
  let model: ResolvedModel;
  try {
    model = await resolveModelRef(client, p.model);
  } catch (err) {
    // Refused (or malformed): no run is opened; the task fails with the reason.
    if (hasCode(err, 'PREDICT_REFUSED') || hasCode(err, 'MODEL_REF_INVALID'))
      return noRun(err.message, err.code);
    return noRun(`could not resolve ${capForEcho(p.model, 200)}: ${(err as Error).message}`);
  }
  const experimentId = model.experimentId;
  if (ctx.attempt > 1) {
    const done = await settleEarlierAttempts(client, experimentId, task.taskId, ctx.attempt);
    if (done)
      return {
        status: 'FINISHED',
        kind: 'completed',
        runId: done.runId,
        experimentId,
        exitCode: null,
        reason: `attempt ${done.attempt} already FINISHED (run ${done.runId}); its predictions stand`,
        metrics: done.metrics,
      };
  }
  const run = await startRun(client, {
    experimentId,
    runName: task.runName,
    parentRunId: model.sourceRunId,
    description: `Prediction task \`${task.taskId}\` with \`${p.model}\` (training run ${model.sourceRunId}), attempt ${ctx.attempt}.`,
    tags: {
      [RW_TAGS.taskId]: task.taskId,
      [RW_TAGS.attempt]: String(ctx.attempt),
      [RW_TAGS.configHash]: task.configHash,
      'runwarden.template': task.template,
      'runwarden.job_id': ctx.jobId,
      'runwarden.predict.model_ref': capForEcho(p.model, 1000),
      'runwarden.predict.source_run': model.sourceRunId,
      ...(model.version ? { 'runwarden.predict.model_version': `${model.name}/${model.version}` } : {}),
      ...(model.modelId ? { 'runwarden.predict.model_id': model.modelId } : {}),
    },
    owner: settings.owner,
    leaseMs: settings.leaseMs,
    heartbeatMs: settings.heartbeatMs,
    flushIntervalMs: settings.flushIntervalMs,
    endFlushTimeoutMs: settings.endFlushTimeoutMs,
    sourceType: 'JOB',
    sourceName: 'runwarden:predict',
    handleSignals: false,
  });
  const clock = new AbortController();
  const timer = setTimeout(() => clock.abort(), task.timeoutSeconds * 1000);
  const signal = AbortSignal.any([ctx.signal, clock.signal, run.signal]);
  const dir = path.join(settings.workDir, `${task.taskId}-a${ctx.attempt}`);
  let status: TerminalStatus = 'FAILED';
  let kind: AttemptOutcome['kind'] = 'failed';
  let reason = 'prediction did not complete';
  let prediction: PredictionSummary | undefined;
  // Set once the outcome is decided and the run is being ended with it.
  let decided = false;
  let errorCode: string | undefined;
  let work: Promise<PredictionSummary> | undefined;
  const outcome = (): PredictOutcome => ({
    status,
    kind,
    runId: run.runId,
    experimentId,
    exitCode: null,
    reason,
    metrics: prediction ? { 'predict.rows': prediction.rows } : {},
    ...(prediction ? { prediction } : {}),
    ...(errorCode ? { errorCode } : {}),
  });
  try {
    await ctx.onRunStarted(experimentId, run.runId);
    ctx.onEvent({ type: 'progress', fraction: 0, message: 'predicting', phase: 'running', runId: run.runId });
    const aborted = new Promise<never>((_, reject) => {
      const fail = () => reject(signal.reason ?? new Error('aborted'));
      if (signal.aborted) fail();
      else signal.addEventListener('abort', fail, { once: true });
    });
    aborted.catch(() => undefined);
    work = predictInRun(client, settings, task, model, run, dir, signal);
    work.catch(() => undefined);
    prediction = await Promise.race([work, aborted]);
    if (ctx.confirmLock && !(await ctx.confirmLock())) {
      [status, kind, reason] = ['KILLED', 'lock-lost', stopReason('lock-lost', ctx, task.timeoutSeconds)];
    } else {
      [status, kind, reason] = ['FINISHED', 'completed', `${prediction.rows} predictions`];
    }
    decided = true;
    await run.end(status, { reason, closedBy: 'worker' });
  } catch (err) {
    if (decided && run.status === 'RUNNING' && !run.signal.aborted) {
      // Only ending the run failed (MLflow unreachable): that status once more, never FAILED for it.
      const again = await run.end(status, { reason, closedBy: 'worker' }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      if (run.status === 'RUNNING') {
        reason = `${reason}; the run could not be ended ${status}: ${again?.message ?? ''}`;
        if (status === 'FINISHED') [status, kind, prediction] = ['FAILED', 'failed', undefined];
      }
      return outcome();
    }
    const stopped = stopKind(ctx.signal, clock.signal);
    if (await lostTask(ctx, run.signal)) {
      [status, kind, reason] = ['KILLED', 'lock-lost', stopReason('lock-lost', ctx, task.timeoutSeconds)];
    } else if (stopped) {
      [status, kind, reason] = ['KILLED', stopped, stopReason(stopped, ctx, task.timeoutSeconds)];
    } else {
      reason = `prediction failed: ${(err as Error).message}`;
      if (err instanceof RunwardenError) errorCode = err.code;
    }
    if (stopped === 'timeout') reason = `timed out after ${task.timeoutSeconds} s`;
    prediction = undefined;
    if (run.status === 'RUNNING')
      await run
        .end(status, {
          reason: reason.slice(0, 500),
          closedBy: 'worker',
          error: status === 'FAILED' ? err : undefined,
        })
        .catch((e: unknown) =>
          log.warn({ err: (e as Error).message }, 'the prediction run could not be ended'),
        );
    else if (run.status !== status) [status, kind] = [run.status, 'failed'];
  } finally {
    clearTimeout(timer);
    // After an abort the prediction stops on the signal (download aborted, model closed): wait for
    // it, bounded, so its files are not written into a folder being removed.
    if (work) {
      let wait: NodeJS.Timeout | undefined;
      await Promise.race([
        work.then(
          () => undefined,
          () => undefined,
        ),
        new Promise<void>((r) => {
          wait = setTimeout(r, SETTLE_MS);
        }),
      ]);
      clearTimeout(wait);
    }
    if (!settings.keepWorkspaces) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  return outcome();
}
