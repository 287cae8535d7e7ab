/**
 * The planner's side of the task system: validate and enqueue tasks (dedup by task id, inputs
 * checked before anything is queued), read them back, list them, and cancel them from any
 * process. BullMQ holds the jobs; the task record in Redis keeps runs, progress and outcome.
 */
import { type FlowProducer, type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { RunwardenError } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { DEFAULT_MAX_SWEEP_CHILDREN } from '../model/sweep-spec.js';
import type { NormalizedTask } from '../model/task-spec.js';
import type { Template } from '../model/template.js';
import { defaultInputPolicy, type InputPolicy } from '../runners/input-policy.js';
import { checkInputs } from '../runners/inputs.js';
import { cancelSweep } from '../sweep/cancel.js';
import { enqueueSweep, flowProducer, type SweepEnqueueResult, type SweepJobData } from '../sweep/flow.js';
import { type SweepSummary, summarizeSweep } from '../sweep/summary.js';
import { RW_TAGS } from '../tracking/tags.js';
import { keys, QUEUE_NAME, RECORD_TTL_SECONDS } from './keys.js';
import {
  DEFAULT_PREDICT_MAX_ROWS,
  dedupPredictTask,
  isPredictSpec,
  normalizePredictSpec,
  preparePredictTask,
} from './predict-spec.js';
import { type TaskProgress, type TaskRecord, TaskRecords, type TaskState } from './records.js';
import { normalizeSpec, templateDefaultInputs } from './spec.js';
import { listTemplates, loadTemplate } from './templates.js';

export interface TaskJobData {
  task: NormalizedTask;
  /** Set on a sweep's parent job (its task is the sweep; src/sweep/parent.ts runs it). */
  sweep?: SweepJobData;
}

export interface TaskInfo {
  task_id: string;
  state: TaskState;
  template: string;
  params: Record<string, string | number | boolean>;
  experiment: string;
  run_name: string;
  progress?: TaskProgress;
  attempts_made: number;
  attempts_allowed: number;
  runs: { attempt: number; run_id: string; url: string }[];
  result?: Record<string, unknown>;
  reason?: string;
  cancel_requested?: string;
  enqueued_at?: number;
  started_at?: number;
  finished_at?: number;
  /** On a sweep: its children at a glance and the best so far. */
  sweep?: SweepSummary;
}

export interface TaskQueueOptions {
  redisUrl: string;
  prefix: string;
  tasksDir: string;
  client: MlflowClient;
  /** The input boundary (default: files under `<tasksDir>/data`, no folders, no web hosts). */
  inputs?: InputPolicy;
  /** Most children one sweep may have (default 200, RUNWARDEN_SWEEP_MAX_CHILDREN). */
  maxSweepChildren?: number;
  /** Most rows one prediction may score (default 100,000, RUNWARDEN_PREDICT_MAX_ROWS). */
  predictMaxRows?: number;
}

const TERMINAL: TaskState[] = ['completed', 'failed', 'cancelled'];
export const isTerminal = (s: TaskState) => TERMINAL.includes(s);

export class TaskQueue {
  readonly queue: Queue<TaskJobData>;
  readonly redis: Redis;
  readonly records: TaskRecords;
  readonly keys: ReturnType<typeof keys>;
  private flows?: FlowProducer;

  constructor(private readonly opts: TaskQueueOptions) {
    this.keys = keys(opts.prefix);
    // Fail fast for planners: a Redis outage is an error now, not a silent wait.
    this.redis = new Redis(opts.redisUrl, {
      maxRetriesPerRequest: 2,
      enableOfflineQueue: false,
      lazyConnect: false,
    });
    this.redis.on('error', () => undefined);
    this.queue = new Queue<TaskJobData>(QUEUE_NAME, { connection: this.redis, prefix: this.keys.bullPrefix });
    this.queue.on('error', () => undefined); // surfaced by the failing call instead
    this.records = new TaskRecords(this.redis, this.keys);
  }

  templates(): Template[] {
    return listTemplates(this.opts.tasksDir);
  }

  /**
   * Validate, check inputs, and enqueue. The same spec again returns the existing task
   * (`existing: true`) unless `force` is set. Nothing is queued when anything is wrong.
   */
  async enqueue(spec: unknown): Promise<{ task: NormalizedTask; existing: boolean; info: TaskInfo }> {
    // A prediction (`{predict: {model, data}}`, src/queue/predict-spec.ts) runs no template.
    const predict = isPredictSpec(spec);
    const templateName = (spec as { template?: unknown })?.template;
    const template = predict
      ? undefined
      : loadTemplate(this.opts.tasksDir, typeof templateName === 'string' ? templateName : '');
    let task = template ? normalizeSpec(spec, template) : normalizePredictSpec(spec);
    const inputs = this.opts.inputs ?? defaultInputPolicy(this.opts.tasksDir);
    if (!template) {
      // A prediction's id hashes the resolved model, so it is resolved first; a failed or
      // cancelled prediction is never the answer to a new request (src/queue/predict-spec.ts).
      task = await preparePredictTask(this.opts.client, task, {
        inputs,
        maxRows: this.opts.predictMaxRows ?? DEFAULT_PREDICT_MAX_ROWS,
      });
      task = (await dedupPredictTask(task, async (id) => (await this.get(id))?.state)).task;
    }
    const prior = await this.queue.getJob(task.taskId);
    if (prior) return { task: prior.data.task, existing: true, info: await this.info(task.taskId, prior) };
    if (template) await checkInputs(this.opts.client, task.inputs, inputs, templateDefaultInputs(template));
    // The job is gone (cancelled before it started, or removed by age): its old record and cancel
    // marker must not describe the new task.
    await this.redis.del(this.keys.cancel(task.taskId), this.keys.task(task.taskId));
    await this.records.saveSpec(task);
    await this.redis
      .multi()
      .zadd(this.keys.index, task.enqueuedAt, task.taskId)
      .zremrangebyscore(this.keys.index, '-inf', task.enqueuedAt - RECORD_TTL_SECONDS * 1000)
      .exec();
    const job = await this.queue.add(
      task.template,
      { task },
      {
        jobId: task.taskId,
        attempts: task.attempts,
        priority: task.priority,
        backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 },
        removeOnComplete: { age: 7 * 86_400, count: 1_000 },
        removeOnFail: { age: 30 * 86_400 },
      },
    );
    return { task, existing: false, info: await this.info(task.taskId, job) };
  }

  /**
   * Validate a sweep spec, check every child against the template, then (unless `dryRun`) create
   * the parent run and enqueue the flow. The same spec again returns the existing sweep unless
   * `force`. A dry run returns the children's parameter sets and task ids and changes nothing.
   */
  enqueueSweep(spec: unknown, opts: { dryRun?: boolean } = {}): Promise<SweepEnqueueResult> {
    return enqueueSweep(
      {
        queue: this.queue,
        redis: this.redis,
        records: this.records,
        keys: this.keys,
        client: this.opts.client,
        tasksDir: this.opts.tasksDir,
        inputs: this.opts.inputs ?? defaultInputPolicy(this.opts.tasksDir),
        maxChildren: this.opts.maxSweepChildren ?? DEFAULT_MAX_SWEEP_CHILDREN,
        flows: () => {
          this.flows ??= flowProducer(this.redis, this.keys.bullPrefix);
          return this.flows;
        },
      },
      spec,
      opts,
    );
  }

  async get(taskId: string): Promise<TaskInfo | undefined> {
    const job = await this.queue.getJob(taskId);
    const record = await this.records.get(taskId);
    if (!job && !record) return undefined;
    return this.info(taskId, job, record);
  }

  /**
   * Tasks by state, newest first. Reads the task index (every task ever enqueued here, kept as
   * long as its record), so tasks cancelled before they started, whose jobs are gone, are listed.
   */
  async list(opts: { states?: TaskState[]; limit?: number } = {}): Promise<TaskInfo[]> {
    const wanted = opts.states?.length ? opts.states : undefined;
    const limit = opts.limit ?? 50;
    const out: TaskInfo[] = [];
    const page = Math.max(50, limit * 2);
    for (let start = 0; out.length < limit; start += page) {
      const ids = await this.redis.zrevrange(this.keys.index, start, start + page - 1);
      if (!ids.length) break;
      const infos = await Promise.all(ids.map((id) => this.get(id)));
      for (const i of infos) if (i && (!wanted || wanted.includes(i.state))) out.push(i);
    }
    return out.slice(0, limit);
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  }

  /**
   * Cancel from any process: a durable marker (a waiting task never starts), removal of a job
   * that has not started, a broadcast so the worker holding a running one kills it, and a tag on
   * the current run so even a dead worker's run ends KILLED via the reaper.
   */
  async cancel(
    taskId: string,
    reason = 'cancelled by request',
  ): Promise<{ previous: TaskState; info: TaskInfo }> {
    const job = await this.queue.getJob(taskId);
    const record = await this.records.get(taskId);
    if (!job && !record)
      throw new RunwardenError(
        'VALIDATION_ERROR',
        `task_id: no task ${taskId}; list_tasks shows known tasks`,
      );
    const before = await this.info(taskId, job, record);
    if (isTerminal(before.state)) return { previous: before.state, info: before };
    if (record?.sweep) {
      await cancelSweep(this, taskId, record.sweep, reason, this.opts.client);
      return { previous: before.state, info: (await this.get(taskId)) ?? before };
    }
    await this.records.requestCancel(taskId, reason);
    const bullState = job ? await job.getState() : 'unknown';
    if (job && ['waiting', 'prioritized', 'delayed', 'waiting-children'].includes(bullState)) {
      try {
        await job.remove();
        await this.records.finish(taskId, 'cancelled', `cancelled before it started: ${reason}`);
      } catch {
        // picked up meanwhile: the broadcast below reaches the worker
      }
    }
    await this.redis.publish(this.keys.cancelChannel, JSON.stringify({ taskId, reason }));
    const runId = Object.entries(record?.runs ?? {}).sort((a, b) => Number(b[0]) - Number(a[0]))[0]?.[1]
      .runId;
    if (runId && bullState === 'active') {
      await ok(
        this.opts.client.api.POST('/api/2.0/mlflow/runs/log-batch', {
          body: { run_id: runId, tags: [{ key: RW_TAGS.cancelRequested, value: 'true' }] },
        }),
      ).catch(() => undefined);
    }
    return { previous: before.state, info: (await this.get(taskId)) ?? before };
  }

  async info(taskId: string, job?: Job<TaskJobData> | null, record?: TaskRecord): Promise<TaskInfo> {
    const rec = record ?? (await this.records.get(taskId));
    const task = job?.data.task ?? rec?.spec;
    let state: TaskState = rec?.finalState ?? 'unknown';
    // A final state in the record wins: the worker writes it just before BullMQ moves the job.
    const final = rec?.finalState && isTerminal(rec.finalState);
    if (job && !final) {
      const s = await job.getState();
      if (s === 'completed') state = 'completed';
      else if (s === 'failed') state = rec?.cancel ? 'cancelled' : 'failed';
      else if (s === 'active') state = 'active';
      else if (s === 'delayed') state = 'delayed';
      else if (s === 'waiting' || s === 'prioritized' || s === 'waiting-children') state = 'waiting';
    }
    if (rec?.cancel && !job && state === 'unknown') state = 'cancelled';
    const sweep = rec?.sweep
      ? await summarizeSweep(taskId, rec.sweep, (id) => this.get(id), this.opts.client.runUrl)
      : undefined;
    // A sweep waiting on its children is active while any of them runs.
    if (sweep && state === 'waiting' && sweep.running > 0) state = 'active';
    // A sweep's run is its parent run.
    const recRuns = rec?.sweep
      ? { 1: { experimentId: rec.sweep.experimentId, runId: rec.sweep.parentRunId } }
      : rec?.runs;
    const runs = Object.entries(recRuns ?? {})
      .map(([a, r]) => ({
        attempt: Number(a),
        run_id: r.runId,
        url: this.opts.client.runUrl(r.experimentId, r.runId),
      }))
      .sort((a, b) => a.attempt - b.attempt);
    return {
      task_id: taskId,
      state,
      template: task?.template ?? '',
      params: task?.params ?? {},
      experiment: task?.experiment ?? '',
      run_name: task?.runName ?? '',
      progress: rec?.progress,
      attempts_made: job?.attemptsStarted ?? runs.length,
      attempts_allowed: task?.attempts ?? 1,
      runs,
      result: (job?.returnvalue as Record<string, unknown> | undefined) ?? rec?.result,
      reason: job?.failedReason || rec?.finalReason,
      cancel_requested: rec?.cancel?.reason,
      enqueued_at: task?.enqueuedAt,
      started_at: rec?.startedAt ?? job?.processedOn,
      finished_at: rec?.finishedAt ?? job?.finishedOn,
      ...(sweep
        ? {
            sweep,
            progress: {
              fraction: sweep.children ? (sweep.done + sweep.failed + sweep.cancelled) / sweep.children : 1,
              message: `${sweep.done} done, ${sweep.running} running, ${sweep.failed} failed of ${sweep.children}${sweep.best ? `; best ${sweep.best.metric} ${sweep.best.value} (child ${sweep.best.index})` : ''}`,
              phase: 'sweep',
              at: Date.now(),
            },
          }
        : {}),
    };
  }

  /** Close, bounded: a Redis that is gone must not hang the caller. */
  async close(): Promise<void> {
    await Promise.race([
      Promise.all([this.queue.close().catch(() => undefined), this.flows?.close().catch(() => undefined)]),
      new Promise((r) => setTimeout(r, 3_000).unref()),
    ]);
    this.redis.disconnect();
  }
}
