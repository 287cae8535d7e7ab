// No orphaned runs, against the real MLflow server: a signalled process ends its runs KILLED, a
// kill -9'd one leaves a RUNNING run that the reaper closes once its lease expires (and not
// before), foreign runs are touched only on request, and `runwarden reap` does the same from the CLI.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, RW_TAGS, reapExpiredRuns } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { killFixtures, runFixture, testClient, uniqueName } from '../support/clients.js';
import { pyGetRun } from '../support/python.js';
import { runCli, sleep } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);

afterEach(() => killFixtures());

/** A run's status over REST: fast, for checks that must happen before a lease runs out. */
async function restStatus(runId: string) {
  const { run } = await ok(
    client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
  );
  return run?.info?.status;
}

/** A run created directly over REST, as a crashed owner (or a foreign tool) would leave it. */
async function rawRun(experimentId: string, tags: Record<string, string>, startTime = Date.now()) {
  const res = await ok(
    client.api.POST('/api/2.0/mlflow/runs/create', {
      body: {
        experiment_id: experimentId,
        start_time: startTime,
        tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      },
    }),
  );
  return res.run!.info!.run_id!;
}

describe('leases, signals and the reaper', () => {
  it('SIGTERM: a process with an open run ends it KILLED before exiting', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('sigterm'));
    const fx = runFixture('open-run', [mlflowUrl, experimentId, '60000', '1000']);
    const { runId } = (await fx.firstLine) as { runId: string };
    await sleep(500);
    fx.child.kill('SIGTERM');
    const exit = await fx.exited;
    expect(exit.code).toBe(143);
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('KILLED');
    expect(run.tags[RW_TAGS.closedBy]).toBe('signal');
    expect(run.tags[RW_TAGS.closeReason]).toBe('process received SIGTERM');
    expect(run.params).toEqual({ fixture: 'open-run' });
  });

  it('kill -9: the run stays RUNNING while its lease lasts, then the reaper closes it with the reason', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('sigkill'));
    // Lease 8 s, heartbeat every 0.5 s: generous enough for a loaded 2-core CI machine.
    const fx = runFixture('open-run', [mlflowUrl, experimentId, '8000', '500']);
    const { runId } = (await fx.firstLine) as { runId: string };
    // While the owner lives, its heartbeat keeps renewing: after more than one lease length the
    // reaper still leaves the run alone.
    await sleep(10_000);
    expect((await reapExpiredRuns(client, { experimentIds: [experimentId] })).closed).toEqual([]);
    fx.child.kill('SIGKILL');
    await fx.exited;
    // Right after the kill, before the lease can run out (the Python client takes seconds to
    // start, so it looks only after these fast checks): still RUNNING, and not reaped yet.
    expect(await restStatus(runId)).toBe('RUNNING');
    expect((await reapExpiredRuns(client, { experimentIds: [experimentId] })).closed).toEqual([]);
    expect((await pyGetRun(mlflowUrl, runId)).status).toBe('RUNNING');
    await sleep(8_500);
    const result = await reapExpiredRuns(client, { experimentIds: [experimentId] });
    expect(result.closed.map((r) => [r.runId, r.status])).toEqual([[runId, 'FAILED']]);
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('FAILED');
    expect(run.tags[RW_TAGS.closedBy]).toBe('reaper');
    expect(run.tags[RW_TAGS.closeReason]).toMatch(
      /^lease expired at .*stopped renewing it .*closed by the reaper$/,
    );
    // A second sweep finds nothing more to do.
    expect((await reapExpiredRuns(client, { experimentIds: [experimentId] })).closed).toEqual([]);
  });

  it('reaper: an expired lease ends KILLED when the owner declared it so, or when cancellation was requested', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('expiry-status'));
    const past = String(Date.now() - 1_000);
    const agentRun = await rawRun(experimentId, {
      [RW_TAGS.owner]: 'agent-session-1',
      [RW_TAGS.leaseExpiresAt]: past,
      [RW_TAGS.leaseExpiryStatus]: 'KILLED',
    });
    const cancelled = await rawRun(experimentId, {
      [RW_TAGS.owner]: 'worker-2',
      [RW_TAGS.leaseExpiresAt]: past,
      [RW_TAGS.cancelRequested]: 'true',
    });
    const alive = await rawRun(experimentId, {
      [RW_TAGS.owner]: 'worker-3',
      [RW_TAGS.leaseExpiresAt]: String(Date.now() + 600_000),
    });
    const dry = await reapExpiredRuns(client, { experimentIds: [experimentId], dryRun: true });
    expect(dry.closed).toHaveLength(2);
    expect((await pyGetRun(mlflowUrl, agentRun)).status).toBe('RUNNING');
    await reapExpiredRuns(client, { experimentIds: [experimentId] });
    expect((await pyGetRun(mlflowUrl, agentRun)).status).toBe('KILLED');
    const c = await pyGetRun(mlflowUrl, cancelled);
    expect(c.status).toBe('KILLED');
    expect(c.tags[RW_TAGS.closeReason]).toMatch(/^cancellation was requested/);
    expect((await pyGetRun(mlflowUrl, alive)).status).toBe('RUNNING');
  });

  it('reaper: runs runwarden did not start are closed only with includeForeign and an age threshold', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('foreign'));
    const old = await rawRun(experimentId, { 'mlflow.user': 'someone' }, Date.now() - 2 * 3_600_000);
    const recent = await rawRun(experimentId, { 'mlflow.user': 'someone' });
    expect((await reapExpiredRuns(client, { experimentIds: [experimentId] })).closed).toEqual([]);
    await expect(
      reapExpiredRuns(client, { experimentIds: [experimentId], includeForeign: true }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'olderThanMs',
    });
    const res = await reapExpiredRuns(client, {
      experimentIds: [experimentId],
      includeForeign: true,
      olderThanMs: 3_600_000,
    });
    expect(res.closed.map((r) => [r.runId, r.foreign])).toEqual([[old, true]]);
    expect((await pyGetRun(mlflowUrl, old)).status).toBe('FAILED');
    expect((await pyGetRun(mlflowUrl, recent)).status).toBe('RUNNING');
  });

  it('runwarden reap: the CLI closes expired runs, prints them as JSON and exits 0; a bad flag or experiment id exits 2, its echo capped', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('cli-reap'));
    const runId = await rawRun(experimentId, {
      [RW_TAGS.owner]: 'gone@host:1',
      [RW_TAGS.leaseExpiresAt]: String(Date.now() - 5_000),
    });
    const cli = (args: string[]) =>
      runCli(args, { MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_LOG_LEVEL: 'silent' });
    const res = await cli(['reap', '--experiment-id', experimentId, '--json']);
    expect(res.code).toBe(0);
    const parsed = JSON.parse(res.out) as { closed: { runId: string; status: string }[] };
    expect(parsed.closed).toEqual([expect.objectContaining({ runId, status: 'FAILED' })]);
    expect((await pyGetRun(mlflowUrl, runId)).status).toBe('FAILED');
    const bad = await cli(['reap', '--include-foreign']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--older-than');
    const badId = await cli(['reap', '--experiment-id', `1' OR '1'='1${'x'.repeat(10_000)}`]);
    expect(badId.code).toBe(2);
    expect(badId.err).toContain('--experiment-id');
    expect(badId.err.length).toBeLessThan(1_000);
  });
});
