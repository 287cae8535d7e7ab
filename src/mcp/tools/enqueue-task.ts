/**
 * Tool `enqueue_task`: queue a training task from a registered template, or a sweep of it. Everything
 * is checked before anything is queued (template, params against their bounds, inputs readable,
 * every sweep child); the same template + params + inputs return the existing task (the same sweep
 * spec the existing sweep) unless `force`. `dry_run` with a sweep lists the children and queues
 * nothing.
 */
import { z } from 'zod';
import { RunwardenError } from '../../errors/index.js';
import { defineTool } from './define.js';
import { tasksOf } from './get-task.js';

export const enqueueTaskTool = defineTool({
  name: 'enqueue_task',
  title: 'Enqueue task',
  description:
    'Queue a training task from a template (with sweep: one per parameter set); a worker runs it in an MLflow run. ' +
    'All is checked first; the same spec returns the existing task unless force. Then wait_for_task.',
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
    // Checked by the queue (each bad field named); a loose schema keeps tools/list short.
    sweep: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('grid|list|random, max_concurrency, select, early_stop (docs/tasks.md)'),
    dry_run: z.boolean().optional().describe('Sweep: plan only'),
  },
  output: {
    task_id: z.string(),
    state: z.string(),
    existing: z.boolean(),
    experiment: z.string(),
    run_url: z.string().optional(),
    // A sweep's children: [{task_id, params (the swept ones)}].
    children: z.array(z.unknown()).optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    VALIDATION_ERROR:
      'Fix that field and call again; list_task_templates shows each template’s params and bounds.',
  },
  async run(args, ctx) {
    const tasks = tasksOf(ctx);
    const { sweep, dry_run, ...spec } = args;
    if (sweep) {
      if (!tasks.enqueueSweep)
        throw new RunwardenError('CONFIG_ERROR', 'this MCP server’s task queue runs no sweeps');
      const res = await tasks.enqueueSweep({ ...spec, ...sweep }, { dryRun: dry_run === true });
      const info = res.dry_run ? undefined : await tasks.get(res.sweep_id);
      const runUrl = info?.runs.at(-1)?.url;
      const children = res.children.map((c) => ({ task_id: c.task_id, params: c.swept }));
      return {
        structured: {
          task_id: res.sweep_id,
          state: res.dry_run ? 'dry_run' : (info?.state ?? 'waiting'),
          existing: res.existing,
          experiment: res.experiment,
          run_url: runUrl,
          children,
        },
        text: res.dry_run
          ? `Dry run: sweep ${res.sweep_id} would run ${children.length} children of ${res.template} (at most ${res.max_concurrency} at once, best by ${res.select.metric} ${res.select.direction}); nothing queued. Call again without dry_run to enqueue.`
          : `${res.existing ? 'Existing' : 'Enqueued'} sweep ${res.sweep_id}: ${children.length} children of ${res.template}, at most ${res.max_concurrency} at once, best by ${res.select.metric} (${res.select.direction}) → experiment '${res.experiment}'.${runUrl ? ` Parent run: ${runUrl}` : ''} Follow it with wait_for_task; cancel_task cancels every child.`,
      };
    }
    if (dry_run)
      throw new RunwardenError('VALIDATION_ERROR', 'dry_run: goes with sweep; a single task has no dry run');
    const { task, existing, info } = await tasks.enqueue(spec);
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
