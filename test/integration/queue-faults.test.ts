// The queue under Redis faults, against real MLflow and a redis-server this file starts: a live
// worker that loses its BullMQ lock (its Redis traffic hangs behind a fault proxy, or its lock key
// is deleted) stops its attempt, whose run ends KILLED naming the lost lock (or, when the next
// attempt got there first on a loaded machine, FAILED as superseded), writes no failed record or
// end event, and the task ends with exactly one FINISHED run; a task whose record already says completed is not trained again when
// delivered again; and a Redis blip of a few seconds while an attempt starts (the run created, its
// record being written) does not fail the task. Each test has its own queue prefix.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, type TestContext } from 'vitest';
import { getExperimentByName, RW_TAGS } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { keys } from '../../src/queue/keys.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun } from '../support/python.js';
import { type RedisServer, startRedisServer } from '../support/services.js';
import {
  fixtureTasksDir,
  sleep,
  startWorkerProcess,
  stopAllWorkers,
  tag,
  taskRuns,
  type WorkerEnv,
  type WorkerProcess,
  waitFor,
  waitForAttemptRun,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);

describe.concurrent('the queue under Redis faults', () => {
  let redis: RedisServer;
  let workDir: string;
  const queues: TaskQueue[] = [];
  const proxies: FaultProxy[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    workDir = await mkdtemp(join(tmpdir(), 'rw-queue-faults-'));
  });

  afterAll(async () => {
    await stopAllWorkers();
    await Promise.all(queues.map((q) => q.close()));
    await Promise.all(proxies.map((p) => p.close()));
    await redis?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** A fresh queue prefix, its TaskQueue (straight to Redis), and a starter for workers. */
  const fresh = (onTestFinished: TestContext['onTestFinished']) => {
    const prefix = uniqueName('q-faults');
    const queue = new TaskQueue({ redisUrl: redis.url, prefix, tasksDir: fixtureTasksDir, client });
    queues.push(queue);
    const start = async (o: Partial<WorkerEnv> = {}) => {
      const w = await startWorkerProcess({ mlflowUrl, redisUrl: redis.url, prefix, workDir, ...o });
      onTestFinished(async () => {
        await w.stop('SIGTERM', 15_000);
      });
      return w;
    };
    return { queue, prefix, start };
  };

  const proxyTo = async (target: string) => {
    const p = await startFaultProxy(target);
    proxies.push(p);
    return p;
  };

  /** The worker whose pid is in the run's owner tag (`worker:user@host:pid`). */
  const holderOf = async (runId: string, workers: WorkerProcess[]) => {
    const { run } = await ok(
      client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
    );
    const owner = run?.data?.tags?.find((t) => t.key === RW_TAGS.owner)?.value ?? '';
    const holder = workers.findIndex((w) => owner.endsWith(`:${w.pid}`));
    if (holder < 0) throw new Error(`run ${runId} is owned by ${owner}, none of our workers`);
    return holder;
  };

  it('a live worker whose Redis traffic hangs past half its lock: its attempt stops (KILLED naming the lost lock, or FAILED superseded if the next attempt got there first) without reporting a failure, the other worker completes the task, and there is exactly one FINISHED run', async ({
    onTestFinished,
  }) => {
    const { queue, prefix, start } = fresh(onTestFinished);
    // Each worker reaches Redis through its own proxy, so the one holding the task can be cut off.
    const paths = await Promise.all([proxyTo(redis.url), proxyTo(redis.url)]);
    const workers = await Promise.all(paths.map((p) => start({ redisUrl: `redis://127.0.0.1:${p.port}` })));
    const experiment = uniqueName('lock-hang');
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 40, sleep_ms: 500 },
      experiment,
    });
    // Every end event of the task, whoever publishes it.
    const events: { type?: string; state?: string }[] = [];
    const listener = new Redis(redis.url);
    onTestFinished(() => listener.disconnect());
    listener.on('message', (_channel, message) => events.push(JSON.parse(message)));
    await listener.subscribe(keys(prefix).events(task.taskId));
    const { runId: firstRunId } = await waitForAttemptRun(queue, task.taskId, 1, 30_000);
    const holder = await holderOf(firstRunId, workers);
    const cutOff = workers[holder]!;
    await paths[holder]!.setMode('hang', { existing: true });
    const hungAt = Date.now();

    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 90_000);
    expect(done.state).toBe('completed');
    // The cut-off worker is alive: it lost its lock, it did not die.
    expect(cutOff.alive()).toBe(true);

    // The cut-off worker took its attempt as lock-lost (no record, no end event), once its Redis
    // is back and whatever it had queued went through.
    await paths[holder]!.setMode('pass');
    await waitFor('the cut-off worker to report the lost lock', () =>
      cutOff.stderr().includes('lost the task lock; attempt stopped'),
    );
    expect(events.filter((e) => e.type === 'status' && e.state === 'failed')).toEqual([]);
    expect((await queue.get(task.taskId))?.state).toBe('completed');

    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => tag(r, RW_TAGS.attempt))).toEqual(['1', '2']);
    expect(runs[1]!.info?.status).toBe('FINISHED');
    const lost = await pyGetRun(mlflowUrl, firstRunId);
    expect(lost.tags[RW_TAGS.closedBy]).toBe('worker');
    if (lost.status === 'KILLED') {
      // It closed its run itself, while the lock still held (lock 5 s, half unconfirmed: ~2.5 s).
      expect(lost.tags[RW_TAGS.closeReason]).toMatch(/^lock lost: this worker lost the task's queue lock/);
      expect(Number(lost.end_time) - hungAt).toBeLessThan(15_000);
    } else {
      // Under load the next attempt settled it first.
      expect(lost.status).toBe('FAILED');
      expect(lost.tags[RW_TAGS.closeReason]).toMatch(/^superseded: worker lost \(attempt 1 was replaced/);
    }
    const finished = await pyGetRun(mlflowUrl, runs[1]!.info!.run_id!);
    expect(finished.status).toBe('FINISHED');
    expect(finished.tags[RW_TAGS.owner]).toMatch(new RegExp(`:${workers[1 - holder]!.pid}$`));
    expect(done.result?.run_id).toBe(runs[1]!.info!.run_id);
  }, 240_000);

  it('a live worker whose lock key is deleted mid-task: its attempt stops KILLED naming the lost lock, the re-delivered attempt completes the task, and there is exactly one FINISHED run', async ({
    onTestFinished,
  }) => {
    const { queue, prefix, start } = fresh(onTestFinished);
    await start();
    const experiment = uniqueName('lock-deleted');
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 30, sleep_ms: 500 },
      experiment,
    });
    const { runId: firstRunId } = await waitForAttemptRun(queue, task.taskId, 1, 30_000);
    const direct = new Redis(redis.url);
    onTestFinished(() => direct.disconnect());
    expect(await direct.del(`${prefix}:tasks:${task.taskId}:lock`)).toBe(1);

    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 90_000);
    expect(done.state).toBe('completed');
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => [tag(r, RW_TAGS.attempt), r.info?.status])).toEqual([
      ['1', 'KILLED'],
      ['2', 'FINISHED'],
    ]);
    const lost = await pyGetRun(mlflowUrl, firstRunId);
    expect(lost.tags[RW_TAGS.closeReason]).toMatch(/^lock lost: .*another worker holds the lock now/);
    expect(runs.filter((r) => r.info?.status === 'FINISHED')).toHaveLength(1);
  }, 240_000);

  it('a task whose record already says completed (its worker died between the record and BullMQ hearing of it) completes from the record when delivered again, and no run is trained', async ({
    onTestFinished,
  }) => {
    const { queue, start } = fresh(onTestFinished);
    const experiment = uniqueName('record-decides');
    const { task } = await queue.enqueue({ template: 'quick', params: { epochs: 2 }, experiment });
    const result = { status: 'FINISHED', run_id: 'run-of-the-lost-worker', experiment_id: '0', exit_code: 0 };
    await queue.records.finish(task.taskId, 'completed', 'exit code 0', result);
    await start();
    await waitFor(
      'BullMQ to complete the job',
      async () => (await queue.queue.getJob(task.taskId))?.finishedOn,
      {
        timeoutMs: 60_000,
      },
    );
    const job = await queue.queue.getJob(task.taskId);
    expect(await job?.getState()).toBe('completed');
    expect(job?.returnvalue).toEqual(result);
    expect(await taskRuns(client, experiment, task.taskId)).toEqual([]);
  }, 240_000);

  it('a Redis blip of a few seconds while an attempt starts (its run created, its record being written): the task still completes, with one FINISHED run recorded as attempt 1', async ({
    onTestFinished,
  }) => {
    const { queue, start } = fresh(onTestFinished);
    const redisPath = await proxyTo(redis.url);
    const mlflowPath = await proxyTo(mlflowUrl);
    await start({
      redisUrl: `redis://127.0.0.1:${redisPath.port}`,
      mlflowUrl: mlflowPath.url,
      // A lock long enough that the blip tests bookkeeping, not the lock fence.
      env: { RUNWARDEN_WORKER_LOCK_MS: '30000' },
    });
    const experiment = uniqueName('redis-blip');
    // Slow MLflow down so the attempt's start (experiment, run) spans the blip.
    await mlflowPath.setMode('delay', { delayMs: 1_500 });
    const { task } = await queue.enqueue({ template: 'quick', params: { epochs: 3 }, experiment });
    // Once the worker has read its task's markers and turned to MLflow (the experiment exists),
    // Redis goes away from it.
    await waitFor('the worker to create the experiment', () => getExperimentByName(client, experiment), {
      timeoutMs: 60_000,
    });
    // Cut the open connections, then stop listening (as a Redis that went away).
    await redisPath.setMode('reset', { existing: true });
    await redisPath.setMode('refuse');
    try {
      // Redis is away from the worker while it creates the run and then records it.
      await waitFor(
        'the run of attempt 1 to exist',
        async () => (await taskRuns(client, experiment, task.taskId)).length > 0,
        {
          timeoutMs: 30_000,
        },
      );
      // The blip itself: the fault lasts two more seconds (a duration, not a wait for a condition).
      await sleep(2_000);
    } finally {
      await redisPath.setMode('pass');
      await mlflowPath.setMode('pass');
    }
    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 60_000);
    expect(done.state, done.reason).toBe('completed');
    expect(done.runs.map((r) => r.attempt)).toEqual([1]);
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => r.info?.status)).toEqual(['FINISHED']);
    expect((await pyGetRun(mlflowUrl, runs[0]!.info!.run_id!)).status).toBe('FINISHED');
  }, 240_000);
});
