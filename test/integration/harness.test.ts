// Proves the integration harness itself: the shared MLflow server and redis-server started by
// test/support/global-setup.ts answer, and MLflow's Python client in .venv can write to the
// server in a way its REST API reads back.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { runPythonMlflow } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');

describe('integration harness', () => {
  it('harness: the MLflow server answers /health and reports version 3.17.2', async () => {
    const health = await fetch(`${mlflowUrl}/health`);
    expect(health.status).toBe(200);
    const version = await fetch(`${mlflowUrl}/version`);
    expect(version.status).toBe(200);
    expect((await version.text()).trim()).toBe('3.17.2');
  });

  it('harness: redis answers PING', async () => {
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
    } finally {
      await redis.quit();
    }
  });

  it("harness: MLflow's Python client reads the server", async () => {
    const name = `harness-${randomUUID()}`;
    const created = await runPythonMlflow<{ experiment_id: string }>(
      [
        'import json, os',
        'from mlflow.tracking import MlflowClient',
        "eid = MlflowClient().create_experiment(os.environ['RW_NAME'])",
        "print(json.dumps({'experiment_id': eid}))",
      ].join('\n'),
      { trackingUri: mlflowUrl, env: { RW_NAME: name } },
    );
    expect(created.experiment_id).toMatch(/^\d+$/);

    const res = await fetch(
      `${mlflowUrl}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`,
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { experiment: { experiment_id: string; name: string } };
    expect(body.experiment).toMatchObject({ experiment_id: created.experiment_id, name });
  });
});
