/**
 * Enqueueing a sweep as one BullMQ flow: a parent job (name `sweep`, on the tasks queue, job id =
 * the sweep id) over one child job per parameter set. Each child has `ignoreDependencyOnFailure`,
 * so a failed child never hangs the parent: the parent runs once nothing is pending and reads the
 * failures with `getIgnoredChildrenFailures()`. The parent MLflow run is created first, so every
 * child's run nests under it. `dryRun` plans only: the children's parameter sets and task ids,
 * with nothing queued and nothing created in MLflow. The same spec again returns the existing sweep
 * (`existing: true`) unless `force`; a concurrent enqueue of the same spec waits for the first.
 */
import { FlowProducer, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RunwardenError } from '../errors/index.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { experimentIdFor } from '../queue/experiment-ids.js';
import { type Keys, QUEUE_NAME, RECORD_TTL_SECONDS } from '../queue/keys.js';
import type { SweepRecord, TaskRecords } from '../queue/records.js';
import { templateDefaultInputs } from '../queue/spec.js';
import { loadTemplate } from '../queue/templates.js';
import type { InputPolicy } from '../runners/input-policy.js';
import { checkInputs } from '../runners/inputs.js';
import { truncate } from '../tracking/batching.js';
import { sweepFinalKey } from './final.js';
import { closeParentRun, openParentRun } from './parent-run.js';
import { planSweep, type SweepPlan } from './plan.js';

/** The name of a sweep's parent job on the tasks queue. */
export const SWEEP_JOB_NAME = 'sweep';

/** What a sweep's parent job carries beside its task (the sweep as a task). */
export interface SweepJobData {
  parentRunId: string;
  experimentId: string;
  childCount: number;
  select: { metric: string; direction: 'min' | 'max' };
  review: 'none' | 'agent' | 'policy';
}

export interface SweepChildPlan {
  index: number;
  task_id: string;
  params: Record<string, string | number | boolean>;
  /** Only the swept names and their values. */
  swept: Record<string, string | number | boolean>;
}

export interface SweepEnqueueResult {
  sweep_id: string;
  dry_run: boolean;
  existing: boolean;
  template: string;
  experiment: string;
  kind: 'grid' | 'list' | 'random';
  max_concurrency: number;
  select: { metric: string; direction: 'min' | 'max' };
  review: 'none' | 'agent' | 'policy';
  children: SweepChildPlan[];
  parent_run_id?: string;
}

export interface SweepQueueParts {
  queue: Queue<{ task: NormalizedTask; sweep?: SweepJobData }>;
  redis: Redis;
  records: TaskRecords;
  keys: Keys;
  client: MlflowClient;
  tasksDir: string;
  inputs: InputPolicy;
  maxChildren: number;
  flows: () => FlowProducer;
}

const JOB_RETENTION = {
  removeOnComplete: { age: 7 * 86_400, count: 1_000 },
  removeOnFail: { age: 30 * 86_400 },
};

function describe(
  plan: SweepPlan,
  dryRun: boolean,
  existing: boolean,
  parentRunId?: string,
): SweepEnqueueResult {
  return {
    sweep_id: plan.sweepId,
    dry_run: dryRun,
    existing,
    template: plan.parent.template,
    experiment: plan.parent.experiment,
    kind: plan.space.kind,
    max_concurrency: plan.maxConcurrency,
    select: plan.select,
    review: plan.review,
    children: plan.children.map((c, i) => ({
      index: i,
      task_id: c.taskId,
      params: c.params,
      swept: plan.swept[i]!,
    })),
    parent_run_id: parentRunId,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function enqueueSweep(
  q: SweepQueueParts,
  raw: unknown,
  opts: { dryRun?: boolean } = {},
): Promise<SweepEnqueueResult> {
  const name = (raw as { template?: unknown })?.template;
  const template = loadTemplate(q.tasksDir, typeof name === 'string' ? name : '');
  const plan = planSweep(raw, template, q.maxChildren);
  // A sweep that ended cancelled or failed is no answer to enqueueing it again: it is replaced by
  // a fresh one (below); one waiting, running or completed is returned as it is.
  const ended = async () => {
    const rec = await q.records.get(plan.sweepId);
    return rec?.finalState === 'cancelled' || rec?.finalState === 'failed';
  };
  const existingSweep = async () => {
    const job = await q.queue.getJob(plan.sweepId);
    if (!job?.data.sweep || (await ended())) return undefined;
    return describe(plan, false, true, job.data.sweep.parentRunId);
  };
  if (opts.dryRun) {
    await checkInputs(q.client, plan.children[0]!.inputs, q.inputs, templateDefaultInputs(template));
    return describe(plan, true, false);
  }
  const prior = await existingSweep();
  if (prior) return prior;
  await checkInputs(q.client, plan.children[0]!.inputs, q.inputs, templateDefaultInputs(template));

  // One enqueue of a sweep at a time: a second caller waits for the first one's flow.
  const lock = `${q.keys.bullPrefix}:sweep-enqueue:${plan.sweepId}`;
  if ((await q.redis.set(lock, '1', 'PX', 120_000, 'NX')) !== 'OK') {
    for (let waited = 0; waited < 120_000; waited += 500) {
      await sleep(500);
      const other = await existingSweep();
      if (other) return other;
      if (!(await q.redis.exists(lock))) break;
    }
    throw new RunwardenError(
      'REDIS_UNREACHABLE',
      `sweep ${plan.sweepId} is being enqueued by another caller that did not finish; enqueue it again`,
    );
  }
  try {
    const old = await q.queue.getJob(plan.sweepId);
    if (old && (await ended())) {
      try {
        await old.remove({ removeChildren: true });
      } catch (err) {
        throw new RunwardenError(
          'VALIDATION_ERROR',
          `sweep ${plan.sweepId} ended cancelled or failed but a child is still stopping (${truncate((err as Error).message, 200)}); enqueue it again in a few seconds, or set force: true`,
        );
      }
    }
    const experimentId = await experimentIdFor(q.client, plan.parent.experiment);
    const parentRunId = await openParentRun(q.client, experimentId, plan);
    try {
      return await enqueueFlow(q, plan, experimentId, parentRunId);
    } catch (err) {
      // Nothing queued closes the parent run (it holds no lease): close it FAILED now, unless the
      // flow did reach Redis (only its reply was lost), where the parent job will close it.
      const queued = await Promise.race([
        q.queue.getJob(plan.sweepId).then(
          (j) => Boolean(j),
          () => false,
        ),
        sleep(5_000).then(() => false),
      ]);
      if (!queued)
        await closeParentRun(
          q.client,
          parentRunId,
          'FAILED',
          `enqueueing the sweep failed: ${truncate((err as Error).message, 500)}; enqueue it again`,
          'sweep-enqueue',
        ).catch(() => undefined);
      throw err;
    }
  } finally {
    await q.redis.del(lock).catch(() => undefined);
  }
}

async function enqueueFlow(
  q: SweepQueueParts,
  plan: SweepPlan,
  experimentId: string,
  parentRunId: string,
): Promise<SweepEnqueueResult> {
  {
    const children = plan.children.map((c) => ({ ...c, sweep: { ...c.sweep!, parentRunId } }));
    const sweep: SweepJobData = {
      parentRunId,
      experimentId,
      childCount: children.length,
      select: plan.select,
      review: plan.review,
    };
    const record: SweepRecord = { ...sweep, maxConcurrency: plan.maxConcurrency, kind: plan.space.kind };
    // Old records and cancel markers of these ids (a cancelled sweep enqueued again) must go.
    const ids = [plan.sweepId, ...children.map((c) => c.taskId)];
    await q.redis.del(
      sweepFinalKey(q.keys.bullPrefix, plan.sweepId),
      ...ids.flatMap((id) => [q.keys.cancel(id), q.keys.task(id)]),
    );
    await q.records.saveSpec(plan.parent);
    await q.records.saveSweep(plan.sweepId, record);
    for (const c of children) await q.records.saveSpec(c);
    const now = plan.parent.enqueuedAt;
    const index = q.redis.multi();
    for (const id of ids) index.zadd(q.keys.index, now, id);
    await index.zremrangebyscore(q.keys.index, '-inf', now - RECORD_TTL_SECONDS * 1000).exec();
    await q.flows().add({
      name: SWEEP_JOB_NAME,
      queueName: QUEUE_NAME,
      data: { task: plan.parent, sweep },
      opts: {
        jobId: plan.sweepId,
        priority: plan.parent.priority,
        // Closing the parent run retries through an MLflow outage: 10 attempts, 5 s doubling
        // (about 85 min in all); the parent run holds no lease, so this is what closes it.
        attempts: 10,
        backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 },
        ...JOB_RETENTION,
      },
      children: children.map((c) => ({
        name: c.template,
        queueName: QUEUE_NAME,
        data: { task: c },
        opts: {
          jobId: c.taskId,
          attempts: c.attempts,
          priority: c.priority,
          backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 },
          ignoreDependencyOnFailure: true,
          ...JOB_RETENTION,
        },
      })),
    });
    return describe(plan, false, false, parentRunId);
  }
}

/** A FlowProducer on the queue's connection and prefix. */
export function flowProducer(redis: Redis, prefix: string): FlowProducer {
  const f = new FlowProducer({ connection: redis, prefix });
  f.on('error', () => undefined);
  return f;
}
