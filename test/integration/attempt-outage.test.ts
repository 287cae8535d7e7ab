// An attempt stopped during a long MLflow outage, in this process against the real MLflow behind
// the fault proxy: the protocol lines still waiting when the command ended (a metric blocked on a
// full buffer) share one deadline (RUNWARDEN_END_FLUSH_TIMEOUT_MS, 3 s here), so a cancelled
// attempt finishes in bounded time instead of waiting for MLflow to come back; and an attempt
// whose command exited 0 but whose end failed on the outage retries ending FINISHED, never
// FAILED "could not run".
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createMlflowClient } from '../../src/index.js';
import { createLogger } from '../../src/log.js';
import { type AttemptOutcome, runAttempt } from '../../src/queue/attempt.js';
import { attemptSettings } from '../../src/queue/from-config.js';
import { normalizeSpec } from '../../src/queue/spec.js';
import { loadTemplate } from '../../src/queue/templates.js';
import { uniqueName } from '../support/clients.js';
import { endOutageClient } from '../support/end-outage.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun } from '../support/python.js';
import { fixtureTasksDir } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const log = createLogger('silent');

describe('an attempt stopped during an MLflow outage', () => {
  let workDir: string;
  let proxy: FaultProxy;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-attempt-outage-'));
    proxy = await startFaultProxy(mlflowUrl);
  });

  afterAll(async () => {
    await proxy?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('cancelled while MLflow refuses connections and a metric waits on a full buffer: the attempt ends cancelled within the end deadline, not when MLflow is back', async () => {
    const client = createMlflowClient({
      trackingUri: proxy.url,
      timeoutMs: 2_000,
      retry: { maxRetries: 1, baseDelayMs: 50, maxDelayMs: 200 },
    });
    const settings = {
      ...attemptSettings(
        loadConfig({
          MLFLOW_TRACKING_URI: mlflowUrl,
          RUNWARDEN_TASKS_DIR: fixtureTasksDir,
          RUNWARDEN_WORK_DIR: workDir,
          RUNWARDEN_CACHE_DIR: join(workDir, '.cache'),
          RUNWARDEN_KILL_GRACE_MS: '2000',
          RUNWARDEN_END_FLUSH_TIMEOUT_MS: '3000',
        }),
      ),
      // One point fills the buffer: the next metric line blocks until a flush makes room.
      maxBufferedPoints: 1,
    };
    const task = normalizeSpec(
      { template: 'quick', params: { epochs: 1000, sleep_ms: 20 }, experiment: uniqueName('attempt-outage') },
      loadTemplate(fixtureTasksDir, 'quick'),
    );
    const cancel = new AbortController();
    let outageAt = 0;
    const attempt = runAttempt(
      client,
      settings,
      task,
      {
        attempt: 1,
        jobId: task.taskId,
        signal: cancel.signal,
        onRunStarted: async () => undefined,
        onEvent: (e) => {
          if (e.type !== 'metric' || outageAt) return;
          outageAt = Date.now();
          void proxy.setMode('refuse', { existing: true }).then(() => cancel.abort('test cancels'));
        },
      },
      log,
    );
    // Before the fix the attempt waited on the blocked line until MLflow came back (never, here).
    let timer: NodeJS.Timeout | undefined;
    const out = await Promise.race([
      attempt,
      new Promise<'stuck'>((r) => {
        timer = setTimeout(() => r('stuck'), 60_000);
      }),
    ]);
    clearTimeout(timer);
    await proxy.setMode('pass');
    expect(out).not.toBe('stuck');
    expect((out as AttemptOutcome).kind).toBe('cancelled');
    // Command stop (kill grace 2 s) + the lines' 3 s + uploads and end failing fast + end's 3 s drain.
    expect(Date.now() - outageAt).toBeLessThan(45_000);
  }, 150_000);

  it('exit 0, then ending the run fails once on an outage that is over right after: the run ends FINISHED and the task completes, not FAILED "could not run"', async () => {
    const endProxy = await startFaultProxy(mlflowUrl);
    try {
      // The outage ends right after the first failed read of the run while it ends.
      const outage = endOutageClient(endProxy, 1);
      const client = outage.client;
      const settings = {
        ...attemptSettings(
          loadConfig({
            MLFLOW_TRACKING_URI: mlflowUrl,
            RUNWARDEN_TASKS_DIR: fixtureTasksDir,
            RUNWARDEN_WORK_DIR: workDir,
            RUNWARDEN_CACHE_DIR: join(workDir, '.cache'),
          }),
        ),
        // No heartbeat read in the way of the end's reads.
        heartbeatMs: 60_000,
      };
      const task = normalizeSpec(
        { template: 'quick', params: { epochs: 2 }, experiment: uniqueName('attempt-end-outage') },
        loadTemplate(fixtureTasksDir, 'quick'),
      );
      const out = await runAttempt(
        client,
        settings,
        task,
        {
          attempt: 1,
          jobId: task.taskId,
          signal: new AbortController().signal,
          // The lock is confirmed just before the run ends: the outage starts there.
          confirmLock: async () => {
            await outage.startOutage();
            return true;
          },
          onRunStarted: async () => undefined,
          onEvent: () => undefined,
        },
        log,
      );
      expect(outage.failedEndReads()).toBe(1);
      expect(out).toMatchObject({ kind: 'completed', status: 'FINISHED', exitCode: 0 });
      expect((await pyGetRun(mlflowUrl, out.runId)).status).toBe('FINISHED');
    } finally {
      await endProxy.close();
    }
  }, 150_000);
});
