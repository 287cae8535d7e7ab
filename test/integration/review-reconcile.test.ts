// A completion hook that fails does not lose the review: the worker's hook reaches Redis through a
// fault proxy that resets every connection while the task completes (an outage past the hook's retry
// budget), the task still completes, and the judge's reconcile pass creates the item from the task
// record; the hook landing later (a re-delivered job) and further passes never make a second item,
// and the policy judge promotes exactly one version.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { attemptSettings, taskQueueFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import { type CompletedTask, type RunningWorker, startWorker } from '../../src/queue/worker.js';
import { type ReviewStore, reviewStoreFromConfig, startJudge } from '../../src/review/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { judgedTasksDir, pyRegistry, reviewEnv } from '../support/review.js';
import { waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const logger = createLogger('warn');
const modelName = uniqueName('judged-reconcile');
const prefix = uniqueName('q-review-rec');
let workDir = '';
let tasksDir = '';
let proxy: FaultProxy;
let queue: TaskQueue;
let store: ReviewStore;
let hookStore: ReviewStore;
let worker: RunningWorker;
const hookCalls: { done: CompletedTask; error?: string }[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-rec-'));
  tasksDir = await judgedTasksDir(modelName);
  const cfg = loadConfig(reviewEnv({ mlflowUrl, redisUrl, prefix, tasksDir, workDir }));
  proxy = await startFaultProxy(redisUrl.replace(/^redis:\/\//, 'tcp://'));
  queue = taskQueueFromConfig(cfg, client);
  store = reviewStoreFromConfig(cfg, client, queue);
  // The hook's own Redis connection goes through the proxy; its retry budget is short (1 s).
  hookStore = reviewStoreFromConfig(
    { ...cfg, redisUrl: `redis://127.0.0.1:${proxy.port}` },
    client,
    undefined,
    {
      redisRetryMs: 1_000,
    },
  );
  worker = await startWorker({
    redisUrl: cfg.redisUrl,
    prefix: cfg.queue.prefix,
    concurrency: 1,
    shutdownGraceMs: 3_000,
    lockMs: cfg.queue.lockMs,
    settings: attemptSettings(cfg),
    client,
    logger,
    onCompleted: async (done) => {
      try {
        await hookStore.create({
          taskId: done.task.taskId,
          runId: done.runId,
          experimentId: done.experimentId,
          template: done.task.template,
          mode: done.task.review as 'policy',
        });
        hookCalls.push({ done });
      } catch (err) {
        hookCalls.push({ done, error: (err as Error).message });
        throw err;
      }
    },
  });
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await hookStore?.close();
  await store?.close();
  await queue?.close();
  await proxy?.close();
  await rm(workDir, { recursive: true, force: true });
  await rm(tasksDir, { recursive: true, force: true });
});

describe('review reconcile', () => {
  it('a hook that fails (Redis connections reset): the reconcile pass creates the item later, and never a second one', async () => {
    // Every connection, open or new, is reset: Redis unreachable for the hook.
    await proxy.setMode('reset', { existing: true });
    const { task } = await queue.enqueue({
      template: 'judged',
      params: { rmse: 6 },
      experiment: uniqueName('rec'),
    });
    await waitForTaskState(queue, task.taskId, 'completed', 90_000);
    await waitFor('the hook to fail', () =>
      hookCalls.some((c) => c.done.task.taskId === task.taskId && c.error),
    );
    const id = `r-${task.taskId}`;
    expect(await store.get(id)).toBeUndefined();

    const judge = await startJudge({ store, tasks: queue, redisUrl, prefix, logger, reconcileMs: 1_000 });
    try {
      const applied = await waitFor(
        'the reconcile pass to create the item and the policy judge to apply it',
        async () => {
          const i = await store.get(id);
          return i?.state === 'applied' ? i : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect(applied).toMatchObject({
        taskId: task.taskId,
        mode: 'policy',
        decision: { verdict: 'approve' },
      });
      // The hook lands late (as a re-delivered job would call it): the item exists already.
      await proxy.setMode('pass');
      const late = await hookStore.create({
        taskId: task.taskId,
        runId: applied.runId,
        experimentId: applied.experimentId,
        template: 'judged',
        mode: 'policy',
      });
      expect(late.existing).toBe(true);
      await judge.reconcile();
      await judge.reconcile();
      const all = await store.list({ limit: 1_000 });
      expect(all.filter((i) => i.taskId === task.taskId).map((i) => i.id)).toEqual([id]);
      expect(await store.counts()).toMatchObject({ pending: 0, approve: 1 });
      const reg = await pyRegistry(mlflowUrl, modelName);
      expect(reg.versions).toEqual(['1']);
      expect(reg.aliases).toEqual({ champion: '1' });
    } finally {
      await judge.close();
    }
  }, 180_000);
});
