// The review system's repair paths against the real MLflow and Redis, without running tasks (the
// runs are made through the API, task and sweep records as the queue and src/sweep/ store them):
// one decided item that can never be applied goes to `failed` with its reason and the reconcile
// pass still applies the next; a completed sweep whose completion hook never ran gets its item
// (best child, sweep's mode) from reconcile; a rework verdict on an item whose task was stored
// with review 'none' (a sweep's best child) queues a task reviewed in the item's mode, and
// applying it again finds that same task; list_pending_reviews' mode filter finds an agent item
// behind many policy ones.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ok } from '../../src/mlflow/client.js';
import { taskQueueFromConfig } from '../../src/queue/from-config.js';
import { withApplyLock } from '../../src/review/apply-lock.js';
import { reconcileReviews, reviewStoreFromConfig } from '../../src/review/index.js';
import { reviewKeys } from '../../src/review/keys.js';
import { reviewScripts } from '../../src/review/scripts.js';
import { getOrCreateExperiment } from '../../src/tracking/experiments.js';
import { testClient, uniqueName } from '../support/clients.js';
import { judgedTasksDir, reviewEnv } from '../support/review.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const cleanups: (() => Promise<unknown>)[] = [];
let workDir = '';
let experimentId = '';

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-repair-'));
  experimentId = (await getOrCreateExperiment(client, uniqueName('review-repair'))).experimentId;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function stack() {
  const tasksDir = await judgedTasksDir(uniqueName('judged-repair'));
  const prefix = uniqueName('q-review-repair');
  const cfg = loadConfig(reviewEnv({ mlflowUrl, redisUrl, prefix, tasksDir, workDir }));
  const queue = taskQueueFromConfig(cfg, client);
  const store = reviewStoreFromConfig(cfg, client, queue);
  cleanups.push(
    () => rm(tasksDir, { recursive: true, force: true }),
    () => queue.close(),
    () => store.close(),
  );
  return { prefix, queue, store, k: reviewKeys(prefix) };
}

async function newRun(tags: Record<string, string> = {}): Promise<string> {
  const { run } = await ok(
    client.api.POST('/api/2.0/mlflow/runs/create', {
      body: {
        experiment_id: experimentId,
        start_time: Date.now(),
        tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      },
    }),
  );
  return run.info.run_id;
}

describe('review repair', () => {
  it('reconcile: a decided item that can never be applied goes to failed with its reason, and the pass still applies the next one', async () => {
    const s = await stack();
    // Claims a model folder it does not have: registering it is refused for good.
    const bad = await s.store.create({
      taskId: uniqueName('t-bad'),
      runId: await newRun({ 'runwarden.model_exists': 'true' }),
      experimentId,
      template: 'judged',
      mode: 'agent',
    });
    const good = await s.store.create({
      taskId: uniqueName('t-good'),
      runId: await newRun(),
      experimentId,
      template: 'judged',
      mode: 'agent',
    });
    // Both decided, neither applied (a judge died right after claiming), the bad one older.
    for (const [i, { item }] of [bad, good].entries()) {
      const verdict = i === 0 ? 'approve' : 'reject';
      await s.store.redis
        .multi()
        .hset(
          s.k.item(item.id),
          'state',
          'decided',
          'decision',
          JSON.stringify({ verdict, judge: 'j', at: Date.now() }),
        )
        .zrem(s.k.byState('pending'), item.id)
        .zadd(s.k.byState('decided'), item.createdAt, item.id)
        .exec();
    }
    const r = await reconcileReviews(s.store, s.queue);
    expect(r.applied).toEqual([good.item.id]);
    const failed = await s.store.get(bad.item.id);
    expect(failed?.state).toBe('failed');
    expect(failed?.failure).toBeTruthy();
    expect((await s.store.list({ states: ['failed'] })).map((i) => i.id)).toEqual([bad.item.id]);
    expect((await s.store.get(good.item.id))?.state).toBe('applied');
    // The next pass leaves it failed and finds nothing to do.
    expect((await reconcileReviews(s.store, s.queue)).applied).toEqual([]);
  }, 120_000);

  it('reconcile: a completed sweep whose completion hook never ran gets one item for its best child, in the sweep’s review mode', async () => {
    const s = await stack();
    const sweepId = `s-${uniqueName('sw').replace(/[^a-z0-9]/gi, '')}`;
    const childId = `${sweepId}-c1`;
    const runId = await newRun();
    const now = Date.now();
    // The queue's connection has no offline queue: wait until it is ready before writing to it.
    const conn = s.queue.redis;
    if (conn.status !== 'ready') await new Promise((resolve) => conn.once('ready', resolve));
    await s.queue.redis
      .multi()
      .hset(
        s.queue.keys.task(childId),
        'spec',
        JSON.stringify({ taskId: childId, template: 'judged', review: 'none' }),
      )
      .hset(
        s.queue.keys.task(sweepId),
        'finalState',
        'completed',
        'sweep',
        JSON.stringify({ parentRunId: 'p', experimentId, childCount: 2, review: 'agent' }),
        'result',
        JSON.stringify({
          status: 'FINISHED',
          experiment_id: experimentId,
          best: { index: 1, task_id: childId, run_id: runId, metric: 'composite', value: 1 },
        }),
      )
      .zadd(s.queue.keys.index, now, sweepId)
      .zadd(s.queue.keys.index, now, childId)
      .exec();
    const r = await reconcileReviews(s.store, s.queue);
    expect(r.created).toEqual([`r-${sweepId}`]);
    expect(await s.store.get(`r-${sweepId}`)).toMatchObject({
      taskId: childId,
      runId,
      sweepId,
      mode: 'agent',
      template: 'judged',
      state: 'pending',
    });
    expect((await reconcileReviews(s.store, s.queue)).created).toEqual([]);
  }, 120_000);

  it('rework: the new task is reviewed in the item’s mode (its task was stored with review none), and applying it again finds the same task', async () => {
    const s = await stack();
    const { task } = await s.queue.enqueue({
      template: 'judged',
      params: { tag: uniqueName('rw') },
      review: 'none',
    });
    const { item } = await s.store.create({
      taskId: task.taskId,
      runId: await newRun(),
      experimentId,
      template: 'judged',
      mode: 'agent',
    });
    const r = await s.store.decide(item.id, { verdict: 'rework', judge: 'j', notes: 'more epochs' });
    expect(r.applied).toBe(true);
    const reworkId = r.item.outcome!.reworkTaskId!;
    expect((await s.queue.records.get(reworkId))?.spec?.review).toBe('agent');
    // Applied again with its plan lost (a crash between enqueue and saving the plan).
    await s.store.redis
      .multi()
      .hset(s.k.item(item.id), 'state', 'decided')
      .hdel(s.k.item(item.id), 'plan', 'outcome')
      .zrem(s.k.byState('applied'), item.id)
      .zadd(s.k.byState('decided'), item.createdAt, item.id)
      .exec();
    const again = await s.store.finish(item.id);
    expect(again.item.outcome?.reworkTaskId).toBe(reworkId);
    const ids = await s.queue.redis.zrange(s.queue.keys.index, 0, -1);
    expect(ids.filter((id) => id !== task.taskId)).toEqual([reworkId]);
  }, 120_000);

  it('list: the agent filter finds an agent item waiting behind many older policy items', async () => {
    const s = await stack();
    const runId = await newRun();
    for (let i = 0; i < 6; i++)
      await s.store.create({
        taskId: uniqueName(`t-pol${i}`),
        runId,
        experimentId,
        template: 'judged',
        mode: 'policy',
      });
    const { item } = await s.store.create({
      taskId: uniqueName('t-agent'),
      runId,
      experimentId,
      template: 'judged',
      mode: 'agent',
    });
    const listed = await s.store.list({ states: ['pending'], mode: 'agent', limit: 1 });
    expect(listed.map((i) => i.id)).toEqual([item.id]);
    expect((await s.store.list({ states: ['pending'], mode: 'policy', limit: 10 })).length).toBe(6);
  }, 120_000);

  it('apply lock fencing: a holder whose lease was taken over by another stops at its next check instead of writing on', async () => {
    const s = await stack();
    const key = s.k.applyLock(uniqueName('fence'));
    await s.store.exists('connect'); // waits for the store's Redis connection
    const steps: string[] = [];
    const run = withApplyLock(reviewScripts(s.store.redis), key, 10_000, async (lease) => {
      await lease.check();
      steps.push('first write');
      // The lease ran out during a stall and another applier took the lock.
      await s.store.redis.set(key, 'another-owner', 'PX', 10_000);
      await lease.check();
      steps.push('second write');
    });
    await expect(run).rejects.toThrow(/lost the lock/);
    expect(steps).toEqual(['first write']);
    // Its release did not free the other owner's lock.
    expect(await s.store.redis.get(key)).toBe('another-owner');
  }, 60_000);

  it('the same verdict from another judge (an MCP server restarted with a new owner id) finishes a decided item; the first decision’s notes stand, and once applied another judge is refused', async () => {
    const s = await stack();
    const { item } = await s.store.create({
      taskId: uniqueName('t-restart'),
      runId: await newRun(),
      experimentId,
      template: 'judged',
      mode: 'agent',
    });
    const first = { verdict: 'reject', judge: 'mcp:host:1234abcd', notes: 'first notes', at: Date.now() };
    await s.store.redis
      .multi()
      .hset(s.k.item(item.id), 'state', 'decided', 'decision', JSON.stringify(first))
      .zrem(s.k.byState('pending'), item.id)
      .zadd(s.k.byState('decided'), item.createdAt, item.id)
      .exec();
    const r = await s.store.decide(item.id, {
      verdict: 'reject',
      judge: 'mcp:host:9999ffff',
      notes: 'other notes',
    });
    expect(r.applied).toBe(true);
    expect(r.firstStands).toContain('by mcp:host:1234abcd');
    expect((await s.store.get(item.id))?.decision).toMatchObject({
      judge: first.judge,
      notes: 'first notes',
    });
    await expect(
      s.store.decide(item.id, { verdict: 'reject', judge: 'mcp:host:5555eeee' }),
    ).rejects.toMatchObject({
      code: 'REVIEW_ALREADY_DECIDED',
    });
  }, 60_000);
});
