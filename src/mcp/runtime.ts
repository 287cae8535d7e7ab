/**
 * What one runwarden MCP process shares across its sessions: the MLflow client, the registry of
 * runs started through MCP, the task queue (connected to Redis on first use), settings, prompts
 * and the reaper loop. `shutdown()` ends every open MCP run KILLED, stops the loop and closes the
 * task queue.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { type MlflowClient, mlflowClientFromConfig } from '../mlflow/client.js';
import { taskQueueFromConfig } from '../queue/from-config.js';
import { closeAllOpenRuns } from '../tracking/open-runs.js';
import { startReaperLoop } from '../tracking/reaper.js';
import type { McpSettings } from './context.js';
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
  prompts: PromptTemplate[];
  version: string;
  /** End all open MCP runs KILLED (bounded), stop the reaper, close the task queue. */
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
    owner: `mcp:${config.tracking.owner}`,
  };
  const runs = new McpRunRegistry(client, settings.leaseSeconds * 1000);
  const tasks = new LazyTaskQueue({
    create: () => taskQueueFromConfig(config, client),
    redisUrl: config.redisUrl,
    prefix: config.queue.prefix,
    tasksDir: config.queue.tasksDir,
    logger,
  });
  const stopReaper =
    opts.reaper !== false && config.mcp.reapIntervalMs > 0 && !settings.readOnly
      ? startReaperLoop(client, {
          intervalMs: config.mcp.reapIntervalMs,
          ownerPrefix: 'mcp:',
          onResult: (r) => {
            if (r.closed.length) logger.info({ closed: r.closed }, 'reaper closed runs with expired leases');
          },
          onError: (err) => logger.warn({ err: (err as Error).message }, 'reaper sweep failed'),
        })
      : () => undefined;
  return {
    client,
    runs,
    settings,
    logger,
    tasks,
    prompts: loadPrompts(`${packageRoot}prompts`),
    version: packageVersion(),
    async shutdown(reason) {
      stopReaper();
      const r = await closeAllOpenRuns({
        reason,
        closedBy: 'mcp-server',
        timeoutMs: config.tracking.shutdownTimeoutMs,
      });
      if (r.closed || r.failed) logger.info(r, 'ended open runs on shutdown');
      await tasks.close();
    },
  };
}
