// Model registration against the real MLflow registry: concurrent registrations make one
// registered model and one version each, with the alias on the newest; idempotency keys; clear
// errors; and what MLflow's Python client sees through the alias.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, registerModel, startRun } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { testClient, uniqueName } from '../support/clients.js';
import { runPythonMlflow } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);

async function runWithModel(experimentId: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rw-model-'));
  await writeFile(join(dir, 'model.txt'), 'weights');
  const run = await startRun(client, { experimentId, handleSignals: false });
  await run.logArtifact(dir, 'model');
  await run.end();
  return run.runId;
}

describe('registerModel', () => {
  it('registerModel: two concurrent registrations give one registered model, two versions, and the alias on the newest', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('registry'));
    const [runA, runB] = await Promise.all([runWithModel(experimentId), runWithModel(experimentId)]);
    const name = uniqueName('forecaster');
    const results = await Promise.all([
      registerModel(client, { runId: runA, artifactPath: 'model', name, alias: 'champion' }),
      registerModel(client, { runId: runB, artifactPath: 'model', name, alias: 'champion' }),
    ]);
    expect(results.map((r) => r.version).sort()).toEqual(['1', '2']);
    expect(results.every((r) => r.created && r.modelVersion.status === 'READY')).toBe(true);
    const seen = await runPythonMlflow<{ models: number; versions: string[]; alias: string; source: string }>(
      `import json
from mlflow import MlflowClient
c = MlflowClient()
models = c.search_registered_models(filter_string="name = '${name}'")
versions = sorted(v.version for v in c.search_model_versions("name = '${name}'"))
mv = c.get_model_version_by_alias('${name}', 'champion')
print(json.dumps({"models": len(models), "versions": versions, "alias": mv.version, "source": mv.source}))`,
      { trackingUri: mlflowUrl },
    );
    expect(seen.models).toBe(1);
    expect(seen.versions).toEqual(['1', '2']);
    expect(seen.alias).toBe('2');
    expect(seen.source).toMatch(/^mlflow-artifacts:\/.+\/artifacts\/model$/);
  });

  it('registerModel: the same idempotency key twice returns the first version, created=false', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('idem'));
    const runId = await runWithModel(experimentId);
    const name = uniqueName('idem-model');
    const first = await registerModel(client, {
      runId,
      artifactPath: 'model',
      name,
      idempotencyKey: 'task-1:attempt-1',
    });
    const again = await registerModel(client, {
      runId,
      artifactPath: 'model',
      name,
      idempotencyKey: 'task-1:attempt-1',
    });
    expect(first).toMatchObject({ version: '1', created: true });
    expect(again).toMatchObject({ version: '1', created: false });
    const all = await ok(
      client.api.GET('/api/2.0/mlflow/model-versions/search', {
        params: { query: { filter: `name = '${name}'` } },
      }),
    );
    expect(all.model_versions).toHaveLength(1);
  });

  it('registerModel: bad aliases, empty paths and unknown runs are refused with the field named', async () => {
    await expect(
      registerModel(client, { runId: 'x', artifactPath: 'model', name: 'm', alias: 'latest' }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'alias',
    });
    await expect(
      registerModel(client, { runId: 'x', artifactPath: 'model', name: 'm', alias: 'v3' }),
    ).rejects.toMatchObject({
      field: 'alias',
    });
    await expect(
      registerModel(client, { runId: 'x', artifactPath: '../x', name: 'm' }),
    ).rejects.toMatchObject({
      code: 'UNSAFE_ARTIFACT_PATH',
    });
    await expect(
      registerModel(client, { runId: 'f'.repeat(32), artifactPath: 'model', name: uniqueName('nope') }),
    ).rejects.toMatchObject({ code: 'MLFLOW_API_ERROR', errorCode: 'RESOURCE_DOES_NOT_EXIST' });
  });
});
