// get_run: unknown ids and an unreachable MLflow give isError texts with a recovery step.
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { BASE } from '../harness.js';
import { failed, s, server, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('get_run: an unknown run id is RESOURCE_DOES_NOT_EXIST and the text points to search_runs', async () => {
    const text = failed(await s.call('get_run', { run_id: 'nope' }));
    expect(text).toBe(
      "Run 'nope' not found (MLflow RESOURCE_DOES_NOT_EXIST, GET /api/2.0/mlflow/runs/get). " +
        'Check the id or name: search_experiments and search_runs list what exists.',
    );
  });

  it('get_run: when MLflow is unreachable the text says so and how to recover', async () => {
    server.use(http.all(`${BASE}/*`, () => HttpResponse.error()));
    const text = failed(await s.call('get_run', { run_id: 'r1' }));
    expect(text).toContain('GET /api/2.0/mlflow/runs/get: MLflow tracking server unreachable');
    expect(text).toContain('Check MLFLOW_TRACKING_URI and that the server is running.');
    expect(text).toContain('Retry later, or ask the user to start MLflow');
  });
});
