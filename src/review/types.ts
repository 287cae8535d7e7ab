/**
 * The review system's vocabulary (the contract other parts code against, /work/helpers/contract9.md):
 * a review item per successful task (per sweep for sweeps), its state, the judge's decision, the
 * evidence a judge sees, and the promotion record kept in MLflow. Types only.
 */

/** BullMQ queue of items waiting for the policy judge (same prefix as the tasks queue). */
export const REVIEW_QUEUE = 'reviews';

/** How a task's result is reviewed: 'none' creates no item. */
export type ReviewMode = 'policy' | 'agent';
export type Verdict = 'approve' | 'reject' | 'rework';
/** pending → decided (the claim) → applied (every MLflow step landed). */
/** `failed`: decided, but applying it failed for a reason retrying cannot fix (`failure` says why). */
export type ReviewState = 'pending' | 'decided' | 'applied' | 'failed';

export const VERDICTS: readonly Verdict[] = ['approve', 'reject', 'rework'];
export const REVIEW_STATES: readonly ReviewState[] = ['pending', 'decided', 'applied', 'failed'];

export interface ReviewDecision {
  verdict: Verdict;
  judge: string;
  score?: number;
  notes?: string;
  at: number;
}

export interface ReviewOutcome {
  modelName?: string;
  version?: string;
  alias?: string;
  previousVersion?: string;
  reworkTaskId?: string;
  /** Set when an approval was applied without moving the alias (superseded, or its gates no
   *  longer pass against the current holder): why. The version exists without the alias. */
  notPromoted?: string;
}

export interface ReviewItem {
  /** `r-${sweepId ?? taskId}`: one item per task (per sweep for sweeps). */
  id: string;
  taskId: string;
  runId: string;
  experimentId: string;
  template: string;
  mode: ReviewMode;
  sweepId?: string;
  state: ReviewState;
  createdAt: number;
  decision?: ReviewDecision;
  outcome?: ReviewOutcome;
  /** Why applying the decision failed for good (state `failed`). */
  failure?: string;
}

/** One policy gate's result. */
export interface PolicyCheck {
  metric: string;
  passed: boolean;
  why: string;
}

export interface Evidence {
  item: ReviewItem;
  runUrl: string;
  metrics: Record<string, number>;
  params: Record<string, string>;
  /** `runs:/<run>/model` when the run stored a model. */
  candidateModelUri?: string;
  champion?: {
    name: string;
    alias: string;
    version: string;
    runId?: string;
    metrics: Record<string, number>;
  };
  /** The run's workspace.zip artifact path. */
  workspaceArtifact?: string;
  primaryMetric?: { name: string; direction: 'min' | 'max' };
  policy?: { passed: boolean; checks: PolicyCheck[] };
  /** The judge's own re-score of the candidate's ONNX model on the template's holdout (src/eval/rescore.ts). */
  rescore?: RescoreEvidence;
}

/** A re-score as evidence: both sets of numbers, and `flag` when it disagrees or could not run. */
export interface RescoreEvidence {
  status: 'ok' | 'failed';
  holdout: string;
  tolerance: number;
  rows?: number;
  /** eval.rmse / eval.mae / eval.mse / eval.composite as measured by the judge. */
  metrics?: { rmse: number; mae: number; mse: number; composite: number };
  /** Per metric the run reported: reported vs re-scored and the relative gap. */
  gaps: { metric: string; reportedAs: string; reported: number; rescored: number; gap: number }[];
  worstGap?: number;
  /** The line a judge must read first: the re-score disagrees beyond the tolerance, or failed. */
  flag?: string;
  reason?: string;
  modelUri?: string;
  /** One sentence summing it up (the policy check's text). */
  summary: string;
  /**
   * The claim check: the model re-scored on the run's OWN test rows (its features.json `test_rows`
   * of the training input), compared tightly (`tolerance` = review.rescore.claim_tolerance);
   * `skipped` with `reason` when it could not be checked (src/eval/claim-check.ts).
   */
  claim?: {
    status: 'ok' | 'skipped';
    tolerance: number;
    input?: string;
    rows?: number;
    metrics?: { rmse: number; mae: number; mse: number; composite: number };
    gaps: { metric: string; reportedAs: string; reported: number; rescored: number; gap: number }[];
    worstGap?: number;
    flag?: string;
    reason?: string;
    summary: string;
  };
}

/** One alias move, as recorded in MLflow (a registered-model tag and a description row). */
export interface PromotionRecord {
  at: number;
  name: string;
  alias: string;
  version: string;
  previousVersion?: string;
  judge: string;
  reviewId: string;
  runId: string;
  taskId: string;
  score?: number;
  notes?: string;
  metrics: Record<string, number>;
}

/** What a decision asks for (the time is added by the store). */
export interface DecisionInput {
  verdict: Verdict;
  judge: string;
  score?: number;
  notes?: string;
}

export const reviewIdFor = (o: { taskId: string; sweepId?: string }) => `r-${o.sweepId ?? o.taskId}`;
