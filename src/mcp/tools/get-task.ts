/**
 * Tool `get_task`: a queued task's state, progress, MLflow run of each attempt (with UI links),
 * result metrics and reason; for a sweep, its children summary and best child so far. Also holds the task output shape the other task tools share.
 */
import { z } from 'zod';
import { RunwardenError, ValidationError } from '../../errors/index.js';
import type { TaskInfo } from '../../queue/task-queue.js';
import type { TaskQueueApi, ToolContext } from '../context.js';
import { defineTool } from './define.js';
import { toMetricValue } from './shapes.js';

/** The task queue of the context, or an error saying the server has none. */
export function tasksOf(ctx: ToolContext): TaskQueueApi {
  if (!ctx.tasks) throw new RunwardenError('CONFIG_ERROR', 'this MCP server has no task queue (REDIS_URL)');
  return ctx.tasks;
}

export async function getTaskInfo(ctx: ToolContext, taskId: string): Promise<TaskInfo> {
  const info = await tasksOf(ctx).get(taskId);
  if (!info) throw new ValidationError('task_id', `no task ${taskId}; list_tasks shows known tasks`);
  return info;
}

export const taskShape = {
  task_id: z.string(),
  state: z.string(),
  template: z.string(),
  params: z.record(z.string(), z.unknown()),
  experiment: z.string(),
  fraction: z.number().optional(),
  message: z.string().optional(),
  attempts: z.number(),
  runs: z.array(z.object({ attempt: z.number(), run_id: z.string(), url: z.string() })),
  run_url: z.string().optional(),
  metrics: z.record(z.string(), z.union([z.number(), z.string()])).optional(),
  exit_code: z.number().optional(),
  reason: z.string().optional(),
  finished_at: z.number().optional(),
  // A sweep's children: done/running/failed/cancelled counts, the best so far, the parent run.
  sweep: z.unknown().optional(),
  // A prediction task's result: rows, columns, a preview of at most 20 rows, the artifact.
  prediction: z.unknown().optional(),
};
export type TaskOutput = z.infer<z.ZodObject<typeof taskShape>>;

/** TaskInfo in the tools' output shape (only the fields the schema declares). */
export function toTaskOutput(i: TaskInfo): TaskOutput {
  const result = i.result as { metrics?: Record<string, unknown>; exit_code?: number | null } | undefined;
  const metrics = result?.metrics
    ? Object.fromEntries(Object.entries(result.metrics).map(([k, v]) => [k, toMetricValue(v)]))
    : undefined;
  return {
    task_id: i.task_id,
    state: i.state,
    template: i.template,
    params: i.params,
    experiment: i.experiment,
    fraction: i.progress?.fraction,
    message: i.progress?.message,
    attempts: i.attempts_made,
    runs: i.runs.map((r) => ({ attempt: r.attempt, run_id: r.run_id, url: r.url })),
    run_url: i.runs.at(-1)?.url,
    metrics,
    exit_code: result?.exit_code ?? undefined,
    reason: i.reason || i.cancel_requested || undefined,
    finished_at: i.finished_at,
    sweep: i.sweep ? { ...i.sweep } : undefined,
    prediction: (i.result as { prediction?: unknown } | undefined)?.prediction,
  };
}

const pct = (f: number) => `${Math.round(f * 100)}%`;

/** One line about a task for text mirrors. */
export function describeTask(i: TaskInfo): string {
  const p = i.progress;
  const parts = [`${i.sweep ? 'Sweep' : 'Task'} ${i.task_id} (${i.template}): ${i.state}`];
  const s = i.sweep;
  if (s) {
    parts.push(
      `children ${s.done} done, ${s.running} running, ${s.waiting} waiting, ${s.failed} failed, ${s.cancelled} cancelled of ${s.children}`,
    );
    if (s.best) parts.push(`best child ${s.best.index} (${s.best.task_id}) ${s.best.metric} ${s.best.value}`);
    parts.push(`parent run ${s.parent_run_id} ${s.parent_run_url}`);
    if (i.reason && i.state !== 'completed') parts.push(`reason: ${i.reason.split('\n')[0]}`);
    return `${parts.join('; ')}.`;
  }
  if (p && !['completed', 'failed', 'cancelled'].includes(i.state))
    parts.push(`${pct(p.fraction)}${p.message ? ` ${p.message}` : ''}`);
  if (i.reason && i.state !== 'completed') parts.push(`reason: ${i.reason.split('\n')[0]}`);
  const metrics = (i.result as { metrics?: Record<string, unknown> } | undefined)?.metrics;
  if (metrics && Object.keys(metrics).length) parts.push(`metrics ${JSON.stringify(metrics)}`);
  const pred = (i.result as { prediction?: { rows: number; artifact: string } } | undefined)?.prediction;
  if (pred) parts.push(`${pred.rows} predictions in ${pred.artifact} (get_task shows a preview)`);
  const run = i.runs.at(-1);
  if (run) parts.push(`run ${run.run_id} ${run.url}`);
  return `${parts.join('; ')}.`;
}

export const getTaskTool = defineTool({
  name: 'get_task',
  title: 'Get task',
  description: "A task's (or sweep's) state, progress, MLflow runs (UI links), metrics and reason.",
  input: {
    task_id: z.string().min(1).describe('Task id'),
  },
  output: taskShape,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx) {
    const info = await getTaskInfo(ctx, args.task_id);
    return { structured: toTaskOutput(info), text: describeTask(info) };
  },
});
