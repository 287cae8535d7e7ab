/** Tool `list_tasks`: queued, running and finished tasks, newest first, optionally by state. */
import { z } from 'zod';
import type { TaskState } from '../../queue/records.js';
import { defineTool } from './define.js';
import { tasksOf } from './get-task.js';

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'cancelled'] as const;

export const listTasksTool = defineTool({
  name: 'list_tasks',
  title: 'List tasks',
  description: 'Tasks, newest first, with progress and run links.',
  input: {
    states: z.array(z.enum(STATES)).optional().describe('Only these states (default all)'),
    limit: z.number().int().min(1).max(200).optional().describe('Default 50'),
  },
  output: {
    tasks: z.array(
      z.object({
        task_id: z.string(),
        state: z.string(),
        template: z.string(),
        fraction: z.number().optional(),
        run_url: z.string().optional(),
        reason: z.string().optional(),
      }),
    ),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx) {
    const states: TaskState[] = args.states?.length ? args.states : [...STATES];
    const infos = await tasksOf(ctx).list({ states, limit: args.limit ?? 50 });
    const tasks = infos.map((i) => ({
      task_id: i.task_id,
      state: i.state,
      template: i.template,
      fraction: i.progress?.fraction,
      run_url: i.runs.at(-1)?.url,
      reason: i.reason ? i.reason.split('\n')[0] : undefined,
    }));
    const text = tasks.length
      ? tasks
          .map((t) => `${t.task_id} ${t.template} ${t.state}${t.run_url ? ` ${t.run_url}` : ''}`)
          .join('\n')
      : `No tasks${args.states?.length ? ` in state ${args.states.join('/')}` : ''}.`;
    return { structured: { tasks }, text };
  },
});
