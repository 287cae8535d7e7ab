/**
 * Approve = promote: register a version from the run's model with the review id as idempotency
 * key (a repeat, or a re-run after a crash, finds the same version, never a second), move the alias
 * (registerModel settles it on the highest version registered for it), give the previous holder
 * `previous-<alias>`, tag the version with the review, and record the promotion in the model's
 * history. Every step is idempotent, so re-running a half-done promotion finishes it. The previous
 * holder is read once, before anything moves, and kept in the item's plan (a re-run must not take
 * the new version for the previous one).
 */
import { type MlflowClient, ok } from '../mlflow/client.js';
import { registerModel } from '../tracking/models.js';
import { recordPromotion } from './history.js';
import { versionByAlias } from './mlflow-reads.js';
import { reviewTags } from './review-tags.js';
import type { TemplateReview } from './template-review.js';
import type { ReviewDecision, ReviewItem, ReviewOutcome } from './types.js';

export interface ApplyPlan {
  /** '' when the alias had no holder. */
  previousVersion?: string;
  reworkTaskId?: string;
}

export async function promote(
  client: MlflowClient,
  item: ReviewItem,
  d: ReviewDecision,
  review: TemplateReview,
  metrics: Record<string, number>,
  plan: ApplyPlan,
  savePlan: (p: ApplyPlan) => Promise<void>,
): Promise<ReviewOutcome> {
  if (plan.previousVersion === undefined) {
    const holder = await versionByAlias(client, review.modelName, review.alias);
    plan.previousVersion = holder?.version ?? '';
    await savePlan(plan);
  }
  const tags = reviewTags(item, d);
  const reg = await registerModel(client, {
    runId: item.runId,
    artifactPath: review.modelPath,
    name: review.modelName,
    alias: review.alias,
    idempotencyKey: item.id,
    tags,
  });
  const previous =
    plan.previousVersion && plan.previousVersion !== reg.version ? plan.previousVersion : undefined;
  if (previous) {
    await ok(
      client.api.POST('/api/2.0/mlflow/registered-models/alias', {
        body: { name: review.modelName, alias: review.previousAlias, version: previous },
      }),
    );
  }
  // The create carried the tags; set again in case the version came from an earlier, untagged call.
  const has = new Map((reg.modelVersion.tags ?? []).map((t) => [t.key, t.value]));
  for (const [key, value] of Object.entries(tags)) {
    if (has.get(key) === value) continue;
    await ok(
      client.api.POST('/api/2.0/mlflow/model-versions/set-tag', {
        body: { name: review.modelName, version: reg.version, key, value },
      }),
    );
  }
  await recordPromotion(client, {
    at: d.at,
    name: review.modelName,
    alias: review.alias,
    version: reg.version,
    previousVersion: previous,
    judge: d.judge,
    reviewId: item.id,
    runId: item.runId,
    taskId: item.taskId,
    score: d.score,
    notes: d.notes,
    metrics,
  });
  return {
    modelName: review.modelName,
    version: reg.version,
    alias: review.alias,
    previousVersion: previous,
  };
}
