/**
 * A sweep's children at a glance, for `get_task`, `wait_for_task` and `runwarden enqueue --wait`:
 * how many wait, run, are done, failed or were cancelled, and the best child so far by the
 * sweep's selection rule (among completed children that logged the metric).
 */
import type { SweepRecord } from '../queue/records.js';
import { sweepChildId } from '../queue/records.js';
import type { TaskInfo } from '../queue/task-queue.js';

export interface SweepBest {
  index: number;
  task_id: string;
  run_id?: string;
  metric: string;
  value: number;
}

export interface SweepSummary {
  children: number;
  waiting: number;
  running: number;
  done: number;
  failed: number;
  cancelled: number;
  max_concurrency: number;
  select: { metric: string; direction: 'min' | 'max' };
  parent_run_id: string;
  parent_run_url: string;
  best?: SweepBest;
}

/** Whether `a` beats `b` under `direction` (NaN never wins). */
export const better = (a: number, b: number | undefined, direction: 'min' | 'max') =>
  Number.isFinite(a) && (b === undefined || (direction === 'min' ? a < b : a > b));

export async function summarizeSweep(
  sweepId: string,
  rec: SweepRecord,
  get: (taskId: string) => Promise<TaskInfo | undefined>,
  runUrl: (experimentId: string, runId: string) => string,
): Promise<SweepSummary> {
  const infos = await Promise.all(
    Array.from({ length: rec.childCount }, (_, i) => get(sweepChildId(sweepId, i))),
  );
  const s: SweepSummary = {
    children: rec.childCount,
    waiting: 0,
    running: 0,
    done: 0,
    failed: 0,
    cancelled: 0,
    max_concurrency: rec.maxConcurrency,
    select: rec.select,
    parent_run_id: rec.parentRunId,
    parent_run_url: runUrl(rec.experimentId, rec.parentRunId),
  };
  infos.forEach((info, index) => {
    const state = info?.state ?? 'cancelled';
    if (state === 'completed') s.done++;
    else if (state === 'failed') s.failed++;
    else if (state === 'cancelled' || state === 'unknown') s.cancelled++;
    else if (state === 'active') s.running++;
    else s.waiting++;
    const value = Number(
      (info?.result as { metrics?: Record<string, unknown> } | undefined)?.metrics?.[rec.select.metric],
    );
    if (state === 'completed' && better(value, s.best?.value, rec.select.direction))
      s.best = {
        index,
        task_id: sweepChildId(sweepId, index),
        run_id: (info?.result as { run_id?: string } | undefined)?.run_id,
        metric: rec.select.metric,
        value,
      };
  });
  return s;
}
