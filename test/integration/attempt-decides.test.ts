// Who decides a task's result when attempts overlap, against the real MLflow with `runAttempt`
// in this process (no Redis needed): a later attempt of a task whose earlier attempt already
// FINISHED completes from that run without training again; an attempt that finishes while another
// attempt's run is already FINISHED ends KILLED as a duplicate and reports the earlier run; an
// attempt whose worker no longer holds the queue lock ends KILLED naming the lost lock; and an
// attempt that lost its lock after the next attempt already closed its run (superseded) reports
// lock-lost, not failed, and leaves that close alone; and the lock is confirmed only after the
// run's metric points are stored (a drain through an outage cannot outlast the confirmation).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { getOrCreateExperiment, RW_TAGS, startRun } from '../../src/index.js';
import { createLogger } from '../../src/log.js';
import { type AttemptContext, runAttempt } from '../../src/queue/attempt.js';
import { attemptSettings } from '../../src/queue/from-config.js';
import { LOCK_LOST_REASON } from '../../src/queue/lock-fence.js';
import { normalizeSpec } from '../../src/queue/spec.js';
import { loadTemplate } from '../../src/queue/templates.js';
import { closeRun } from '../../src/tracking/close-run.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyMetricHistory } from '../support/python.js';
import { fixtureTasksDir, tag, taskRuns } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);
const log = createLogger('silent');

describe.concurrent('attempts that overlap', () => {
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-attempt-decides-'));
  });

  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const setup = async () => {
    const settings = attemptSettings(
      loadConfig({
        MLFLOW_TRACKING_URI: mlflowUrl,
        RUNWARDEN_TASKS_DIR: fixtureTasksDir,
        RUNWARDEN_WORK_DIR: workDir,
        RUNWARDEN_CACHE_DIR: join(workDir, '.cache'),
        RUNWARDEN_KILL_GRACE_MS: '2000',
      }),
    );
    const experiment = uniqueName('attempts-decide');
    const task = normalizeSpec(
      { template: 'quick', params: { epochs: 2 }, experiment },
      loadTemplate(fixtureTasksDir, 'quick'),
    );
    const ctx = (attempt: number, extra: Partial<AttemptContext> = {}): AttemptContext => ({
      attempt,
      jobId: task.taskId,
      signal: new AbortController().signal,
      onRunStarted: async () => undefined,
      onEvent: () => undefined,
      ...extra,
    });
    return { settings, experiment, task, ctx };
  };

  /** A run of the task that ended FINISHED, as a worker that finished but was not heard would leave. */
  const finishedRunOf = async (experiment: string, taskId: string, attempt: number) => {
    const { experimentId } = await getOrCreateExperiment(client, experiment);
    const run = await startRun(client, {
      experimentId,
      tags: { [RW_TAGS.taskId]: taskId, [RW_TAGS.attempt]: String(attempt), 'runwarden.exit_code': '0' },
      handleSignals: false,
    });
    await run.logMetric('val_loss', 0.5, { step: 0 });
    await run.end('FINISHED');
    return run.runId;
  };

  it('attempt 2 of a task whose attempt 1 already FINISHED completes from that run and starts no run of its own', async () => {
    const { settings, experiment, task, ctx } = await setup();
    const earlier = await finishedRunOf(experiment, task.taskId, 1);
    const out = await runAttempt(client, settings, task, ctx(2), log);
    expect(out).toMatchObject({ kind: 'completed', status: 'FINISHED', runId: earlier, exitCode: 0 });
    expect(out.metrics.val_loss).toBe(0.5);
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => [tag(r, RW_TAGS.attempt), r.info?.status])).toEqual([['1', 'FINISHED']]);
  });

  it('an attempt that finishes after another attempt of the task FINISHED ends KILLED as a duplicate and reports the earlier run as the result', async () => {
    const { settings, experiment, task, ctx } = await setup();
    // Attempt 1 skips the start-up check (it has no predecessor), so it trains; meanwhile attempt
    // 2 (a worker that took the task over) has FINISHED.
    const other = await finishedRunOf(experiment, task.taskId, 2);
    const out = await runAttempt(client, settings, task, ctx(1), log);
    expect(out).toMatchObject({ kind: 'completed', status: 'FINISHED', runId: other });
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => [tag(r, RW_TAGS.attempt), r.info?.status])).toEqual([
      ['1', 'KILLED'],
      ['2', 'FINISHED'],
    ]);
    const mine = await pyGetRun(mlflowUrl, runs[0]!.info!.run_id!);
    expect(mine.tags[RW_TAGS.closeReason]).toMatch(/^duplicate: attempt 2 of this task already FINISHED/);
  });

  it('an attempt whose worker cannot confirm the queue lock when the command succeeds ends KILLED naming the lost lock, not FINISHED', async () => {
    const { settings, task, ctx } = await setup();
    const out = await runAttempt(
      client,
      settings,
      task,
      ctx(1, { confirmLock: async () => false, lockLostWhy: () => 'another worker holds the lock now' }),
      log,
    );
    expect(out).toMatchObject({ kind: 'lock-lost', status: 'KILLED', exitCode: 0 });
    const run = await pyGetRun(mlflowUrl, out.runId);
    expect(run.status).toBe('KILLED');
    expect(run.tags[RW_TAGS.closeReason]).toBe(
      "lock lost: this worker lost the task's queue lock (another worker holds the lock now); the task was re-delivered and this attempt stopped",
    );
  });

  it('an attempt whose lock was lost after the next attempt closed its run as superseded reports lock-lost (no task record, no end event), and the superseded close stands', async () => {
    const { settings, task, ctx } = await setup();
    const lock = new AbortController();
    let closing: Promise<void> | undefined;
    let ctxRunId = '';
    const out = await runAttempt(
      client,
      settings,
      { ...task, params: { ...task.params, epochs: 30, sleep_ms: 200 } },
      ctx(1, {
        signal: lock.signal,
        confirmLock: async () => false,
        lockLostWhy: () => 'another worker holds the lock now',
        // At the first metric: attempt 2 (another worker) settles this run as superseded, then
        // this worker's fence finds its lock gone.
        onRunStarted: async (_experimentId, runId) => {
          ctxRunId = runId;
        },
        onEvent: (e) => {
          if (e.type !== 'metric' || closing) return;
          closing = closeRun(client, ctxRunId, 'FAILED', {
            closedBy: 'worker',
            reason: 'superseded: worker lost (attempt 1 was replaced by attempt 2)',
          }).then(() => lock.abort(LOCK_LOST_REASON));
        },
      }),
      log,
    );
    await closing;
    expect(out).toMatchObject({ kind: 'lock-lost', status: 'FAILED' });
    const run = await pyGetRun(mlflowUrl, out.runId);
    expect(run.status).toBe('FAILED');
    expect(run.tags[RW_TAGS.closeReason]).toMatch(/^superseded: worker lost/);
  });

  it('an attempt that succeeds confirms its queue lock only after every metric point is stored, so the drain cannot outlast the confirmation', async () => {
    const { settings, task, ctx } = await setup();
    let runId = '';
    let storedAtConfirm = -1;
    const out = await runAttempt(
      client,
      // No background flush during the attempt: the points wait in the buffer until the end.
      { ...settings, flushIntervalMs: 600_000 },
      { ...task, params: { ...task.params, epochs: 5 } },
      ctx(1, {
        onRunStarted: async (_experimentId, id) => {
          runId = id;
        },
        confirmLock: async () => {
          storedAtConfirm = (await pyMetricHistory(mlflowUrl, runId, 'val_loss')).length;
          return true;
        },
      }),
      log,
    );
    expect(out).toMatchObject({ kind: 'completed', status: 'FINISHED' });
    expect(storedAtConfirm).toBe(5);
  });
});
