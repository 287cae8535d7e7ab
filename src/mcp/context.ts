/**
 * What every MCP tool handler receives: the MLflow client, the server's run registry, the
 * session it serves, its settings and a logger. Built once per session by `createServer`.
 */
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { McpRunRegistry } from './runs.js';

export interface McpSettings {
  /** Mutating tools are not listed at all. */
  readOnly: boolean;
  /** Local folders `log_artifact` may read. */
  allowedRoots: string[];
  maxInlineArtifactBytes: number;
  readArtifactMaxBytes: number;
  /** Default run lease for `start_run`, seconds. */
  leaseSeconds: number;
  /** `runwarden.owner` for runs this server starts. */
  owner: string;
}

export interface ToolContext {
  client: MlflowClient;
  runs: McpRunRegistry;
  settings: McpSettings;
  logger: Logger;
  /** Identifies the MCP session (stdio connection or HTTP session) the call belongs to. */
  sessionKey: string;
}
