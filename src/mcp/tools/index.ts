/**
 * The tool list, in the order clients see it. Task and review tools join it with the task queue.
 */
import { compareRunsTool } from './compare-runs.js';
import type { ToolDefinition } from './define.js';
import { endRunTool } from './end-run.js';
import { getMetricHistoryTool } from './get-metric-history.js';
import { getModelVersionTool } from './get-model-version.js';
import { getOrCreateExperimentTool } from './get-or-create-experiment.js';
import { getRunTool } from './get-run.js';
import { listArtifactsTool } from './list-artifacts.js';
import { logArtifactTool } from './log-artifact.js';
import { logMetricsTool } from './log-metrics.js';
import { logParamsTool } from './log-params.js';
import { readArtifactTool } from './read-artifact.js';
import { registerModelTool } from './register-model.js';
import { searchExperimentsTool } from './search-experiments.js';
import { searchRunsTool } from './search-runs.js';
import { setModelAliasTool } from './set-model-alias.js';
import { setTagsTool } from './set-tags.js';
import { startRunTool } from './start-run.js';

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
