/**
 * Building the task system's parts from the parsed environment, so the CLI, the MCP server and
 * tests wire them the same way.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { AttemptSettings } from './attempt.js';
import { TaskQueue } from './task-queue.js';
import { startWorker } from './worker.js';

export function taskQueueFromConfig(cfg: Config, client: MlflowClient): TaskQueue {
  return new TaskQueue({
    redisUrl: cfg.redisUrl,
    prefix: cfg.queue.prefix,
    tasksDir: cfg.queue.tasksDir,
    client,
    inputs: cfg.inputs,
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
  };
}

export function workerFromConfig(cfg: Config, client: MlflowClient, logger: Logger) {
  return startWorker({
    redisUrl: cfg.redisUrl,
    prefix: cfg.queue.prefix,
    concurrency: cfg.queue.concurrency,
    shutdownGraceMs: cfg.queue.shutdownGraceMs,
    lockMs: cfg.queue.lockMs,
    settings: attemptSettings(cfg),
    client,
    logger,
  });
}
