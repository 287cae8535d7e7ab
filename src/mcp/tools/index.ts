/**
 * The tool list, in the order clients see it. The task tools join it when the server has a task
 * queue, the review tools when it has a review store.
 */
import { cancelTaskTool } from './cancel-task.js';
import { compareRunsTool } from './compare-runs.js';
import type { ToolDefinition } from './define.js';
import { endRunTool } from './end-run.js';
import { enqueueTaskTool } from './enqueue-task.js';
import { getMetricHistoryTool } from './get-metric-history.js';
import { getModelHistoryTool } from './get-model-history.js';
import { getModelVersionTool } from './get-model-version.js';
import { getOrCreateExperimentTool } from './get-or-create-experiment.js';
import { getReviewTool } from './get-review.js';
import { getRunTool } from './get-run.js';
import { getTaskTool } from './get-task.js';
import { listArtifactsTool } from './list-artifacts.js';
import { listPendingReviewsTool } from './list-pending-reviews.js';
import { listTaskTemplatesTool } from './list-task-templates.js';
import { listTasksTool } from './list-tasks.js';
import { logArtifactTool } from './log-artifact.js';
import { logMetricsTool } from './log-metrics.js';
import { logParamsTool } from './log-params.js';
import { predictTool } from './predict.js';
import { readArtifactTool } from './read-artifact.js';
import { registerModelTool } from './register-model.js';
import { searchExperimentsTool } from './search-experiments.js';
import { searchRunsTool } from './search-runs.js';
import { setModelAliasTool } from './set-model-alias.js';
import { setTagsTool } from './set-tags.js';
import { startRunTool } from './start-run.js';
import { submitReviewTool } from './submit-review.js';
import { waitForTaskTool } from './wait-for-task.js';

export const mlflowTools: ToolDefinition[] = [
  getOrCreateExperimentTool,
  searchExperimentsTool,
  startRunTool,
  logParamsTool,
  logMetricsTool,
  setTagsTool,
  logArtifactTool,
  endRunTool,
  getRunTool,
  searchRunsTool,
  getMetricHistoryTool,
  compareRunsTool,
  listArtifactsTool,
  readArtifactTool,
  registerModelTool,
  setModelAliasTool,
  getModelVersionTool,
];

/** The task tools, listed after the MLflow ones when the server has a task queue. */
export const taskTools: ToolDefinition[] = [
  listTaskTemplatesTool,
  enqueueTaskTool,
  getTaskTool,
  listTasksTool,
  cancelTaskTool,
  waitForTaskTool,
  predictTool,
];

/** The review tools (the agent judge, promotion history), listed last when there is a review store. */
export const reviewTools: ToolDefinition[] = [
  listPendingReviewsTool,
  getReviewTool,
  submitReviewTool,
  getModelHistoryTool,
];
