/**
 * runwarden as a library: the MLflow client factory and the tracking guarantees (one experiment per
 * name, runs that always close, nothing logged lost, leases and the reaper, model registration).
 * Kept small on purpose; see docs/library.md.
 */
export { type Config, loadConfig } from './config.js';
export {
  ExperimentDeletedError,
  hasCode,
  isMlflowError,
  MlflowApiError,
  MlflowUnreachableError,
  ParamConflictError,
  ReviewAlreadyDecidedError,
  RunClosedError,
  RunwardenError,
  type RunwardenErrorCode,
  UnsafeArtifactPathError,
  ValidationError,
} from './errors/index.js';
export {
  downloadFile,
  downloadTree,
  listArtifacts,
  readArtifact,
  uploadBytes,
  uploadPath,
} from './mlflow/artifacts.js';
export {
  createMlflowClient,
  type Experiment,
  type MlflowClient,
  type MlflowClientOptions,
  type ModelVersion,
  mlflowClientFromConfig,
  type Run,
} from './mlflow/client.js';
export { normalizeArtifactPath } from './mlflow/paths.js';
export { isTransient, type RetryPolicy } from './mlflow/retry.js';
// Sweeps: the spec, what a child carries, and what enqueueing and reading a sweep return
// (TaskQueue.enqueueSweep in src/queue/task-queue.ts).
export { type SweepChild, type SweepSpec, SweepSpecSchema } from './model/sweep-spec.js';
// Review: items, decisions exactly once, the policy judge, promotion with history kept in MLflow
export {
  type DecideResult,
  type Evidence,
  modelHistory,
  type PromotionRecord,
  REVIEW_QUEUE,
  type ReviewDecision,
  type ReviewItem,
  type ReviewMode,
  type ReviewState,
  ReviewStore,
  reviewStoreFromConfig,
  startJudge,
  type Verdict,
} from './review/index.js';
export type { SweepChildPlan, SweepEnqueueResult } from './sweep/flow.js';
export type { SweepBest, SweepSummary } from './sweep/summary.js';
export { SWEEP_TAGS } from './sweep/tags.js';
export {
  type GetOrCreateExperimentOptions,
  type GetOrCreateExperimentResult,
  getExperimentByName,
  getOrCreateExperiment,
} from './tracking/experiments.js';
export { canonicalJson, configHash } from './tracking/lineage.js';
export {
  ensureRegisteredModel,
  type RegisterModelOptions,
  type RegisterModelResult,
  registerModel,
} from './tracking/models.js';
export {
  type CloseAllOptions,
  type CloseAllResult,
  OpenRunRegistry,
  type TrackOptions,
  uniqueOwnerId,
} from './tracking/open-runs.js';
export { type ReapOptions, type ReapResult, reapExpiredRuns, startReaperLoop } from './tracking/reaper.js';
export { type EndOptions, type ParamValue, RunHandle } from './tracking/run-handle.js';
export {
  bestRun,
  compareRuns,
  getMetricHistory,
  iterateRuns,
  type RunComparison,
  type SearchRunsOptions,
  searchRuns,
} from './tracking/search.js';
export { type StartRunOptions, startRun } from './tracking/start-run.js';
export { MLFLOW_TAGS, RW_TAGS, type TerminalStatus } from './tracking/tags.js';
export { LIMITS } from './tracking/validation.js';
export { type WithRunOptions, withRun } from './tracking/with-run.js';
