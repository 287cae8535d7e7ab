/**
 * The review system: every successful task (every finished sweep, for its best child) becomes one
 * review item with its evidence; a judge (the policy judge, or an agent through MCP) decides it
 * exactly once; approval promotes the run's model (version, alias, `previous-<alias>`) and records
 * the promotion in MLflow, which keeps no history of alias moves itself.
 */

export { gatherEvidence } from './evidence.js';
export { reviewStoreFromConfig } from './from-config.js';
export { modelHistory, PROMOTION_TAG_PREFIX, recordPromotion } from './history.js';
export { type JudgeOptions, type RunningJudge, startJudge } from './judge-worker.js';
export { compositeOf, evaluatePolicy, type Gates, gatesFor, withComposite } from './policy.js';
export type { ApplyPlan } from './promotion.js';
export { reconcileReviews } from './reconcile.js';
export { REVIEW_TAGS } from './review-tags.js';
export { type CreateItemInput, type DecideResult, ReviewStore, type ReviewStoreOptions } from './store.js';
export {
  type DecisionInput,
  type Evidence,
  type PolicyCheck,
  type PromotionRecord,
  REVIEW_QUEUE,
  REVIEW_STATES,
  type ReviewDecision,
  type ReviewItem,
  type ReviewMode,
  type ReviewOutcome,
  type ReviewState,
  reviewIdFor,
  VERDICTS,
  type Verdict,
} from './types.js';
