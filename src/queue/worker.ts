/**
 * `runwarden worker`: a BullMQ worker that runs task attempts. It hears cancellations broadcast
 * from any process (and re-checks the durable marker while a task runs, in case a broadcast was
 * missed), throttles progress into the job and the task record, publishes live events for SSE
 * readers, and shuts down in bounded time: stop fetching, give running tasks a grace period,
 * cancel what is left (runs KILLED, jobs back to the queue), close BullMQ and Redis.
 *
 * Each attempt runs inside a fence on its BullMQ lock (lock-fence.ts): a worker that loses the
 * lock (its Redis stalled past the lock duration, or another worker took the job) aborts the
 * attempt, ends its run KILLED, and leaves the task to whoever holds it; it reports success only
 * after a renewal confirms it still holds the lock. Bookkeeping (the task record, progress, the
 * cancel marker) retries through a Redis blip for up to `bookkeepingRetryMs` (30 s): only the
 * training's own failure fails a task.
 */
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { startEarlyStop } from '../sweep/early-stop.js';
import { runSweepParent } from '../sweep/parent.js';
import { closeParentRun } from '../sweep/parent-run.js';
import { acquireSlot, type SlotHold, slotKey, slotWaitMs, slotWaitsKey } from '../sweep/slots.js';
import { type AttemptSettings, runAttempt, SHUTDOWN_REASON, type TaskEvent } from './attempt.js';
import { keys, QUEUE_NAME } from './keys.js';
import { LOCK_LOST_REASON, startLockFence } from './lock-fence.js';
import { type PredictOutcome, runPredictAttempt } from './predict-attempt.js';
import { BOOKKEEPING_RETRY_MS, TaskRecords } from './records.js';
import type { TaskJobData } from './task-queue.js';

export interface WorkerOptions {
  redisUrl: string;
  prefix: string;
  concurrency: number;
  shutdownGraceMs: number;
  settings: AttemptSettings;
  client: MlflowClient;
  logger: Logger;
  /** BullMQ lock duration (default 30 s); stalled checks run at the same interval. */
  lockMs?: number;
  /** How often a running task re-checks its cancel marker (default 2 s). */
  cancelPollMs?: number;
  /** How long one bookkeeping call retries while Redis is unreachable (default 30 s). */
  bookkeepingRetryMs?: number;
  /**
   * Called once a task has completed (its run FINISHED and the final state recorded), and again
   * when a re-delivered job finds the task already completed: must be idempotent. Awaited; an
   * error is logged and does not change the task's outcome (the review system reconciles).
   */
  onCompleted?: (done: CompletedTask) => Promise<void>;
}

/** What `onCompleted` gets: the task and its FINISHED run. */
export interface CompletedTask {
  task: NormalizedTask;
  runId: string;
  experimentId: string;
  metrics: Record<string, number>;
  /** Set when a sweep's parent job reports its best child (children never report themselves). */
  sweepId?: string;
}

export interface RunningWorker {
  worker: Worker<TaskJobData>;
  /** Stop: bounded grace, then cancel running tasks, then close connections. */
  close(): Promise<void>;
}

const PROGRESS_EVERY_MS = 1_000;

/** True if `p` settles within `ms`, false otherwise. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
  ]);
}

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const k = keys(opts.prefix);
  const log = opts.logger;
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const publisher = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 });
  const subscriber = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  for (const r of [connection, publisher, subscriber])
    r.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const records = new TaskRecords(publisher, k, {
    retryBudgetMs: opts.bookkeepingRetryMs ?? BOOKKEEPING_RETRY_MS,
  });
  const lockMs = opts.lockMs ?? 30_000;
  const completed = async (done: CompletedTask) => {
    if (!opts.onCompleted) return;
    try {
      await opts.onCompleted(done);
    } catch (err) {
      log.error({ task: done.task.taskId, err: (err as Error).message }, 'completion hook failed');
    }
  };

  const processor = async (job: Job<TaskJobData>, token: string | undefined, signal?: AbortSignal) => {
    const task = job.data.task;
    // A sweep's parent job: every child has ended; close the sweep (src/sweep/parent.ts).
    if (job.data.sweep) {
      try {
        return await runSweepParent(job, {
          client: opts.client,
          records,
          redis: publisher,
          bullPrefix: k.bullPrefix,
          log,
          completed,
        });
      } catch (err) {
        // Its last attempt failed (MLflow or Redis down through the whole retry budget): nothing
        // else closes the parent run (it holds no lease), so close it FAILED and finish the record.
        const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if (last && !(err instanceof UnrecoverableError)) {
          const why = `the sweep's parent job failed ${job.opts.attempts ?? 1} times: ${(err as Error).message.slice(0, 500)}`;
          await closeParentRun(opts.client, job.data.sweep.parentRunId, 'FAILED', why, 'sweep').catch(
            (e: unknown) =>
              log.error({ task: task.taskId, err: (e as Error).message }, 'closing the sweep failed'),
          );
          await records.finish(task.taskId, 'failed', why).catch(() => undefined);
          throw new UnrecoverableError(why);
        }
        throw err;
      }
    }
    // Numbers the attempt's run (every start gets its own); retries are counted by attemptsMade,
    // as BullMQ does, so a shutdown requeue does not use up an attempt.
    const attempt = job.attemptsStarted;
    // A sweep child also stops for its sweep's cancel marker.
    const cancelOf = async () =>
      (await records.cancelRequest(task.taskId)) ??
      (task.sweep ? await records.cancelRequest(task.sweep.parentTaskId) : undefined);
    const [cancel, record] = await Promise.all([cancelOf(), records.get(task.taskId)]);
    if (cancel) {
      await records.finish(task.taskId, 'cancelled', `cancelled before it started: ${cancel.reason}`);
      throw new UnrecoverableError(`cancelled before it started: ${cancel.reason}`);
    }
    // An earlier attempt completed the task and only BullMQ's own move was lost: its result stands.
    if (record?.finalState === 'completed' && record.result) {
      log.info({ task: task.taskId, attempt }, 'already completed by an earlier attempt');
      const r = record.result as {
        run_id?: string;
        experiment_id?: string;
        metrics?: Record<string, number>;
      };
      if (r.run_id && r.experiment_id && !task.sweep)
        await completed({ task, runId: r.run_id, experimentId: r.experiment_id, metrics: r.metrics ?? {} });
      return record.result;
    }
    // A sweep child runs only in a free slot of its sweep (the cap holds across all workers); with
    // none free it goes back to the queue without using an attempt.
    let slot: SlotHold | undefined;
    if (task.sweep?.maxConcurrency && token) {
      slot = await acquireSlot(
        publisher,
        slotKey(k.bullPrefix, task.sweep.id),
        task.taskId,
        task.sweep.maxConcurrency,
        lockMs,
      );
      const waits = slotWaitsKey(k.bullPrefix, task.sweep.id);
      if (!slot) {
        // Back off per bounce (0.5 s doubling, at most 30 s): 198 waiting children of a cap of 2
        // must not churn through the workers; a freed slot promotes one waiter (below).
        const n = await publisher.hincrby(waits, task.taskId, 1).catch(() => 1);
        await publisher.pexpire(waits, 86_400_000).catch(() => undefined);
        await job.moveToDelayed(Date.now() + slotWaitMs(n), token);
        // BullMQ counted this start; it was not an attempt (the run number and the start limit).
        await publisher.hincrby(`${k.bullPrefix}:${QUEUE_NAME}:${job.id}`, 'ats', -1).catch(() => undefined);
        throw new DelayedError();
      }
      await publisher.hdel(waits, task.taskId).catch(() => undefined);
    }
    const abort = new AbortController();
    signal?.addEventListener('abort', () => abort.abort(signal.reason), { once: true });
    const fence = token ? startLockFence(job, token, lockMs) : undefined;
    fence?.signal.addEventListener('abort', () => abort.abort(fence.signal.reason), { once: true });
    // The slot is checked like the lock: once another worker took it (this one stalled past its
    // hold), the attempt stops and goes back to the queue without using an attempt.
    let slotLost: string | undefined;
    const poll = setInterval(() => {
      if (slot && !slot.held() && !abort.signal.aborted) {
        slotLost = `lost its sweep concurrency slot (held past ${lockMs / 1000} s without renewal and taken by another child)`;
        abort.abort(LOCK_LOST_REASON);
      }
      cancelOf()
        .then((c) => c && !abort.signal.aborted && abort.abort(c.reason))
        .catch(() => undefined);
    }, opts.cancelPollMs ?? 2_000);
    // A sweep child with early stopping: the median rule aborts the attempt (`early-stopped: ...`).
    const earlyStop = task.sweep
      ? startEarlyStop({
          client: opts.client,
          sweep: task.sweep,
          log: log.child({ task: task.taskId }),
          stop: (why) => !abort.signal.aborted && abort.abort(why),
        })
      : undefined;
    let lastProgress = 0;
    const onEvent = (e: TaskEvent) => {
      if (e.type === 'metric') earlyStop?.observe(e);
      // The command has ended ('finishing'): its outcome stands, the rule no longer applies.
      else if (e.type === 'progress' && e.phase === 'finishing') earlyStop?.close();
      void publisher.publish(k.events(task.taskId), JSON.stringify(e)).catch(() => undefined);
      if (e.type !== 'progress') return;
      const now = Date.now();
      if (now - lastProgress < PROGRESS_EVERY_MS && e.fraction < 1 && e.phase === 'running') return;
      lastProgress = now;
      const p = { fraction: e.fraction, message: e.message, phase: e.phase, runId: e.runId, at: now };
      void job.updateProgress(p).catch(() => undefined);
      void records.saveProgress(task.taskId, p).catch(() => undefined);
    };
    try {
      // A prediction task (src/queue/predict-attempt.ts) scores a model instead of training one.
      const out: PredictOutcome = await (task.predict ? runPredictAttempt : runAttempt)(
        opts.client,
        opts.settings,
        task,
        {
          attempt,
          jobId: job.id!,
          signal: abort.signal,
          confirmLock: fence ? () => fence.confirm() : undefined,
          lockLostWhy: () => fence?.why ?? slotLost,
          // The record is bookkeeping: a Redis outage past the retry budget must not fail the task.
          onRunStarted: (experimentId, runId) => {
            earlyStop?.runStarted(experimentId, runId);
            return records
              .recordRun(task.taskId, attempt, experimentId, runId)
              .catch((err: unknown) =>
                log.warn({ task: task.taskId, err: (err as Error).message }, 'recording the run failed'),
              );
          },
          onEvent,
        },
        log.child({ task: task.taskId, attempt }),
      );
      const result = {
        status: out.status,
        run_id: out.runId,
        experiment_id: out.experimentId,
        exit_code: out.exitCode,
        metrics: out.metrics,
        ...(out.prediction ? { prediction: out.prediction } : {}),
        ...(out.errorCode ? { error_code: out.errorCode } : {}),
      };
      // The run is closed by now: bookkeeping that fails must not turn into a BullMQ retry (a
      // second run) or replace the UnrecoverableError below.
      const bestEffort = (what: string, p: Promise<unknown>) =>
        p.catch((err: unknown) =>
          log.warn({ task: task.taskId, err: (err as Error).message }, `${what} failed`),
        );
      const publishEnd = (state: string) =>
        bestEffort(
          'publishing the end event',
          publisher.publish(
            k.events(task.taskId),
            JSON.stringify({ type: 'status', state, reason: out.reason, runId: out.runId }),
          ),
        );
      const finish = (state: 'completed' | 'failed' | 'cancelled') =>
        bestEffort('recording the final state', records.finish(task.taskId, state, out.reason, result));
      if (out.kind === 'lock-lost') {
        // The task is someone else's now: no record, no end event. If the lock was only
        // unconfirmed (Redis unreachable) and is still ours, put the task back without using an
        // attempt; otherwise BullMQ refuses the move (token mismatch) and the holder carries on.
        if (token) await within(job.moveToDelayed(Date.now(), token), 5_000);
        log.warn({ task: task.taskId, attempt, why: fence?.why }, 'lost the task lock; attempt stopped');
        throw new DelayedError();
      }
      if (out.kind === 'completed') {
        await finish('completed');
        await publishEnd('completed');
        // A sweep's children never report themselves: the sweep's parent job reports its best one.
        if (!task.sweep)
          await completed({ task, runId: out.runId, experimentId: out.experimentId, metrics: out.metrics });
        return result;
      }
      if (out.kind === 'shutdown' && token) {
        // Not the task's fault: back to the queue for another worker, without using an attempt.
        await job.moveToDelayed(Date.now() + 1_000, token);
        await publishEnd('waiting');
        throw new DelayedError();
      }
      const final = out.kind === 'cancelled' ? 'cancelled' : 'failed';
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (final === 'cancelled' || !task.retryOnFailure || out.kind === 'timeout' || lastAttempt) {
        await finish(final);
        await publishEnd(final);
        throw new UnrecoverableError(out.reason);
      }
      await publishEnd('retrying');
      throw new Error(out.reason);
    } finally {
      clearInterval(poll);
      fence?.stop();
      earlyStop?.close();
      if (slot && task.sweep) {
        await slot.release();
        await promoteWaiter(task.sweep.id);
      }
    }
  };

  /** A slot was freed: wake one child waiting (delayed) for one, instead of waiting out its backoff. */
  const promoteWaiter = async (sweepId: string) => {
    try {
      const ids = (await publisher.hkeys(slotWaitsKey(k.bullPrefix, sweepId))).sort().slice(0, 5);
      for (const id of ids) {
        const waiter = await Job.fromId<TaskJobData>(worker, id);
        if (waiter && (await waiter.isDelayed())) {
          await waiter.promote();
          return;
        }
      }
    } catch (err) {
      log.debug({ sweep: sweepId, err: (err as Error).message }, 'promoting a waiting sweep child failed');
    }
  };

  const running = new Set<Promise<unknown>>();
  const tracked: typeof processor = (job, token, signal) => {
    const p = processor(job, token, signal);
    running.add(p);
    const drop = () => running.delete(p);
    p.then(drop, drop);
    return p;
  };
  const worker = new Worker<TaskJobData>(QUEUE_NAME, tracked, {
    connection,
    prefix: k.bullPrefix,
    concurrency: opts.concurrency,
    // Training runs in child processes, so the event loop stays free and the 30 s lock renews;
    // a dead worker's job is re-delivered after one stall.
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: 2,
    // Room for the most attempts a spec may ask for (10) plus shutdown requeues and stalls.
    maxStartedAttempts: 15,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) =>
    log.info({ task: job?.id, reason: err.message }, 'task attempt ended without success'),
  );
  worker.on('completed', (job) => log.info({ task: job.id }, 'task completed'));

  await subscriber.subscribe(k.cancelChannel);
  subscriber.on('message', (_channel, message) => {
    try {
      const { taskId, reason } = JSON.parse(message) as { taskId: string; reason: string };
      if (worker.cancelJob(taskId, reason)) log.info({ task: taskId }, 'cancelling running task');
    } catch {
      // not ours
    }
  });
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // BullMQ's close waits on Redis (QUIT never answers when Redis is gone), so wait on our own
      // running attempts instead, and bound every step.
      const graceful = worker.close();
      const settled = () => Promise.allSettled([...running]);
      if (!(await within(settled(), opts.shutdownGraceMs))) {
        log.warn('shutdown grace over: cancelling running tasks');
        worker.cancelAllJobs(SHUTDOWN_REASON);
        await within(settled(), opts.settings.killGraceMs + 15_000);
      }
      if (!(await within(graceful, 3_000))) await within(worker.close(true), 2_000);
      for (const r of [subscriber, publisher, connection]) r.disconnect();
    })();
    return closing;
  };
  return { worker, close };
}
