/**
 * Tool `wait_for_task`: wait a bounded time for a task, sending MCP progress notifications (when
 * the request has a progress token) whenever its progress changes (at most once per poll) and at
 * least every heartbeat while it waits (for a sweep, its progress message counts the children
 * done/running/failed and names the best so far; get_task has the whole summary). Returns the task's state whether or not it finished.
 */
import { z } from 'zod';
import { sleep } from '../../mlflow/retry.js';
import { isTerminal, type TaskInfo } from '../../queue/task-queue.js';
import { defineTool, type ToolExtra } from './define.js';
import { describeTask, getTaskInfo, taskShape, tasksOf, toTaskOutput } from './get-task.js';

const { task_id, state, fraction, message, run_url, metrics, reason } = taskShape;

const pick = (o: ReturnType<typeof toTaskOutput>) => ({
  task_id: o.task_id,
  state: o.state,
  fraction: o.fraction,
  message: o.message,
  run_url: o.run_url,
  metrics: o.metrics,
  reason: o.reason,
});

/** Sends progress notifications: the task's percentage, always increasing (as MCP requires). */
function notifier(extra: ToolExtra) {
  const token = extra._meta?.progressToken;
  let lastKey = '';
  let lastProgress = -1;
  let lastSentAt = 0;
  const send = (info: TaskInfo) => {
    lastSentAt = Date.now();
    if (token === undefined) return;
    const p = info.progress;
    // 100 only once it ended, so the end is always a step up from the last epoch.
    const pct = isTerminal(info.state) ? 100 : p ? Math.min(99.9, Math.round(p.fraction * 1000) / 10) : 0;
    const progress = pct > lastProgress ? pct : Math.round((lastProgress + 0.001) * 1000) / 1000;
    lastProgress = progress;
    const detail = [p?.phase && p.phase !== info.state ? p.phase : '', p?.message ?? '']
      .filter(Boolean)
      .join(': ');
    void extra
      .sendNotification({
        method: 'notifications/progress',
        params: {
          progressToken: token,
          progress,
          ...(progress <= 100 ? { total: 100 } : {}),
          message: `${info.task_id} ${info.state}${p ? ` ${Math.round(p.fraction * 100)}%` : ''}${detail ? ` ${detail}` : ''}`,
        },
      })
      .catch(() => undefined);
  };
  return {
    /** Send when anything shown changed. */
    changed(info: TaskInfo) {
      const key = JSON.stringify([
        info.state,
        info.progress?.fraction,
        info.progress?.message,
        info.progress?.phase,
      ]);
      if (key === lastKey) return;
      lastKey = key;
      send(info);
    },
    /** Send the current state again if nothing went out for `ms`. */
    heartbeat(info: TaskInfo, ms: number) {
      if (Date.now() - lastSentAt >= ms) send(info);
    },
  };
}

export const waitForTaskTool = defineTool({
  name: 'wait_for_task',
  title: 'Wait for task',
  description:
    'Wait up to timeout_seconds for a task or sweep to end, with progress notifications; finished false: call ' +
    'again. Over 55 s needs a client resetting its timeout on progress.',
  input: {
    task_id: z.string().min(1).describe('Task id'),
    timeout_seconds: z.number().min(0).max(300).optional().describe('Seconds (default 50, max 300)'),
  },
  // A subset of get_task's shape (the tools/list budget); get_task has the rest.
  output: {
    finished: z.boolean(),
    task_id,
    state,
    fraction,
    message,
    run_url,
    metrics,
    reason,
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx, extra) {
    const tasks = tasksOf(ctx);
    const started = Date.now();
    const limitMs = (args.timeout_seconds ?? 50) * 1000;
    const pollMs = ctx.settings.taskPollMs ?? 1_000;
    const heartbeatMs = ctx.settings.taskHeartbeatMs ?? 10_000;
    let info = await getTaskInfo(ctx, args.task_id);
    const notify = notifier(extra);
    // Independent of the polls, so a slow read never starves the heartbeat.
    const beat = setInterval(
      () => notify.heartbeat(info, heartbeatMs),
      Math.max(20, Math.min(heartbeatMs / 4, 1_000)),
    );
    try {
      for (;;) {
        notify.changed(info);
        if (isTerminal(info.state) || extra.signal.aborted) break;
        const left = limitMs - (Date.now() - started);
        if (left <= 0) break;
        await sleep(Math.min(pollMs, left), extra.signal).catch(() => undefined); // an abort ends the wait
        if (extra.signal.aborted) break;
        info = (await tasks.get(args.task_id)) ?? info;
      }
    } finally {
      clearInterval(beat);
    }
    const finished = isTerminal(info.state);
    const waited = Math.round((Date.now() - started) / 100) / 10;
    return {
      structured: { finished, ...pick(toTaskOutput(info)) },
      text: `${describeTask(info)}${finished ? '' : ` Still ${info.state} after ${waited}s: call wait_for_task again.`}`,
    };
  },
});
