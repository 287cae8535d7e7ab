// `runwarden up` runs the policy judge: against the test's MLflow and Redis (so up starts neither),
// a policy task completed by up's worker is approved by up's judge (version 1, `champion`), an agent
// task's item shows in `runwarden status` as pending, `runwarden history` lists the promotion, and
// SIGINT stops the whole stack: exit 0, no process of it left, no run left RUNNING.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { taskQueueFromConfig } from '../../src/queue/from-config.js';
import type { TaskQueue } from '../../src/queue/task-queue.js';
import { type ReviewStore, reviewStoreFromConfig } from '../../src/review/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun } from '../support/python.js';
import { judgedTasksDir, pyRegistry, reviewEnv } from '../support/review.js';
import { freePort, repoRoot } from '../support/services.js';
import { cliPath, processesMatching, runCli, taskRuns, waitFor, waitForTaskState } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const modelName = uniqueName('judged-up');
const experiment = uniqueName('review-up');
let workDir = '';
let tasksDir = '';
let env: Record<string, string> = {};
let queue: TaskQueue;
let store: ReviewStore;
let up: ChildProcess | undefined;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rw-review-up-'));
  tasksDir = await judgedTasksDir(modelName);
  env = reviewEnv({
    mlflowUrl,
    redisUrl,
    prefix: uniqueName('q-review-up'),
    tasksDir,
    workDir,
    env: { RUNWARDEN_DATA_DIR: workDir, RUNWARDEN_HTTP_PORT: String(await freePort()) },
  });
  const cfg = loadConfig(env);
  queue = taskQueueFromConfig(cfg, client);
  store = reviewStoreFromConfig(cfg, client, queue);
});

afterAll(async () => {
  up?.kill('SIGKILL');
  await store?.close();
  await queue?.close();
  await rm(workDir, { recursive: true, force: true });
  await rm(tasksDir, { recursive: true, force: true });
});

describe('runwarden up and the judge', () => {
  it('up: its judge promotes a policy task, status shows a pending agent review, and Ctrl-C leaves no process and no open run', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliPath, 'up'], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up = child;
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr?.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('runwarden up to be up', () => out.includes('runwarden is up.'), { timeoutMs: 90_000 });
    expect(out).toContain('Judge:');

    const policy = await queue.enqueue({ template: 'judged', params: { rmse: 7 }, experiment });
    const agent = await queue.enqueue({
      template: 'judged',
      params: { rmse: 8 },
      experiment,
      review: 'agent',
    });
    await waitForTaskState(queue, policy.task.taskId, 'completed', 90_000);
    await waitForTaskState(queue, agent.task.taskId, 'completed', 90_000);
    const approved = await waitFor(
      "up's judge to apply the policy review",
      async () => {
        const i = await store.get(`r-${policy.task.taskId}`);
        return i?.state === 'applied' ? i : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(approved.decision).toMatchObject({ verdict: 'approve', judge: 'policy' });
    expect((await pyRegistry(mlflowUrl, modelName)).aliases).toEqual({ champion: '1' });

    const status = await runCli(['status'], env);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/reviews: pending 1 {2}approved 1/);
    expect(status.out).toContain(`r-${agent.task.taskId}`);
    const history = await runCli(['history', modelName], env);
    expect(history.code).toBe(0);
    expect(history.out).toContain(`champion → v1`);
    expect(history.out).toContain(`review r-${policy.task.taskId}`);

    const t0 = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(processesMatching(`${cliPath} up`).filter((p) => p.pid === child.pid)).toEqual([]);
    expect(processesMatching(workDir)).toEqual([]);
    for (const t of [policy.task.taskId, agent.task.taskId]) {
      for (const run of await taskRuns(client, experiment, t)) {
        expect((await pyGetRun(mlflowUrl, run.info.run_id)).status).not.toBe('RUNNING');
      }
    }
    expect(err).toContain('runwarden up: stopping');
  }, 300_000);
});
