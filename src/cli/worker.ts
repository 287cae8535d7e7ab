/**
 * `runwarden worker`: run task attempts from the queue until SIGINT/SIGTERM, then shut down in
 * bounded time (running tasks get RUNWARDEN_SHUTDOWN_GRACE_MS, then are cancelled: runs KILLED,
 * jobs back to the queue).
 */
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import { mlflowClientFromConfig } from '../mlflow/client.js';
import { workerFromConfig } from '../queue/from-config.js';
import { startLoggedReaperLoop } from '../tracking/reaper.js';
import { waitForSignal } from './mcp.js';
import { UsageError } from './usage.js';

const HELP = `Usage: runwarden worker

Runs training tasks from the Redis queue (REDIS_URL), each inside an MLflow run that ends FINISHED,
FAILED or KILLED. RUNWARDEN_WORKER_CONCURRENCY tasks at a time. Stops on SIGINT/SIGTERM: running
tasks get RUNWARDEN_SHUTDOWN_GRACE_MS, then are cancelled (runs KILLED, tasks back to the queue).
`;

export async function runWorkerCommand(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv.length)
    throw new UsageError(`unexpected arguments: ${argv.join(' ')} (see runwarden worker --help)`);
  const cfg = config();
  const logger = createLogger(cfg.logLevel);
  const client = mlflowClientFromConfig(cfg, logger);
  const worker = await workerFromConfig(cfg, client, logger);
  // Workers reap every expired runwarden lease, whoever opened the run (lost workers, MCP clients
  // that went away, library scripts killed with -9); 0 turns the loop off.
  const stopReaper = startLoggedReaperLoop(client, {
    intervalMs: cfg.mcp.reapIntervalMs,
    experimentIds: cfg.mcp.reapExperimentIds,
    logger,
  });
  logger.info({ concurrency: cfg.queue.concurrency, tasks: cfg.queue.tasksDir }, 'runwarden worker ready');
  process.stderr.write(`runwarden worker: waiting for tasks (concurrency ${cfg.queue.concurrency})\n`);
  await waitForSignal(async () => {
    process.stderr.write('runwarden worker: stopping\n');
    stopReaper();
    await worker.close();
  });
  return 0;
}
