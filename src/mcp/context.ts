/**
 * What every MCP tool handler receives: the MLflow client, the server's run registry, the task
 * queue and the review store (when there are), the session it serves, its settings and a logger.
 * Built once per session by `createServer`.
 */
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { TaskQueue } from '../queue/task-queue.js';
import type { ReviewStore } from '../review/index.js';
import type { McpRunRegistry } from './runs.js';

/** The part of the task queue the task tools use (tests pass a fake of just this). */
export type TaskQueueApi = Pick<TaskQueue, 'templates' | 'enqueue' | 'get' | 'list' | 'cancel'> &
  Partial<Pick<TaskQueue, 'enqueueSweep'>>;

/** The part of the review store the review tools use (tests pass a fake of just this). */
export type ReviewStoreApi = Pick<ReviewStore, 'get' | 'list' | 'evidence' | 'decide'>;

export interface McpSettings {
  /** Mutating tools are not listed at all. */
  readOnly: boolean;
  /** Local folders `log_artifact` may read. */
  allowedRoots: string[];
  maxInlineArtifactBytes: number;
  readArtifactMaxBytes: number;
  /** Default run lease for `start_run`, seconds. */
  leaseSeconds: number;
  /** `runwarden.owner` for runs this server starts; also the judge named on `submit_review` decisions. */
  owner: string;
  /** `wait_for_task`: how often it re-reads the task (default 1000 ms; also the notification throttle). */
  taskPollMs?: number;
  /** `wait_for_task`: longest gap between progress notifications (default 10 000 ms). */
  taskHeartbeatMs?: number;
}

export interface ToolContext {
  client: MlflowClient;
  runs: McpRunRegistry;
  settings: McpSettings;
  logger: Logger;
  /** The task queue; the task tools are registered only when there is one. */
  tasks?: TaskQueueApi;
  /** The review store; the review tools are registered only when there is one. */
  reviews?: ReviewStoreApi;
  /** Identifies the MCP session (stdio connection or HTTP session) the call belongs to. */
  sessionKey: string;
}
