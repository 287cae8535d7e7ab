/**
 * Tool `enqueue_task`: queue a training task from a registered template. Everything is checked
 * before anything is queued (template, params against their bounds, inputs readable); the same
 * template + params + inputs return the existing task unless `force`.
 */
import { z } from 'zod';
import { defineTool } from './define.js';
import { tasksOf } from './get-task.js';

export const enqueueTaskTool = defineTool({
  name: 'enqueue_task',
  title: 'Enqueue task',
  description:
    'Queue a training task from a template; a worker runs it in an MLflow run. Params and inputs are checked ' +
    'first; the same spec returns the existing task unless force. Then wait_for_task.',
  input: {
    template: z.string().min(1).describe('Template name'),
    params: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .describe('Template params, e.g. {"epochs": 20}'),
    // Inline tables are checked by the queue (it names the field); a loose schema keeps tools/list short.
    inputs: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Name → URI (file://, runs:/, mlflow-artifacts:/, http…) or {columns, data}'),
    experiment: z.string().optional().describe('MLflow experiment (default tasks/<template>)'),
    run_name: z.string().optional().describe('MLflow run name'),
    priority: z.number().int().min(1).max(1000).optional().describe('1 (highest) to 1000'),
    timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 86_400)
      .optional()
      .describe('Limit per attempt (default: template’s)'),
    attempts: z.number().int().min(1).max(10).optional().describe('Attempts allowed (default 1)'),
    force: z.boolean().optional().describe('New task even if this spec exists'),
  },
  output: {
    task_id: z.string(),
    state: z.string(),
    existing: z.boolean(),
    experiment: z.string(),
    run_url: z.string().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    VALIDATION_ERROR:
      'Fix that field and call again; list_task_templates shows each template’s params and bounds.',
  },
  async run(args, ctx) {
    const { task, existing, info } = await tasksOf(ctx).enqueue(args);
    const runUrl = info.runs.at(-1)?.url;
    return {
      structured: {
        task_id: task.taskId,
        state: info.state,
        existing,
        experiment: task.experiment,
        run_url: runUrl,
      },
      text:
        `${existing ? 'Existing' : 'Enqueued'} task ${task.taskId} (${task.template} ${JSON.stringify(task.params)}, ` +
        `${info.state}) → experiment '${task.experiment}'.${runUrl ? ` Run: ${runUrl}` : ''} Follow it with wait_for_task.`,
    };
  },
});
