// A worker killed with -9 while it builds a template's Python environment, against real MLflow,
// a redis-server this file starts, real `runwarden worker` processes and a real venv build: the
// lock it leaves (owner: its dead pid on this host) is taken over at once by the next attempt,
// which builds the environment and completes the task; before, the lock blocked the template for
// an hour.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RW_TAGS } from '../../src/index.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type RedisServer, startRedisServer } from '../support/services.js';
import {
  killQuietly,
  processesMatching,
  startWorkerProcess,
  stopAllWorkers,
  tag,
  taskRuns,
  type WorkerEnv,
  waitFor,
  waitForTaskState,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);

const TEMPLATE = `name: pyenv-kill
description: Test fixture - a Python template, so its first attempt builds an environment
runner: shell
language: python
python:
  requirements: requirements.txt
command: ["{python}", "train.py"]
metrics: [val_loss]
timeout_seconds: 600
retry_on_failure: false
`;
const TRAIN = `print('@@runwarden {"metric": "val_loss", "value": 0.25, "step": 0}')\n`;

describe('environment builds and killed workers', () => {
  let redis: RedisServer;
  let workDir: string;
  let tasksDir: string;
  let queue: TaskQueue;

  beforeAll(async () => {
    redis = await startRedisServer();
    workDir = await mkdtemp(join(tmpdir(), 'rw-env-lock-'));
    tasksDir = join(workDir, 'tasks');
    await mkdir(join(tasksDir, 'pyenv-kill'), { recursive: true });
    await writeFile(join(tasksDir, 'pyenv-kill', 'task.yaml'), TEMPLATE);
    // A requirement set no other test uses, so this file builds its own environment.
    await writeFile(join(tasksDir, 'pyenv-kill', 'requirements.txt'), `# ${uniqueName('env-lock')}\n`);
    await writeFile(join(tasksDir, 'pyenv-kill', 'train.py'), TRAIN);
  });

  afterAll(async () => {
    await stopAllWorkers();
    await queue?.close();
    await redis?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('kill -9 of a worker while it builds the template environment: the next attempt takes the build lock over at once, builds, and completes the task with one FINISHED run', async () => {
    const prefix = uniqueName('q-env');
    queue = new TaskQueue({ redisUrl: redis.url, prefix, tasksDir, client });
    const env: WorkerEnv = {
      mlflowUrl,
      redisUrl: redis.url,
      prefix,
      workDir,
      env: { RUNWARDEN_TASKS_DIR: tasksDir },
    };
    const cacheDir = join(workDir, '.cache');
    const first = await startWorkerProcess(env);
    const experiment = uniqueName('env-lock');
    const { task } = await queue.enqueue({ template: 'pyenv-kill', experiment });

    // The build has begun: the lock folder exists (its owner.json names the worker's pid).
    const lock = await waitFor(
      'the environment build lock',
      () => {
        if (!existsSync(cacheDir)) return undefined;
        const name = readdirSync(cacheDir).find((n) => n.endsWith('.lock'));
        return name ? join(cacheDir, name) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    first.child.kill('SIGKILL');
    await first.exited;
    // Its venv build (python -m venv, in the worker's process group) must not build on beside us.
    const envDir = lock.replace(/\.lock$/, '');
    killQuietly(processesMatching(envDir).map((p) => p.pid));
    expect(existsSync(lock)).toBe(true);

    const t0 = Date.now();
    await startWorkerProcess(env);
    const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 150_000);
    const took = Date.now() - t0;
    expect(done.state, done.reason).toBe('completed');
    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs.map((r) => [tag(r, RW_TAGS.attempt), r.info?.status])).toEqual([
      ['1', 'FAILED'],
      ['2', 'FINISHED'],
    ]);
    expect(existsSync(join(envDir, '.ready'))).toBe(true);
    expect(existsSync(lock)).toBe(false);
    // Re-delivery (lock 5 s, stalled check every 5 s) plus one venv build: minutes at most, not the hour.
    expect(took).toBeLessThan(150_000);
  }, 300_000);
});
