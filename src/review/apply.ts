/**
 * Carrying out a decision in MLflow (and the queue, for rework), separately from taking it:
 *  - approve: promote (promotion.ts), then tags and a Review section on the run;
 *  - reject: tags and a Review section on the run (its description keeps the original text);
 *  - rework: enqueue the task again (`force`, with `rework: {of_task, of_run, notes}`, so the new
 *    run is tagged with the reviewed one and its command gets RUNWARDEN_REVIEW_NOTES), then tag the
 *    reviewed run with the new task id.
 * Each step is idempotent. The rework task's id is derived from the reviewed task and run
 * (src/queue/spec.ts), so a re-run enqueues the same task again and finds it (`existing`), never a
 * second one; the rework task is reviewed in the item's mode (a sweep's best child is stored with
 * review 'none'). The item's lease is checked before each write.
 */
import { RunwardenError } from '../errors/index.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { TaskSpec } from '../model/task-spec.js';
import type { TaskQueue } from '../queue/task-queue.js';
import type { Lease } from './apply-lock.js';
import { readRun } from './mlflow-reads.js';
import { withComposite } from './policy.js';
import { type ApplyPlan, type PromoteContext, promote } from './promotion.js';
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
  lease: Lease;
  modelLock: PromoteContext['modelLock'];
  warn?: PromoteContext['warn'];
}

export async function applyDecision(
  ctx: ApplyContext,
  item: ReviewItem,
  d: ReviewDecision,
): Promise<ReviewOutcome> {
  const { client } = ctx;
  if (d.verdict === 'approve') {
    const review = templateReview(ctx.tasksDir, item.template);
    const { metrics } = await readRun(client, item.runId);
    const outcome = await promote(ctx, item, d, review, withComposite(metrics));
    await ctx.lease.check();
    await noteReviewOnRun(client, item, d, {
      extra: outcome.notPromoted
        ? `Registered as **${outcome.modelName}** version ${outcome.version}, NOT promoted: ${outcome.notPromoted}`
        : `Registered as **${outcome.modelName}** version ${outcome.version}, alias \`${outcome.alias}\`${outcome.previousVersion ? ` (previous holder: version ${outcome.previousVersion})` : ''}.`,
    });
    return outcome;
  }
  if (d.verdict === 'reject') {
    await ctx.lease.check();
    await noteReviewOnRun(client, item, d);
    return {};
  }
  const reworkTaskId = ctx.plan.reworkTaskId ?? (await enqueueRework(ctx, item, d));
  await ctx.lease.check();
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
    // The item's mode: a sweep's best child is stored with review 'none', its rework must be reviewed.
    review: item.mode,
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
  await ctx.lease.check();
  const { task } = await tasks.enqueue(await reworkSpec(tasks, item, d.notes ?? ''));
  ctx.plan.reworkTaskId = task.taskId;
  await ctx.savePlan(ctx.plan);
  return task.taskId;
}
