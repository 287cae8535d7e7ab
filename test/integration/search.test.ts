// Reading back through the search helpers on the real server: full pagination, best run by a
// metric, side-by-side comparison, lineage tags and dataset inputs.
import { describe, expect, inject, it } from 'vitest';
import {
  bestRun,
  compareRuns,
  configHash,
  getOrCreateExperiment,
  RW_TAGS,
  searchRuns,
  startRun,
} from '../../src/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { pyGetRun, runPythonMlflow } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);

describe('search helpers', () => {
  it('searchRuns: follows page tokens until every run is returned', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('pages'));
    for (let i = 0; i < 7; i++) {
      const run = await startRun(client, { experimentId, runName: `r${i}`, handleSignals: false });
      await run.end();
    }
    const runs = await searchRuns(client, { experimentIds: [experimentId], pageSize: 3 });
    expect(runs).toHaveLength(7);
    expect(new Set(runs.map((r) => r.info?.run_name))).toEqual(
      new Set(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']),
    );
    expect(await searchRuns(client, { experimentIds: [experimentId], pageSize: 3, limit: 4 })).toHaveLength(
      4,
    );
  });

  it('bestRun and compareRuns: pick the lowest RMSE and line up params and metrics side by side', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('best'));
    const ids: string[] = [];
    for (const [model, rmse] of [
      ['gru', 0.42],
      ['lstm', 0.37],
      ['ets', 0.55],
    ] as const) {
      const run = await startRun(client, {
        experimentId,
        runName: model,
        params: { model, epochs: 10 },
        handleSignals: false,
      });
      await run.logMetric('rmse', rmse);
      await run.end();
      ids.push(run.runId);
    }
    const noMetric = await startRun(client, { experimentId, runName: 'no-metric', handleSignals: false });
    await noMetric.end();
    const best = await bestRun(client, { experimentIds: [experimentId], metric: 'rmse', direction: 'min' });
    expect(best?.run.info?.run_name).toBe('lstm');
    expect(best?.value).toBe(0.37);
    const worst = await bestRun(client, { experimentIds: [experimentId], metric: 'rmse', direction: 'max' });
    expect(worst?.run.info?.run_name).toBe('ets');
    const cmp = await compareRuns(client, ids);
    expect(cmp.runs.map((r) => r.runName)).toEqual(['gru', 'lstm', 'ets']);
    expect(cmp.params.model).toEqual({ [ids[0]!]: 'gru', [ids[1]!]: 'lstm', [ids[2]!]: 'ets' });
    expect(cmp.metrics.rmse?.[ids[1]!]).toBe(0.37);
    expect(cmp.differingParams).toEqual(['model']);
  });

  it("lineage: the config hash is tagged on the run and dataset inputs show up for MLflow's client", async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('lineage'));
    const config = { template: 'gru', params: { epochs: 5, lr: 0.01 } };
    const run = await startRun(client, {
      experimentId,
      tags: { [RW_TAGS.configHash]: configHash(config) },
      handleSignals: false,
    });
    await run.logInputs([
      {
        dataset: {
          name: 'weekly-cases',
          digest: 'abc123',
          source_type: 'local',
          source: '{"uri":"file:///data/cases.csv"}',
        },
        tags: [{ key: 'mlflow.data.context', value: 'training' }],
      },
    ]);
    await run.end();
    const py = await pyGetRun(mlflowUrl, run.runId);
    expect(py.tags[RW_TAGS.configHash]).toBe(
      configHash({ params: { lr: 0.01, epochs: 5 }, template: 'gru' }),
    );
    const inputs = await runPythonMlflow<{ name: string; context: string }[]>(
      `import json
from mlflow import MlflowClient
r = MlflowClient().get_run('${run.runId}')
print(json.dumps([{"name": d.dataset.name, "context": {t.key: t.value for t in d.tags}.get("mlflow.data.context")} for d in r.inputs.dataset_inputs]))`,
      { trackingUri: mlflowUrl },
    );
    expect(inputs).toEqual([{ name: 'weekly-cases', context: 'training' }]);
  });
});
