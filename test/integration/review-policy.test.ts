// The policy judge end to end against the real MLflow and Redis: a worker (workerFromConfig, whose
// completion hook creates review items) runs the `judged` fixture, the judge (judgeFromConfig, its
// BullMQ worker on `reviews`) decides with the template's MetricThreshold gate on `composite`, and
// the registry is read back with MLflow's Python client: the first approval makes version 1 and
// `champion`; a worse candidate is rejected with the alias unchanged and the review on the run; a
// better one moves `champion`, gives the old version `previous-champion`, and history shows both.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { judgeFromConfig } from '../../src/cli/judge.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { taskQueueFromConfig, workerFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import {
  modelHistory,
  type ReviewItem,
  type ReviewStore,
  reviewStoreFromConfig,
} from '../../src/review/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun } from '../support/python.js';
import { judgedTasksDir, pyRegistry, reviewEnv } from '../support/review.js';
import { waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const modelName = uniqueName('judged-policy');
const experiment = uniqueName('review-policy');
const logger = createLogger('warn');
let workDir = '';
let tasksDir = '';
let queue: TaskQueue;
let store: ReviewStore;
let stop: (() => Promise<void>)[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-policy-'));
  tasksDir = await judgedTasksDir(modelName);
  const cfg = loadConfig(
    reviewEnv({ mlflowUrl, redisUrl, prefix: uniqueName('q-review-policy'), tasksDir, workDir }),
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

/** Enqueue the fixture with these errors and wait until the judge applied its decision. */
async function judged(rmse: number, mae: number, mse: number): Promise<ReviewItem> {
  const { task } = await queue.enqueue({ template: 'judged', params: { rmse, mae, mse }, experiment });
  await waitForTaskState(queue, task.taskId, 'completed', 90_000);
  return waitFor(
    `review of ${task.taskId} to be applied`,
    async () => {
      const item = await store.get(`r-${task.taskId}`);
      return item?.state === 'applied' ? item : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

describe('policy judge', () => {
  it('policy: the first candidate within the threshold becomes version 1 with alias champion', async () => {
    const item = await judged(10, 10, 10); // composite 28 < threshold 50, no champion yet
    expect(item.decision).toMatchObject({ verdict: 'approve', judge: 'policy' });
    expect(item.outcome).toMatchObject({ modelName, version: '1', alias: 'champion' });
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.versions).toEqual(['1']);
    expect(reg.aliases).toEqual({ champion: '1' });
  }, 180_000);

  it('policy: a worse candidate is rejected, the alias stays, and the run shows the review under its original description', async () => {
    const item = await judged(12, 10, 10); // composite 29: not 5 % better than 28
    expect(item.decision).toMatchObject({ verdict: 'reject', judge: 'policy' });
    expect(item.decision?.notes).toMatch(/minimum relative change check failed/);
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.versions).toEqual(['1']);
    expect(reg.aliases).toEqual({ champion: '1' });
    const run = await pyGetRun(mlflowUrl, item.runId);
    expect(run.tags['runwarden.review.verdict']).toBe('reject');
    expect(run.tags['runwarden.review.judge']).toBe('policy');
    expect(run.tags['runwarden.review.id']).toBe(item.id);
    const note = run.tags['mlflow.note.content'] ?? '';
    expect(note.startsWith(`Task \`${item.taskId}\``)).toBe(true);
    expect(note).toContain(`## Review (${item.id})`);
    expect(note).toContain('**Verdict:** reject');
    expect(note.match(/## Review/g)).toHaveLength(1);
  }, 180_000);

  it('policy: a better candidate moves champion, the old version gets previous-champion, and history shows both moves', async () => {
    const first = (await store.list({ states: ['applied'] })).find((i) => i.decision?.verdict === 'approve')!;
    const item = await judged(2, 2, 2); // composite 2
    expect(item.decision).toMatchObject({ verdict: 'approve', judge: 'policy' });
    expect(item.outcome).toMatchObject({ version: '2', previousVersion: '1' });
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.versions).toEqual(['1', '2']);
    expect(reg.aliases).toEqual({ champion: '2', 'previous-champion': '1' });
    const history = await modelHistory(client, modelName);
    expect(history.map((h) => [h.version, h.previousVersion, h.judge, h.reviewId])).toEqual([
      ['2', '1', 'policy', item.id],
      ['1', undefined, 'policy', first.id],
    ]);
    expect(history[0]!.metrics.composite).toBeCloseTo(2);
    // The same history, visible in the MLflow UI: one tag per promotion and a table row each.
    expect(
      Object.keys(reg.tags)
        .filter((k) => k.startsWith('runwarden.promotion.'))
        .sort(),
    ).toEqual([`runwarden.promotion.${first.id}`, `runwarden.promotion.${item.id}`].sort());
    expect(reg.description).toContain('## Promotion history');
    expect(reg.description.split('\n').filter((l) => l.includes(`| ${item.id} |`))).toHaveLength(1);
    // Counts by decision.
    expect(await store.counts()).toMatchObject({ pending: 0, approve: 2, reject: 1, rework: 0 });
  }, 180_000);
});
