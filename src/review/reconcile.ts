/**
 * The judge's repair pass, run at start and every RUNWARDEN_REVIEW_RECONCILE_MS, because the
 * worker's completion hook can fail (Redis unreachable past its retry budget) and a judge can die
 * half-way:
 *  1. completed tasks whose review mode is policy or agent and that have no item get one (tasks
 *     enqueued within `windowMs`, newest `maxTasks` first; item creation is idempotent, so a hook
 *     that lands late changes nothing). Sweep children are skipped (their best child is reviewed as
 *     the sweep's item); a completed sweep (`s-…`) whose review mode is policy or agent gets its
 *     item from its record: the best child (`result.best`: task and run) and the mode kept in the
 *     sweep record (`sweep.review`);
 *  2. decided items that are not applied are applied (idempotent steps; under the apply lock);
 *     one that fails for good goes to `failed` (store.ts) and the pass goes on;
 *  3. pending policy items older than `staleMs` are put back on the judge's queue (a no-op while
 *     their job exists).
 * Each item is handled on its own: an error on one is logged and the pass continues.
 */
import type { Logger } from '../log.js';
import type { NormalizedTask } from '../model/task-spec.js';
import type { TaskQueue } from '../queue/task-queue.js';
import type { CreateItemInput, ReviewStore } from './store.js';
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
  for (const id of ids) pipe.hmget(tasks.keys.task(id), 'finalState', 'spec', 'result', 'sweep');
  const rows = (await pipe.exec()) ?? [];
  const skip = (what: string, id: string, err: unknown) =>
    opts.logger?.warn(
      { id, err: (err as Error).message },
      `review reconcile: ${what} failed; next pass retries`,
    );
  for (const [i, taskId] of ids.entries()) {
    const [finalState, rawSpec, rawResult, rawSweep] = (rows[i]?.[1] as (string | null)[] | undefined) ?? [];
    if (finalState !== 'completed' || !rawResult) continue;
    try {
      const input = taskId.startsWith('s-')
        ? await sweepItem(tasks, taskId, rawSpec, rawResult, rawSweep)
        : rawSpec
          ? taskItem(taskId, rawSpec, rawResult)
          : undefined;
      if (!input || (await store.exists(reviewIdFor(input)))) continue;
      const { existing } = await store.create(input);
      if (!existing) out.created.push(reviewIdFor(input));
    } catch (err) {
      skip('creating an item', taskId, err);
    }
  }
  for (const id of await store.decidedIds()) {
    try {
      if ((await store.finish(id)).applied) out.applied.push(id);
    } catch (err) {
      skip('applying', id, err);
    }
  }
  const stale = now - (opts.staleMs ?? 60_000);
  for (const item of await store.list({ states: ['pending'], mode: 'policy', limit: 1_000 })) {
    if (item.createdAt > stale) continue;
    try {
      await store.enqueueJudge(item.id);
      out.requeued.push(item.id);
    } catch (err) {
      skip('requeueing', item.id, err);
    }
  }
  if (out.created.length || out.applied.length)
    opts.logger?.info({ created: out.created, applied: out.applied }, 'review reconcile repaired items');
  return out;
}

type Mode = 'policy' | 'agent';
const reviewed = (m: unknown): m is Mode => m === 'policy' || m === 'agent';

/** The item of a plain completed task (none for sweep children or unreviewed tasks). */
function taskItem(taskId: string, rawSpec: string, rawResult: string): CreateItemInput | undefined {
  const spec = JSON.parse(rawSpec) as NormalizedTask & { sweep?: unknown };
  if (!reviewed(spec.review) || spec.sweep) return undefined;
  const result = JSON.parse(rawResult) as { run_id?: string; experiment_id?: string };
  if (!result.run_id || !result.experiment_id) return undefined;
  return {
    taskId,
    runId: result.run_id,
    experimentId: result.experiment_id,
    template: spec.template,
    mode: spec.review,
  };
}

/** A completed sweep's item: its best child, in the sweep's review mode (src/sweep/parent.ts). */
async function sweepItem(
  tasks: TaskQueue,
  sweepId: string,
  rawSpec: string | null | undefined,
  rawResult: string,
  rawSweep: string | null | undefined,
): Promise<CreateItemInput | undefined> {
  const mode = rawSweep ? (JSON.parse(rawSweep) as { review?: unknown }).review : undefined;
  if (!reviewed(mode)) return undefined;
  const result = JSON.parse(rawResult) as {
    experiment_id?: string;
    best?: { task_id?: string; run_id?: string };
  };
  const best = result.best;
  if (!best?.task_id || !best.run_id) return undefined;
  const child = await tasks.redis.hget(tasks.keys.task(best.task_id), 'spec');
  const template =
    (child ? (JSON.parse(child) as { template?: string }).template : undefined) ??
    (rawSpec ? (JSON.parse(rawSpec) as { template?: string }).template : undefined);
  if (!template) return undefined;
  return {
    taskId: best.task_id,
    runId: best.run_id,
    experimentId: result.experiment_id ?? '',
    template,
    mode,
    sweepId,
  };
}
