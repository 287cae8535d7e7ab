/**
 * The per-task record in Redis, kept beside the BullMQ job so a task's story survives the job's
 * removal: its spec, the MLflow run of each attempt, its latest progress and its final state.
 * A sweep's record also keeps its parent run and rules (`SweepRecord`).
 * A worker's records retry through a Redis blip (`retryBudgetMs`: every call is retried with
 * backoff while the budget lasts, then fails); a planner's fail at once.
 */
import { type Redis, ReplyError } from 'ioredis';
import type { NormalizedTask } from '../model/task-spec.js';
import { type Keys, RECORD_TTL_SECONDS } from './keys.js';

export type TaskState = 'waiting' | 'active' | 'completed' | 'failed' | 'cancelled' | 'delayed' | 'unknown';

export interface TaskProgress {
  fraction: number;
  message?: string;
  phase?: string;
  runId?: string;
  at: number;
}

export interface TaskRecord {
  spec?: NormalizedTask;
  /** attempt number → MLflow run (experiment id and run id). */
  runs: Record<string, { experimentId: string; runId: string }>;
  progress?: TaskProgress;
  finalState?: TaskState;
  finalReason?: string;
  result?: Record<string, unknown>;
  startedAt?: number;
  finishedAt?: number;
  cancel?: { reason: string; at: number };
  /** Set on a sweep's record (its task id is the sweep id). */
  sweep?: SweepRecord;
}

/** What a sweep's record keeps beside its spec: its parent run and rules (children: `<id>-c<i>`). */
export interface SweepRecord {
  parentRunId: string;
  experimentId: string;
  childCount: number;
  select: { metric: string; direction: 'min' | 'max' };
  review: 'none' | 'agent' | 'policy';
  maxConcurrency: number;
  kind: 'grid' | 'list' | 'random';
}

/** The task id of a sweep's child. */
export const sweepChildId = (sweepId: string, index: number) => `${sweepId}-c${index}`;

export interface TaskRecordsOptions {
  /** How long one call may keep retrying while Redis is unreachable (0: fail at once). */
  retryBudgetMs?: number;
}

/** Default retry budget of a worker's bookkeeping (records, progress, final state): 30 s. */
export const BOOKKEEPING_RETRY_MS = 30_000;

/**
 * Run `f`, retrying failures that are not Redis's own answer (a `ReplyError` means Redis is up and
 * said no) with backoff from 100 ms doubling to 2 s, until `budgetMs` has passed since the first try.
 */
export async function retryRedis<T>(f: () => Promise<T>, budgetMs: number): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
    try {
      return await f();
    } catch (err) {
      if (err instanceof ReplyError || Date.now() + wait > deadline) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export class TaskRecords {
  private readonly budgetMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly k: Keys,
    opts: TaskRecordsOptions = {},
  ) {
    this.budgetMs = opts.retryBudgetMs ?? 0;
  }

  /** Run one Redis call within the retry budget. */
  private call<T>(f: () => Promise<T>): Promise<T> {
    return this.budgetMs > 0 ? retryRedis(f, this.budgetMs) : f();
  }

  private async set(taskId: string, fields: Record<string, string>) {
    const key = this.k.task(taskId);
    await this.call(async () => {
      // exec() answers [err, result] pairs instead of rejecting when a queued command failed.
      const replies = await this.redis.multi().hset(key, fields).expire(key, RECORD_TTL_SECONDS).exec();
      const failed = replies?.find(([err]) => err)?.[0];
      if (failed) throw failed;
    });
  }

  saveSpec(spec: NormalizedTask) {
    return this.set(spec.taskId, { spec: JSON.stringify(spec) });
  }

  saveSweep(sweepId: string, sweep: SweepRecord) {
    return this.set(sweepId, { sweep: JSON.stringify(sweep) });
  }

  recordRun(taskId: string, attempt: number, experimentId: string, runId: string) {
    return this.set(taskId, {
      [`run:${attempt}`]: `${experimentId}/${runId}`,
      startedAt: String(Date.now()),
    });
  }

  saveProgress(taskId: string, progress: TaskProgress) {
    return this.set(taskId, { progress: JSON.stringify(progress) });
  }

  finish(taskId: string, state: TaskState, reason: string, result?: Record<string, unknown>) {
    return this.set(taskId, {
      finalState: state,
      finalReason: reason,
      finishedAt: String(Date.now()),
      ...(result ? { result: JSON.stringify(result) } : {}),
    });
  }

  async requestCancel(taskId: string, reason: string): Promise<void> {
    await this.call(() =>
      this.redis.set(
        this.k.cancel(taskId),
        JSON.stringify({ reason, at: Date.now() }),
        'EX',
        RECORD_TTL_SECONDS,
      ),
    );
  }

  async cancelRequest(taskId: string): Promise<{ reason: string; at: number } | undefined> {
    const v = await this.call(() => this.redis.get(this.k.cancel(taskId)));
    return v ? (JSON.parse(v) as { reason: string; at: number }) : undefined;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const [h, cancel] = await Promise.all([
      this.call(() => this.redis.hgetall(this.k.task(taskId))),
      this.cancelRequest(taskId),
    ]);
    if (!Object.keys(h).length && !cancel) return undefined;
    const runs: TaskRecord['runs'] = {};
    for (const [f, v] of Object.entries(h)) {
      if (!f.startsWith('run:')) continue;
      const [experimentId = '', runId = ''] = v.split('/');
      runs[f.slice(4)] = { experimentId, runId };
    }
    const json = <T>(v: string | undefined) => (v ? (JSON.parse(v) as T) : undefined);
    return {
      spec: json<NormalizedTask>(h.spec),
      runs,
      progress: json<TaskProgress>(h.progress),
      finalState: h.finalState as TaskState | undefined,
      finalReason: h.finalReason,
      result: json<Record<string, unknown>>(h.result),
      startedAt: h.startedAt ? Number(h.startedAt) : undefined,
      finishedAt: h.finishedAt ? Number(h.finishedAt) : undefined,
      cancel,
      sweep: json<SweepRecord>(h.sweep),
    };
  }
}
