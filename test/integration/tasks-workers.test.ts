// Workers that die or stop, against real MLflow and Redis: a kill -9'd worker's task is taken
// over by another worker (the lost attempt's run FAILED as superseded, one FINISHED run, nothing
// of the lost attempt left running); SIGTERM gives the running task a grace period, then ends its
// run KILLED and puts the task back in the queue for another worker; and a worker whose Redis has
// gone still stops in bounded time. Each test has its own queue prefix, so a task one test leaves
// behind cannot occupy the next test's workers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, inject, it, type TestContext } from 'vitest';
import { RW_TAGS } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun } from '../support/python.js';
import { startRedisServer } from '../support/services.js';
import {
  findWorkspace,
  fixtureTasksDir,
  killGroupsQuietly,
  killQuietly,
  liveGroupMembers,
  pidAlive,
  processesMatching,
  processGroupOf,
  sleep,
  startWorkerProcess,
  stopAllWorkers,
  tag,
  taskRuns,
  type WorkerEnv,
  type WorkerProcess,
  waitFor,
  waitForAttemptRun,
  waitForChildPid,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

// The tests run concurrently (each with its own queue, workers and experiment): most of their
// time is spent waiting on sleeping scripts, lock expiry and shutdown graces.
describe.concurrent('workers that die or stop', () => {
  let workDir: string;
  const queues: TaskQueue[] = [];

  /**
   * A fresh queue prefix for one test: its TaskQueue, worker environment, a worker starter whose
   * workers are stopped when the test ends, and a list of pids killed when the test ends.
   */
  const fresh = (onTestFinished: TestContext['onTestFinished'], extra: Record<string, string> = {}) => {
    const prefix = uniqueName('q-workers');
    const queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    queues.push(queue);
    const env: WorkerEnv = { mlflowUrl, redisUrl, prefix, workDir, env: extra };
    const leftovers: number[] = [];
    onTestFinished(() => killQuietly(leftovers));
    const start = async (o: WorkerEnv = env) => {
      const w = await startWorkerProcess(o);
      onTestFinished(async () => {
        await w.stop('SIGTERM', 15_000);
      });
      return w;
    };
    return { queue, env, start, leftovers };
  };

  /** The worker whose pid is in the run's owner tag (`worker:user@host:pid`). */
  const holderOf = async (runId: string, workers: WorkerProcess[]) => {
    const { run } = await ok(
      client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
    );
    const owner = run?.data?.tags?.find((t) => t.key === RW_TAGS.owner)?.value ?? '';
    const holder = workers.find((w) => owner.endsWith(`:${w.pid}`));
    if (!holder) throw new Error(`run ${runId} is owned by ${owner}, none of our workers`);
    return holder;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-tasks-workers-'));
  });

  afterAll(async () => {
    await stopAllWorkers();
    await Promise.all(queues.map((q) => q.close()));
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('kill -9 of a worker mid-task: the worker beside it finishes the task as attempt 2, the lost attempt is FAILED as superseded, and its script is not left running', async ({
    expect,
    onTestFinished,
  }) => {
    const { queue, start, leftovers } = fresh(onTestFinished);
    const workers = await Promise.all([start(), start()]);
    const experiment = uniqueName('worker-lost');
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 15, sleep_ms: 1000 },
      experiment,
    });
    const { info: active, runId: lostRunId } = await waitForAttemptRun(queue, task.taskId, 1, 20_000);
    expect(active.runs.map((r) => r.attempt)).toEqual([1]);
    const lostWorkspace = await waitFor('the workspace of attempt 1', () =>
      findWorkspace(workDir, task.taskId, 1),
    );
    const lostWorker = await holderOf(lostRunId, workers);
    const survivor = workers.find((w) => w !== lostWorker)!;
    // Once the script runs, lose its worker.
    await waitFor('the script of attempt 1 to run', () => processesMatching(lostWorkspace).length > 0);
    lostWorker.child.kill('SIGKILL');
    expect((await lostWorker.exited).signal).toBe('SIGKILL');

    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 75_000);
    expect(done.state).toBe('completed');
    expect(done.runs.map((r) => r.attempt)).toEqual([1, 2]);

    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => [tag(r, RW_TAGS.attempt), r.info?.status])).toEqual([
      ['1', 'FAILED'],
      ['2', 'FINISHED'],
    ]);
    const lost = await pyGetRun(mlflowUrl, lostRunId);
    expect(lost.status).toBe('FAILED');
    expect(lost.tags[RW_TAGS.closeReason]).toMatch(/^superseded: worker lost/);
    expect(lost.tags[RW_TAGS.closeReason]).toBe(
      'superseded: worker lost (attempt 1 was replaced by attempt 2)',
    );
    expect(lost.tags[RW_TAGS.closedBy]).toBe('worker');
    const finished = await pyGetRun(mlflowUrl, runs[1]!.info!.run_id!);
    expect(finished.status).toBe('FINISHED');
    expect(finished.tags[RW_TAGS.attempt]).toBe('2');
    expect(finished.tags[RW_TAGS.owner]).toMatch(new RegExp(`^worker:.*:${survivor.pid}$`));
    expect(finished.tags['runwarden.exit_code']).toBe('0');
    expect(finished.metrics.val_loss).toBe(1.2 / 15);

    // No `node quick.mjs` of the lost attempt is left running.
    const orphans = processesMatching(lostWorkspace);
    leftovers.push(...orphans.map((o) => o.pid));
    expect(orphans.map((o) => o.args)).toEqual([]);
  });

  it('kill -9 of a worker mid-task: once the next attempt has taken over, no process of the lost attempt (its script or its grandchild) is still running', async ({
    expect,
    onTestFinished,
  }) => {
    const { queue, start, leftovers } = fresh(onTestFinished);
    const workers = await Promise.all([start(), start()]);
    // A quiet script (30 s between outputs) that started a grandchild.
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 4, sleep_ms: 30_000, spawn_child: true },
      experiment: uniqueName('worker-lost-group'),
    });
    const { pid: lostGrandchild, workspace: lostWorkspace } = await waitForChildPid(workDir, task.taskId, 1);
    const lostGroup = processGroupOf(lostGrandchild)!;
    leftovers.push(lostGrandchild);
    onTestFinished(() => killGroupsQuietly([lostGroup]));
    const { runId: lostRunId } = await waitForAttemptRun(queue, task.taskId, 1, 10_000);
    const lostWorker = await holderOf(lostRunId, workers);
    lostWorker.child.kill('SIGKILL');
    await lostWorker.exited;

    // Attempt 2 starts on the other worker (after the lost lock expires) and runs its own script.
    const { pid: nextGrandchild } = await waitForChildPid(workDir, task.taskId, 2, 45_000);
    leftovers.push(nextGrandchild);
    expect(pidAlive(nextGrandchild)).toBe(true);
    await waitForAttemptRun(queue, task.taskId, 2, 10_000);
    // Give the lost attempt a moment to be cleaned up; then nothing of it may be left.
    await waitFor('the lost attempt’s processes to be gone', () => liveGroupMembers(lostGroup).length === 0, {
      timeoutMs: 3_000,
    }).catch(() => undefined);
    const lostScript = processesMatching(lostWorkspace);
    const lostGroupAlive = liveGroupMembers(lostGroup);
    const grandchildAlive = pidAlive(lostGrandchild);
    leftovers.push(...lostScript.map((p) => p.pid), ...lostGroupAlive);
    await queue.cancel(task.taskId, 'test over');
    await waitForTaskState(queue, task.taskId, 'cancelled', 20_000);
    expect(
      {
        script: lostScript.map((p) => p.args),
        grandchildAlive,
        group: lostGroupAlive,
      },
      `processes of the lost attempt 1 (process group ${lostGroup}) still run while attempt 2 runs the same task`,
    ).toEqual({ script: [], grandchildAlive: false, group: [] });
  });

  it('SIGTERM of a worker mid-task: it exits 0 within 15 s, the run ends KILLED for the shutdown, the task goes back to the queue and another worker completes it', async ({
    expect,
    onTestFinished,
  }) => {
    const { queue, env, start } = fresh(onTestFinished, { RUNWARDEN_SHUTDOWN_GRACE_MS: '1000' });
    const first = await start();
    const experiment = uniqueName('worker-sigterm');
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 8, sleep_ms: 1000 },
      experiment,
    });
    const { runId } = await waitForAttemptRun(queue, task.taskId, 1, 20_000);
    const workspace = await waitFor('the workspace of attempt 1', () =>
      findWorkspace(workDir, task.taskId, 1),
    );
    // The script itself, not its supervisor (which leads the process group and names the path too).
    const scripts = () =>
      processesMatching(workspace).filter((p) => !p.args.includes('@@runwarden-spawn-error'));
    await waitFor('the script of attempt 1 to run', () => scripts().length > 0);
    expect(scripts()).toHaveLength(1);

    const t0 = Date.now();
    first.child.kill('SIGTERM');
    const exit = await Promise.race([first.exited, sleep(15_000).then(() => 'hung' as const)]);
    expect(exit, `worker stderr:\n${first.stderr().slice(-3000)}`).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The script was stopped with its worker.
    expect(processesMatching(workspace)).toEqual([]);

    const killed = await pyGetRun(mlflowUrl, runId);
    expect(killed.status).toBe('KILLED');
    expect(killed.tags[RW_TAGS.closeReason]).toMatch(/shut down|shutdown/);
    expect(killed.tags[RW_TAGS.closeReason]).toBe('the worker shut down; the task goes back to the queue');
    const back = await queue.get(task.taskId);
    expect(back?.state).toMatch(/^(delayed|waiting)$/);
    expect(back?.reason ?? '').toBe('');

    const second = await start({ ...env, env: {} });
    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 60_000);
    expect(done.state).toBe('completed');
    expect(done.runs.map((r) => r.attempt)).toEqual([1, 2]);
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => [tag(r, RW_TAGS.attempt), r.info?.status])).toEqual([
      ['1', 'KILLED'],
      ['2', 'FINISHED'],
    ]);
    expect(runs.filter((r) => r.info?.status === 'FINISHED')).toHaveLength(1);
    expect(tag(runs[1]!, RW_TAGS.owner)).toMatch(new RegExp(`^worker:.*:${second.pid}$`));
  });

  it('a worker whose Redis is gone still stops within 20 s of SIGTERM', async ({
    expect,
    onTestFinished,
  }) => {
    const { start } = fresh(onTestFinished);
    const redis = await startRedisServer();
    let stopped = false;
    try {
      const worker = await start({
        mlflowUrl,
        redisUrl: redis.url,
        prefix: uniqueName('q-gone'),
        workDir,
        env: { RUNWARDEN_SHUTDOWN_GRACE_MS: '5000' },
      });
      await redis.stop();
      stopped = true;
      await sleep(1_000);
      expect(worker.alive()).toBe(true);
      const t0 = Date.now();
      worker.child.kill('SIGTERM');
      const exit = await Promise.race([worker.exited, sleep(20_000).then(() => 'hung' as const)]);
      const log = worker
        .stderr()
        .split('\n')
        .filter((l) => !l.includes('ECONNREFUSED'))
        .join('\n');
      expect(
        exit,
        `no exit within 20 s of SIGTERM; worker stderr without the connection errors:\n${log}`,
      ).toEqual({
        code: 0,
        signal: null,
      });
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      if (!stopped) await redis.stop();
    }
  });
});
