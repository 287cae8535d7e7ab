// Decisions exactly once, against the real MLflow and Redis: two judges (two ReviewStores, each its
// own Redis connection) deciding the same items at the same moment get one decision per item, the
// other refused naming who decided; a rework verdict runs the task again with the judge's notes and
// links the runs; and a `runwarden judge` process SIGKILLed while its alias request is held by the
// fault proxy leaves a decided, half-applied item that the next judge finishes: one version, the
// alias set, one history record.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { judgeFromConfig } from '../../src/cli/judge.js';
import { loadConfig } from '../../src/config.js';
import { hasCode } from '../../src/errors/index.js';
import { createLogger } from '../../src/log.js';
import { taskQueueFromConfig, workerFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import { modelHistory, type ReviewStore, reviewStoreFromConfig } from '../../src/review/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun } from '../support/python.js';
import { judgedTasksDir, pyRegistry, reviewEnv } from '../support/review.js';
import { repoRoot } from '../support/services.js';
import { cliPath, taskRuns, waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const logger = createLogger('warn');
const experiment = uniqueName('review-decisions');
const cleanups: (() => Promise<unknown>)[] = [];
const children: ChildProcess[] = [];
let workDir = '';

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-decisions-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** A worker, a queue and a store over a fresh prefix and a tasks folder promoting into `modelName`. */
async function stack(modelName: string, env: Record<string, string> = {}) {
  const tasksDir = await judgedTasksDir(modelName);
  const e = reviewEnv({ mlflowUrl, redisUrl, prefix: uniqueName('q-review-dec'), tasksDir, workDir, env });
  const cfg = loadConfig(e);
  const queue = taskQueueFromConfig(cfg, client);
  const store = reviewStoreFromConfig(cfg, client, queue);
  const worker = await workerFromConfig(cfg, client, logger);
  cleanups.push(
    () => rm(tasksDir, { recursive: true, force: true }),
    () => queue.close(),
    () => store.close(),
    () => worker.close(),
  );
  return { cfg, env: e, queue, store };
}

async function completedItem(
  queue: TaskQueue,
  store: ReviewStore,
  params: Record<string, unknown>,
  review?: string,
) {
  const { task } = await queue.enqueue({
    template: 'judged',
    params,
    experiment,
    ...(review ? { review } : {}),
  });
  await waitForTaskState(queue, task.taskId, 'completed', 90_000);
  return waitFor(`review item of ${task.taskId}`, () => store.get(`r-${task.taskId}`), { timeoutMs: 30_000 });
}

describe('review decisions', () => {
  it('two judges deciding the same items at once: one decision each; the other is refused naming who decided, or (same verdict) finishes it and is told the first decision stands', async () => {
    const modelName = uniqueName('judged-race');
    const s = await stack(modelName);
    const other = reviewStoreFromConfig(s.cfg, client, s.queue);
    cleanups.push(() => other.close());
    const item = await completedItem(s.queue, s.store, { rmse: 3 }, 'agent');
    expect(item).toMatchObject({ mode: 'agent', state: 'pending' });
    // Approve against reject on the real item, then eight more items on the same run.
    const ids = [item.id];
    for (let i = 0; i < 8; i++) {
      const { item: extra } = await s.store.create({ ...item, taskId: `${item.taskId}-race${i}` });
      ids.push(extra.id);
    }
    const outcomes = await Promise.all(
      ids.map(async (id, i) => {
        const [a, b] = await Promise.allSettled([
          s.store.decide(id, { verdict: i === 0 ? 'approve' : 'reject', judge: 'judge-a', notes: 'a says' }),
          other.decide(id, { verdict: 'reject', judge: 'judge-b', notes: 'b says' }),
        ]);
        return { id, a, b };
      }),
    );
    for (const { id, a, b } of outcomes) {
      const stored = await s.store.get(id);
      const winner = stored!.decision!.judge;
      const [w, l] = winner === 'judge-a' ? [a, b] : [b, a];
      expect(w.status, id).toBe('fulfilled');
      expect(w.status === 'fulfilled' && w.value.firstStands, id).toBeFalsy();
      if (l.status === 'rejected') {
        expect(hasCode(l.reason, 'REVIEW_ALREADY_DECIDED')).toBe(true);
        expect(String((l.reason as Error).message)).toContain(`by ${winner} at 20`);
      } else {
        // The same verdict sent while the first was being applied finishes it; the first one stands.
        expect(id, 'approve against reject must be refused').not.toBe(ids[0]);
        expect(l.value.firstStands).toContain(`by ${winner} at 20`);
        expect(stored?.decision?.notes).toBe(winner === 'judge-a' ? 'a says' : 'b says');
      }
      expect(stored?.state).toBe('applied');
    }
    const counts = await s.store.counts();
    expect(counts.approve + counts.reject).toBe(ids.length);
    // A third, late decision is refused too; the winner repeating itself is not an error.
    const first = (await s.store.get(item.id))!;
    await expect(other.decide(item.id, { verdict: 'rework', judge: 'judge-c' })).rejects.toMatchObject({
      code: 'REVIEW_ALREADY_DECIDED',
    });
    const again = await s.store.decide(item.id, {
      verdict: first.decision!.verdict,
      judge: first.decision!.judge,
    });
    expect(again.applied).toBe(true);
    const reg = await pyRegistry(mlflowUrl, modelName).catch(() => undefined);
    expect(reg?.versions ?? []).toEqual(first.decision!.verdict === 'approve' ? ['1'] : []);
  }, 240_000);

  it('rework: the task runs again with the judge notes, and the two runs are linked', async () => {
    const s = await stack(uniqueName('judged-rework'));
    const item = await completedItem(s.queue, s.store, { rmse: 4 }, 'agent');
    const r = await s.store.decide(item.id, {
      verdict: 'rework',
      judge: 'agent-j',
      notes: 'try a smaller rmse',
    });
    expect(r.applied).toBe(true);
    const reworkTaskId = r.item.outcome?.reworkTaskId;
    expect(reworkTaskId).toBeTruthy();
    expect(reworkTaskId).not.toBe(item.taskId);
    await waitForTaskState(s.queue, reworkTaskId!, 'completed', 90_000);
    const [newRun] = await taskRuns(client, experiment, reworkTaskId!);
    const py = await pyGetRun(mlflowUrl, newRun!.info.run_id);
    expect(py.tags['runwarden.rework_of_run']).toBe(item.runId);
    expect(py.tags['runwarden.rework_of_task']).toBe(item.taskId);
    expect(py.tags['fixture.review_notes']).toBe('try a smaller rmse');
    const old = await pyGetRun(mlflowUrl, item.runId);
    expect(old.tags['runwarden.review.rework_task_id']).toBe(reworkTaskId);
    expect(old.tags['mlflow.note.content']).toContain('**Verdict:** rework');
    // The rework task is reviewed in its turn (agent mode carried over).
    const next = await waitFor('the rework task to get its own review item', () =>
      s.store.get(`r-${reworkTaskId}`),
    );
    expect(next).toMatchObject({ mode: 'agent', state: 'pending' });
    // Finishing the decision again enqueues nothing new.
    const again = await s.store.decide(item.id, { verdict: 'rework', judge: 'agent-j' });
    expect(again.item.outcome?.reworkTaskId).toBe(reworkTaskId);
  }, 240_000);

  it('approve: a run that stored no model is refused before the decision is taken, and the item stays pending', async () => {
    const modelName = uniqueName('judged-nomodel');
    const s = await stack(modelName);
    const item = await completedItem(s.queue, s.store, { rmse: 9, model: false }, 'agent');
    await expect(s.store.decide(item.id, { verdict: 'approve', judge: 'agent-n' })).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'verdict',
    });
    expect(await s.store.get(item.id)).toMatchObject({ state: 'pending' });
    expect((await s.store.evidence(item.id)).policy?.passed).toBe(false);
    const r = await s.store.decide(item.id, {
      verdict: 'reject',
      judge: 'agent-n',
      notes: 'no model stored',
    });
    expect(r).toMatchObject({ applied: true, item: { state: 'applied', decision: { verdict: 'reject' } } });
  }, 180_000);

  it('runwarden judge: SIGTERM stops it within the bound, exit 0', async () => {
    const s = await stack(uniqueName('judged-term'));
    const judge = spawn(process.execPath, ['--import', 'tsx', cliPath, 'judge'], {
      cwd: repoRoot,
      env: { ...process.env, ...s.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(judge);
    let err = '';
    judge.stderr?.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<number | null>((r) => judge.on('exit', (code) => r(code)));
    await waitFor('the judge to start', () => err.includes('runwarden judge: waiting for reviews'), {
      timeoutMs: 60_000,
    });
    const t0 = Date.now();
    judge.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(err).toContain('runwarden judge: stopping');
  }, 120_000);

  it('a judge killed mid-approval (its alias request held): the next judge finishes with one version, the alias and one history record', async () => {
    const modelName = uniqueName('judged-crash');
    const proxy: FaultProxy = await startFaultProxy(mlflowUrl);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    cleanups.push(async () => {
      release();
      await proxy.close();
    });
    const s = await stack(modelName, { RUNWARDEN_REVIEW_APPLY_LOCK_MS: '2000' });
    await proxy.setMode('delay', {
      until: held,
      onlyRequests: /^POST \/api\/2\.0\/mlflow\/registered-models\/alias /,
    });
    // The first judge: its own process, reaching MLflow through the proxy.
    const judge = spawn(process.execPath, ['--import', 'tsx', cliPath, 'judge'], {
      cwd: repoRoot,
      env: { ...process.env, ...s.env, MLFLOW_TRACKING_URI: proxy.url },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(judge);
    let err = '';
    judge.stderr?.on('data', (d) => {
      err += d;
    });
    const exited = new Promise((r) => judge.on('exit', r));
    await waitFor('the judge to start', () => err.includes('runwarden judge: waiting for reviews'), {
      timeoutMs: 60_000,
    });
    const item = await completedItem(s.queue, s.store, { rmse: 5 });
    await waitFor('the alias request to be held', () => proxy.stats().held > 0, { timeoutMs: 60_000 });
    judge.kill('SIGKILL');
    await exited;
    const half = await s.store.get(item.id);
    expect(half).toMatchObject({ state: 'decided', decision: { verdict: 'approve', judge: 'policy' } });
    const before = await pyRegistry(mlflowUrl, modelName);
    expect(before.versions).toEqual(['1']);
    expect(before.aliases).toEqual({});
    // The next judge (direct to MLflow) finishes the promotion in its reconcile pass.
    const cfg = loadConfig({ ...s.env, RUNWARDEN_REVIEW_RECONCILE_MS: '1000' });
    const next = await judgeFromConfig(cfg, logger);
    cleanups.push(() => next.close());
    const done = await waitFor(
      'the next judge to finish the promotion',
      async () => {
        const i = await s.store.get(item.id);
        return i?.state === 'applied' ? i : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(done.outcome).toMatchObject({ modelName, version: '1', alias: 'champion' });
    const after = await pyRegistry(mlflowUrl, modelName);
    expect(after.versions).toEqual(['1']);
    expect(after.aliases).toEqual({ champion: '1' });
    expect(await modelHistory(client, modelName)).toHaveLength(1);
    expect(after.description.split('\n').filter((l) => l.includes(`| ${item.id} |`))).toHaveLength(1);
  }, 240_000);
});
