// withRun's end against the real MLflow with the fault proxy in front of it: when `fn` resolved
// with every point stored and ending FINISHED fails on an outage (both tries), the run is never
// ended FAILED for it, even if MLflow is back a moment later; withRun rejects with the end error.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, withRun } from '../../src/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { endOutageClient } from '../support/end-outage.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun, pyMetricHistory } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const direct = testClient(mlflowUrl);
const proxies: FaultProxy[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

describe('withRun ends with the true status', () => {
  it('withRun: when fn resolved and ending FINISHED fails twice on an outage that is over right after, the run is not ended FAILED', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('with-run-end'));
    const proxy = await startFaultProxy(mlflowUrl);
    proxies.push(proxy);
    // The outage ends right after the second failed read of the run while it ends.
    const outage = endOutageClient(proxy, 2);
    const client = outage.client;
    let runId = '';
    const outcome = await withRun(
      client,
      { experimentId, heartbeatMs: 60_000, leaseMs: 300_000, handleSignals: false },
      async (run) => {
        runId = run.runId;
        for (let step = 0; step < 20; step++) await run.logMetric('loss', 1 / (step + 1), { step });
        await run.flush();
        await outage.startOutage();
        return 'trained';
      },
    ).then(
      (v) => ({ value: v }),
      (err: unknown) => ({ error: err as Error }),
    );
    expect(outage.failedEndReads()).toBe(2);
    expect('error' in outcome).toBe(true);
    const run = await pyGetRun(mlflowUrl, runId);
    // Before the fix the catch fell through to end(FAILED) once MLflow answered again.
    expect(run.status).not.toBe('FAILED');
    expect(run.status).toBe('RUNNING');
    expect(await pyMetricHistory(mlflowUrl, runId, 'loss')).toHaveLength(20);
  }, 120_000);
});
