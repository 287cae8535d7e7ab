// Who may close what, against the real MLflow server and real processes: a stdio MCP server whose
// client disconnects ends only the runs it owns (not another server's run it wrote to, not a run
// already FINISHED), and an expired lease is reaped by whatever part of the stack is running
// (`runwarden up`, or a lone `runwarden worker`), whoever opened the run: here a library script
// killed with -9.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, RW_TAGS } from '../../src/index.js';
import { killFixtures, runFixture, testClient, uniqueName } from '../support/clients.js';
import { call, stdioClient } from '../support/mcp.js';
import { pyGetRun } from '../support/python.js';
import { freePort, repoRoot } from '../support/services.js';
import { cliPath, startWorkerProcess, stopAllWorkers, taskEnv, waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
let workDir = '';

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'rw-ownership-'));
});
afterEach(async () => {
  killFixtures();
  await stopAllWorkers();
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Waits until MLflow's Python client no longer sees the run RUNNING, then returns it as read. */
async function whenClosed(runId: string, timeoutMs: number) {
  return waitFor(
    `run ${runId} to leave RUNNING`,
    async () => {
      const r = await pyGetRun(mlflowUrl, runId);
      return r.status !== 'RUNNING' && r;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** A library script (test/fixtures/open-run.ts) holding a leased, heartbeated run; returns its id. */
async function libraryRunKilledMinus9(experimentId: string, leaseMs: number) {
  const fx = runFixture('open-run', [mlflowUrl, experimentId, String(leaseMs), '500']);
  const { runId } = (await fx.firstLine) as { runId: string };
  fx.child.kill('SIGKILL');
  const killedAt = Date.now();
  await fx.exited;
  return { runId, killedAt };
}

describe('ownership: a process closes only the runs it owns', () => {
  it("stdio: when one server's client disconnects, it ends its own run KILLED, while another server's run it wrote to stays RUNNING and a run already FINISHED stays FINISHED", async () => {
    // Both servers share RUNWARDEN_OWNER: their owner ids still differ (per-runtime nonce).
    const env = { MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_OWNER: 'shared-agent-host' };
    const a = await stdioClient(env);
    const b = await stdioClient(env);
    try {
      const experiment_name = uniqueName('shared-run');
      const live = await call<{ run_id: string }>(a.client, 'start_run', { experiment_name });
      const done = await call<{ run_id: string }>(a.client, 'start_run', { experiment_name });
      // B adopts both of A's runs through ordinary tool calls.
      for (const run_id of [live.run_id, done.run_id])
        await call(b.client, 'log_metrics', { run_id, metrics: [{ key: 'from_b', value: 1, step: 1 }] });
      // B owns a run of its own (the positive control: B's shutdown must close this one).
      const ownOfB = await call<{ run_id: string }>(b.client, 'start_run', { experiment_name });
      // A ends one of them FINISHED; B still holds a handle on it.
      await call(a.client, 'end_run', { run_id: done.run_id, status: 'FINISHED' });

      // B's client goes away: B's server shuts down (it exits once its shutdown is done).
      const bExited = new Promise<void>((resolve) => {
        const pid = b.transport.pid;
        if (pid === null) return resolve();
        const check = setInterval(() => {
          try {
            process.kill(pid, 0);
          } catch {
            clearInterval(check);
            resolve();
          }
        }, 100);
      });
      await b.client.close();
      await bExited;

      const bRun = await pyGetRun(mlflowUrl, ownOfB.run_id);
      expect(bRun.status).toBe('KILLED');
      expect(bRun.tags[RW_TAGS.closedBy]).toBe('mcp-server');
      const liveRun = await pyGetRun(mlflowUrl, live.run_id);
      expect(liveRun.status).toBe('RUNNING');
      expect(liveRun.tags[RW_TAGS.closedBy]).toBeUndefined();
      expect(liveRun.metrics.from_b).toBe(1);
      const doneRun = await pyGetRun(mlflowUrl, done.run_id);
      expect(doneRun.status).toBe('FINISHED');
      expect(doneRun.tags[RW_TAGS.closedBy]).toBe('owner');

      // A is still in charge of its live run.
      await call(a.client, 'log_metrics', { run_id: live.run_id, metrics: [{ key: 'from_a', value: 2 }] });
      await call(a.client, 'end_run', { run_id: live.run_id, status: 'FINISHED' });
      expect((await pyGetRun(mlflowUrl, live.run_id)).status).toBe('FINISHED');
    } finally {
      await a.client.close().catch(() => undefined);
      await b.client.close().catch(() => undefined);
    }
  });
});

/** `runwarden up` pointed at the test's MLflow and Redis; resolves once it printed that it is up. */
async function startUp(env: Record<string, string>) {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', cliPath, 'up'], {
    cwd: repoRoot,
    env: { ...process.env, ...env, RUNWARDEN_HTTP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  };
  try {
    await waitFor(
      'runwarden up to be up',
      () => {
        if (child.exitCode !== null) throw new Error(`runwarden up exited (${child.exitCode}): ${err}`);
        return out.includes('runwarden is up.');
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\nstderr:\n${err}`);
  }
  return { child, stop, stdout: () => out };
}

describe('ownership: the running stack reaps every expired lease, whoever opened the run', () => {
  const LEASE_MS = 3_000;
  const REAP_MS = 1_000;

  it('runwarden up: a library script killed with -9 has its run reaped FAILED by the stack within lease + reap interval', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('up-reaps'));
    const up = await startUp(
      taskEnv({
        mlflowUrl,
        redisUrl,
        prefix: uniqueName('rw-own-up'),
        workDir,
        env: {
          RUNWARDEN_REAP_INTERVAL_MS: String(REAP_MS),
          // Scoped to this test's experiment, so it never races other files' own sweeps.
          RUNWARDEN_REAP_EXPERIMENT_IDS: experimentId,
          RUNWARDEN_DATA_DIR: join(workDir, 'data'),
        },
      }),
    );
    try {
      expect(up.stdout()).toContain(`Reaper:        every ${REAP_MS} ms`);
      const { runId, killedAt } = await libraryRunKilledMinus9(experimentId, LEASE_MS);
      const run = await whenClosed(runId, 45_000);
      const tookMs = (run.end_time ?? Number.NaN) - killedAt;
      expect(run.status).toBe('FAILED');
      expect(run.tags[RW_TAGS.closedBy]).toBe('reaper');
      expect(run.tags[RW_TAGS.closeReason]).toMatch(/^lease expired at .*stopped renewing it/);
      // Reaped after the lease ran out, not before.
      expect(run.end_time).toBeGreaterThanOrEqual(Number(run.tags[RW_TAGS.leaseExpiresAt]));
      // Within lease + reap interval, plus slack for one sweep on a loaded 2-core machine.
      expect(tookMs).toBeLessThan(LEASE_MS + REAP_MS + 10_000);
      console.info(
        `runwarden up reaped the killed script's run ${tookMs} ms after the kill (lease ${LEASE_MS} ms, reap every ${REAP_MS} ms)`,
      );
    } finally {
      await up.stop();
    }
  });

  it('runwarden worker: a lone worker reaps a killed library script run, not only its own workers runs', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('worker-reaps'));
    await startWorkerProcess({
      mlflowUrl,
      redisUrl,
      prefix: uniqueName('rw-own-worker'),
      workDir,
      env: { RUNWARDEN_REAP_INTERVAL_MS: String(REAP_MS), RUNWARDEN_REAP_EXPERIMENT_IDS: experimentId },
    });
    const { runId, killedAt } = await libraryRunKilledMinus9(experimentId, LEASE_MS);
    const run = await whenClosed(runId, 45_000);
    expect(run.status).toBe('FAILED');
    expect(run.tags[RW_TAGS.closedBy]).toBe('reaper');
    const tookMs = (run.end_time ?? Number.NaN) - killedAt;
    expect(tookMs).toBeLessThan(LEASE_MS + REAP_MS + 10_000);
    console.info(`runwarden worker reaped the killed script's run ${tookMs} ms after the kill`);
  });
});
