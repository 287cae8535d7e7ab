/**
 * Tool `cancel_task`: a waiting task never starts; a running one is stopped by its worker and its
 * MLflow run ends KILLED with the reason (the tool waits up to 10 s to report that). Cancelling a
 * finished task changes nothing.
 */
import { z } from 'zod';
import { sleep } from '../../mlflow/retry.js';
import { isTerminal } from '../../queue/task-queue.js';
import { defineTool } from './define.js';
import { tasksOf } from './get-task.js';

/** How long cancel_task waits for a running task's worker to stop it. */
const SETTLE_MS = 10_000;

export const cancelTaskTool = defineTool({
  name: 'cancel_task',
  title: 'Cancel task',
  description:
    'Cancel a task (a sweep: every child): waiting, it never starts; running, its run ends KILLED with the ' +
    'reason. Finished: unchanged.',
  input: {
    task_id: z.string().min(1).describe('Task id'),
    reason: z.string().max(500).optional().describe('Why (recorded)'),
  },
  output: {
    task_id: z.string(),
    previous_state: z.string(),
    state: z.string(),
    reason: z.string().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx, extra) {
    const tasks = tasksOf(ctx);
    const { previous, info: first } = await tasks.cancel(args.task_id, args.reason ?? 'cancelled by request');
    let info = first;
    const deadline = Date.now() + SETTLE_MS;
    while (
      !isTerminal(previous) &&
      !isTerminal(info.state) &&
      Date.now() < deadline &&
      !extra.signal.aborted
    ) {
      await sleep(Math.min(ctx.settings.taskPollMs ?? 500, 500), extra.signal).catch(() => undefined);
      info = (await tasks.get(args.task_id)) ?? info;
    }
    const structured = {
      task_id: args.task_id,
      previous_state: previous,
      state: info.state,
      reason: info.reason || info.cancel_requested,
    };
    if (isTerminal(previous))
      return {
        structured,
        text: `Task ${args.task_id} had already ${previous === 'cancelled' ? 'been cancelled' : previous}; nothing changed.`,
      };
    const run = info.runs.at(-1);
    return {
      structured,
      text: isTerminal(info.state)
        ? `Task ${args.task_id}: ${previous} → ${info.state}.${run ? ` Run ${run.run_id}: ${run.url}` : ''}`
        : `Task ${args.task_id}: cancel requested while ${previous}; its worker is stopping it (the run will end KILLED). get_task shows when it has.`,
    };
  },
});
