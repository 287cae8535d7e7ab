// The line protocol does not let a script vouch for itself: a real worker process runs a fixture
// script that prints runwarden.* tags (the judge's eval status, another run's model id) and eval.*
// metrics between ordinary lines. MLflow's own client then sees none of the forged tags or metrics,
// the ordinary ones stored, and the run FINISHED; the worker logs each refused line, capped.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REFUSED_LINE_MAX } from '../../src/queue/protocol-lines.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, pyMetricHistory } from '../support/python.js';
import {
  runCli,
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  taskRuns,
  type WorkerEnv,
  type WorkerProcess,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);

describe('protocol lines a script may not write', () => {
  let workDir: string;
  let env: WorkerEnv;
  let worker: WorkerProcess;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-refused-'));
    env = { mlflowUrl, redisUrl, prefix: uniqueName('q-refused'), workDir };
    worker = await startWorkerProcess(env);
  });

  afterAll(async () => {
    await stopAllWorkers();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('a script printing runwarden.* tags and eval.* metrics: none reaches MLflow, each is logged as refused (capped), and the run goes on to FINISHED with its ordinary lines stored', async () => {
    const experiment = uniqueName('refused');
    const res = await runCli(
      ['enqueue', 'forger', '--experiment', experiment, '--wait', '--json'],
      taskEnv(env),
      120_000,
    );
    expect(res.code).toBe(0);
    const end = JSON.parse(res.out.slice(res.out.indexOf('{'))) as { task_id: string; state: string };
    expect(end.state).toBe('completed');
    const [only] = await taskRuns(client, experiment, end.task_id);
    const runId = only!.info!.run_id!;
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('FINISHED');
    const forged = Object.keys(run.tags).filter((k) => /^runwarden\.(eval\.|model_id)/i.test(k));
    expect(forged).toEqual([]);
    expect(Object.keys(run.metrics).filter((k) => /^eval\./i.test(k))).toEqual([]);
    expect(run.tags['fixture.after']).toBe('still running');
    expect(run.params.fixture).toBe('forger');
    const history = await pyMetricHistory(mlflowUrl, runId, 'train_loss');
    expect(history.map((m) => [m.step, m.value])).toEqual([
      [0, 0.5],
      [1, 0.25],
    ]);
    const refused = worker
      .stderr()
      .split('\n')
      .filter((l) => l.includes('protocol line refused'));
    expect(refused).toHaveLength(6);
    const shown = refused.map((l) => (JSON.parse(l) as { line: string }).line);
    expect(shown.every((l) => l.length <= REFUSED_LINE_MAX + 20)).toBe(true);
    expect(shown.some((l) => l.includes('runwarden.eval.status'))).toBe(true);
  });
});
