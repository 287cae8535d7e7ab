/**
 * Tool `predict`: score data with an approved model. Enqueues a prediction task (the model is
 * resolved and refused up front when it must not be used: its training run FAILED, no model
 * exists, no such version or alias), waits a bounded time for the worker, and returns the task,
 * the prediction run (nested under the training run) and a bounded preview: at most 20 rows and 20
 * columns, text cells capped at 100 characters. A refusal or a malformed reference is an isError
 * text saying how to recover; a task still running returns `finished: false` (wait_for_task). The
 * same resolved model and data return the existing task unless `force` (a failed or cancelled one
 * is never returned: a new task runs).
 */
import { z } from 'zod';
import { RunwardenError, type RunwardenErrorCode } from '../../errors/index.js';
import { sleep } from '../../mlflow/retry.js';
import type { PredictionSummary } from '../../queue/predict-attempt.js';
import { isTerminal, type TaskInfo } from '../../queue/task-queue.js';
import { defineTool } from './define.js';
import { tasksOf } from './get-task.js';

/** Codes a failed prediction task reports that are the caller's to fix (isError with a hint). */
const CALLER_CODES: RunwardenErrorCode[] = [
  'PREDICT_REFUSED',
  'MODEL_REF_INVALID',
  'MODEL_INPUT_MISMATCH',
  'MODEL_INVALID',
  'VALIDATION_ERROR',
];

export const predictTool = defineTool({
  name: 'predict',
  title: 'Predict',
  description:
    'Predict with an approved model on data; runs nested under its training run. Refuses models of failed runs. ' +
    'Returns ≤20 rows (get_task: the rest).',
  input: {
    model: z
      .string()
      .min(1)
      .max(1000)
      .describe('models:/name@alias, models:/name/version, models:/m-id, runs:/id/path'),
    // Checked by the queue (each bad field named); a loose schema keeps tools/list short.
    data: z
      .union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
      .describe('URI, or {dataframe_split|dataframe_records|inputs|instances}'),
    wait_seconds: z.number().min(0).max(120).optional().describe('Default 30'),
    force: z.boolean().optional().describe('New task even if the same one exists'),
  },
  output: {
    task_id: z.string(),
    state: z.string(),
    run_url: z.string().optional(),
    rows: z.number().optional(),
    // The header row, then at most 20 rows.
    preview: z.array(z.array(z.unknown())).optional(),
    reason: z.string().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  hints: {
    PREDICT_REFUSED:
      'Use a model from a FINISHED training run: get_model_version shows a registered model’s versions and aliases; ' +
      'if none is usable, train again with enqueue_task.',
    MODEL_REF_INVALID: 'Call again with one of the forms above.',
    MODEL_INPUT_MISMATCH:
      'Reshape the data to the model’s input (its MLmodel signature: read_artifact <model>/MLmodel) and call again.',
    MODEL_INVALID: 'The model folder is not a usable ONNX model; use another version, or train again.',
    VALIDATION_ERROR: 'Fix that field and call again.',
  },
  async run(args, ctx, extra) {
    const tasks = tasksOf(ctx);
    const { task, existing } = await tasks.enqueue({
      predict: { model: args.model, data: args.data },
      ...(args.force ? { force: true } : {}),
    });
    const limitMs = (args.wait_seconds ?? 30) * 1000;
    const started = Date.now();
    let info: TaskInfo | undefined = await tasks.get(task.taskId);
    while (info && !isTerminal(info.state) && Date.now() - started < limitMs && !extra.signal.aborted) {
      await sleep(Math.min(ctx.settings.taskPollMs ?? 500, limitMs), extra.signal).catch(() => undefined);
      info = (await tasks.get(task.taskId)) ?? info;
    }
    const state = info?.state ?? 'unknown';
    const result = info?.result as { prediction?: PredictionSummary; error_code?: string } | undefined;
    const run = info?.runs.at(-1);
    if (
      state === 'failed' &&
      result?.error_code &&
      CALLER_CODES.includes(result.error_code as RunwardenErrorCode)
    )
      throw new RunwardenError(result.error_code as RunwardenErrorCode, info?.reason ?? 'prediction refused');
    const p = result?.prediction;
    const structured = {
      task_id: task.taskId,
      state,
      run_url: run?.url,
      rows: p?.rows,
      preview: p ? [p.columns, ...p.preview] : undefined,
      reason: state === 'completed' ? undefined : info?.reason?.slice(0, 1000),
    };
    const text = p
      ? `${p.rows} predictions with ${args.model} (task ${task.taskId}${existing ? ', existing' : ''}); run ${run?.url ?? ''}; ` +
        `table ${p.artifact}. Preview (${p.preview_of === 'all' ? 'all' : `${p.preview_of} ${p.preview.length}`} rows):\n` +
        [p.columns.join(','), ...p.preview.map((r) => r.join(','))].join('\n')
      : isTerminal(state)
        ? `Prediction task ${task.taskId} ${state}: ${info?.reason?.slice(0, 1000) ?? 'no reason recorded'}`
        : `Prediction task ${task.taskId} is ${state} after ${Math.round((Date.now() - started) / 1000)} s: call wait_for_task, then get_task for the preview.`;
    return { structured, text };
  },
});
