/**
 * Building the review store from the parsed environment, so the worker's completion hook, the
 * judge, the MCP server and the CLI wire it the same way.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { ReviewStore } from './store.js';

export function reviewStoreFromConfig(
  cfg: Config,
  client: MlflowClient,
  tasks?: TaskQueue,
  opts: { logger?: Logger; redisRetryMs?: number } = {},
): ReviewStore {
  return new ReviewStore({
    redisUrl: cfg.redisUrl,
    prefix: cfg.queue.prefix,
    client,
    tasksDir: cfg.queue.tasksDir,
    tasks,
    logger: opts.logger,
    redisRetryMs: opts.redisRetryMs,
    applyLockMs: cfg.review.applyLockMs,
    eval: { ...cfg.eval, inputs: cfg.inputs },
  });
}
