// Model registration against the real MLflow registry: concurrent registrations make one
// registered model and one version each, with the alias on the newest; idempotency keys; clear
// errors; and what MLflow's Python client sees through the alias.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, registerModel, startRun } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { ensureRegisteredModel } from '../../src/tracking/models.js';
import { killFixtures, runFixture, testClient, uniqueName } from '../support/clients.js';
import { call, callError, stdioClient } from '../support/mcp.js';
import { runPythonMlflow } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);
afterEach(() => killFixtures());

/** Versions of `name` and its alias, read with MLflow's Python client. */
function pyVersions(name: string): Promise<{ models: number; versions: string[]; champion: string | null }> {
  return runPythonMlflow(
    `import json, sys
from mlflow import MlflowClient
c = MlflowClient()
name = sys.argv[1]
models = c.search_registered_models(filter_string="name = '" + name + "'")
versions = sorted(v.version for v in c.search_model_versions("name = '" + name + "'"))
champion = None
if models:
    aliases = c.get_registered_model(name).aliases
    champion = aliases.get("champion")
print(json.dumps({"models": len(models), "versions": versions, "champion": champion}))`,
    { trackingUri: mlflowUrl, args: [name] },
  );
}

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

  it('registerModel: 8 concurrent calls with one idempotency key make exactly one version, and all return it', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('idem-8'));
    const runId = await runWithModel(experimentId);
    const name = uniqueName('idem-8-model');
    // The registered model exists already, so all 8 calls reach the version create together.
    await ensureRegisteredModel(client, name);
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        registerModel(client, {
          runId,
          artifactPath: 'model',
          name,
          idempotencyKey: 'k-1',
          alias: 'champion',
        }),
      ),
    );
    const seen = await pyVersions(name);
    expect(seen).toEqual({ models: 1, versions: [results[0]!.version], champion: results[0]!.version });
    expect(new Set(results.map((r) => r.version)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it('registerModel: two processes making 4 concurrent calls each with one idempotency key make exactly one version', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('idem-2p'));
    const runId = await runWithModel(experimentId);
    const name = uniqueName('idem-2p-model');
    const fixtures = [0, 1].map(() =>
      runFixture('register-concurrent', [mlflowUrl, runId, name, 'task-9:attempt-1', '4']),
    );
    const outs = (await Promise.all(fixtures.map((f) => f.firstLine))) as {
      versions: string[];
      created: number;
    }[];
    const versions = outs.flatMap((o) => o.versions);
    expect(versions).toHaveLength(8);
    expect(new Set(versions).size).toBe(1);
    expect(outs.reduce((n, o) => n + o.created, 0)).toBe(1);
    expect(await pyVersions(name)).toEqual({ models: 1, versions: [versions[0]], champion: versions[0] });
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

  it('register_model (MCP): an artifact folder the run does not have is refused naming artifact_path and the folders it has; nothing is registered', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('no-folder'));
    const runId = await runWithModel(experimentId);
    const name = uniqueName('no-folder-model');
    const mcp = await stdioClient({ MLFLOW_TRACKING_URI: mlflowUrl });
    try {
      const text = await callError(mcp.client, 'register_model', {
        run_id: runId,
        artifact_path: 'modle',
        name,
      });
      expect(text).toMatch(
        /^artifact_path: run [0-9a-f]{32} has no artifact 'modle' \(its folders: 'model'\)/,
      );
      const nested = await callError(mcp.client, 'register_model', {
        run_id: runId,
        artifact_path: 'model/x',
        name,
      });
      expect(nested).toMatch(
        /^artifact_path: .*has no artifact 'model\/x' \(it has no folders under 'model', only files\)/,
      );
      // the folder it has still registers
      const ok1 = await call<{ version: string }>(mcp.client, 'register_model', {
        run_id: runId,
        artifact_path: 'model',
        name: `${name}-ok`,
      });
      expect(ok1.version).toBe('1');
    } finally {
      await mcp.client.close();
    }
    expect(await pyVersions(name)).toEqual({ models: 0, versions: [], champion: null });
  });
});
