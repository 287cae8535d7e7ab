/**
 * Building the task system's parts from the parsed environment, so the CLI, the MCP server and
 * tests wire them the same way. A worker built here creates a review item for each task it
 * completes whose review mode is policy or agent (the `onCompleted` hook; the judge's reconcile
 * pass covers a hook that failed).
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import { reviewStoreFromConfig } from '../review/from-config.js';
import type { AttemptSettings } from './attempt.js';
import { TaskQueue } from './task-queue.js';
import { type CompletedTask, type RunningWorker, startWorker } from './worker.js';

export function taskQueueFromConfig(cfg: Config, client: MlflowClient): TaskQueue {
  return new TaskQueue({
    redisUrl: cfg.redisUrl,
    prefix: cfg.queue.prefix,
    tasksDir: cfg.queue.tasksDir,
    client,
    inputs: cfg.inputs,
    maxSweepChildren: cfg.queue.sweepMaxChildren,
    predictMaxRows: cfg.queue.predictMaxRows,
  });
}

export function attemptSettings(cfg: Config): AttemptSettings {
  return {
    tasksDir: cfg.queue.tasksDir,
    workDir: cfg.queue.workDir,
    cacheDir: cfg.queue.cacheDir,
    killGraceMs: cfg.queue.killGraceMs,
    keepWorkspaces: cfg.queue.keepWorkspaces,
    envBuildTimeoutMs: cfg.queue.envBuildTimeoutMs,
    owner: `worker:${cfg.tracking.owner}`,
    leaseMs: cfg.tracking.leaseMs,
    heartbeatMs: cfg.tracking.heartbeatMs,
    flushIntervalMs: cfg.tracking.flushIntervalMs,
    maxBufferedPoints: cfg.tracking.maxBufferedPoints,
    maxBufferedBytes: cfg.tracking.maxBufferedBytes,
    endFlushTimeoutMs: cfg.tracking.endFlushTimeoutMs,
    trackingUri: cfg.mlflow.trackingUri,
    env: {
      MLFLOW_TRACKING_TOKEN: cfg.mlflow.token,
      MLFLOW_TRACKING_USERNAME: cfg.mlflow.username,
      MLFLOW_TRACKING_PASSWORD: cfg.mlflow.password,
    },
    inputs: cfg.inputs,
    predict: {
      maxRows: cfg.queue.predictMaxRows,
      maxBytes: cfg.queue.predictMaxBytes,
      maxModelBytes: cfg.eval.maxModelBytes,
      threads: cfg.eval.threads,
    },
  };
}

export async function workerFromConfig(
  cfg: Config,
  client: MlflowClient,
  logger: Logger,
): Promise<RunningWorker> {
  // The hook's Redis calls retry through a blip for RUNWARDEN_REVIEW_REDIS_RETRY_MS; past that the
  // worker logs the failure and the judge's reconcile pass creates the item.
  const reviews = reviewStoreFromConfig(cfg, client, undefined, {
    logger,
    redisRetryMs: cfg.review.redisRetryMs,
  });
  const onCompleted = async (done: CompletedTask) => {
    const mode = done.task.review;
    if (mode !== 'policy' && mode !== 'agent') return;
    await reviews.create({
      taskId: done.task.taskId,
      runId: done.runId,
      experimentId: done.experimentId,
      template: done.task.template,
      mode,
      sweepId: done.sweepId,
    });
  };
  const worker = await startWorker({
    redisUrl: cfg.redisUrl,
    prefix: cfg.queue.prefix,
    concurrency: cfg.queue.concurrency,
    shutdownGraceMs: cfg.queue.shutdownGraceMs,
    lockMs: cfg.queue.lockMs,
    settings: attemptSettings(cfg),
    client,
    logger,
    onCompleted,
  }).catch(async (err: unknown) => {
    await reviews.close();
    throw err;
  });
  return {
    ...worker,
    close: async () => {
      await worker.close();
      await reviews.close();
    },
  };
}
