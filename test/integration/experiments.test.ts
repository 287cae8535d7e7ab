// One experiment per name, against the real MLflow server: concurrent get-or-create from several
// processes, and a deleted experiment holding its name.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ExperimentDeletedError, getOrCreateExperiment } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { killFixtures, runFixture, testClient, uniqueName } from '../support/clients.js';
import { runPythonMlflow } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);

afterEach(() => killFixtures());

describe('getOrCreateExperiment', () => {
  it('getOrCreateExperiment: 50 concurrent calls for one name from 2 processes and this one all get one id', async () => {
    const name = uniqueName('race');
    const a = runFixture('get-or-create', [mlflowUrl, name, '20']);
    const b = runFixture('get-or-create', [mlflowUrl, name, '20']);
    const here = await Promise.all(Array.from({ length: 10 }, () => getOrCreateExperiment(client, name)));
    const [ra, rb] = (await Promise.all([a.firstLine, b.firstLine])) as { ids: string[]; created: number }[];
    const ids = [...ra!.ids, ...rb!.ids, ...here.map((r) => r.experimentId)];
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(1);
    // Exactly one caller created it.
    expect(ra!.created + rb!.created + here.filter((r) => r.created).length).toBe(1);
    // MLflow's own client sees one experiment with that name.
    const seen = await runPythonMlflow<{ count: number; id: string }>(
      `import json, mlflow
exps = mlflow.search_experiments(filter_string="name = '${name}'")
print(json.dumps({"count": len(exps), "id": exps[0].experiment_id}))`,
      { trackingUri: mlflowUrl },
    );
    expect(seen).toEqual({ count: 1, id: ids[0] });
  });

  it('getOrCreateExperiment: the second call returns the same id with created=false and keeps the tags', async () => {
    const name = uniqueName('again');
    const first = await getOrCreateExperiment(client, name, { tags: { team: 'forecast' } });
    const second = await getOrCreateExperiment(client, name, { tags: { team: 'other' } });
    expect(first.created).toBe(true);
    expect(second).toMatchObject({ experimentId: first.experimentId, created: false });
    expect(second.experiment.tags).toContainEqual({ key: 'team', value: 'forecast' });
  });

  it('getOrCreateExperiment: a deleted experiment holding the name is reported with how to restore it', async () => {
    const name = uniqueName('deleted');
    const { experimentId } = await getOrCreateExperiment(client, name);
    await ok(
      client.api.POST('/api/2.0/mlflow/experiments/delete', { body: { experiment_id: experimentId } }),
    );
    const err = await getOrCreateExperiment(client, name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExperimentDeletedError);
    expect((err as ExperimentDeletedError).code).toBe('EXPERIMENT_DELETED');
    expect((err as Error).message).toContain(`experiment_id":"${experimentId}"`);
    expect((err as Error).message).toMatch(/restore/i);
    // Following the advice works: restore, then the same call succeeds with the same id.
    await ok(
      client.api.POST('/api/2.0/mlflow/experiments/restore', { body: { experiment_id: experimentId } }),
    );
    expect((await getOrCreateExperiment(client, name)).experimentId).toBe(experimentId);
  });

  it('getOrCreateExperiment: an empty name is refused before any request', async () => {
    await expect(getOrCreateExperiment(client, '  ')).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'name',
    });
  });
});
