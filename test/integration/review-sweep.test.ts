// A finished sweep becomes one review item for its best child, end to end: workerFromConfig's hook
// hears the sweep's parent job (never the children), the item is `r-<sweep id>` with the best
// child's run, the policy judge approves it, and the registered version comes from that child's run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { judgeFromConfig } from '../../src/cli/judge.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { taskQueueFromConfig, workerFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import { type ReviewStore, reviewStoreFromConfig } from '../../src/review/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { judgedTasksDir, pyRegistry, reviewEnv } from '../support/review.js';
import { waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const modelName = uniqueName('judged-sweep');
const logger = createLogger('warn');
let workDir = '';
let tasksDir = '';
let queue: TaskQueue;
let store: ReviewStore;
let stop: (() => Promise<void>)[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-sweep-'));
  tasksDir = await judgedTasksDir(modelName);
  const cfg = loadConfig(
    reviewEnv({
      mlflowUrl,
      redisUrl,
      prefix: uniqueName('q-review-sweep'),
      tasksDir,
      workDir,
      env: { RUNWARDEN_WORKER_CONCURRENCY: '2' },
    }),
  );
  queue = taskQueueFromConfig(cfg, client);
  store = reviewStoreFromConfig(cfg, client, queue);
  const worker = await workerFromConfig(cfg, client, logger);
  const judge = await judgeFromConfig(cfg, logger);
  stop = [() => worker.close(), () => judge.close(), () => store.close(), () => queue.close()];
}, 60_000);

afterAll(async () => {
  for (const s of stop) await s().catch(() => undefined);
  await rm(workDir, { recursive: true, force: true });
  await rm(tasksDir, { recursive: true, force: true });
});

describe('review of a sweep', () => {
  it('sweep: one review item for the best child, approved by the policy judge into version 1', async () => {
    const res = await queue.enqueueSweep({
      template: 'judged',
      experiment: uniqueName('review-sweep'),
      grid: { rmse: [12, 3, 8] },
      max_concurrency: 2,
      select: { metric: 'rmse', direction: 'min' },
    });
    const sweepId = res.sweep_id;
    const end = await waitForTaskState(queue, sweepId, ['completed', 'failed', 'cancelled'], 180_000);
    expect(end.state).toBe('completed');
    const item = await waitFor(
      'the sweep review to be applied',
      async () => {
        const i = await store.get(`r-${sweepId}`);
        return i?.state === 'applied' ? i : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const children = await Promise.all([0, 1, 2].map((i) => queue.get(`${sweepId}-c${i}`)));
    const best = children.find((c) => c?.params.rmse === 3)!;
    expect(item).toMatchObject({ sweepId, runId: best.runs[0]!.run_id, decision: { verdict: 'approve' } });
    // The children have no items of their own.
    const all = await store.list({ limit: 1_000 });
    expect(all.map((i) => i.id)).toEqual([`r-${sweepId}`]);
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.versions).toEqual(['1']);
    expect(reg.aliases).toEqual({ champion: '1' });
  }, 300_000);
});
