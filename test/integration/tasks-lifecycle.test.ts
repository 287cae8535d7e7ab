// The life of a task against real MLflow and Redis, with `runwarden worker` running as its own
// process: a completed task leaves exactly one FINISHED run with its tags, params, metric history,
// logs, model, report and a workspace.zip that opens; a failing script leaves a FAILED run whose
// description carries its stderr; a timeout kills the whole process group and ends the run KILLED;
// the same spec dedups unless forced; and bad specs are refused with the field named and nothing
// queued.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { downloadFile, RW_TAGS, ValidationError } from '../../src/index.js';
import { normalizeSpec } from '../../src/queue/spec.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { loadTemplate } from '../../src/queue/templates.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyListArtifacts, pyMetricHistory } from '../support/python.js';
import {
  type CliResult,
  fixtureTasksDir,
  pidAlive,
  pyListArtifactTree,
  runCli,
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  taskRuns,
  type WorkerEnv,
  waitFor,
  waitForChildPid,
  waitForTaskState,
  zipEntries,
  zipEntryText,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

describe('task lifecycle with a worker process', () => {
  const prefix = uniqueName('q-life');
  let workDir: string;
  let env: WorkerEnv;
  let queue: TaskQueue;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-tasks-life-'));
    env = { mlflowUrl, redisUrl, prefix, workDir };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    await startWorkerProcess(env);
  });

  afterAll(async () => {
    await stopAllWorkers();
    await queue?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('a quick task completes with exactly one FINISHED run carrying its tags, params, metrics, logs, model, report and a workspace.zip that opens', async () => {
    const experiment = uniqueName('tasks-happy');
    const res = await runCli(
      ['enqueue', 'quick', '--param', 'epochs=3', '--experiment', experiment, '--wait', '--json'],
      taskEnv(env),
    );
    expect(res.err).not.toMatch(/VALIDATION_ERROR/);
    expect(res.code).toBe(0);
    const end = JSON.parse(res.out.slice(res.out.indexOf('{'))) as {
      task_id: string;
      state: string;
      runs: { attempt: number; run_id: string }[];
      attempts_made: number;
    };
    expect(end.state).toBe('completed');
    expect(end.attempts_made).toBe(1);
    const taskId = end.task_id;

    const runs = await taskRuns(client, experiment, taskId);
    expect(runs).toHaveLength(1);
    const runId = runs[0]!.info!.run_id!;
    expect(end.runs).toEqual([expect.objectContaining({ attempt: 1, run_id: runId })]);

    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('FINISHED');
    expect(run.tags[RW_TAGS.taskId]).toBe(taskId);
    expect(run.tags[RW_TAGS.attempt]).toBe('1');
    expect(run.tags[RW_TAGS.configHash]).toMatch(/^[0-9a-f]{64}$/);
    expect(taskId).toBe(`t-${run.tags[RW_TAGS.configHash]!.slice(0, 16)}`);
    expect(run.tags['runwarden.exit_code']).toBe('0');
    expect(run.tags['runwarden.model_exists']).toBe('true');
    expect(run.tags['fixture.language']).toBe('node');
    expect(run.params).toEqual({
      epochs: '3',
      sleep_ms: '0',
      exit_code: '0',
      spawn_child: 'false',
      fixture: 'quick',
    });
    expect(run.metrics).toEqual({ train_loss: 1 / 3, val_loss: 1.2 / 3 });

    const history = await pyMetricHistory(mlflowUrl, runId, 'val_loss');
    expect(history.map((m) => [m.step, m.value])).toEqual([
      [0, 1.2 / 1],
      [1, 1.2 / 2],
      [2, 1.2 / 3],
    ]);

    const tree = await pyListArtifactTree(mlflowUrl, runId);
    expect(tree.map((a) => [a.path, a.is_dir])).toEqual([
      ['logs', true],
      ['logs/stderr.log', false],
      ['logs/stdout.log', false],
      ['model', true],
      ['model/model.json', false],
      ['reports', true],
      ['reports/report.txt', false],
      ['workspace.zip', false],
    ]);
    expect(tree.find((a) => a.path === 'model/model.json')?.file_size).toBe(
      JSON.stringify({ epochs: 3 }).length,
    );

    const zipFile = join(workDir, `${taskId}-download.zip`);
    await downloadFile(client, run.artifact_uri, 'workspace.zip', zipFile);
    const entries = await zipEntries(zipFile);
    expect(entries).toEqual(
      expect.arrayContaining([
        'config.yml',
        'quick.mjs',
        'task.yaml',
        'output/model/model.json',
        'output/report.txt',
        'logs/stdout.log',
      ]),
    );
    expect(String(run.tags['runwarden.workspace_zip_entries'])).toBe(String(entries.length));
    expect(JSON.parse(await zipEntryText(zipFile, 'output/model/model.json'))).toEqual({ epochs: 3 });
    expect(await zipEntryText(zipFile, 'config.yml')).toMatch(/^\s+epochs: 3$/m);
    expect(await zipEntryText(zipFile, 'logs/stdout.log')).toContain('plain log line for epoch 2');
  });

  it('a script that exits 3 fails the task once: run FAILED, exit code 3, its stderr in the run description, no retry', async () => {
    const experiment = uniqueName('tasks-fail');
    const { task, existing } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 2, exit_code: 3 },
      experiment,
      attempts: 3,
    });
    expect(existing).toBe(false);
    const info = await waitForTaskState(queue, task.taskId, ['failed', 'completed', 'cancelled']);
    expect(info.state).toBe('failed');
    expect(info.attempts_made).toBe(1);
    expect(info.reason).toMatch(/^exit code 3: fixture failing on purpose with exit code 3/);

    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs).toHaveLength(1);
    const run = await pyGetRun(mlflowUrl, runs[0]!.info!.run_id!);
    expect(run.status).toBe('FAILED');
    expect(run.tags[RW_TAGS.attempt]).toBe('1');
    expect(run.tags['runwarden.exit_code']).toBe('3');
    expect(run.tags['mlflow.note.content']).toContain('fixture failing on purpose');
    expect(run.tags[RW_TAGS.closeReason]).toBe('exit code 3: fixture failing on purpose with exit code 3');
    // The attempt's logs are stored even though it failed.
    expect(
      (await pyListArtifacts(mlflowUrl, runs[0]!.info!.run_id!, 'logs')).map((a) => a.path).sort(),
    ).toEqual(['logs/stderr.log', 'logs/stdout.log']);
    // No retry can follow: BullMQ itself moves the job to 'failed' (its last state; a job with
    // attempts left would go to 'delayed' or 'waiting' instead), after one attempt of the three.
    const job = await waitFor('BullMQ to settle the job', async () => {
      const j = await queue.queue.getJob(task.taskId);
      return j?.finishedOn ? j : undefined;
    });
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect((await queue.get(task.taskId))?.state).toBe('failed');
    expect(await taskRuns(client, experiment, task.taskId)).toHaveLength(1);
  });

  it('a task over its timeout is failed with a timeout reason, its run ends KILLED and its grandchild process is gone', async () => {
    const experiment = uniqueName('tasks-timeout');
    const { task } = await queue.enqueue({
      template: 'quick',
      params: { epochs: 30, sleep_ms: 1000, spawn_child: true },
      experiment,
      timeout_seconds: 2,
    });
    const { pid } = await waitForChildPid(workDir, task.taskId, 1);
    const info = await waitForTaskState(queue, task.taskId, ['failed', 'completed', 'cancelled'], 30_000);
    expect(info.state).toBe('failed');
    expect(info.reason).toMatch(/timed out after 2 s/);

    const runs = await taskRuns(client, experiment, task.taskId);
    expect(runs).toHaveLength(1);
    const run = await pyGetRun(mlflowUrl, runs[0]!.info!.run_id!);
    expect(run.status).toBe('KILLED');
    expect(run.tags[RW_TAGS.closeReason]).toMatch(/timed out after 2 s/);
    expect(run.tags[RW_TAGS.closedBy]).toBe('worker');
    // The script never reached its end: no model.
    expect(run.tags['runwarden.model_exists']).toBe('false');
    expect(pidAlive(pid)).toBe(false);
  });
});

describe('enqueue: dedup and refusals (no worker)', () => {
  const prefix = uniqueName('q-enq');
  let queue: TaskQueue;
  let redis: Redis;
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-tasks-enq-'));
    // The accepted input file lives in workDir: it is the input root (the default is tasks/data).
    const inputs = { roots: [workDir], allowDirs: false, httpHosts: [] };
    queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client, inputs });
    await queue.queue.waitUntilReady();
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const snapshot = async () => ({
    counts: await queue.counts(),
    keys: (await redis.keys(`${prefix}:*`)).sort(),
  });

  it('the same spec twice gives the same task id (existing), and force gives a new one', async () => {
    const spec = { template: 'quick', params: { epochs: 4, sleep_ms: 1 }, experiment: uniqueName('dedup') };
    const first = await queue.enqueue(spec);
    expect(first.existing).toBe(false);
    expect(first.info.state).toBe('waiting');
    // Parameter order and CLI-style strings do not change the identity.
    const again = await queue.enqueue({ ...spec, params: { sleep_ms: '1', epochs: '4' } });
    expect(again.existing).toBe(true);
    expect(again.task.taskId).toBe(first.task.taskId);
    expect(again.info.state).toBe('waiting');
    expect((await queue.counts()).waiting).toBe(1);

    const forced = await queue.enqueue({ ...spec, force: true });
    expect(forced.existing).toBe(false);
    expect(forced.task.taskId).not.toBe(first.task.taskId);
    expect(forced.task.taskId.startsWith(`${first.task.taskId}-`)).toBe(true);
    expect(forced.task.configHash).toBe(first.task.configHash);
    expect((await queue.counts()).waiting).toBe(2);

    // The CLI says the same: the existing id, `existing: true`.
    const res = await runCli(
      ['enqueue', 'quick', '--param', 'epochs=4', '--param', 'sleep_ms=1', '--json'],
      taskEnv({ mlflowUrl, redisUrl, prefix, workDir }),
    );
    expect(res.code).toBe(0);
    const printed = JSON.parse(res.out) as { task_id: string; existing: boolean };
    expect(printed).toMatchObject({ task_id: first.task.taskId, existing: true });
    expect((await queue.counts()).waiting).toBe(2);
  });

  const refusals: {
    what: string;
    spec: Record<string, unknown>;
    field: string;
    message: RegExp;
    cli: string[];
  }[] = [
    {
      what: 'an invalid spec (priority 0)',
      spec: { template: 'quick', priority: 0 },
      field: 'priority',
      message: /priority: .*(>=|at least|too small)/i,
      cli: ['enqueue', 'quick', '--priority', '0'],
    },
    {
      what: 'an unknown template',
      spec: { template: 'no-such-template' },
      field: 'template',
      message: /template: no template 'no-such-template'; registered templates: .*quick/,
      cli: ['enqueue', 'no-such-template'],
    },
    {
      what: 'an out-of-bounds parameter',
      spec: { template: 'quick', params: { epochs: 5000 } },
      field: 'params.epochs',
      message: /params\.epochs: 5000 is out of bounds; allowed 1 to 1000/,
      cli: ['enqueue', 'quick', '--param', 'epochs=5000'],
    },
    {
      what: 'a missing input file',
      spec: { template: 'quick', inputs: { table: 'file:///nonexistent.csv' } },
      field: 'inputs.table',
      message: /inputs\.table: file:\/\/\/nonexistent\.csv cannot be read/,
      cli: ['enqueue', 'quick', '--input', 'table=file:///nonexistent.csv'],
    },
    {
      what: 'an unknown parameter name',
      spec: { template: 'quick', params: { learning_rate: 0.1 } },
      field: 'params.learning_rate',
      message:
        /params\.learning_rate: template 'quick' has no parameter 'learning_rate'; it takes: epochs, sleep_ms, exit_code, spawn_child/,
      cli: ['enqueue', 'quick', '--param', 'learning_rate=0.1'],
    },
  ];

  describe('refusals', () => {
    // The CLI processes start together (each takes seconds to boot); every test checks its own.
    let initial: Awaited<ReturnType<typeof snapshot>>;
    const viaCli = new Map<string, Promise<CliResult>>();
    beforeAll(async () => {
      initial = await snapshot();
      for (const r of refusals) {
        const p = runCli(r.cli, taskEnv({ mlflowUrl, redisUrl, prefix, workDir }));
        p.catch(() => undefined);
        viaCli.set(r.what, p);
      }
    });

    it.each(
      refusals,
    )('$what is refused naming $field, in process and by the CLI (exit 2), and nothing is queued', async ({
      what,
      spec,
      field,
      message,
    }) => {
      const err = await queue.enqueue(spec).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
      expect((err as ValidationError).message).toMatch(message);
      expect(await snapshot()).toEqual(initial);

      const res = await viaCli.get(what)!;
      expect(res.code).toBe(2);
      expect(res.err).toContain(`VALIDATION_ERROR: ${field}:`);
      expect(res.out).toBe('');
      expect(await snapshot()).toEqual(initial);
    });
  });

  it('a refused input leaves no task record under the id the spec would have had', async () => {
    const spec = { template: 'quick', params: { epochs: 7 }, inputs: { table: 'file:///nonexistent.csv' } };
    await expect(queue.enqueue(spec)).rejects.toThrow(/inputs\.table/);
    const taskId = normalizeSpec(spec, loadTemplate(fixtureTasksDir, 'quick')).taskId;
    expect(await queue.get(taskId)).toBeUndefined();
    expect(await queue.queue.getJob(taskId)).toBeUndefined();
    // And the same spec with a readable input is accepted.
    const csv = join(workDir, 'table.csv');
    await writeFile(csv, 'a,b\n1,2\n');
    const accepted = await queue.enqueue({ ...spec, inputs: { table: pathToFileURL(csv).href } });
    expect(accepted.existing).toBe(false);
    expect(accepted.task.inputs).toEqual({ table: pathToFileURL(csv).href });
  });
});
