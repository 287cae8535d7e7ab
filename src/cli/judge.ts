/**
 * `runwarden judge`: the policy judge as its own process. A BullMQ worker on the `reviews` queue
 * decides pending policy items (MLflow MetricThreshold gates from the template's `review.policy`)
 * and applies the decision (approve: register, alias, history; reject: tags and notes on the run);
 * a reconcile pass at start and every RUNWARDEN_REVIEW_RECONCILE_MS creates items a worker's
 * completion hook missed and finishes decisions a crashed judge left half-applied. Stops on
 * SIGINT/SIGTERM in bounded time (RUNWARDEN_SHUTDOWN_GRACE_MS for a decision under way).
 */
import type { Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { mlflowClientFromConfig } from '../mlflow/client.js';
import { taskQueueFromConfig } from '../queue/from-config.js';
import { waitForRedis } from '../queue/redis-reach.js';
import { reviewStoreFromConfig } from '../review/from-config.js';
import { startJudge } from '../review/judge-worker.js';
import { waitForSignal } from './mcp.js';
import { UsageError } from './usage.js';

const HELP = `Usage: runwarden judge

Runs the policy judge: decides review items of templates whose review mode is policy (the
template's review.policy gates, with MLflow's MetricThreshold semantics, against the current
champion), promotes approved runs (model version, alias, previous-<alias>, promotion history in
the registry) and notes rejections on the run. Also creates review items a worker missed and
finishes decisions a crashed judge left half-applied (every RUNWARDEN_REVIEW_RECONCILE_MS).
Stops on SIGINT/SIGTERM.
`;

/** Start the judge's parts from the environment; `close` stops them all. */
export async function judgeFromConfig(cfg: Config, logger: Logger) {
  const client = mlflowClientFromConfig(cfg, logger);
  const tasks = taskQueueFromConfig(cfg, client);
  const store = reviewStoreFromConfig(cfg, client, tasks, { logger, redisRetryMs: cfg.review.redisRetryMs });
  try {
    await waitForRedis(tasks.redis, cfg.redisUrl);
    const judge = await startJudge({
      store,
      tasks,
      redisUrl: cfg.redisUrl,
      prefix: cfg.queue.prefix,
      logger,
      reconcileMs: cfg.review.reconcileMs,
      graceMs: cfg.queue.shutdownGraceMs,
    });
    return {
      judge,
      close: async () => {
        await judge.close();
        await store.close();
        await tasks.close();
      },
    };
  } catch (err) {
    await store.close();
    await tasks.close();
    throw err;
  }
}

export async function runJudgeCommand(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv.length)
    throw new UsageError(`unexpected arguments: ${argv.join(' ')} (see runwarden judge --help)`);
  const cfg = config();
  const logger = createLogger(cfg.logLevel);
  const running = await judgeFromConfig(cfg, logger);
  process.stderr.write('runwarden judge: waiting for reviews\n');
  await waitForSignal(async () => {
    process.stderr.write('runwarden judge: stopping\n');
    await running.close();
  });
  return 0;
}
