// Early stopping of sweep children (the median rule, src/sweep/early-stop.ts) against a real
// MLflow server and Redis, through `runwarden worker` processes. A whole sweep with early_stop:
// its clearly worse child, released once its two siblings finished, is stopped (KILLED with the
// reason), the siblings are FINISHED and the parent run FINISHED with the best child. Then the
// rule in the worker on its own: a child job is put on the task
// queue as the sweep's planner puts it (its task carries `sweep.earlyStop`); its finished siblings
// are runs tagged with the sweep id, each with a full history of the watched metric. A child worse
// than their median after the warm-up is stopped: its run ends KILLED with the reason (read with
// MLflow's Python client), its task ends cancelled after one attempt. A child as good as its
// siblings runs to the end.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, RW_TAGS, withRun } from '../../src/index.js';
import type { SweepEarlyStop } from '../../src/model/sweep-spec.js';
import type { NormalizedTask } from '../../src/model/task-spec.js';
import { normalizeSpec } from '../../src/queue/spec.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { loadTemplate } from '../../src/queue/templates.js';
import { SWEEP_ID_TAG } from '../../src/sweep/siblings.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun } from '../support/python.js';
import {
  findWorkspace,
  fixtureTasksDir,
  startWorkerProcess,
  stopAllWorkers,
  taskRuns,
  type WorkerEnv,
  waitFor,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

/** The fixture's curve: val_loss = scale / (step + 1). */
const curve = (scale: number, steps: number) => Array.from({ length: steps }, (_, s) => scale / (s + 1));

describe('sweep early stopping (median rule) in a worker', () => {
  const prefix = uniqueName('q-early-stop');
  let workDir: string;
  let env: WorkerEnv;
  let queue: TaskQueue;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-early-stop-'));
    env = { mlflowUrl, redisUrl, prefix, workDir };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
  });

  afterEach(async () => {
    await stopAllWorkers();
  });

  afterAll(async () => {
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** A parent run and `n` FINISHED sibling runs of sweep `sweepId`, each logging the curve of `scale`. */
  async function finishedSiblings(experiment: string, sweepId: string, scales: number[], steps: number) {
    const { experimentId } = await getOrCreateExperiment(client, experiment);
    const parentRunId = await withRun(client, { experimentId, runName: `${sweepId}-parent` }, (r) => r.runId);
    for (const [i, scale] of scales.entries()) {
      await withRun(
        client,
        { experimentId, runName: `${sweepId}-${i}`, parentRunId, tags: { [SWEEP_ID_TAG]: sweepId } },
        async (run) => {
          for (const [step, v] of curve(scale, steps).entries()) run.logMetric('val_loss', v, { step });
        },
      );
    }
    return { experimentId, parentRunId };
  }

  /** Put a sweep child of the curve template on the queue, as the sweep's planner does. */
  async function enqueueChild(
    params: Record<string, number | boolean>,
    sweep: { id: string; parentRunId: string; index: number; earlyStop: SweepEarlyStop },
    experiment: string,
  ): Promise<NormalizedTask> {
    const base = normalizeSpec(
      { template: 'curve', params, experiment },
      loadTemplate(fixtureTasksDir, 'curve'),
    );
    const task: NormalizedTask = {
      ...base,
      sweep: {
        id: sweep.id,
        parentTaskId: sweep.id,
        parentRunId: sweep.parentRunId,
        index: sweep.index,
        earlyStop: sweep.earlyStop,
      },
    };
    await queue.records.saveSpec(task);
    await queue.queue.add(task.template, { task }, { jobId: task.taskId, attempts: 2 });
    return task;
  }

  it('a sweep child worse than the median of its finished siblings after the warm-up is stopped: run KILLED "early-stopped: ...", task cancelled, no retry', async () => {
    const experiment = uniqueName('early-stop-bad');
    const sweepId = `s-${uniqueName('es').replace(/[^\w-]/g, '')}`;
    const { parentRunId } = await finishedSiblings(experiment, sweepId, [1, 1.5], 100);
    await startWorkerProcess(env);
    // 100 points 200 ms apart (20 s) if nothing stops it; 20× worse than the siblings at every step.
    const task = await enqueueChild(
      { scale: 20, steps: 100, sleep_ms: 200 },
      {
        id: sweepId,
        parentRunId,
        index: 2,
        earlyStop: { metric: 'val_loss', warmupSteps: 3, direction: 'min' },
      },
      experiment,
    );
    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 90_000);
    expect(done.state, JSON.stringify(done)).toBe('cancelled');
    expect(done.reason).toMatch(
      /^early-stopped: val_loss [\d.]+ at step \d+ worse than the median [\d.]+ of 2 finished siblings$/,
    );
    expect(done.attempts_made).toBe(1);
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs).toHaveLength(1);
    const run = await pyGetRun(mlflowUrl, runs[0]!.info!.run_id!);
    expect(run.status).toBe('KILLED');
    expect(run.tags[RW_TAGS.closeReason]).toBe(done.reason);
    // Stopped at or after the warm-up step, well before its 100 points.
    const step = Number(/at step (\d+)/.exec(done.reason ?? '')![1]);
    expect(step).toBeGreaterThanOrEqual(3);
    expect(step).toBeLessThan(99);
    // The value it was stopped with is its best so far; the median is the siblings' at that step.
    const [, value, median] = /val_loss ([\d.]+) at step \d+ worse than the median ([\d.]+)/.exec(
      done.reason!,
    )!;
    expect(Number(value)).toBeCloseTo(20 / (step + 1), 4);
    expect(Number(median)).toBeCloseTo((1 + 1.5) / 2 / (step + 1), 4);
  }, 150_000);

  it('a sweep child as good as its finished siblings is not stopped and ends FINISHED', async () => {
    const experiment = uniqueName('early-stop-good');
    const sweepId = `s-${uniqueName('es').replace(/[^\w-]/g, '')}`;
    const { parentRunId } = await finishedSiblings(experiment, sweepId, [1, 1.5], 30);
    await startWorkerProcess(env);
    // Equal to the better sibling at every step: better than the median, never stopped.
    const task = await enqueueChild(
      { scale: 1, steps: 30, sleep_ms: 100 },
      {
        id: sweepId,
        parentRunId,
        index: 2,
        earlyStop: { metric: 'val_loss', warmupSteps: 0, direction: 'min' },
      },
      experiment,
    );
    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 90_000);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs).toHaveLength(1);
    expect((await pyGetRun(mlflowUrl, runs[0]!.info!.run_id!)).status).toBe('FINISHED');
  }, 150_000);
});

describe('a sweep with early_stop', () => {
  const prefix = uniqueName('q-sweep-early-stop');
  let workDir: string;
  let queue: TaskQueue;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-sweep-early-stop-'));
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
  });

  afterEach(async () => {
    await stopAllWorkers();
  });

  afterAll(async () => {
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('a child clearly worse than its finished siblings is stopped: KILLED "early-stopped: ...", siblings FINISHED, parent FINISHED with the best child', async () => {
    const experiment = uniqueName('sweep-early-stop');
    // Three at once; the bad child (20× worse at every step, 200 ms a point: 20 s if nothing stops
    // it) holds until the test releases it, after its two siblings finished.
    await startWorkerProcess({
      mlflowUrl,
      redisUrl,
      prefix,
      workDir,
      env: { RUNWARDEN_WORKER_CONCURRENCY: '3' },
    });
    const sweep = await queue.enqueueSweep({
      template: 'curve',
      experiment,
      list: [
        { scale: 1, steps: 100 },
        { scale: 1.5, steps: 100 },
        { scale: 20, steps: 100, sleep_ms: 200, hold: true },
      ],
      max_concurrency: 3,
      early_stop: { metric: 'val_loss', warmup_steps: 3 },
    });
    expect(sweep.select).toEqual({ metric: 'val_loss', direction: 'min' });
    const [good, fair, bad] = sweep.children.map((c) => c.task_id) as [string, string, string];
    const goodDone = await waitForTaskState(queue, good, ['completed', 'failed', 'cancelled'], 120_000);
    const fairDone = await waitForTaskState(queue, fair, ['completed', 'failed', 'cancelled'], 120_000);
    expect([goodDone.state, fairDone.state]).toEqual(['completed', 'completed']);
    const ws = await waitFor('the held child to start', () => findWorkspace(workDir, bad, 1), {
      timeoutMs: 60_000,
    });
    await writeFile(join(ws, 'output', 'go'), '');
    const releasedAt = Date.now();

    const stopped = await waitForTaskState(queue, bad, ['completed', 'failed', 'cancelled'], 90_000);
    expect(stopped.state, JSON.stringify(stopped)).toBe('cancelled');
    expect(stopped.reason).toMatch(
      /^early-stopped: val_loss [\d.]+ at step \d+ worse than the median [\d.]+ of 2 finished siblings$/,
    );
    expect(stopped.attempts_made).toBe(1);
    console.log(`${stopped.reason} (${Date.now() - releasedAt} ms after release)`);
    const badRun = await pyGetRun(mlflowUrl, stopped.runs[0]!.run_id);
    expect(badRun.status).toBe('KILLED');
    expect(badRun.tags[RW_TAGS.closeReason]).toBe(stopped.reason);
    expect(badRun.tags[SWEEP_ID_TAG]).toBe(sweep.sweep_id);
    expect(badRun.tags['mlflow.parentRunId']).toBe(sweep.parent_run_id);
    for (const sibling of [goodDone, fairDone]) {
      const r = await pyGetRun(mlflowUrl, sibling.runs[0]!.run_id);
      expect(r.status).toBe('FINISHED');
      expect(r.tags['mlflow.parentRunId']).toBe(sweep.parent_run_id);
    }

    // The parent closes once the last child ended: FINISHED, the best child is the first one.
    const parentDone = await waitForTaskState(
      queue,
      sweep.sweep_id,
      ['completed', 'failed', 'cancelled'],
      90_000,
    );
    expect(parentDone.state, JSON.stringify(parentDone)).toBe('completed');
    const parent = await pyGetRun(mlflowUrl, sweep.parent_run_id!);
    expect(parent.status).toBe('FINISHED');
    expect(parent.tags['runwarden.sweep_best_run_id']).toBe(goodDone.runs[0]!.run_id);
    expect(parent.metrics.val_loss).toBeCloseTo(1 / 100, 6);
  }, 300_000);
});
