/**
 * The judge's repair pass, run at start and every RUNWARDEN_REVIEW_RECONCILE_MS, because the
 * worker's completion hook can fail (Redis unreachable past its retry budget) and a judge can die
 * half-way:
 *  1. completed tasks whose review mode is policy or agent and that have no item get one (tasks
 *     enqueued within `windowMs`, newest `maxTasks` first; item creation is idempotent, so a hook
 *     that lands late changes nothing). Sweep children (their best child is reviewed as the sweep's
 *     item) and sweep parents (`s-…`, whose item the sweep creates) are skipped;
 *  2. decided items that are not applied are applied (idempotent steps; under the apply lock);
 *  3. pending policy items older than `staleMs` are put back on the judge's queue (a no-op while
 *     their job exists).
 */
import type { Logger } from '../log.js';
import type { NormalizedTask } from '../model/task-spec.js';
import type { TaskQueue } from '../queue/task-queue.js';
import type { ReviewStore } from './store.js';
import { reviewIdFor } from './types.js';

export interface ReconcileOptions {
  /** How far back the task index is searched (default 7 days). */
  windowMs?: number;
  /** At most this many of the newest tasks per pass (default 1000). */
  maxTasks?: number;
  /** Pending policy items older than this go back on the queue (default 60 s). */
  staleMs?: number;
  logger?: Logger;
}

export interface ReconcileResult {
  created: string[];
  applied: string[];
  requeued: string[];
}

export async function reconcileReviews(
  store: ReviewStore,
  tasks: TaskQueue,
  opts: ReconcileOptions = {},
): Promise<ReconcileResult> {
  const out: ReconcileResult = { created: [], applied: [], requeued: [] };
  const now = Date.now();
  const ids = await tasks.redis.zrevrangebyscore(
    tasks.keys.index,
    '+inf',
    now - (opts.windowMs ?? 7 * 86_400_000),
    'LIMIT',
    0,
    opts.maxTasks ?? 1_000,
  );
  const pipe = tasks.redis.pipeline();
  for (const id of ids) pipe.hmget(tasks.keys.task(id), 'finalState', 'spec', 'result');
  const rows = (await pipe.exec()) ?? [];
  for (const [i, taskId] of ids.entries()) {
    const [finalState, rawSpec, rawResult] = (rows[i]?.[1] as (string | null)[] | undefined) ?? [];
    if (finalState !== 'completed' || !rawSpec || !rawResult || taskId.startsWith('s-')) continue;
    const spec = JSON.parse(rawSpec) as NormalizedTask & { sweep?: unknown };
    if ((spec.review !== 'policy' && spec.review !== 'agent') || spec.sweep) continue;
    if (await store.exists(reviewIdFor({ taskId }))) continue;
    const result = JSON.parse(rawResult) as { run_id?: string; experiment_id?: string };
    if (!result.run_id || !result.experiment_id) continue;
    const { existing } = await store.create({
      taskId,
      runId: result.run_id,
      experimentId: result.experiment_id,
      template: spec.template,
      mode: spec.review,
    });
    if (!existing) out.created.push(reviewIdFor({ taskId }));
  }
  for (const id of await store.decidedIds()) {
    if ((await store.finish(id)).applied) out.applied.push(id);
  }
  const stale = now - (opts.staleMs ?? 60_000);
  for (const item of await store.list({ states: ['pending'], mode: 'policy', limit: 1_000 })) {
    if (item.createdAt > stale) continue;
    await store.enqueueJudge(item.id);
    out.requeued.push(item.id);
  }
  if (out.created.length || out.applied.length)
    opts.logger?.info({ created: out.created, applied: out.applied }, 'review reconcile repaired items');
  return out;
}
