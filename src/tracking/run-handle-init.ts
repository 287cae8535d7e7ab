/**
 * What a run handle (run-handle.ts) is made from: the run MLflow created or adoption found (ids,
 * name, artifact location, description, params already on it), the lease and its owner, and the
 * bounds of its metric buffer and of ending. startRun and adoptRun (start-run.ts) build it.
 */
import type { MlflowClient } from '../mlflow/client.js';
import type { OpenRunTracker } from './open-runs.js';

export interface RunHandleInit {
  client: MlflowClient;
  runId: string;
  experimentId: string;
  runName: string;
  artifactUri: string;
  description?: string;
  leaseMs: number;
  heartbeatMs: number;
  flushIntervalMs: number;
  /** Params already on the run (so same-value re-logging is a no-op). */
  params?: Record<string, string>;
  /** The open-run registry tracking this handle; told when the run ended or was detached. */
  registry?: OpenRunTracker;
  /** The `runwarden.owner` this handle holds the run as; another owner on the run means it was taken over. */
  owner?: string;
  /** Most metric points held in memory; `logMetric` waits when full (default 100,000). */
  maxBufferedPoints?: number;
  /** Most estimated bytes of metric points held in memory (default 32 MiB). */
  maxBufferedBytes?: number;
  /** How long `end()` keeps retrying to store buffered points before ending FAILED (default 3 min). */
  endFlushTimeoutMs?: number;
}
