/**
 * The per-task record in Redis, kept beside the BullMQ job so a task's story survives the job's
 * removal: its spec, the MLflow run of each attempt, its latest progress and its final state.
 */
import type { Redis } from 'ioredis';
import { type Keys, RECORD_TTL_SECONDS } from './keys.js';
import type { NormalizedTask } from './spec.js';

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
}

export class TaskRecords {
  constructor(
    private readonly redis: Redis,
    private readonly k: Keys,
  ) {}

  private async set(taskId: string, fields: Record<string, string>) {
    const key = this.k.task(taskId);
    await this.redis.multi().hset(key, fields).expire(key, RECORD_TTL_SECONDS).exec();
  }

  saveSpec(spec: NormalizedTask) {
    return this.set(spec.taskId, { spec: JSON.stringify(spec) });
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
    await this.redis.set(
      this.k.cancel(taskId),
      JSON.stringify({ reason, at: Date.now() }),
      'EX',
      RECORD_TTL_SECONDS,
    );
  }

  async cancelRequest(taskId: string): Promise<{ reason: string; at: number } | undefined> {
    const v = await this.redis.get(this.k.cancel(taskId));
    return v ? (JSON.parse(v) as { reason: string; at: number }) : undefined;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const [h, cancel] = await Promise.all([
      this.redis.hgetall(this.k.task(taskId)),
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
    };
  }
}
