// The lease is a fence, against the real MLflow server with the fault proxy in front of the
// handle's client: a handle cut off from MLflow long enough for its lease to expire is reaped, and
// once it can reach MLflow again it detaches (signal aborted, writes refused with RUN_CLOSED naming
// the reaper) and never overwrites the reaper's status; an end() that failed during an outage
// succeeds when called again.
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  createMlflowClient,
  getOrCreateExperiment,
  RunClosedError,
  reapExpiredRuns,
  startRun,
} from '../../src/index.js';
import type { RunHandle } from '../../src/tracking/run-handle.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun, pyMetricHistory } from '../support/python.js';
import { waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const direct = testClient(mlflowUrl);

const proxies: FaultProxy[] = [];
const handles: RunHandle[] = [];
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.setMode('pass').then(() => p.close());
  for (const h of handles.splice(0)) await h.end('KILLED').catch(() => undefined);
});

/** A client that reaches MLflow only through a fault proxy, with a short retry budget. */
async function proxiedClient() {
  const proxy = await startFaultProxy(mlflowUrl);
  proxies.push(proxy);
  const client = createMlflowClient({
    trackingUri: proxy.url,
    timeoutMs: 2_000,
    retry: { maxRetries: 1, baseDelayMs: 50, maxDelayMs: 200 },
  });
  return { proxy, client };
}

describe('the lease is a fence', () => {
  it('a handle writing after the reaper closed its run: refused with RUN_CLOSED naming the reaper, the run keeps the reaper status and closed_by, the handle signal aborted', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('fence-reaped'));
    const { proxy, client } = await proxiedClient();
    const run = await startRun(client, {
      experimentId,
      leaseMs: 1_500,
      heartbeatMs: 300,
      handleSignals: false,
    });
    handles.push(run);
    await run.logMetric('loss', 1, { step: 0 });
    await run.flush();

    // Cut off: heartbeats fail, the lease runs out, the reaper (which reaches MLflow) closes the run.
    await proxy.setMode('refuse');
    await run.logMetric('loss', 2, { step: 1 });
    const reaped = await waitFor(
      'the reaper to close the expired run',
      async () => {
        const r = await reapExpiredRuns(direct, { experimentIds: [experimentId] });
        return r.closed.find((c) => c.runId === run.runId);
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    const closed = await pyGetRun(mlflowUrl, run.runId);
    expect(closed.status).toBe(reaped.status);
    expect(closed.tags['runwarden.closed_by']).toBe('reaper');

    // Reachable again: the next heartbeat reads the run and detaches.
    await proxy.setMode('pass');
    await waitFor('the handle to detach', () => run.signal.aborted, { timeoutMs: 30_000, intervalMs: 100 });
    const reason = run.signal.reason as RunClosedError;
    expect(reason).toBeInstanceOf(RunClosedError);
    expect(reason.code).toBe('RUN_CLOSED');
    expect(reason.closedBy).toBe('reaper');

    for (const write of [
      () => run.logMetric('loss', 3, { step: 2 }),
      () => run.setTag('after', 'reaped'),
      () => run.logParam('late', 1),
      () => run.end('FINISHED'),
    ]) {
      const err = await write().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunClosedError);
      expect((err as RunClosedError).closedBy).toBe('reaper');
    }
    const after = await pyGetRun(mlflowUrl, run.runId);
    expect(after.status).toBe(closed.status);
    expect(after.end_time).toBe(closed.end_time);
    expect(after.tags['runwarden.closed_by']).toBe('reaper');
    expect(after.tags['runwarden.close_reason']).toBe(closed.tags['runwarden.close_reason']);
    expect(after.tags.after).toBeUndefined();
    expect(after.params.late).toBeUndefined();
    // The point logged while cut off is reported, not sent to a run that is not ours.
    expect(run.pending).toBe(1);
    expect((await pyMetricHistory(mlflowUrl, run.runId, 'loss')).map((p) => p.step)).toEqual([0]);
  });

  it('end() after a transient outage: the failed call leaves the run RUNNING, a later end() ends it FINISHED with every point stored', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('fence-end-retry'));
    const { proxy, client } = await proxiedClient();
    const run = await startRun(client, { experimentId, handleSignals: false, endFlushTimeoutMs: 1_000 });
    handles.push(run);
    await proxy.setMode('refuse');
    // Logged during the outage: still in the buffer when the first end() fails.
    for (let i = 0; i < 50; i++) await run.logMetric('loss', i, { step: i });
    const err = await run.end('FINISHED').catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('MLFLOW_UNREACHABLE');
    expect(run.status).toBe('RUNNING');
    expect((await pyGetRun(mlflowUrl, run.runId)).status).toBe('RUNNING');
    // None stored yet: the final count below proves the retried end() sent them.
    expect(await pyMetricHistory(mlflowUrl, run.runId, 'loss')).toHaveLength(0);

    await proxy.setMode('pass');
    await run.end('FINISHED');
    const got = await pyGetRun(mlflowUrl, run.runId);
    expect(got.status).toBe('FINISHED');
    expect(got.tags['runwarden.closed_by']).toBe('owner');
    expect(await pyMetricHistory(mlflowUrl, run.runId, 'loss')).toHaveLength(50);
  });
});
