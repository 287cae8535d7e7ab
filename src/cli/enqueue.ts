/**
 * `runwarden enqueue <template|spec.yaml>` and `runwarden status`. Enqueue validates everything
 * before queueing (unknown template, parameter out of bounds, unreadable input: exit 2 or 1 with
 * the field named); `--wait` shows progress until the task ends and exits 0 only if it completed.
 * Every command here first waits for Redis, bounded (5 s): without it they fail with exit 1 and
 * a message naming REDIS_URL and how to start Redis; Redis lost under `--wait` is said the same
 * way, with how to follow the task, which goes on. `--sweep` is enqueue-sweep.ts.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config.js';
import { RunwardenError } from '../errors/index.js';
import { createLogger } from '../log.js';
import { mlflowClientFromConfig } from '../mlflow/client.js';
import { taskQueueFromConfig } from '../queue/from-config.js';
import { REDIS_CONNECT_TIMEOUT_MS, redisUnreachable, waitForRedis } from '../queue/redis-reach.js';
import { isTerminal, type TaskInfo, type TaskQueue } from '../queue/task-queue.js';
import { reviewStoreFromConfig } from '../review/from-config.js';
import { formatReviewSummary, reviewSummary } from '../review/status.js';
import { runEnqueueSweep } from './enqueue-sweep.js';
import { UsageError } from './usage.js';

const HELP = `Usage: runwarden enqueue <template | spec.yaml> [options]
       runwarden enqueue --sweep <sweep.yaml | sweep.json> [--dry-run] [--wait] [--json]

  --param k=v        template parameter (repeatable)
  --input name=uri   input URI (repeatable): file:// under RUNWARDEN_INPUT_ROOTS, runs:/<run>/<path>,
                     mlflow-artifacts:/..., http(s):// from a host in RUNWARDEN_HTTP_INPUT_HOSTS
  --experiment NAME  MLflow experiment (default tasks/<template>)
  --run-name NAME    MLflow run name
  --priority N       1 (highest) to 1000
  --timeout SECONDS  wall-clock limit of one attempt
  --attempts N       attempts allowed (retries only if the template says failures are transient)
  --force            enqueue even if the same spec is already queued or done
  --wait             show progress until the task ends; exit 0 only if it completed
  --json             print the task as JSON
  --sweep FILE       enqueue a sweep: a template with grid, list or random (seeded) parameter sets,
                     max_concurrency, select {metric, direction}; see docs/tasks.md "Sweeps"
  --dry-run          with --sweep: print the children's parameter sets and task ids, enqueue nothing

The same template, parameters and inputs give the same task id: enqueueing again returns it.
`;

function pairs(flag: string, list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} ${item}: expected name=value`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export async function buildSpec(
  target: string,
  v: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const base: Record<string, unknown> = /\.(ya?ml|json)$/.test(target)
    ? ((parseYaml(await readFile(target, 'utf8')) as Record<string, unknown>) ?? {})
    : { template: target };
  const params = {
    ...(base.params as Record<string, unknown> | undefined),
    ...pairs('--param', v.param as string[]),
  };
  const inputs = {
    ...(base.inputs as Record<string, unknown> | undefined),
    ...pairs('--input', v.input as string[]),
  };
  const num = (flag: string, x: unknown) => {
    if (x === undefined) return undefined;
    const n = Number(x);
    if (!Number.isInteger(n)) throw new UsageError(`${flag}: expected a whole number, got ${String(x)}`);
    return n;
  };
  return {
    ...base,
    params,
    inputs,
    ...(v.experiment ? { experiment: v.experiment } : {}),
    ...(v['run-name'] ? { run_name: v['run-name'] } : {}),
    ...(v.priority !== undefined ? { priority: num('--priority', v.priority) } : {}),
    ...(v.timeout !== undefined ? { timeout_seconds: num('--timeout', v.timeout) } : {}),
    ...(v.attempts !== undefined ? { attempts: num('--attempts', v.attempts) } : {}),
    ...(v.force ? { force: true } : {}),
  };
}

function bar(fraction: number, width = 24): string {
  const n = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(fraction * 100).toFixed(0).padStart(3)}%`;
}

/** The task queue once Redis answers (within 5 s): no Redis is an error naming REDIS_URL, not a hang. */
export async function openQueue(cfg: Config): Promise<TaskQueue> {
  const queue = taskQueueFromConfig(cfg, mlflowClientFromConfig(cfg, createLogger(cfg.logLevel)));
  try {
    await waitForRedis(queue.redis, cfg.redisUrl);
    return queue;
  } catch (err) {
    // Nothing was sent: drop the connection (BullMQ's close would wait on a Redis that is not there).
    queue.redis.disconnect();
    throw err;
  }
}

/** `p`, or a rejection after `ms`. */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Poll until the task ends, drawing a progress line on stderr. Redis that stops answering for
 * 5 s ends the wait with a REDIS_UNREACHABLE error saying the task goes on and how to follow it.
 */
export async function waitAndShow(queue: TaskQueue, taskId: string, redisUrl: string): Promise<TaskInfo> {
  const tty = process.stderr.isTTY;
  let last = '';
  let failingSince: number | undefined;
  for (;;) {
    let info: TaskInfo | undefined;
    try {
      info = await bounded(queue.get(taskId), REDIS_CONNECT_TIMEOUT_MS);
      failingSince = undefined;
    } catch (err) {
      if (err instanceof RunwardenError) throw err;
      failingSince ??= Date.now();
      if (Date.now() - failingSince >= REDIS_CONNECT_TIMEOUT_MS) {
        if (tty) process.stderr.write('\n');
        throw redisUnreachable(
          redisUrl,
          (err as Error).message,
          `Lost Redis while waiting: task ${taskId} goes on (a worker holds it, or it waits in the queue). ` +
            `Follow it with \`runwarden status\` once Redis is back, or enqueue the same spec again (it answers with task ${taskId}). `,
        );
      }
      await new Promise((r) => setTimeout(r, 1_000));
      continue;
    }
    if (!info) throw new Error(`task ${taskId} disappeared`);
    const line =
      `${info.task_id} ${info.state.padEnd(9)} ${bar(info.progress?.fraction ?? 0)} ${info.progress?.message ?? ''}`.slice(
        0,
        160,
      );
    if (line !== last) {
      process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    if (isTerminal(info.state)) {
      if (tty) process.stderr.write('\n');
      return info;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

export async function runEnqueue(argv: string[], config: () => Config): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        param: { type: 'string', multiple: true },
        input: { type: 'string', multiple: true },
        experiment: { type: 'string' },
        'run-name': { type: 'string' },
        priority: { type: 'string' },
        timeout: { type: 'string' },
        attempts: { type: 'string' },
        force: { type: 'boolean' },
        wait: { type: 'boolean' },
        json: { type: 'boolean' },
        sweep: { type: 'string' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (v.sweep !== undefined) return runEnqueueSweep(v, positionals, config);
  if (v['dry-run']) throw new UsageError('--dry-run goes with --sweep (a single task has no dry run)');
  if (positionals.length !== 1)
    throw new UsageError('give one template name or spec file (see runwarden enqueue --help)');
  const spec = await buildSpec(positionals[0]!, v);
  const cfg = config();
  const queue = await openQueue(cfg);
  try {
    const { task, existing, info } = await queue.enqueue(spec);
    if (v.json && !v.wait) process.stdout.write(`${JSON.stringify({ ...info, existing }, null, 2)}\n`);
    else
      process.stdout.write(
        `${existing ? 'existing' : 'enqueued'} ${task.taskId} (${info.state}) template ${task.template}\n`,
      );
    if (!v.wait) return 0;
    const end = await waitAndShow(queue, task.taskId, cfg.redisUrl);
    const run = end.runs.at(-1);
    process.stdout.write(
      v.json
        ? `${JSON.stringify(end, null, 2)}\n`
        : `${end.task_id} ${end.state}${end.reason ? `: ${end.reason.split('\n')[0]}` : ''}${run ? `\nrun: ${run.url}` : ''}\n`,
    );
    return end.state === 'completed' ? 0 : 1;
  } finally {
    await queue.close();
  }
}

export async function runStatus(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'Usage: runwarden status [--json]\n\nQueue counts, the active tasks, and pending reviews (count and the oldest few).\n',
    );
    return 0;
  }
  const cfg = config();
  const queue = await openQueue(cfg);
  try {
    const counts = await queue.counts();
    const active = await queue.list({ states: ['active'], limit: 100 });
    // Pending reviews: the count and the oldest few (src/review/status.ts).
    const store = reviewStoreFromConfig(cfg, mlflowClientFromConfig(cfg));
    const reviews = await reviewSummary(store).finally(() => store.close());
    if (argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify({ counts, active, reviews }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(
      `${Object.entries(counts)
        .map(([k, n]) => `${k} ${n}`)
        .join('  ')}\n`,
    );
    if (!active.length) process.stdout.write('no active tasks\n');
    for (const t of active) {
      const elapsed = t.started_at ? `${Math.round((Date.now() - t.started_at) / 1000)}s` : '-';
      process.stdout.write(
        `${t.task_id}  ${t.template.padEnd(20)} ${bar(t.progress?.fraction ?? 0, 12)} ${elapsed.padStart(6)}  ${t.runs.at(-1)?.url ?? ''}\n`,
      );
    }
    process.stdout.write(formatReviewSummary(reviews));
    return 0;
  } finally {
    await queue.close();
  }
}

export async function runCancel(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length < 1) {
    process.stdout.write(
      'Usage: runwarden cancel <task_id> [reason]\n\nCancel a task from any machine: a waiting task never starts; a running one is killed and its run ends KILLED.\nA sweep id cancels every child of the sweep and ends its parent run KILLED.\n',
    );
    return argv.length ? 0 : 2;
  }
  const [taskId, ...why] = argv;
  const cfg = config();
  const queue = await openQueue(cfg);
  try {
    const { previous, info } = await queue.cancel(
      taskId!,
      why.join(' ') || 'requested from the command line',
    );
    process.stdout.write(
      `${taskId}: ${previous} → ${info.state}${previous === 'active' ? ' (the worker holding it is killing it)' : ''}\n`,
    );
    return 0;
  } finally {
    await queue.close();
  }
}
