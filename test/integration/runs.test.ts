// Runs always close, against the real MLflow server: withRun's three endings, system tags as the
// Python client sets them, metric history of 25,000 points, and clear errors for bad input —
// each checked through MLflow's own Python client as an independent reader.
import { describe, expect, inject, it } from 'vitest';
import {
  getMetricHistory,
  getOrCreateExperiment,
  ParamConflictError,
  startRun,
  UnsafeArtifactPathError,
  ValidationError,
  withRun,
} from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { testClient, uniqueName } from '../support/clients.js';
import { callError, stdioClient } from '../support/mcp.js';
import { pyGetRun, pyMetricHistory, runPythonMlflow } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);
const experiment = getOrCreateExperiment(client, uniqueName('runs'));
const expId = async () => (await experiment).experimentId;

describe('withRun', () => {
  it('withRun: ends FINISHED when the function returns, with params, metrics and system tags in place', async () => {
    let runId = '';
    const parent = await startRun(client, {
      experimentId: await expId(),
      runName: 'parent',
      handleSignals: false,
    });
    const value = await withRun(
      client,
      {
        experimentId: await expId(),
        runName: 'fine',
        description: 'a run that works',
        parentRunId: parent.runId,
        params: { lr: 0.01, model: 'gru' },
        tags: { stage: 'test' },
      },
      async (run) => {
        runId = run.runId;
        await run.logMetrics({ loss: 0.5, acc: 0.8 }, { step: 1 });
        return 42;
      },
    );
    await parent.end();
    expect(value).toBe(42);
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('FINISHED');
    expect(run.end_time).toBeGreaterThan(0);
    expect(run.params).toEqual({ lr: '0.01', model: 'gru' });
    expect(run.metrics).toEqual({ loss: 0.5, acc: 0.8 });
    expect(run.tags).toMatchObject({
      'mlflow.runName': 'fine',
      'mlflow.note.content': 'a run that works',
      'mlflow.parentRunId': parent.runId,
      'mlflow.source.type': 'LOCAL',
      stage: 'test',
      'runwarden.closed_by': 'owner',
      'runwarden.close_reason': 'completed',
    });
    expect(run.tags['mlflow.user']).toBeTruthy();
    expect(run.tags['mlflow.source.name']).toBeTruthy();
    expect(run.tags['runwarden.owner']).toMatch(/@.+:\d+$/);
    expect(Number(run.tags['runwarden.lease_expires_at'])).toBeGreaterThan(Date.now() - 60_000);
  });

  it('withRun: ends FAILED when the function throws, with the error in the description and a tag', async () => {
    let runId = '';
    const err = await withRun(client, { experimentId: await expId(), runName: 'boom' }, async (run) => {
      runId = run.runId;
      await run.logMetric('loss', 1, { step: 0 });
      throw new Error('exploded at epoch 3');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('exploded at epoch 3');
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('FAILED');
    expect(run.metrics).toEqual({ loss: 1 });
    expect(run.tags['runwarden.error']).toBe('Error: exploded at epoch 3');
    expect(run.tags['mlflow.note.content']).toContain('exploded at epoch 3');
  });

  it('withRun: ends KILLED as soon as its AbortSignal fires, without waiting for the function', async () => {
    let runId = '';
    const ac = new AbortController();
    const started = Date.now();
    const done = withRun(
      client,
      { experimentId: await expId(), runName: 'cancel-me', signal: ac.signal },
      async (run) => {
        runId = run.runId;
        setTimeout(() => ac.abort(new Error('user cancelled')), 100);
        await new Promise((r) => setTimeout(r, 60_000));
      },
    );
    await expect(done).rejects.toThrow('user cancelled');
    expect(Date.now() - started).toBeLessThan(30_000);
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.status).toBe('KILLED');
    expect(run.tags['runwarden.close_reason']).toBe('aborted: user cancelled');
  });
});

describe('metrics', () => {
  it('RunHandle: 25,000 metric points with steps all come back from get-history, in order', async () => {
    const run = await startRun(client, {
      experimentId: await expId(),
      runName: 'many-points',
      handleSignals: false,
    });
    const base = Date.now();
    for (let step = 0; step < 25_000; step++) {
      await run.logMetric('loss', 1 / (step + 1), { step, timestamp: base + step });
    }
    await run.end();
    const history = await getMetricHistory(client, run.runId, 'loss');
    expect(history).toHaveLength(25_000);
    expect(history.map((m) => m.step)).toEqual(Array.from({ length: 25_000 }, (_, i) => i));
    expect(history[24_999]!.value).toBeCloseTo(1 / 25_000, 12);
    // MLflow's Python client sees the same history.
    const py = await pyMetricHistory(mlflowUrl, run.runId, 'loss');
    expect(py).toHaveLength(25_000);
    expect(py.map((m) => m.step).sort((a, b) => a - b)[24_999]).toBe(24_999);
  });

  it('RunHandle: NaN and infinite values are stored, not refused', async () => {
    const run = await startRun(client, { experimentId: await expId(), handleSignals: false });
    await run.logMetric('odd', Number.NaN, { step: 0 });
    await run.logMetric('odd', Number.POSITIVE_INFINITY, { step: 1 });
    await run.end();
    const history = await getMetricHistory(client, run.runId, 'odd');
    expect(history).toHaveLength(2);
  });
});

describe('bad input', () => {
  it('logParam: a different value for a logged param is a ParamConflictError naming the key and both values; the run keeps the first', async () => {
    const run = await startRun(client, {
      experimentId: await expId(),
      params: { lr: 0.1 },
      handleSignals: false,
    });
    await run.logParam('lr', 0.1); // same value: fine
    const err = await run.logParam('lr', 0.2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParamConflictError);
    expect(err).toMatchObject({ code: 'PARAM_CONFLICT', key: 'lr', existingValue: '0.1', newValue: '0.2' });
    await run.end();
    expect((await pyGetRun(mlflowUrl, run.runId)).params).toEqual({ lr: '0.1' });
  });

  it("logParam: a conflict with a value logged by another client is detected from MLflow's refusal", async () => {
    const a = await startRun(client, { experimentId: await expId(), handleSignals: false });
    await client.api.POST('/api/2.0/mlflow/runs/log-batch', {
      body: { run_id: a.runId, params: [{ key: 'batch_size', value: '32' }] },
    });
    const err = await a.logParam('batch_size', 64).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'PARAM_CONFLICT',
      key: 'batch_size',
      existingValue: '32',
      newValue: '64',
    });
    await a.end();
  });

  it('RunHandle: invalid keys are refused with the field named, and nothing already logged is lost', async () => {
    const run = await startRun(client, { experimentId: await expId(), handleSignals: false });
    await run.logMetric('good', 1, { step: 0 });
    for (const key of ['bad*key', '../up', 'k'.repeat(251), '']) {
      await expect(run.logMetric(key, 1)).rejects.toBeInstanceOf(ValidationError);
      await expect(run.logParam(key, 1)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    await expect(run.logMetric('good', Number('x') as unknown as number)).resolves.toBeUndefined(); // NaN is a number
    await run.end();
    expect((await pyGetRun(mlflowUrl, run.runId)).metrics.good).toBeDefined();
    expect((await getMetricHistory(client, run.runId, 'good')).length).toBe(2);
  });

  it('logArtifact: paths that escape the artifact root are refused before any upload', async () => {
    const run = await startRun(client, { experimentId: await expId(), handleSignals: false });
    for (const p of ['../../etc/passwd', '/abs/path.txt', 'C:\\windows\\x', 'a/../../b', 'nul\0byte']) {
      await expect(run.logText('x', p)).rejects.toBeInstanceOf(UnsafeArtifactPathError);
    }
    await run.end();
  });

  it('startRun and reads: an unknown run id is a clear RESOURCE_DOES_NOT_EXIST error', async () => {
    const err = await getMetricHistory(client, 'f'.repeat(32), 'loss').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'MLFLOW_API_ERROR',
      status: 404,
      errorCode: 'RESOURCE_DOES_NOT_EXIST',
    });
    await expect(startRun(client, { experimentId: '999999999', handleSignals: false })).rejects.toMatchObject(
      {
        code: 'MLFLOW_API_ERROR',
      },
    );
  });

  it('RunHandle: after end(), further writes are refused with RUN_CLOSED', async () => {
    const run = await startRun(client, { experimentId: await expId(), handleSignals: false });
    await run.end();
    await expect(run.logMetric('x', 1)).rejects.toMatchObject({ code: 'RUN_CLOSED' });
    await expect(run.setTag('x', 'y')).rejects.toMatchObject({ code: 'RUN_CLOSED' });
  });

  it('start_run (MCP): a parent_run_id naming no run is refused naming parent_run_id, and no run is created', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('parent-missing'));
    const mcp = await stdioClient({ MLFLOW_TRACKING_URI: mlflowUrl });
    try {
      const text = await callError(mcp.client, 'start_run', {
        experiment_id: experimentId,
        run_name: 'orphan-child',
        parent_run_id: 'a'.repeat(32),
      });
      expect(text).toMatch(/^parent_run_id: no run "a{32}" exists/);
      const hugeId = await callError(mcp.client, 'start_run', {
        experiment_id: experimentId,
        parent_run_id: 'b'.repeat(100_000),
      });
      expect(hugeId).toMatch(/^parent_run_id: /);
      expect(hugeId.length).toBeLessThan(2_000);
    } finally {
      await mcp.client.close();
    }
    const seen = await runPythonMlflow<{ runs: number }>(
      `import json, sys
from mlflow import MlflowClient
from mlflow.entities import ViewType
print(json.dumps({"runs": len(MlflowClient().search_runs([sys.argv[1]], run_view_type=ViewType.ALL))}))`,
      { trackingUri: mlflowUrl, args: [experimentId] },
    );
    expect(seen.runs).toBe(0);
  });

  it('startRun: a parent that is deleted, or in another experiment, is refused naming parentRunId before any run is created', async () => {
    const other = await getOrCreateExperiment(client, uniqueName('parent-other'));
    const parent = await startRun(client, { experimentId: other.experimentId, handleSignals: false });
    await parent.end();
    const here = await expId();
    await expect(
      startRun(client, { experimentId: here, parentRunId: parent.runId, handleSignals: false }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'parentRunId',
      message: expect.stringContaining(`belongs to experiment ${other.experimentId}`),
    });
    await ok(client.api.POST('/api/2.0/mlflow/runs/delete', { body: { run_id: parent.runId } }));
    await expect(
      startRun(client, { experimentId: other.experimentId, parentRunId: parent.runId, handleSignals: false }),
    ).rejects.toMatchObject({ field: 'parentRunId', message: expect.stringContaining('is deleted') });
    const child = await startRun(client, { experimentId: here, handleSignals: false });
    const nested = await startRun(client, {
      experimentId: here,
      parentRunId: child.runId,
      handleSignals: false,
    });
    expect((await pyGetRun(mlflowUrl, nested.runId)).tags['mlflow.parentRunId']).toBe(child.runId);
    await nested.end();
    await child.end();
  });
});
