/**
 * Carrying out a decision in MLflow (and the queue, for rework), separately from taking it:
 *  - approve: promote (promotion.ts), then tags and a Review section on the run;
 *  - reject: tags and a Review section on the run (its description keeps the original text);
 *  - rework: enqueue the task again (`force`, with `rework: {of_task, of_run, notes}`, so the new
 *    run is tagged with the reviewed one and its command gets RUNWARDEN_REVIEW_NOTES), then tag the
 *    reviewed run with the new task id.
 * Each step is idempotent; the new task id is kept in the item's plan as soon as it exists, and a
 * re-run that lacks it first looks for a rework task of this run among the newest tasks, so a crash
 * between enqueue and plan does not enqueue twice.
 */
import { RunwardenError } from '../errors/index.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { TaskSpec } from '../model/task-spec.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { readRun } from './mlflow-reads.js';
import { withComposite } from './policy.js';
import { type ApplyPlan, promote } from './promotion.js';
import { REVIEW_TAGS } from './review-tags.js';
import { noteReviewOnRun } from './run-notes.js';
import { templateReview } from './template-review.js';
import type { ReviewDecision, ReviewItem, ReviewOutcome } from './types.js';

export interface ApplyContext {
  client: MlflowClient;
  tasksDir: string;
  /** Needed for rework only. */
  tasks?: TaskQueue;
  plan: ApplyPlan;
  savePlan: (p: ApplyPlan) => Promise<void>;
}

/** How many of the newest tasks a re-run searches for a rework task it may have enqueued already. */
export const REWORK_SEARCH_MAX = 500;

export async function applyDecision(
  ctx: ApplyContext,
  item: ReviewItem,
  d: ReviewDecision,
): Promise<ReviewOutcome> {
  const { client } = ctx;
  if (d.verdict === 'approve') {
    const review = templateReview(ctx.tasksDir, item.template);
    const { metrics } = await readRun(client, item.runId);
    const outcome = await promote(client, item, d, review, withComposite(metrics), ctx.plan, ctx.savePlan);
    await noteReviewOnRun(client, item, d, {
      extra: `Registered as **${outcome.modelName}** version ${outcome.version}, alias \`${outcome.alias}\`${outcome.previousVersion ? ` (previous holder: version ${outcome.previousVersion})` : ''}.`,
    });
    return outcome;
  }
  if (d.verdict === 'reject') {
    await noteReviewOnRun(client, item, d);
    return {};
  }
  const reworkTaskId = ctx.plan.reworkTaskId ?? (await enqueueRework(ctx, item, d));
  await noteReviewOnRun(client, item, d, {
    extraTags: { [REVIEW_TAGS.reworkTaskId]: reworkTaskId },
    extra: `Sent back for rework as task \`${reworkTaskId}\`.`,
  });
  return { reworkTaskId };
}

/** The spec that runs the reviewed task again, with the judge's notes. */
export async function reworkSpec(tasks: TaskQueue, item: ReviewItem, notes: string): Promise<TaskSpec> {
  const spec = (await tasks.records.get(item.taskId))?.spec;
  if (!spec)
    throw new RunwardenError(
      'VALIDATION_ERROR',
      `verdict: rework needs task ${item.taskId}'s spec, and its record is gone (kept 30 days); enqueue a new task instead`,
    );
  return {
    template: spec.template,
    params: spec.params,
    inputs: spec.inputs,
    experiment: spec.experiment,
    run_name: spec.runName,
    priority: spec.priority,
    timeout_seconds: spec.timeoutSeconds,
    attempts: spec.attempts,
    review: spec.review,
    force: true,
    rework: { of_task: item.taskId, of_run: item.runId, notes },
  };
}

async function enqueueRework(ctx: ApplyContext, item: ReviewItem, d: ReviewDecision): Promise<string> {
  const tasks = ctx.tasks;
  if (!tasks)
    throw new RunwardenError(
      'CONFIG_ERROR',
      'a rework verdict needs the task queue (REDIS_URL) to enqueue the task again',
    );
  const ids = await tasks.redis.zrevrange(tasks.keys.index, 0, REWORK_SEARCH_MAX - 1);
  const pipe = tasks.redis.pipeline();
  for (const id of ids) pipe.hget(tasks.keys.task(id), 'spec');
  const specs = (await pipe.exec()) ?? [];
  for (const [i, id] of ids.entries()) {
    const raw = specs[i]?.[1];
    const spec = typeof raw === 'string' ? (JSON.parse(raw) as { rework?: { ofRun?: string } }) : undefined;
    if (spec?.rework?.ofRun === item.runId) {
      ctx.plan.reworkTaskId = id;
      await ctx.savePlan(ctx.plan);
      return id;
    }
  }
  const { task } = await tasks.enqueue(await reworkSpec(tasks, item, d.notes ?? ''));
  ctx.plan.reworkTaskId = task.taskId;
  await ctx.savePlan(ctx.plan);
  return task.taskId;
}
