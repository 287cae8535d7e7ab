// Sweeps against real MLflow and Redis, run by real `runwarden worker` processes: one parent run
// with every child nested under it (read back with MLflow's Python client), the concurrency cap
// held across two workers (observed in MLflow: never more children RUNNING than the cap), the
// parent closed FINISHED with the best child (or FAILED when every child failed) by the sweep's
// parent job, a parent run that outlives the lease because it holds none, cancel reaching every
// child, and a dry run that changes nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { getExperimentByName, getOrCreateExperiment, type Run, searchRuns } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyListArtifacts, runPythonMlflow } from '../support/python.js';
import {
  fixtureTasksDir,
  startWorkerProcess,
  stopAllWorkers,
  tag,
  type WorkerEnv,
  waitFor,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

interface PyChild {
  run_id: string;
  status: string;
  params: Record<string, string>;
  tags: Record<string, string>;
}

/** The runs MLflow's Python client finds nested under `parentRunId` (tag mlflow.parentRunId). */
function pyChildren(experimentId: string, parentRunId: string): Promise<PyChild[]> {
  const script = `
import json, os
from mlflow.tracking import MlflowClient
runs = MlflowClient().search_runs([os.environ['RW_EXP']], f"tags.mlflow.parentRunId = '{os.environ['RW_PARENT']}'", max_results=1000)
print(json.dumps([{'run_id': r.info.run_id, 'status': r.info.status, 'params': dict(r.data.params), 'tags': dict(r.data.tags)} for r in runs]))
`;
  return runPythonMlflow<PyChild[]>(script, {
    trackingUri: mlflowUrl,
    env: { RW_EXP: experimentId, RW_PARENT: parentRunId },
  });
}

/** Child runs of the sweep RUNNING right now (REST search). */
async function runningChildren(experimentId: string, sweepId: string): Promise<Run[]> {
  return searchRuns(client, {
    experimentIds: [experimentId],
    filter: `tags.\`runwarden.sweep_id\` = '${sweepId}' AND tags.\`runwarden.sweep_role\` = 'child' AND attributes.status = 'RUNNING'`,
  });
}

describe('sweeps', () => {
  const prefix = uniqueName('q-sweeps');
  let workDir: string;
  let env: WorkerEnv;
  let queue: TaskQueue;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-sweeps-'));
    env = { mlflowUrl, redisUrl, prefix, workDir, env: { RUNWARDEN_WORKER_CONCURRENCY: '2' } };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
  });

  afterEach(async () => {
    await stopAllWorkers();
  });

  afterAll(async () => {
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('dry_run: returns the children and their task ids, and enqueues nothing and creates nothing in MLflow', async () => {
    const experiment = uniqueName('sweep-dry');
    const spec = {
      template: 'sweepfn',
      experiment,
      params: { epochs: 2 },
      grid: { x: [1, 2, 3], fail: [false, true] },
    };
    const before = await queue.counts();
    const plan = await queue.enqueueSweep(spec, { dryRun: true });
    expect(plan.dry_run).toBe(true);
    expect(plan.sweep_id).toMatch(/^s-[0-9a-f]{16}$/);
    expect(plan.children.map((c) => c.task_id)).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => `${plan.sweep_id}-c${i}`),
    );
    expect(plan.children.map((c) => c.swept)).toEqual([
      { x: 1, fail: false },
      { x: 1, fail: true },
      { x: 2, fail: false },
      { x: 2, fail: true },
      { x: 3, fail: false },
      { x: 3, fail: true },
    ]);
    expect(plan.children[0]!.params).toEqual({ x: 1, fail: false, epochs: 2, sleep_ms: 0 });
    // The same spec plans the same sweep.
    expect((await queue.enqueueSweep(spec, { dryRun: true })).sweep_id).toBe(plan.sweep_id);

    expect(await queue.counts()).toEqual(before);
    expect(await queue.queue.getJob(plan.sweep_id)).toBeUndefined();
    expect(await queue.get(plan.sweep_id)).toBeUndefined();
    for (const c of plan.children) expect(await queue.get(c.task_id)).toBeUndefined();
    expect(await queue.redis.keys(`${prefix}:*${plan.sweep_id}*`)).toEqual([]);
    expect(await getExperimentByName(client, experiment)).toBeUndefined();
  });

  it('6 children with concurrency 2 on two workers: one parent run with 6 nested children, never more than 2 RUNNING, parent FINISHED with the best child, and kept open past the lease', async () => {
    const experiment = uniqueName('sweep-six');
    const { experimentId } = await getOrCreateExperiment(client, experiment);
    // A 3 s lease and a reaper every 500 ms on this experiment: the sweep lasts longer than the lease.
    const leaseEnv = {
      ...env,
      env: {
        ...env.env,
        RUNWARDEN_LEASE_MS: '3000',
        RUNWARDEN_REAP_INTERVAL_MS: '500',
        RUNWARDEN_REAP_EXPERIMENT_IDS: experimentId,
      },
    };
    await Promise.all([startWorkerProcess(leaseEnv), startWorkerProcess(leaseEnv)]);
    const xs = [0, 1, 2.5, 3.25, 5, 8];
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { epochs: 8, sleep_ms: 250 },
      list: xs.map((x) => ({ x })),
      max_concurrency: 2,
    });
    expect(res.existing).toBe(false);
    const parentRunId = res.parent_run_id!;
    expect(parentRunId).toBeTruthy();
    // The same spec again is the same sweep.
    const again = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { epochs: 8, sleep_ms: 250 },
      list: xs.map((x) => ({ x })),
      max_concurrency: 2,
    });
    expect(again).toMatchObject({ sweep_id: res.sweep_id, existing: true, parent_run_id: parentRunId });

    const startedAt = Date.now();
    let maxRunning = 0;
    let parentRunningPastLease = false;
    const parentStatuses = new Set<string>();
    const end = await waitFor(
      'the sweep to end',
      async () => {
        const running = await runningChildren(experimentId, res.sweep_id);
        maxRunning = Math.max(maxRunning, running.length);
        const info = await queue.get(res.sweep_id);
        if (info && ['completed', 'failed', 'cancelled'].includes(info.state)) return info;
        if (Date.now() - startedAt > 4_500) {
          const parent = await ok(
            client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: parentRunId } } }),
          );
          parentStatuses.add(parent.run.info.status ?? '');
          if (parent.run.info.status === 'RUNNING') parentRunningPastLease = true;
        }
        return undefined;
      },
      { timeoutMs: 180_000, intervalMs: 100 },
    );
    console.info(
      `6-child sweep: ${Math.round((Date.now() - startedAt) / 100) / 10} s, at most ${maxRunning} children RUNNING`,
    );
    expect(end.state).toBe('completed');
    expect(maxRunning).toBe(2);
    expect(parentRunningPastLease, `parent statuses seen: ${[...parentStatuses].join(', ')}`).toBe(true);
    expect(end.sweep).toMatchObject({ children: 6, done: 6, failed: 0, cancelled: 0, running: 0 });
    expect(end.sweep?.best).toMatchObject({ index: 3, task_id: `${res.sweep_id}-c3`, metric: 'loss' });

    const children = await pyChildren(experimentId, parentRunId);
    expect(children).toHaveLength(6);
    for (const c of children) {
      expect(c.status).toBe('FINISHED');
      expect(c.tags['mlflow.parentRunId']).toBe(parentRunId);
      expect(c.tags['runwarden.sweep_id']).toBe(res.sweep_id);
      expect(JSON.parse(c.tags['runwarden.sweep_space']!)).toMatchObject({ kind: 'list' });
      expect(xs).toContain(Number(c.params.x));
    }
    const best = children.find((c) => Number(c.params.x) === 3.25)!;
    const parent = await pyGetRun(mlflowUrl, parentRunId);
    expect(parent.status).toBe('FINISHED');
    expect(parent.tags['runwarden.closed_by']).toBe('sweep');
    expect(parent.tags['runwarden.sweep_best_run_id']).toBe(best.run_id);
    expect(parent.params.best_run_id).toBe(best.run_id);
    expect(parent.params['best.x']).toBe('3.25');
    expect(parent.metrics.loss).toBeCloseTo(0.25 ** 2 + 1 / 8, 6);
    expect(parent.metrics.children_done).toBe(6);
    expect(parent.tags['mlflow.note.content']).toContain('| 3 ★ | completed |');
    const artifacts = await pyListArtifacts(mlflowUrl, parentRunId);
    expect(artifacts.map((a) => a.path)).toContain('sweep_comparison.csv');
    // Children never ran more than once each.
    for (let i = 0; i < 6; i++) expect((await queue.get(`${res.sweep_id}-c${i}`))?.runs).toHaveLength(1);
  });

  it('every child fails: the parent run ends FAILED and the sweep is failed', async () => {
    await startWorkerProcess(env);
    const experiment = uniqueName('sweep-allfail');
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { fail: true, epochs: 1 },
      grid: { x: [1, 2, 3] },
      max_concurrency: 3,
    });
    const end = await waitForTaskState(queue, res.sweep_id, ['completed', 'failed', 'cancelled'], 120_000);
    expect(end.state).toBe('failed');
    expect(end.reason).toContain('every child failed');
    expect(end.sweep).toMatchObject({ children: 3, done: 0, failed: 3 });
    const parent = await pyGetRun(mlflowUrl, res.parent_run_id!);
    expect(parent.status).toBe('FAILED');
    expect(parent.tags['runwarden.close_reason']).toContain('every child failed');
  });

  it('one failing child: the parent still closes FINISHED with the best of the others', async () => {
    await startWorkerProcess(env);
    const experiment = uniqueName('sweep-onefail');
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { epochs: 1 },
      list: [{ x: 1 }, { x: 3, fail: true }, { x: 4 }],
      max_concurrency: 3,
    });
    const end = await waitForTaskState(queue, res.sweep_id, ['completed', 'failed', 'cancelled'], 120_000);
    expect(end.state).toBe('completed');
    expect(end.sweep).toMatchObject({ children: 3, done: 2, failed: 1 });
    expect(end.sweep?.best).toMatchObject({ index: 2, value: 2 });
    const parent = await pyGetRun(mlflowUrl, res.parent_run_id!);
    expect(parent.status).toBe('FINISHED');
    expect(parent.params['best.x']).toBe('4');
  });

  it('a worker killed (SIGKILL) while it runs a child: the child is re-delivered to the other worker, the cap of 1 still holds, and the parent closes FINISHED', async () => {
    const [a, b] = await Promise.all([startWorkerProcess(env), startWorkerProcess(env)]);
    const experiment = uniqueName('sweep-kill');
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { epochs: 40, sleep_ms: 250 },
      list: [{ x: 1 }, { x: 2 }],
      max_concurrency: 1,
    });
    const exp = await getExperimentByName(client, experiment);
    const experimentId = exp!.experiment_id!;
    let maxRunning = 0;
    const [first] = await waitFor('a child running', async () => {
      const r = await runningChildren(experimentId, res.sweep_id);
      return r.length ? r : undefined;
    });
    // Let it get a quarter of the way (a second child would be running by then without the cap).
    await waitFor('the first child a quarter done', async () => {
      maxRunning = Math.max(maxRunning, (await runningChildren(experimentId, res.sweep_id)).length);
      const info = await queue.get(tag(first!, 'runwarden.task_id')!);
      return (info?.progress?.fraction ?? 0) >= 0.25;
    });
    // The run's owner is `worker:<user>@<host>:<pid>`: kill exactly the worker holding it.
    const pid = Number(tag(first!, 'runwarden.owner')?.split(':').at(-1));
    const holder = [a, b].find((w) => w.pid === pid)!;
    expect(holder).toBeDefined();
    holder.child.kill('SIGKILL');
    await holder.exited;

    const end = await waitFor(
      'the sweep to end',
      async () => {
        // The killed attempt's run stays RUNNING (nobody ends it) until attempt 2 settles it: not counted.
        const live = (await runningChildren(experimentId, res.sweep_id)).filter(
          (r) => r.info.run_id !== first!.info.run_id,
        );
        maxRunning = Math.max(maxRunning, live.length);
        const info = await queue.get(res.sweep_id);
        return info && ['completed', 'failed', 'cancelled'].includes(info.state) ? info : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 200 },
    );
    expect(end.state).toBe('completed');
    expect(end.sweep).toMatchObject({ done: 2, failed: 0 });
    expect(maxRunning).toBe(1);
    expect((await pyGetRun(mlflowUrl, first!.info.run_id)).status).not.toBe('RUNNING');
    const parent = await pyGetRun(mlflowUrl, res.parent_run_id!);
    expect(parent.status).toBe('FINISHED');
    expect(parent.params['best.x']).toBe('2');
    const killedChild = tag(first!, 'runwarden.task_id')!;
    expect((await queue.get(killedChild))?.runs.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('cancel a running sweep: running children end KILLED, waiting ones never start, the parent run ends KILLED', async () => {
    await Promise.all([startWorkerProcess(env), startWorkerProcess(env)]);
    const experiment = uniqueName('sweep-cancel');
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { epochs: 200, sleep_ms: 200 },
      grid: { x: [1, 2, 3, 4, 5] },
      max_concurrency: 2,
    });
    const exp = await getExperimentByName(client, experiment);
    await waitFor(
      '2 children running',
      async () => (await runningChildren(exp!.experiment_id!, res.sweep_id)).length === 2,
      {
        timeoutMs: 60_000,
      },
    );
    const { previous, info } = await queue.cancel(res.sweep_id, 'enough');
    expect(previous).toBe('active');
    expect(info.state).toBe('cancelled');

    const parent = await pyGetRun(mlflowUrl, res.parent_run_id!);
    expect(parent.status).toBe('KILLED');
    expect(parent.tags['runwarden.close_reason']).toBe('cancelled: enough');
    for (let i = 0; i < 5; i++)
      await waitForTaskState(queue, `${res.sweep_id}-c${i}`, ['cancelled', 'failed', 'completed'], 30_000);
    await waitFor(
      'no child RUNNING',
      async () => (await runningChildren(exp!.experiment_id!, res.sweep_id)).length === 0,
      {
        timeoutMs: 30_000,
      },
    );
    const children = await pyChildren(exp!.experiment_id!, res.parent_run_id!);
    expect(children).toHaveLength(2);
    for (const c of children) expect(c.status).toBe('KILLED');
    for (let i = 0; i < 5; i++) expect((await queue.get(`${res.sweep_id}-c${i}`))?.state).toBe('cancelled');
    // The parent job, if BullMQ runs it, changes nothing: still cancelled, the run still KILLED.
    const after = await queue.get(res.sweep_id);
    expect(after?.state).toBe('cancelled');
    expect((await pyGetRun(mlflowUrl, res.parent_run_id!)).status).toBe('KILLED');
    const all = await searchRuns(client, { experimentIds: [exp!.experiment_id!] });
    expect(all.filter((r) => tag(r, 'runwarden.sweep_role') === 'child')).toHaveLength(2);
  });
});
