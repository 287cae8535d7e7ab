/**
 * Approve = promote, under the per-registered-model promotion lock (Redis, leased, owner token):
 *  1. register a version from the run's model WITHOUT alias intent, with the review id as
 *     idempotency key (a repeat finds the same version, never a second; another client's
 *     register_model with an alias can never make its version the target of this move);
 *  2. under the model lock, re-read the alias holder and decide:
 *     - the holder is this version already (a re-run): keep the previous holder saved in the plan;
 *     - the holder was promoted by an approval decided AFTER this one (by decision time): this
 *       approval is superseded (the newest approval wins), the alias stays;
 *     - a policy decision whose gates no longer pass against the CURRENT holder (it changed since
 *       the decision was computed): not promoted, the alias stays;
 *     - otherwise move the alias to exactly this version and give the holder it moved from
 *       `previous-<alias>` (only then);
 *  3. tag the version with the review and record the promotion (history.ts).
 * The fence (the item's and the model's lease) is checked before every MLflow write.
 */
import { type MlflowClient, ok } from '../mlflow/client.js';
import { MODEL_ID_TAG } from '../tracking/logged-model.js';
import { registerModel } from '../tracking/models.js';
import type { Lease } from './apply-lock.js';
import { promotionRecords, recordPromotion } from './history.js';
import { readRun, versionByAlias } from './mlflow-reads.js';
import { evaluatePolicy } from './policy.js';
import { reviewTags } from './review-tags.js';
import type { TemplateReview } from './template-review.js';
import type { ReviewDecision, ReviewItem, ReviewOutcome } from './types.js';

export interface ApplyPlan {
  /** The holder the alias moved from ('' when it had none); saved before the move. */
  previousVersion?: string;
  reworkTaskId?: string;
}

export interface PromoteContext {
  client: MlflowClient;
  plan: ApplyPlan;
  savePlan: (p: ApplyPlan) => Promise<void>;
  /** The item's apply lease. */
  lease: Lease;
  /** Run `fn` under the registered model's promotion lock. */
  modelLock: <T>(name: string, fn: (lease: Lease) => Promise<T>) => Promise<T>;
  /** Why a promotion was not made, logged. */
  warn?: (msg: string, extra: Record<string, unknown>) => void;
}

export async function promote(
  ctx: PromoteContext,
  item: ReviewItem,
  d: ReviewDecision,
  review: TemplateReview,
  metrics: Record<string, number>,
): Promise<ReviewOutcome> {
  const { client, plan } = ctx;
  const tags = reviewTags(item, d);
  await ctx.lease.check();
  // A run with an MLflow 3 logged model registers from it (source models:/<model_id>).
  const modelId = (await readRun(client, item.runId)).tags[MODEL_ID_TAG] || undefined;
  const reg = await registerModel(client, {
    runId: item.runId,
    artifactPath: review.modelPath,
    modelId,
    name: review.modelName,
    idempotencyKey: item.id,
    tags,
  });
  const base = { modelName: review.modelName, version: reg.version };
  return ctx.modelLock(review.modelName, async (modelLease) => {
    const fence = async () => {
      await ctx.lease.check();
      await modelLease.check();
    };
    const holder = (await versionByAlias(client, review.modelName, review.alias))?.version;
    let previous: string | undefined;
    if (holder === reg.version) {
      previous = plan.previousVersion || undefined;
    } else {
      const why = await whyNot(client, item, d, review, metrics, holder);
      if (why) {
        ctx.warn?.('approval not promoted', { review: item.id, why });
        return { ...base, notPromoted: why };
      }
      plan.previousVersion = holder ?? '';
      await ctx.savePlan(plan);
      await fence();
      await ok(
        client.api.POST('/api/2.0/mlflow/registered-models/alias', {
          body: { name: review.modelName, alias: review.alias, version: reg.version },
        }),
      );
      previous = holder;
    }
    if (previous) {
      await fence();
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
      await fence();
      await ok(
        client.api.POST('/api/2.0/mlflow/model-versions/set-tag', {
          body: { name: review.modelName, version: reg.version, key, value },
        }),
      );
    }
    await recordPromotion(
      client,
      {
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
      },
      { fence, warn: ctx.warn },
    );
    return { ...base, alias: review.alias, previousVersion: previous };
  });
}

/** Why this approval must not move the alias from `holder` now (undefined: move it). */
async function whyNot(
  client: MlflowClient,
  item: ReviewItem,
  d: ReviewDecision,
  review: TemplateReview,
  metrics: Record<string, number>,
  holder: string | undefined,
): Promise<string | undefined> {
  if (!holder) return undefined;
  const records = await promotionRecords(client, review.modelName);
  const holderRec = records.find((r) => r.alias === review.alias && r.version === holder);
  if (holderRec && holderRec.reviewId !== item.id && holderRec.at > d.at)
    return `superseded: version ${holder} holds ${review.alias} by a later approval (${holderRec.reviewId}, decided ${new Date(holderRec.at).toISOString()}); the newest approval wins`;
  if (item.mode === 'policy' && Object.keys(review.gates).length) {
    const mv = await versionByAlias(client, review.modelName, review.alias);
    const champ = mv?.run_id ? (await readRun(client, mv.run_id).catch(() => undefined))?.metrics : {};
    const res = evaluatePolicy(review.gates, metrics, champ ?? {});
    if (!res.passed)
      return `the champion changed to version ${holder} after the decision, and the candidate no longer passes against it: ${res.checks
        .filter((c) => !c.passed)
        .map((c) => c.why)
        .join(' ')}`.slice(0, 2_000);
  }
  return undefined;
}
