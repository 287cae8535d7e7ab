// Sweeps through their entry points, against real MLflow and Redis: the worker's onCompleted hook
// hears a sweep once, for its best child (children never report themselves); `runwarden enqueue
// --sweep` plans with --dry-run and follows a sweep to its end with --wait; MCP enqueue_task takes
// a sweep (dry_run queues nothing), get_task shows its children, cancel_task cancels all of them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { getExperimentByName } from '../../src/index.js';
import { silentLogger } from '../../src/log.js';
import { attemptSettings } from '../../src/queue/from-config.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { type CompletedTask, startWorker } from '../../src/queue/worker.js';
import { testClient, uniqueName } from '../support/clients.js';
import { call, stdioClient } from '../support/mcp.js';
import { pyGetRun } from '../support/python.js';
import {
  fixtureTasksDir,
  runCli,
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  type WorkerEnv,
  waitFor,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

describe('sweep entry points', () => {
  const prefix = uniqueName('q-sweep-entry');
  let workDir: string;
  let env: WorkerEnv;
  let queue: TaskQueue;
  let mcp: { client: Client; transport: StdioClientTransport } | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-sweep-entry-'));
    env = { mlflowUrl, redisUrl, prefix, workDir, env: { RUNWARDEN_WORKER_CONCURRENCY: '2' } };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
  });

  afterEach(async () => {
    await stopAllWorkers();
    await mcp?.transport.close();
    mcp = undefined;
  });

  afterAll(async () => {
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("onCompleted: a sweep's children never report themselves; its parent job reports the best child once, with the sweep id and the sweep's review mode", async () => {
    const cfg = loadConfig({
      MLFLOW_TRACKING_URI: mlflowUrl,
      REDIS_URL: redisUrl,
      RUNWARDEN_TASKS_DIR: fixtureTasksDir,
      RUNWARDEN_WORK_DIR: workDir,
      RUNWARDEN_CACHE_DIR: join(workDir, '.cache'),
    });
    const heard: CompletedTask[] = [];
    const worker = await startWorker({
      redisUrl,
      prefix,
      concurrency: 2,
      shutdownGraceMs: 3_000,
      lockMs: 5_000,
      settings: attemptSettings(cfg),
      client,
      logger: silentLogger,
      onCompleted: async (done) => {
        heard.push(done);
      },
    });
    try {
      const experiment = uniqueName('sweep-hook');
      const res = await queue.enqueueSweep({
        template: 'sweepfn',
        experiment,
        params: { epochs: 1 },
        grid: { x: [0, 2.5, 6] },
        max_concurrency: 2,
        review: 'agent',
      });
      const end = await waitForTaskState(queue, res.sweep_id, ['completed', 'failed', 'cancelled'], 120_000);
      expect(end.state).toBe('completed');
      await waitFor('the hook to be called', () => heard.length > 0, { timeoutMs: 10_000 });
      const best = (await queue.get(`${res.sweep_id}-c1`))!;
      expect(heard).toHaveLength(1);
      expect(heard[0]).toMatchObject({
        sweepId: res.sweep_id,
        runId: best.runs[0]!.run_id,
        metrics: { loss: 1.25 },
        task: { taskId: `${res.sweep_id}-c1`, review: 'agent', params: { x: 2.5 } },
      });
    } finally {
      await worker.close();
    }
  });

  it('runwarden enqueue --sweep: --dry-run prints the children and queues nothing; --wait follows the sweep and exits 0 naming the best child', async () => {
    const experiment = uniqueName('sweep-cli');
    const file = join(workDir, 'sweep.yaml');
    await writeFile(
      file,
      `template: sweepfn\nexperiment: ${experiment}\nparams: { epochs: 2 }\nrandom:\n  space: { x: { min: 0, max: 6 } }\n  samples: 3\n  seed: 11\nmax_concurrency: 2\n`,
    );
    const dry = await runCli(['enqueue', '--sweep', file, '--dry-run'], taskEnv(env));
    expect(dry.err).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(
      /^dry run: would enqueue sweep s-[0-9a-f]{16}: 3 children of sweepfn \(random\), at most 2 at once, best by loss \(min\)\n/,
    );
    const sweepId = /sweep (s-[0-9a-f]{16})/.exec(dry.out)![1]!;
    expect(dry.out.trim().split('\n').slice(1)).toHaveLength(3);
    expect(dry.out).toContain(`  ${sweepId}-c0  x=`);
    expect(await queue.get(sweepId)).toBeUndefined();
    expect(await getExperimentByName(client, experiment)).toBeUndefined();

    await startWorkerProcess(env);
    const run = await runCli(['enqueue', '--sweep', file, '--wait'], taskEnv(env), 180_000);
    expect(run.code).toBe(0);
    expect(run.out).toContain(`enqueued sweep ${sweepId}: 3 children`);
    expect(run.out).toContain(`${sweepId} completed: best child`);
    expect(run.out).toMatch(/best: child \d \(s-[0-9a-f]{16}-c\d\) loss /);
    expect(run.out).toMatch(/parent run: http.*\/runs\/[0-9a-f]{32}/);
    expect(run.err).toContain('done');
  });

  it('MCP enqueue_task with a sweep: dry_run queues nothing; enqueued, get_task shows the children; cancel_task cancels them all and the parent run ends KILLED', async () => {
    mcp = await stdioClient(taskEnv(env));
    const experiment = uniqueName('sweep-mcp');
    const args = {
      template: 'sweepfn',
      experiment,
      params: { epochs: 1 },
      sweep: { list: [{ x: 1 }, { x: 2 }, { x: 3 }], max_concurrency: 1 },
    };
    const dry = await call<{
      task_id: string;
      state: string;
      children: { task_id: string; params: object }[];
    }>(mcp.client, 'enqueue_task', { ...args, dry_run: true });
    expect(dry.state).toBe('dry_run');
    expect(dry.children).toEqual(
      [0, 1, 2].map((i) => ({ task_id: `${dry.task_id}-c${i}`, params: { x: i + 1 } })),
    );
    expect(await queue.get(dry.task_id)).toBeUndefined();

    const queued = await call<{ task_id: string; state: string; run_url: string; existing: boolean }>(
      mcp.client,
      'enqueue_task',
      args,
    );
    expect(queued).toMatchObject({ task_id: dry.task_id, state: 'waiting', existing: false });
    expect(queued.run_url).toMatch(/\/runs\/[0-9a-f]{32}$/);
    const got = await call<{
      state: string;
      sweep: { children: number; waiting: number; parent_run_id: string };
    }>(mcp.client, 'get_task', { task_id: dry.task_id });
    expect(got.sweep).toMatchObject({ children: 3, waiting: 3 });
    const cancelled = await call<{ previous_state: string; state: string }>(mcp.client, 'cancel_task', {
      task_id: dry.task_id,
      reason: 'changed my mind',
    });
    expect(cancelled).toMatchObject({ previous_state: 'waiting', state: 'cancelled' });
    for (let i = 0; i < 3; i++) expect((await queue.get(`${dry.task_id}-c${i}`))?.state).toBe('cancelled');
    expect((await pyGetRun(mlflowUrl, got.sweep.parent_run_id)).status).toBe('KILLED');
    // A worker that starts afterwards runs none of them.
    await startWorkerProcess(env);
    const other = await queue.enqueue({ template: 'sweepfn', params: { x: 9 }, experiment });
    await waitForTaskState(queue, other.task.taskId, 'completed', 60_000);
    for (let i = 0; i < 3; i++) expect((await queue.get(`${dry.task_id}-c${i}`))?.runs).toEqual([]);
  });
});
