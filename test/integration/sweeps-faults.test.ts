// Sweeps under faults, against real MLflow and Redis: an enqueue whose Redis goes away after the
// parent run was opened closes that run FAILED (it holds no lease, nothing else would); a cancel
// racing the sweep's end follows the end decided first (run status and record agree); a child
// whose concurrency slot was taken by another child stops and goes back to the queue; children
// waiting for a slot back off; a cancelled sweep enqueued again is a fresh one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { getExperimentByName, type Run, searchRuns } from '../../src/index.js';
import { QUEUE_NAME } from '../../src/queue/keys.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { slotKey } from '../../src/sweep/slots.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun } from '../support/python.js';
import { type RedisServer, startRedisServer } from '../support/services.js';
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

async function sweepRuns(experimentId: string, sweepId: string, role: 'parent' | 'child'): Promise<Run[]> {
  return searchRuns(client, {
    experimentIds: [experimentId],
    filter: `tags.\`runwarden.sweep_id\` = '${sweepId}' AND tags.\`runwarden.sweep_role\` = '${role}'`,
  });
}

async function experimentIdOf(name: string): Promise<string> {
  return waitFor('the experiment', async () => (await getExperimentByName(client, name))?.experiment_id);
}

describe('sweeps under faults', () => {
  const prefix = uniqueName('q-sweepf');
  let workDir: string;
  let proxy: FaultProxy | undefined;
  let redis: RedisServer | undefined;
  const queues: TaskQueue[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-sweepf-'));
  });

  afterEach(async () => {
    await stopAllWorkers();
    for (const q of queues.splice(0)) await q.close().catch(() => undefined);
    await proxy?.close();
    proxy = undefined;
    await redis?.stop();
    redis = undefined;
  });

  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('enqueue_sweep: when Redis goes down after the parent run was opened, the enqueue fails and the parent run ends FAILED instead of staying RUNNING', async () => {
    redis = await startRedisServer();
    proxy = await startFaultProxy(mlflowUrl);
    const queue = new TaskQueue({
      redisUrl: redis.url,
      prefix,
      tasksDir: fixtureTasksDir,
      client: testClient(proxy.url),
    });
    queues.push(queue);
    const experiment = uniqueName('sweepf-enq');
    const spec = { template: 'sweepfn', experiment, params: { epochs: 1 }, list: [{ x: 1 }, { x: 2 }] };
    const { sweep_id: sweepId } = await queue.enqueueSweep(spec, { dryRun: true });
    // Hold the parent run's params (the last MLflow call before Redis is written) until Redis is gone.
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    await proxy.setMode('delay', { onlyRequests: /log-batch/, until: gate });
    const enqueued = queue.enqueueSweep(spec).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    await waitFor('the held parent-run call', async () => (proxy!.stats().held > 0 ? true : undefined));
    const experimentId = await experimentIdOf(experiment);
    const [parent] = await sweepRuns(experimentId, sweepId, 'parent');
    expect(parent?.info.status).toBe('RUNNING');
    await redis.stop();
    redis = undefined;
    release();
    await proxy.setMode('pass');
    const err = await enqueued;
    expect(err, 'the enqueue must fail: Redis is down').toBeInstanceOf(Error);
    const run = await pyGetRun(mlflowUrl, parent!.info.run_id);
    expect(run.status).toBe('FAILED');
    expect(run.tags['runwarden.closed_by']).toBe('sweep-enqueue');
  });

  it('cancel racing the sweep end: a cancel arriving while the parent job closes the sweep changes nothing, and the run and the record both say completed', async () => {
    proxy = await startFaultProxy(mlflowUrl);
    const env: WorkerEnv = { mlflowUrl: proxy.url, redisUrl, prefix, workDir };
    const queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    queues.push(queue);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // Hold the parent job half-way through closing the sweep (its comparison table upload).
    await proxy.setMode('delay', { onlyRequests: /sweep_comparison/, until: gate });
    await startWorkerProcess(env);
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment: uniqueName('sweepf-race'),
      params: { epochs: 1 },
      list: [{ x: 1 }, { x: 3 }],
    });
    await waitFor(
      'the parent job closing the sweep',
      async () => (proxy!.stats().held > 0 ? true : undefined),
      {
        timeoutMs: 120_000,
      },
    );
    await queue.cancel(res.sweep_id, 'racing the end');
    release();
    // Both sides have acted once the parent job is over (BullMQ's own state), then compare.
    await waitFor('the parent job over', async () => {
      const s = await (await queue.queue.getJob(res.sweep_id))?.getState();
      return s === 'completed' || s === 'failed' ? s : undefined;
    });
    const end = await waitForTaskState(queue, res.sweep_id, ['completed', 'failed', 'cancelled'], 60_000);
    const run = await waitFor('the parent run closed', async () => {
      const r = await pyGetRun(mlflowUrl, res.parent_run_id!);
      return r.status === 'RUNNING' ? undefined : r;
    });
    expect({ record: end.state, run: run.status }).toEqual({ record: 'completed', run: 'FINISHED' });
    expect(run.tags['runwarden.closed_by']).toBe('sweep');
  });

  it('a child whose concurrency slot was taken by another holder stops (run KILLED, lock lost) and goes back to the queue without using an attempt', async () => {
    const env: WorkerEnv = { mlflowUrl, redisUrl, prefix, workDir };
    const queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    queues.push(queue);
    await startWorkerProcess(env);
    const experiment = uniqueName('sweepf-slot');
    const res = await queue.enqueueSweep({
      template: 'sweepfn',
      experiment,
      params: { epochs: 60, sleep_ms: 100 },
      list: [{ x: 1 }],
      max_concurrency: 1,
    });
    const experimentId = await experimentIdOf(experiment);
    const first = await waitFor(
      'the child running',
      async () =>
        (await sweepRuns(experimentId, res.sweep_id, 'child')).find((r) => r.info.status === 'RUNNING'),
      { timeoutMs: 60_000 },
    );
    // What a stall past the hold looks like from Redis: the child's hold expired and another took the slot.
    const r = new Redis(redisUrl);
    const key = slotKey(prefix, res.sweep_id);
    const childId = tag(first, 'runwarden.task_id')!;
    try {
      await r
        .multi()
        .zrem(key, childId)
        .zadd(key, Date.now() + 3_600_000, 'intruder')
        .exec();
      const killed = await waitFor(
        'the child run stopped',
        async () => {
          const run = await pyGetRun(mlflowUrl, first.info.run_id);
          return run.status === 'RUNNING' ? undefined : run;
        },
        { timeoutMs: 30_000 },
      );
      expect(killed.status).toBe('KILLED');
      expect(killed.tags['runwarden.close_reason'] ?? '').toContain('sweep concurrency slot');
      // While the intruder holds the only slot, the child waits (no second run starts).
      const info = await queue.get(childId);
      expect(info?.state).not.toBe('failed');
      await r.zrem(key, 'intruder');
    } finally {
      r.disconnect();
    }
    const end = await waitForTaskState(queue, childId, ['completed', 'failed', 'cancelled'], 180_000);
    expect(end.state).toBe('completed');
  });
  it('enqueue_sweep: a cancelled sweep enqueued again is a fresh sweep (existing false, a new parent run), not the cancelled one returned', async () => {
    const queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    queues.push(queue);
    const spec = {
      template: 'sweepfn',
      experiment: uniqueName('sweepf-again'),
      params: { epochs: 1 },
      list: [{ x: 1 }, { x: 2 }],
    };
    const first = await queue.enqueueSweep(spec);
    await queue.cancel(first.sweep_id, 'changed my mind');
    expect((await queue.get(first.sweep_id))?.state).toBe('cancelled');
    const again = await queue.enqueueSweep(spec);
    expect(again).toMatchObject({ sweep_id: first.sweep_id, existing: false });
    expect(again.parent_run_id).not.toBe(first.parent_run_id);
    expect((await pyGetRun(mlflowUrl, first.parent_run_id!)).status).toBe('KILLED');
    expect((await pyGetRun(mlflowUrl, again.parent_run_id!)).status).toBe('RUNNING');
    const info = await queue.get(again.sweep_id);
    expect(info?.state).toBe('waiting');
    expect(info?.cancel_requested).toBeUndefined();
    // And once more: now it is the waiting sweep, returned as it is.
    expect(await queue.enqueueSweep(spec)).toMatchObject({
      existing: true,
      parent_run_id: again.parent_run_id,
    });
    await queue.cancel(again.sweep_id, 'cleanup');
  });
  it('children waiting for a slot back off (0.5 s doubling, at most 30 s) instead of bouncing every second', async () => {
    const queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    queues.push(queue);
    const events = new QueueEvents(QUEUE_NAME, { connection: { url: redisUrl }, prefix });
    await events.waitUntilReady();
    const delayed = new Map<string, number>();
    events.on('delayed', ({ jobId }) => delayed.set(jobId, (delayed.get(jobId) ?? 0) + 1));
    try {
      await startWorkerProcess({
        mlflowUrl,
        redisUrl,
        prefix,
        workDir,
        env: { RUNWARDEN_WORKER_CONCURRENCY: '4' },
      });
      const experiment = uniqueName('sweepf-wait');
      const res = await queue.enqueueSweep({
        template: 'sweepfn',
        experiment,
        params: { epochs: 1 },
        list: [{ x: 1, epochs: 60, sleep_ms: 200 }, { x: 2 }, { x: 3 }],
        max_concurrency: 1,
      });
      const started = Date.now();
      const end = await waitForTaskState(queue, res.sweep_id, ['completed', 'failed', 'cancelled'], 180_000);
      const seconds = (Date.now() - started) / 1000;
      expect(end.state).toBe('completed');
      const bounces = [...delayed.entries()].filter(([id]) => id.startsWith(res.sweep_id));
      const most = Math.max(...bounces.map(([, n]) => n));
      console.info(
        `3 children, cap 1, ${seconds.toFixed(1)} s: slot waits per child ${JSON.stringify(bounces)}`,
      );
      // Whichever child ran first (~12 s), a waiter bounced at most ~6 times with the backoff
      // (0.5+1+2+4+8 s); every 0.5–1.5 s it would be ~12 or more.
      expect(most).toBeLessThanOrEqual(7);
    } finally {
      await events.close();
    }
  });
});
