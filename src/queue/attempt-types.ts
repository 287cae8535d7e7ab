/**
 * The shapes an attempt is run with and reports through (src/queue/attempt.ts runs it): the
 * worker's settings for every attempt, the per-attempt context (abort signal, queue-lock checks,
 * callbacks), the events forwarded to the caller while the command runs, and the outcome.
 */
import type { InputPolicy } from '../runners/input-policy.js';
import type { TerminalStatus } from '../tracking/tags.js';

export interface AttemptSettings {
  tasksDir: string;
  workDir: string;
  cacheDir: string;
  killGraceMs: number;
  keepWorkspaces: boolean;
  owner: string;
  leaseMs: number;
  /** Lease renewal interval of the attempt's run (must be shorter than leaseMs). */
  heartbeatMs?: number;
  /** Longest time a protocol metric waits before it is sent. */
  flushIntervalMs?: number;
  /** Bound of the run's metric buffer (points, estimated bytes); the script's stdout pauses while full. */
  maxBufferedPoints?: number;
  maxBufferedBytes?: number;
  /** How long ending the run (and storing a protocol line) retries through an MLflow outage. */
  endFlushTimeoutMs?: number;
  trackingUri: string;
  /** Bound of one Python environment build (default 20 min), apart from the task's timeout. */
  envBuildTimeoutMs?: number;
  /** Extra environment for the command (MLflow credentials). */
  env: Record<string, string | undefined>;
  /**
   * Prediction tasks: most rows and bytes of their data (src/queue/predict-attempt.ts), and the
   * model folder's byte cap and onnxruntime threads (RUNWARDEN_EVAL_MAX_MODEL_BYTES, _THREADS).
   */
  predict?: {
    maxRows?: number;
    maxBytes?: number;
    chunkRows?: number;
    maxModelBytes?: number;
    threads?: number;
  };
  /** The input boundary, applied again when inputs are brought in. */
  inputs: InputPolicy & {
    /** Keep the inputs' copies in workspace.zip (default: only the inputs.json manifest). */
    zipInputs?: boolean;
  };
}

export type TaskEvent =
  | { type: 'progress'; fraction: number; message?: string; phase?: string; runId?: string }
  | { type: 'metric'; key: string; value: number; step: number }
  | { type: 'log'; stream: 'stdout' | 'stderr'; line: string };

export interface AttemptContext {
  attempt: number;
  jobId: string;
  /** Fires on cancellation, shutdown or a lost queue lock; `signal.reason` says which. */
  signal: AbortSignal;
  /**
   * Asked before the run ends FINISHED: true while the worker still holds the task's queue lock.
   * When it says false the run ends KILLED instead, and the task's other attempt decides.
   */
  confirmLock?: () => Promise<boolean>;
  /** Why the lock counts as lost, once it does (for the run's close reason). */
  lockLostWhy?: () => string | undefined;
  onRunStarted: (experimentId: string, runId: string) => Promise<void>;
  onEvent: (e: TaskEvent) => void;
}

export interface AttemptOutcome {
  status: TerminalStatus;
  /**
   * `completed` (this attempt's run, or an earlier attempt's FINISHED run: `runId` says which),
   * `failed`, `timeout`, `cancelled`, `shutdown`, `lock-lost` (the worker lost the task's queue
   * lock: the run ended KILLED, or FAILED if the next attempt closed it as superseded first, and
   * the task belongs to whoever holds the lock now).
   */
  kind: 'completed' | 'failed' | 'timeout' | 'cancelled' | 'shutdown' | 'lock-lost';
  runId: string;
  experimentId: string;
  exitCode: number | null;
  reason: string;
  metrics: Record<string, number>;
}
