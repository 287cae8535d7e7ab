/**
 * What one runwarden MCP process shares across its sessions: the MLflow client, the registry of
 * runs started through MCP (with this runtime's own open-run registry and unique owner id), the
 * task queue and the review store (each connected to Redis on first use), settings, prompts and
 * the reaper loop, which sweeps expired leases of every owner. `shutdown()` ends KILLED the open
 * runs this runtime owns (re-read first; never another server's), stops the loop and closes the
 * task queue and the review store.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { type MlflowClient, mlflowClientFromConfig } from '../mlflow/client.js';
import { taskQueueFromConfig } from '../queue/from-config.js';
import { reviewStoreFromConfig } from '../review/index.js';
import { OpenRunRegistry, uniqueOwnerId } from '../tracking/open-runs.js';
import { startLoggedReaperLoop } from '../tracking/reaper.js';
import type { McpSettings } from './context.js';
import { LazyReviewStore } from './lazy-reviews.js';
import { loadPrompts, type PromptTemplate } from './prompts.js';
import { McpRunRegistry } from './runs.js';
import { LazyTaskQueue } from './task-events.js';

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export function packageVersion(): string {
  return (JSON.parse(readFileSync(`${packageRoot}package.json`, 'utf8')) as { version: string }).version;
}

export interface McpRuntime {
  client: MlflowClient;
  runs: McpRunRegistry;
  settings: McpSettings;
  logger: Logger;
  /** The task queue and live task events; connects to Redis only when first used. */
  tasks: LazyTaskQueue;
  /** The review store (agent judge tools); connects to Redis only when first used. */
  reviews: LazyReviewStore;
  prompts: PromptTemplate[];
  version: string;
  /** Where the task and review queues live (read by /metrics and the queue dashboard). */
  queues: { redisUrl: string; prefix: string };
  /** Runs the stack's reaper closed while this runtime ran (`up` counts its own loop here too). */
  reaped: { runs: number };
  /** End the open runs this runtime owns KILLED (bounded), stop the reaper, close the queue and store. */
  shutdown(reason: string): Promise<void>;
}

export function createRuntime(config: Config, logger: Logger, opts: { reaper?: boolean } = {}): McpRuntime {
  const client = mlflowClientFromConfig(config, logger);
  const settings: McpSettings = {
    readOnly: config.mcp.readOnly,
    allowedRoots: config.mcp.allowedRoots,
    maxInlineArtifactBytes: config.mcp.maxInlineArtifactBytes,
    readArtifactMaxBytes: config.mcp.readArtifactMaxBytes,
    leaseSeconds: config.mcp.leaseSeconds,
    // Unique per runtime even when RUNWARDEN_OWNER is shared: what it may close on shutdown.
    owner: uniqueOwnerId('mcp', config.tracking.owner),
  };
  const runs = new McpRunRegistry(client, settings.leaseSeconds * 1000, {
    owner: settings.owner,
    openRuns: new OpenRunRegistry(),
  });
  const tasks = new LazyTaskQueue({
    create: () => taskQueueFromConfig(config, client),
    redisUrl: config.redisUrl,
    prefix: config.queue.prefix,
    tasksDir: config.queue.tasksDir,
    logger,
  });
  const reviews = new LazyReviewStore({
    create: () => {
      const queue = taskQueueFromConfig(config, client);
      queue.queue.on('error', (err) => logger.debug({ err: err.message }, 'review task queue error'));
      return { store: reviewStoreFromConfig(config, client, queue, { logger }), tasks: queue };
    },
    redisUrl: config.redisUrl,
    logger,
  });
  const reaped = { runs: 0 };
  // Every owner's expired leases (MCP, workers, library scripts), not only this kind's.
  const stopReaper =
    opts.reaper !== false && !settings.readOnly
      ? startLoggedReaperLoop(client, {
          intervalMs: config.mcp.reapIntervalMs,
          experimentIds: config.mcp.reapExperimentIds,
          logger,
          onClosed: (ids) => {
            reaped.runs += ids.length;
            runs.forgetClosed(ids);
          },
        })
      : () => undefined;
  return {
    client,
    runs,
    settings,
    logger,
    tasks,
    reviews,
    prompts: loadPrompts(`${packageRoot}prompts`),
    version: packageVersion(),
    queues: { redisUrl: config.redisUrl, prefix: config.queue.prefix },
    reaped,
    async shutdown(reason) {
      stopReaper();
      const r = await runs.shutdown(reason, config.tracking.shutdownTimeoutMs);
      if (r.closed || r.failed || r.released)
        logger.info(r, 'ended the open runs this server owns on shutdown');
      await Promise.all([tasks.close(), reviews.close()]);
    },
  };
}
