// Promotions of one registered model under its promotion lock, against the real MLflow and Redis:
// a late re-apply of an older approval leaves the champion and previous-champion alone; five
// approvals applied at once from two stores give five history tags, five table rows and a chain of
// previous holders without gaps, the newest decision holding the alias; a policy approval whose
// gates no longer pass against the champion that took over meanwhile is applied without moving
// the alias (outcome.notPromoted says why).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { taskQueueFromConfig, workerFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import { modelHistory, type ReviewStore, reviewStoreFromConfig } from '../../src/review/index.js';
import { reviewKeys } from '../../src/review/keys.js';
import { testClient, uniqueName } from '../support/clients.js';
import { judgedTasksDir, pyRegistry, reviewEnv } from '../support/review.js';
import { waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const logger = createLogger('warn');
const experiment = uniqueName('review-promo-lock');
const cleanups: (() => Promise<unknown>)[] = [];
let workDir = '';

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-lock-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function stack(modelName: string) {
  const tasksDir = await judgedTasksDir(modelName);
  const prefix = uniqueName('q-review-lock');
  const cfg = loadConfig(reviewEnv({ mlflowUrl, redisUrl, prefix, tasksDir, workDir }));
  const queue = taskQueueFromConfig(cfg, client);
  const store = reviewStoreFromConfig(cfg, client, queue);
  const worker = await workerFromConfig(cfg, client, logger);
  cleanups.push(
    () => rm(tasksDir, { recursive: true, force: true }),
    () => queue.close(),
    () => store.close(),
    () => worker.close(),
  );
  return { cfg, prefix, queue, store };
}

/** A completed agent-reviewed task's item. */
async function completedItem(queue: TaskQueue, store: ReviewStore, params: Record<string, unknown>) {
  const { task } = await queue.enqueue({ template: 'judged', params, experiment, review: 'agent' });
  await waitForTaskState(queue, task.taskId, 'completed', 90_000);
  return waitFor(`review item of ${task.taskId}`, () => store.get(`r-${task.taskId}`), { timeoutMs: 30_000 });
}

const rowsOf = (description: string) => description.split('\n').filter((l) => /^\| \d{4}-/.test(l));

describe('promotion lock', () => {
  it('a late re-apply of an older approval moves nothing back: champion stays on the newest, previous-champion on the one before it', async () => {
    const modelName = uniqueName('judged-reapply');
    const s = await stack(modelName);
    const base = await completedItem(s.queue, s.store, { rmse: 2, tag: 'reapply' });
    const ids = [base.id];
    for (const x of ['a', 'b']) {
      const { item } = await s.store.create({ ...base, taskId: `${base.taskId}-${x}` });
      ids.push(item.id);
    }
    for (const id of ids) {
      const r = await s.store.decide(id, { verdict: 'approve', judge: 'judge-a' });
      expect(r.applied).toBe(true);
    }
    expect((await pyRegistry(mlflowUrl, modelName)).aliases).toMatchObject({
      champion: '3',
      'previous-champion': '2',
    });
    // The approval of version 2 applied again (its apply lost before it was marked: state back to decided).
    const k = reviewKeys(s.prefix);
    const again = ids[1]!;
    await s.store.redis
      .multi()
      .hset(k.item(again), 'state', 'decided')
      .hdel(k.item(again), 'outcome')
      .zrem(k.byState('applied'), again)
      .zadd(k.byState('decided'), Date.now(), again)
      .exec();
    const r = await s.store.finish(again);
    expect(r.applied).toBe(true);
    expect(r.item.outcome?.notPromoted).toMatch(/superseded/);
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.aliases).toMatchObject({ champion: '3', 'previous-champion': '2' });
    expect(await modelHistory(client, modelName)).toHaveLength(3);
  }, 240_000);

  it('five approvals of one model applied at once from two stores: five tags, five rows, the newest decision holds the alias, each previous holder is the one before', async () => {
    const modelName = uniqueName('judged-five');
    const s = await stack(modelName);
    const other = reviewStoreFromConfig(s.cfg, client, s.queue);
    cleanups.push(() => other.close());
    const base = await completedItem(s.queue, s.store, { rmse: 2, tag: 'five' });
    const ids = [base.id];
    for (let i = 0; i < 4; i++) {
      const { item } = await s.store.create({ ...base, taskId: `${base.taskId}-p${i}` });
      ids.push(item.id);
    }
    const results = await Promise.all(
      ids.map((id, i) => (i % 2 ? other : s.store).decide(id, { verdict: 'approve', judge: `judge-${i}` })),
    );
    // Whatever did not finish (the other store held the item's lock) is finished now.
    for (const id of ids) await s.store.finish(id);
    const items = await Promise.all(ids.map((id) => s.store.get(id)));
    expect(items.map((i) => i?.state)).toEqual(ids.map(() => 'applied'));
    expect(results).toHaveLength(5);
    const history = await modelHistory(client, modelName);
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.versions).toHaveLength(5);
    const promoted = items.filter((i) => !i?.outcome?.notPromoted);
    expect(history).toHaveLength(promoted.length);
    expect(rowsOf(reg.description)).toHaveLength(history.length);
    const newest = [...items].sort((a, b) => b!.decision!.at - a!.decision!.at)[0]!;
    expect(reg.aliases.champion).toBe(newest.outcome!.version);
    const chain = [...history].reverse();
    for (const [i, rec] of chain.entries())
      expect(rec.previousVersion, rec.reviewId).toBe(i ? chain[i - 1]!.version : undefined);
    if (chain.length > 1) expect(reg.aliases['previous-champion']).toBe(chain.at(-2)!.version);
  }, 240_000);

  it('policy: an approval whose gates no longer pass against the champion that took over meanwhile leaves the alias where it is', async () => {
    const modelName = uniqueName('judged-recheck');
    const s = await stack(modelName);
    const good = await completedItem(s.queue, s.store, { rmse: 1, mae: 1, mse: 1, tag: 'good' });
    const worse = await completedItem(s.queue, s.store, { rmse: 3, mae: 3, mse: 3, tag: 'worse' });
    expect((await s.store.decide(good.id, { verdict: 'approve', judge: 'human' })).applied).toBe(true);
    // A policy decision computed before `good` took over (no champion then: the threshold passed).
    const { item: p } = await s.store.create({ ...worse, taskId: `${worse.taskId}-policy`, mode: 'policy' });
    const r = await s.store.decide(p.id, { verdict: 'approve', judge: 'policy' });
    expect(r.applied).toBe(true);
    expect(r.item.outcome?.notPromoted).toMatch(/no longer passes/);
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.aliases.champion).toBe('1');
    expect(reg.aliases['previous-champion']).toBeUndefined();
    expect(await modelHistory(client, modelName)).toHaveLength(1);
  }, 240_000);
});
