// Independent re-scoring by the policy judge, end to end against the real MLflow and Redis: a worker
// runs the `forecast-claims` fixture (a real last-value forecaster exported as ONNX, which reports
// its errors × claim_factor), the judge re-scores the stored model on the template's holdout with
// onnxruntime-node and compares. An honest run is re-scored (eval.* on the run, linked to its logged
// model), approved and promoted; a liar is rejected with both numbers and nothing registered; a
// small liar (10 % better than its model) passes the loose holdout check but is rejected by the
// claim check (the model re-scored on the run's own test rows, features.json test_rows); a
// template whose holdout is missing fails the re-score and is rejected; concurrent first re-scores log each point once.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { judgeFromConfig } from '../../src/cli/judge.js';
import { loadConfig } from '../../src/config.js';
import { CLAIM_TAGS } from '../../src/eval/claim-record.js';
import { EVAL_TAGS, rescoreRun } from '../../src/eval/rescore.js';
import { createLogger } from '../../src/log.js';
import { ok } from '../../src/mlflow/client.js';
import { taskQueueFromConfig, workerFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import { type ReviewItem, type ReviewStore, reviewStoreFromConfig } from '../../src/review/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyMetricHistory } from '../support/python.js';
import { pyRegistry, reviewEnv } from '../support/review.js';
import { fixtureTasksDir, waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const modelName = uniqueName('forecast-claims');
const experiment = uniqueName('rescore');
const logger = createLogger('warn');
const repoRoot = path.resolve(import.meta.dirname, '..', '..');
let workDir = '';
let tasksDir = '';
let queue: TaskQueue;
let store: ReviewStore;
let stop: (() => Promise<void>)[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-rescore-'));
  tasksDir = await mkdtemp(path.join(tmpdir(), 'rw-rescore-tasks-'));
  const tpl = path.join(tasksDir, 'forecast-claims');
  await cp(path.join(fixtureTasksDir, 'forecast-claims'), tpl, { recursive: true });
  // The ONNX writer of the seasonal-naive-node template (no npm packages: runs in any workspace).
  await cp(path.join(repoRoot, 'tasks', 'seasonal-naive-node', 'onnx.mjs'), path.join(tpl, 'onnx.mjs'));
  await mkdir(path.join(tasksDir, 'data'));
  await cp(
    path.join(repoRoot, 'tasks', 'data', 'weekly_cases_holdout.csv'),
    path.join(tasksDir, 'data', 'holdout.csv'),
  );
  const yaml = path.join(tpl, 'task.yaml');
  const text = (await readFile(yaml, 'utf8')).replace(
    'model_name: forecast-claims-fixture',
    `model_name: ${modelName}`,
  );
  await writeFile(yaml, text);
  // A variant whose holdout does not exist: its re-score cannot run.
  const bad = path.join(tasksDir, 'forecast-claims-lost');
  await cp(tpl, bad, { recursive: true });
  await writeFile(
    path.join(bad, 'task.yaml'),
    text
      .replace('name: forecast-claims', 'name: forecast-claims-lost')
      .replace('holdout: data/holdout.csv', 'holdout: data/lost.csv'),
  );
  const cfg = loadConfig(
    reviewEnv({ mlflowUrl, redisUrl, prefix: uniqueName('q-rescore'), tasksDir, workDir }),
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

async function judged(
  params: Record<string, string | number | boolean>,
  template = 'forecast-claims',
): Promise<ReviewItem> {
  const { task } = await queue.enqueue({ template, params, experiment });
  await waitForTaskState(queue, task.taskId, 'completed', 120_000);
  return waitFor(
    `review of ${task.taskId} to be applied`,
    async () => {
      const item = await store.get(`r-${task.taskId}`);
      return item?.state === 'applied' ? item : undefined;
    },
    { timeoutMs: 90_000 },
  );
}

describe('re-scoring by the policy judge', () => {
  let honest: ReviewItem;

  it('rescore: an honest model is re-scored on the holdout (eval.* on the run and its logged model), approved and promoted', async () => {
    honest = await judged({ claim_factor: 1, tag: 'honest' });
    expect(honest.decision).toMatchObject({ verdict: 'approve', judge: 'policy' });
    expect(honest.decision?.notes).toMatch(/re-scored on 100 rows of data\/holdout\.csv/);
    expect(honest.outcome).toMatchObject({ modelName, version: '1', alias: 'champion' });
    const reg = await pyRegistry(mlflowUrl, modelName);
    expect(reg.aliases).toEqual({ champion: '1' });
    const run = await pyGetRun(mlflowUrl, honest.runId);
    expect(run.tags[EVAL_TAGS.status]).toBe('ok');
    expect(run.tags[EVAL_TAGS.holdout]).toBe('data/holdout.csv');
    expect(run.tags[EVAL_TAGS.digest]).toMatch(/^[0-9a-f]{16}$/);
    expect(run.metrics['eval.rows']).toBe(100);
    // The judge's numbers equal the run's own (float32 model vs float64 script).
    expect(run.metrics['eval.rmse']).toBeCloseTo(run.metrics.test_rmse!, 5);
    expect(run.metrics['eval.mae']).toBeCloseTo(run.metrics.test_mae!, 5);
    expect(run.metrics['eval.composite']).toBeCloseTo(run.metrics.composite!, 5);
    expect(Math.abs(Number(run.tags[EVAL_TAGS.gap]))).toBeLessThan(1e-5);
    // The claim check: re-scored on the run's own 100 test rows of its training input, equal.
    expect(run.tags[CLAIM_TAGS.status]).toBe('ok');
    expect(run.tags[CLAIM_TAGS.input]).toMatch(/^file:\/\/.*data\/holdout\.csv$/);
    expect(run.metrics['eval.test_rows']).toBe(100);
    expect(run.metrics['eval.test_rmse']).toBeCloseTo(run.metrics.test_rmse!, 5);
    expect(run.metrics['eval.test_composite']).toBeCloseTo(run.metrics.composite!, 5);
    expect(Math.abs(Number(run.tags[CLAIM_TAGS.gap]))).toBeLessThan(1e-4);
    expect(honest.decision?.notes).toMatch(/claim check: re-scored on the run's own 100 test rows/);
    const modelId = run.tags['runwarden.model_id'];
    expect(modelId).toMatch(/^m-/);
    {
      // Linked to the logged model: MLflow lists the eval metrics on the model itself.
      const { model } = await ok(
        client.api.GET('/api/2.0/mlflow/logged-models/{model_id}', {
          params: { path: { model_id: modelId! } },
        }),
      );
      const keys = (model?.data?.metrics ?? []).map((m) => m.key);
      expect(keys).toEqual(
        expect.arrayContaining([
          'eval.rmse',
          'eval.mae',
          'eval.mse',
          'eval.composite',
          'eval.test_rmse',
          'eval.test_composite',
        ]),
      );
    }
  }, 240_000);

  it('rescore: a template that reports a much better RMSE than its model has is rejected with both numbers, nothing registered', async () => {
    const item = await judged({ claim_factor: 0.3, tag: 'liar' });
    expect(item.decision).toMatchObject({ verdict: 'reject', judge: 'policy' });
    const run = await pyGetRun(mlflowUrl, item.runId);
    const reported = run.metrics.test_rmse!;
    const rescored = run.metrics['eval.rmse']!;
    expect(rescored / reported).toBeCloseTo(1 / 0.3, 4);
    // Every reported error is 0.3 × the real one: the note gives both numbers and the gap.
    const num = (v: number) => String(Number(v.toPrecision(3)));
    expect(item.decision?.notes).toMatch(
      /RE-SCORE DISAGREES: reported (test_rmse|test_mae|test_mse|composite) [\d.]+, re-scored [\d.]+ on 100 holdout rows \(gap \+233% > 50%\)/,
    );
    expect(item.decision?.notes).toContain(`test_rmse ${num(reported)} vs ${num(rescored)} (+233%)`);
    expect(run.tags[EVAL_TAGS.status]).toBe('ok');
    // Both checks disagree: the claim check's flag leads the note, the holdout's follows.
    expect(run.tags[EVAL_TAGS.note]).toMatch(/^CLAIM DISAGREES: .* RE-SCORE DISAGREES/);
    expect(item.decision?.notes).toMatch(/CLAIM DISAGREES: .*\(\+233 % > 2 %\)/);
    // Nothing registered from it (the honest run's version, if any, keeps the alias).
    expect(item.outcome?.version).toBeUndefined();
    if (honest) expect((await pyRegistry(mlflowUrl, modelName)).aliases).toEqual({ champion: '1' });
  }, 240_000);

  it('rescore: a template that reports 10 % better than its model passes the holdout tolerance but is rejected by the claim check with both numbers', async () => {
    const item = await judged({ claim_factor: 0.9, tag: 'small-liar' });
    expect(item.decision).toMatchObject({ verdict: 'reject', judge: 'policy' });
    const run = await pyGetRun(mlflowUrl, item.runId);
    const reported = run.metrics.test_rmse!;
    const rescored = run.metrics['eval.test_rmse']!;
    expect(rescored / reported).toBeCloseTo(1 / 0.9, 4);
    // The loose holdout check alone lets it through (gap +11 % < 50 %) ...
    expect(Number(run.tags[EVAL_TAGS.gap])).toBeLessThan(0.5);
    expect(item.decision?.notes).not.toMatch(/RE-SCORE DISAGREES/);
    // ... the claim check on its own 100 test rows does not (+11 % > 2 %), and says both numbers.
    expect(run.tags[CLAIM_TAGS.status]).toBe('ok');
    expect(item.decision?.notes).toMatch(
      /CLAIM DISAGREES: reported (test_rmse|test_mae|test_mse|composite) [\d.]+, re-scored on the run's own 100 test rows [\d.]+ \(\+11 % > 2 %\)/,
    );
    expect(item.decision?.notes).toContain(
      `test_rmse ${reported.toPrecision(3)} vs ${rescored.toPrecision(3)} (+11 %)`,
    );
    expect(run.tags[EVAL_TAGS.note]).toMatch(/^CLAIM DISAGREES/);
    expect(item.outcome?.version).toBeUndefined();
  }, 240_000);

  it('rescore: when the model does not say test_rows, the claim check is skipped with the reason and the holdout check decides (approved)', async () => {
    const item = await judged({ claim_factor: 1, say_test_rows: false, tag: 'untold' });
    expect(item.decision).toMatchObject({ verdict: 'approve', judge: 'policy' });
    expect(item.decision?.notes).toMatch(/claim check skipped: .*does not say test_rows/);
    expect(item.decision?.notes).toMatch(/re-scored on 100 rows of data\/holdout\.csv/);
    const run = await pyGetRun(mlflowUrl, item.runId);
    expect(run.tags[CLAIM_TAGS.status]).toBe('skipped');
    expect(run.tags[CLAIM_TAGS.note]).toMatch(/does not say test_rows/);
    expect(run.metrics['eval.test_rmse']).toBeUndefined();
    expect(run.tags[EVAL_TAGS.status]).toBe('ok');
    // The evidence an agent reads says it too.
    const ev = await store.evidence(item.id);
    expect(ev.rescore?.claim).toMatchObject({ status: 'skipped' });
    expect(ev.rescore?.claim?.summary).toMatch(/does not say test_rows/);
  }, 240_000);

  it('rescore: when the re-score cannot run (the holdout is missing), the policy rejects the item and says why', async () => {
    const item = await judged({ claim_factor: 1, tag: 'lost' }, 'forecast-claims-lost');
    expect(item.decision).toMatchObject({ verdict: 'reject', judge: 'policy' });
    expect(item.decision?.notes).toMatch(/RE-SCORE FAILED: .*review\.rescore\.holdout/);
    expect(item.decision?.notes).toMatch(/nothing independent backs the reported metrics/);
    const run = await pyGetRun(mlflowUrl, item.runId);
    expect(run.tags[EVAL_TAGS.status]).toBe('failed');
    expect(run.tags[EVAL_TAGS.note]).toMatch(/review\.rescore\.holdout/);
    expect(run.metrics['eval.rmse']).toBeUndefined();
    expect(item.outcome?.version).toBeUndefined();
  }, 240_000);

  it('rescore: concurrent first re-scores of one run store each eval point once (same timestamp, MLflow drops the duplicate)', async () => {
    // Forget the judge's record so both calls score afresh.
    await ok(
      client.api.POST('/api/2.0/mlflow/runs/delete-tag', {
        body: { run_id: honest.runId, key: EVAL_TAGS.status },
      }),
    );
    const before = await pyGetRun(mlflowUrl, honest.runId);
    expect(before.tags[EVAL_TAGS.status]).toBeUndefined();
    const facts = {
      runId: honest.runId,
      artifactUri: before.artifact_uri,
      metrics: before.metrics,
      tags: before.tags,
    };
    const def = { holdout: 'data/holdout.csv', tolerance: 0.5 };
    const [a, b] = await Promise.all([
      rescoreRun(client, { run: facts, def, tasksDir, timestamp: honest.createdAt }),
      rescoreRun(client, { run: facts, def, tasksDir, timestamp: honest.createdAt }),
    ]);
    expect(a.fresh && b.fresh).toBe(true);
    expect(a.metrics).toEqual(b.metrics);
    for (const key of [
      'eval.rmse',
      'eval.mae',
      'eval.mse',
      'eval.composite',
      'eval.rows',
      'eval.test_rmse',
      'eval.test_rows',
    ]) {
      const history = await pyMetricHistory(mlflowUrl, honest.runId, key);
      expect(history, key).toHaveLength(1);
      expect(history[0]!.timestamp).toBe(honest.createdAt);
    }
    // A later call reads the record back instead of scoring again.
    const again = await rescoreRun(client, {
      run: {
        ...facts,
        tags: (await pyGetRun(mlflowUrl, honest.runId)).tags,
        metrics: (await pyGetRun(mlflowUrl, honest.runId)).metrics,
      },
      def,
      tasksDir,
      timestamp: Date.now(),
    });
    expect(again.fresh).toBe(false);
    expect(again.metrics?.rmse).toBeCloseTo(a.metrics!.rmse, 10);
  }, 240_000);

  it("rescore: a run whose runwarden.model_id names another run's logged model is not re-scored with that model: failed, saying whose model it is", async () => {
    const honestRun = await pyGetRun(mlflowUrl, honest.runId);
    const modelId = honestRun.tags['runwarden.model_id']!;
    // A run that produced no model but carries the honest run's model id (set behind runwarden's back).
    const { run } = await ok(
      client.api.POST('/api/2.0/mlflow/runs/create', {
        body: { experiment_id: honest.experimentId, run_name: 'borrowed-model', start_time: Date.now() },
      }),
    );
    const runId = run!.info!.run_id!;
    const facts = {
      runId,
      artifactUri: run!.info!.artifact_uri!,
      metrics: { test_rmse: 0.01, test_mae: 0.01, test_mse: 0.0001, composite: 0.008 },
      tags: { 'runwarden.model_id': modelId },
    };
    const res = await rescoreRun(client, {
      run: facts,
      def: { holdout: 'data/holdout.csv', tolerance: 0.5 },
      tasksDir,
      timestamp: Date.now(),
    });
    expect(res.status).toBe('failed');
    expect(res.reason).toContain(`which run ${honest.runId} produced, not this run`);
    expect((await pyGetRun(mlflowUrl, runId)).metrics['eval.rmse']).toBeUndefined();
  }, 120_000);
});
