// Nothing logged is lost, against a real MLflow server this file starts (so it can pause, kill and
// restart it) and a real worker: a library script written like README's withRun example keeps
// every point through MLflow paused past the retry budget and through MLflow killed and
// restarted (same store, same port) for 30 s while a task streams too; and while MLflow is
// unreachable the buffer stays within its bound, the script waiting in logMetric.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, type MlflowClient } from '../../src/index.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { type Fixture, killFixtures, runFixture, testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun, pyMetricHistory } from '../support/python.js';
import { type MlflowServer, startMlflowServer } from '../support/services.js';
import {
  findWorkspace,
  fixtureTasksDir,
  processesMatching,
  processGroupOf,
  startWorkerProcess,
  stopAllWorkers,
  taskRuns,
  waitFor,
  waitForAttemptRun,
  waitForTaskState,
} from '../support/tasks.js';

const redisUrl = inject('redisUrl');

let server: MlflowServer;
let client: MlflowClient;
const proxies: FaultProxy[] = [];
let stopped: number | undefined;

beforeAll(async () => {
  server = await startMlflowServer();
  client = testClient(server.url);
}, 120_000);

afterEach(async () => {
  if (stopped !== undefined) signalGroup(stopped, 'SIGCONT');
  stopped = undefined;
  killFixtures();
  await stopAllWorkers();
  for (const p of proxies.splice(0)) await p.setMode('pass').then(() => p.close());
});

afterAll(async () => {
  await server?.stop();
}, 60_000);

/** The process group of this file's MLflow server (its processes name its directory). */
function mlflowGroup(): number {
  const own = processGroupOf(process.pid);
  const pid = processesMatching(server.dir).find((p) => p.args.includes('mlflow'))?.pid;
  const pgid = pid === undefined ? undefined : processGroupOf(pid);
  if (!pgid || pgid <= 1 || pgid === own)
    throw new Error(`no process group found for MLflow in ${server.dir}`);
  return pgid;
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // gone
  }
}

interface Report {
  accepted: number;
  pending: number;
  peak: number;
  done?: boolean;
}

/** The stream-metrics fixture's reports so far (every line after the first). */
function reports(f: Fixture): Report[] {
  return f
    .stdout()
    .split('\n')
    .slice(1)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Report);
}
const lastReport = (f: Fixture) => reports(f).at(-1);

async function streamScript(
  trackingUri: string,
  experimentId: string,
  points: number,
  everyMs: number,
  timeoutMs: number,
) {
  const args = [trackingUri, experimentId, String(points), String(everyMs), '0', '', String(timeoutMs)];
  const f = runFixture('stream-metrics', args);
  const { runId } = (await f.firstLine) as { runId: string };
  return { f, runId };
}

async function expectAllStored(trackingUri: string, runId: string, key: string, points: number) {
  const history = await pyMetricHistory(trackingUri, runId, key);
  expect(new Set(history.map((p) => p.step)).size).toBe(points);
  expect(history).toHaveLength(points);
}

describe('nothing logged is lost', () => {
  it('MLflow paused (SIGSTOP) past the retry budget while a withRun script streams metrics: zero points lost, the run ends FINISHED', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('lossless-paused'));
    const points = 400;
    // Each request waits 2 s for an answer, three attempts: a budget of about 7 s.
    const { f, runId } = await streamScript(server.url, experimentId, points, 20, 2_000);
    await waitFor('the script to stream', () => (lastReport(f)?.accepted ?? 0) >= 50, { timeoutMs: 30_000 });

    const pgid = mlflowGroup();
    signalGroup(pgid, 'SIGSTOP');
    stopped = pgid;
    const pausedAt = Date.now();
    const before = lastReport(f)?.accepted ?? 0;
    // Past the script's retry budget (about 7 s), while it keeps logging into its buffer.
    await waitFor(
      'the script to log through a pause longer than its retry budget',
      () => Date.now() - pausedAt > 12_000 && (lastReport(f)?.accepted ?? 0) >= before + 100,
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const pending = lastReport(f)?.pending ?? 0;
    signalGroup(pgid, 'SIGCONT');
    stopped = undefined;
    console.log(`paused ${Date.now() - pausedAt} ms; ${pending} points pending at SIGCONT`);
    expect(pending).toBeGreaterThan(0);

    const exit = await f.exited;
    expect(exit.code, f.stderr()).toBe(0);
    expect((await pyGetRun(server.url, runId)).status).toBe('FINISHED');
    await expectAllStored(server.url, runId, 'loss', points);
  }, 180_000);

  it('the buffer bound holds while MLflow is unreachable: logMetric waits (the script blocks), pending never exceeds the bound, and every point arrives after', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('lossless-bound'));
    const proxy = await startFaultProxy(server.url);
    proxies.push(proxy);
    const bound = 2_000;
    const points = 6_000;
    const goDir = await mkdtemp(join(tmpdir(), 'rw-bound-'));
    const go = join(goDir, 'go');
    const f = runFixture('stream-metrics', [proxy.url, experimentId, String(points), '0', String(bound), go]);
    // The run is created; then the proxy refuses and the script logs as fast as it can.
    const { runId } = (await f.firstLine) as { runId: string };
    await proxy.setMode('refuse');
    await writeFile(go, '');
    const full = await waitFor(
      'the buffer to fill',
      () => {
        const r = lastReport(f);
        return r && r.pending >= bound ? r : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const reportsWhenFull = reports(f).length;
    await waitFor('three more reports while full', () => reports(f).length >= reportsWhenFull + 3, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const blocked = lastReport(f)!;
    console.log(
      `full at ${full.accepted} accepted; still ${blocked.accepted} accepted, pending ${blocked.pending}, peak ${blocked.peak}`,
    );
    expect(blocked.accepted).toBe(full.accepted); // waiting in logMetric, not dropping
    expect(blocked.accepted).toBeLessThan(points);
    expect(blocked.peak).toBeLessThanOrEqual(bound);

    await proxy.setMode('pass');
    const exit = await f.exited;
    expect(exit.code, f.stderr()).toBe(0);
    const done = lastReport(f)!;
    expect(done.done).toBe(true);
    expect(done.peak).toBeLessThanOrEqual(bound);
    await rm(goDir, { recursive: true, force: true });
    expect((await pyGetRun(server.url, runId)).status).toBe('FINISHED');
    await expectAllStored(server.url, runId, 'loss', points);
  }, 180_000);

  it('MLflow killed and restarted (same store and port) for 30 s while a withRun script and a task stream metrics: zero points lost, both end FINISHED', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'rw-lossless-'));
    const prefix = uniqueName('q-lossless');
    const queue = new TaskQueue({ redisUrl, prefix, tasksDir: fixtureTasksDir, client });
    try {
      await startWorkerProcess({
        mlflowUrl: server.url,
        redisUrl,
        prefix,
        workDir,
        env: { RUNWARDEN_MLFLOW_TIMEOUT_MS: '15000', RUNWARDEN_MLFLOW_MAX_RETRIES: '2' },
      });
      const experiment = uniqueName('lossless-killed');
      const { experimentId } = await getOrCreateExperiment(client, experiment);
      // The stream fixture logs a point every 50 ms until the test creates output/stop (after the
      // restart, so its results are stored with MLflow up), then tags how many it logged.
      const { task } = await queue.enqueue({ template: 'stream', params: { every_ms: 50 }, experiment });
      const { runId: taskRunId } = await waitForAttemptRun(queue, task.taskId, 1, 60_000);
      const points = 1_000;
      // A refused connection fails at once; a generous answer timeout for a loaded restarted server.
      const { f, runId } = await streamScript(server.url, experimentId, points, 40, 15_000);
      await waitFor('the script to stream', () => (lastReport(f)?.accepted ?? 0) >= 50, {
        timeoutMs: 30_000,
      });

      signalGroup(mlflowGroup(), 'SIGKILL');
      const killedAt = Date.now();
      await waitFor('30 s of outage', () => Date.now() - killedAt >= 30_000, {
        timeoutMs: 40_000,
        intervalMs: 500,
      });
      const restarted = await startMlflowServer({ dir: server.dir, port: server.port });
      const outageMs = Date.now() - killedAt;
      const old = server;
      server = { ...restarted, stop: async () => restarted.stop().then(() => old.stop()) };
      console.log(`MLflow down for ${outageMs} ms (30 s + restart)`);

      const exit = await f.exited;
      expect(exit.code, f.stderr()).toBe(0);
      expect((await pyGetRun(server.url, runId)).status).toBe('FINISHED');
      await expectAllStored(server.url, runId, 'loss', points);

      const ws = await waitFor('the workspace of the task', () => findWorkspace(workDir, task.taskId, 1));
      await writeFile(join(ws, 'output', 'stop'), '');
      const done = await waitForTaskState(queue, task.taskId, ['completed', 'failed', 'cancelled'], 180_000);
      expect(done.state, JSON.stringify(done)).toBe('completed');
      const runs = await taskRuns(client, experiment, task.taskId);
      expect(runs.map((r) => r.info?.run_id)).toEqual([taskRunId]);
      const taskRun = await pyGetRun(server.url, taskRunId);
      expect(taskRun.status).toBe('FINISHED');
      const epochs = Number(taskRun.tags['fixture.epochs']);
      console.log(`task logged ${epochs} points; script ${points}`);
      expect(epochs).toBeGreaterThan(600); // it streamed through the whole outage
      await expectAllStored(server.url, taskRunId, 'train_loss', epochs);
    } finally {
      await stopAllWorkers();
      await queue.close();
      await rm(workDir, { recursive: true, force: true });
    }
  }, 420_000);
});
