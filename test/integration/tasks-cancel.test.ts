// Cancelling tasks from any process, against real MLflow and Redis: a waiting task is removed
// and never starts, even when a worker comes up later; a running one is killed by the worker
// holding it when `runwarden cancel` runs in another process (the whole process group dies, the
// run ends KILLED with the reason, the task is cancelled).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { RW_TAGS } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun } from '../support/python.js';
import {
  fixtureTasksDir,
  killGroupsQuietly,
  killQuietly,
  liveGroupMembers,
  pidAlive,
  processGroupOf,
  runCli,
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  taskRuns,
  type WorkerEnv,
  waitFor,
  waitForAttemptRun,
  waitForChildPid,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

describe('cancelling tasks', () => {
  const prefix = uniqueName('q-cancel');
  let workDir: string;
  let env: WorkerEnv;
  let queue: TaskQueue;
  const leftovers: number[] = [];
  /** Process groups (not pids) to SIGKILL after each test. */
  const leftoverGroups: number[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-tasks-cancel-'));
    env = { mlflowUrl, redisUrl, prefix, workDir };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
  });

  afterEach(async () => {
    await stopAllWorkers();
    killQuietly(leftovers.splice(0));
    killGroupsQuietly(leftoverGroups.splice(0));
  });

  afterAll(async () => {
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('a waiting task that is cancelled is removed from the queue and never runs when a worker starts later', async () => {
    const experiment = uniqueName('cancel-waiting');
    const { task } = await queue.enqueue({ template: 'quick', params: { epochs: 2 }, experiment });
    expect((await queue.get(task.taskId))?.state).toBe('waiting');

    const { previous, info } = await queue.cancel(task.taskId, 'no longer needed');
    expect(previous).toBe('waiting');
    expect(info.state).toBe('cancelled');
    expect(info.cancel_requested).toBe('no longer needed');
    expect(info.reason).toBe('cancelled before it started: no longer needed');
    expect(await queue.queue.getJob(task.taskId)).toBeUndefined();
    expect(await queue.counts()).toMatchObject({ waiting: 0, prioritized: 0, active: 0, delayed: 0 });
    // Cancelling again is a no-op on a task that has ended.
    expect((await queue.cancel(task.taskId)).previous).toBe('cancelled');

    // A worker that starts afterwards runs the next task, and never the cancelled one.
    await startWorkerProcess(env);
    const other = await queue.enqueue({ template: 'quick', params: { epochs: 1 }, experiment });
    expect(other.task.taskId).not.toBe(task.taskId);
    await waitForTaskState(queue, other.task.taskId, 'completed', 60_000);
    expect(await taskRuns(client, experiment, other.task.taskId)).toHaveLength(1);
    expect(await taskRuns(client, experiment, task.taskId)).toEqual([]);
    const after = await queue.get(task.taskId);
    expect(after?.state).toBe('cancelled');
    expect(after?.runs).toEqual([]);

    // The same spec enqueued again is a new task: it is not reported as the cancelled one, and runs.
    const again = await queue.enqueue({ template: 'quick', params: { epochs: 2 }, experiment });
    expect(again.task.taskId).toBe(task.taskId);
    expect(again.existing).toBe(false);
    expect(again.info.state).not.toBe('cancelled');
    expect(again.info.cancel_requested).toBeUndefined();
    await waitForTaskState(queue, task.taskId, 'completed', 60_000);
    expect(await taskRuns(client, experiment, task.taskId)).toHaveLength(1);
  });

  it('runwarden cancel from another process kills a running task: process group gone, run KILLED with the reason, task cancelled, within 10 s', async () => {
    await startWorkerProcess(env);
    const experiment = uniqueName('cancel-running');
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 60, sleep_ms: 1000, spawn_child: true },
      experiment,
    });
    const { pid: grandchild } = await waitForChildPid(workDir, task.taskId, 1);
    leftovers.push(grandchild);
    const pgid = processGroupOf(grandchild)!;
    expect(pgid).toBeGreaterThan(0);
    leftoverGroups.push(pgid);
    expect(liveGroupMembers(pgid)).toContain(grandchild);
    const { info: running, runId } = await waitForAttemptRun(queue, task.taskId, 1, 10_000);
    expect(running.runs).toHaveLength(1);

    const res = await runCli(['cancel', task.taskId], taskEnv(env));
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out).toContain(`${task.taskId}: active →`);
    const cancelledAt = Date.now();
    const left = () => Math.max(0, 10_000 - (Date.now() - cancelledAt));

    // Within 10 s of the cancel: the task is cancelled, its process group gone, its run ended.
    const info = await waitForTaskState(queue, task.taskId, 'cancelled', 10_000);
    await waitFor('the task process group to be gone', () => liveGroupMembers(pgid).length === 0, {
      timeoutMs: left(),
    });
    const status = await waitFor(
      'the run to end',
      async () => {
        const { run } = await ok(
          client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
        );
        return run?.info?.status !== 'RUNNING' ? run?.info?.status : undefined;
      },
      { timeoutMs: left() },
    );
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
    expect(status).toBe('KILLED');
    expect(pidAlive(grandchild)).toBe(false);
    expect(pidAlive(pgid)).toBe(false);
    expect(info.cancel_requested).toBe('requested from the command line');
    expect(info.reason).toBe('cancelled: requested from the command line');
    expect(info.attempts_made).toBe(1);

    // As MLflow's own client sees it.
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('KILLED');
    expect(run.tags[RW_TAGS.closeReason]).toContain('cancelled');
    expect(run.tags[RW_TAGS.closeReason]).toBe('cancelled: requested from the command line');
    expect(run.tags[RW_TAGS.closedBy]).toBe('worker');
    expect(run.tags[RW_TAGS.cancelRequested]).toBe('true');
    // Not retried, not re-run: still one run, still cancelled.
    expect(await taskRuns(client, experiment, task.taskId)).toHaveLength(1);
    expect((await queue.get(task.taskId))?.state).toBe('cancelled');
  });
});
