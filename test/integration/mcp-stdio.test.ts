// The MCP server over stdio against the real MLflow server: the tracked-experiment workflow end
// to end, checked through MLflow's Python client; a client that disconnects without end_run
// leaves a KILLED run with the reason; an expired lease is reaped KILLED.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment } from '../../src/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { call, callError, stdioClient } from '../support/mcp.js';
import { pyGetRun, pyListArtifacts, pyMetricHistory, runPythonMlflow } from '../support/python.js';
import { waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
let root = '';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rw-mcp-root-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Waits (failing after `timeoutMs`) until MLflow's Python client no longer sees the run RUNNING,
 * then reads it once more, so closing tags written alongside the status are there too.
 */
async function whenClosed(runId: string, timeoutMs: number) {
  await waitFor(
    `run ${runId} to leave RUNNING`,
    async () => (await pyGetRun(mlflowUrl, runId)).status !== 'RUNNING',
    { timeoutMs },
  );
  return pyGetRun(mlflowUrl, runId);
}

describe('runwarden mcp (stdio)', () => {
  it('stdio: the tracked-experiment workflow stores params, metrics, artifacts and a registered model, and the run ends FINISHED', async () => {
    const { client } = await stdioClient({ MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_ALLOWED_ROOTS: root });
    try {
      const experiment = uniqueName('mcp-flow');
      const exp = await call<{ experiment_id: string; created: boolean }>(
        client,
        'get_or_create_experiment',
        {
          name: experiment,
        },
      );
      expect(exp.created).toBe(true);
      const run = await call<{ run_id: string; url: string; lease_seconds: number }>(client, 'start_run', {
        experiment_id: exp.experiment_id,
        run_name: 'gru-h8',
        description: 'MCP workflow test',
        params: { hidden: 8, lr: 0.001 },
      });
      expect(run.url).toBe(`${mlflowUrl}/#/experiments/${exp.experiment_id}/runs/${run.run_id}`);
      expect(run.lease_seconds).toBe(900);
      await call(client, 'log_params', { run_id: run.run_id, params: { optimizer: 'adam' } });
      const metrics = Array.from({ length: 3000 }, (_, step) => ({
        key: 'train_loss',
        value: 1 / (step + 1),
        step,
      }));
      expect(await call(client, 'log_metrics', { run_id: run.run_id, metrics })).toMatchObject({
        logged: 3000,
      });
      const modelDir = join(root, 'model');
      await mkdir(modelDir, { recursive: true });
      await writeFile(join(modelDir, 'MLmodel'), 'flavors: {}\n');
      await writeFile(join(modelDir, 'weights.bin'), Buffer.alloc(2048, 7));
      expect(
        await call(client, 'log_artifact', {
          run_id: run.run_id,
          local_path: modelDir,
          artifact_path: 'model',
        }),
      ).toMatchObject({ files: 2, bytes: 2048 + 12 });
      await call(client, 'log_artifact', {
        run_id: run.run_id,
        content: '# notes',
        artifact_path: 'reports/notes.md',
      });
      const history = await call<{ total_points: number; downsampled: boolean }>(
        client,
        'get_metric_history',
        {
          run_id: run.run_id,
          key: 'train_loss',
          max_points: 100,
        },
      );
      expect(history).toMatchObject({ total_points: 3000, downsampled: true });
      const modelName = uniqueName('mcp-model');
      const reg = await call<{ version: string; status: string }>(client, 'register_model', {
        run_id: run.run_id,
        artifact_path: 'model',
        name: modelName,
        alias: 'champion',
      });
      expect(reg).toMatchObject({ version: '1', status: 'READY' });
      expect(await call(client, 'end_run', { run_id: run.run_id })).toMatchObject({
        status: 'FINISHED',
        already_closed: false,
      });

      const py = await pyGetRun(mlflowUrl, run.run_id);
      expect(py.status).toBe('FINISHED');
      expect(py.params).toEqual({ hidden: '8', lr: '0.001', optimizer: 'adam' });
      expect(py.tags['mlflow.runName']).toBe('gru-h8');
      expect(py.tags['runwarden.owner']).toMatch(/^mcp:/);
      expect(await pyMetricHistory(mlflowUrl, run.run_id, 'train_loss')).toHaveLength(3000);
      const files = (await pyListArtifacts(mlflowUrl, run.run_id, 'model')).map((f) => f.path).sort();
      expect(files).toEqual(['model/MLmodel', 'model/weights.bin']);
      const alias = await runPythonMlflow<{ version: string; run_id: string }>(
        `import json
from mlflow import MlflowClient
mv = MlflowClient().get_model_version_by_alias('${modelName}', 'champion')
print(json.dumps({"version": mv.version, "run_id": mv.run_id}))`,
        { trackingUri: mlflowUrl },
      );
      expect(alias).toEqual({ version: '1', run_id: run.run_id });
    } finally {
      await client.close();
    }
  });

  it('stdio: a path outside the allowed roots is refused, and the run is untouched', async () => {
    const { client } = await stdioClient({ MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_ALLOWED_ROOTS: root });
    try {
      const run = await call<{ run_id: string }>(client, 'start_run', {
        experiment_name: uniqueName('mcp-roots'),
      });
      const text = await callError(client, 'log_artifact', {
        run_id: run.run_id,
        local_path: '/etc/hostname',
      });
      expect(text).toContain('outside the allowed roots');
      expect(text).toContain(root);
      await call(client, 'end_run', { run_id: run.run_id });
      expect((await pyListArtifacts(mlflowUrl, run.run_id)).length).toBe(0);
    } finally {
      await client.close();
    }
  });

  it('stdio: a client that disconnects without end_run leaves a KILLED run saying so', async () => {
    const { client } = await stdioClient({ MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_ALLOWED_ROOTS: root });
    const run = await call<{ run_id: string }>(client, 'start_run', {
      experiment_name: uniqueName('mcp-forgot'),
    });
    await call(client, 'log_metrics', {
      run_id: run.run_id,
      metrics: [{ key: 'loss', value: 0.3, step: 1 }],
    });
    await client.close();
    const py = await whenClosed(run.run_id, 15_000);
    expect(py.status).toBe('KILLED');
    expect(py.tags['runwarden.closed_by']).toBe('mcp-server');
    expect(py.tags['runwarden.close_reason']).toBe(
      'the MCP client disconnected (stdin closed) without calling end_run',
    );
    expect(py.metrics.loss).toBe(0.3);
  });

  it('stdio: a run whose lease expires while the client stays connected is reaped KILLED with the reason', async () => {
    const experiment_name = uniqueName('mcp-lease');
    const { experimentId } = await getOrCreateExperiment(testClient(mlflowUrl), experiment_name);
    const { client } = await stdioClient({
      MLFLOW_TRACKING_URI: mlflowUrl,
      RUNWARDEN_ALLOWED_ROOTS: root,
      RUNWARDEN_REAP_INTERVAL_MS: '1000',
      // Scoped: a stack reaper sweeps every owner and must not race other files' own sweeps.
      RUNWARDEN_REAP_EXPERIMENT_IDS: experimentId,
    });
    try {
      const run = await call<{ run_id: string }>(client, 'start_run', {
        experiment_name,
        lease_seconds: 10,
      });
      const py = await whenClosed(run.run_id, 30_000);
      expect(py.status).toBe('KILLED');
      expect(py.tags['runwarden.closed_by']).toBe('reaper');
      expect(py.tags['runwarden.close_reason']).toContain('the MCP client never called end_run');
      // The client learns what happened if it comes back to the run.
      const text = await callError(client, 'log_metrics', {
        run_id: run.run_id,
        metrics: [{ key: 'x', value: 1 }],
      });
      expect(text).toMatch(/already closed \(KILLED, closed by reaper/);
      const ended = await call<{ already_closed: boolean; closed_by: string }>(client, 'end_run', {
        run_id: run.run_id,
      });
      expect(ended).toMatchObject({ already_closed: true, closed_by: 'reaper' });
    } finally {
      await client.close();
    }
  });
});
