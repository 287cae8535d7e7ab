// Early stopping of sweep children (the median rule, src/sweep/early-stop.ts) against a real
// MLflow server and Redis, through a `runwarden worker` process. A child job is put on the task
// queue as the sweep's planner puts it (its task carries `sweep.earlyStop`); its finished siblings
// are runs tagged with the sweep id, each with a full history of the watched metric. A child worse
// than their median after the warm-up is stopped: its run ends KILLED with the reason (read with
// MLflow's Python client), its task ends cancelled after one attempt. A child as good as its
// siblings runs to the end.
import { mkdtemp, rm } from 'node:fs/promises';
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
  fixtureTasksDir,
  startWorkerProcess,
  stopAllWorkers,
  taskRuns,
  type WorkerEnv,
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
