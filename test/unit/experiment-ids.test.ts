// Covers the per-client experiment-id cache (src/queue/experiment-ids.ts): two MLflow clients in
// one process, pointing at two tracking servers that hold the same experiment name under different
// ids, each get their own server's id (held in the client's own `experimentIds` map, no module
// state), and a forgotten name is asked for again.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMlflowClient } from '../../src/mlflow/client.js';
import { experimentIdFor, forgetExperimentId } from '../../src/queue/experiment-ids.js';

const calls: Record<string, number> = {};
const server = setupServer(
  ...['a', 'b'].map((host) =>
    http.get(`http://mlflow-${host}.test/api/2.0/mlflow/experiments/get-by-name`, ({ request }) => {
      calls[host] = (calls[host] ?? 0) + 1;
      const name = new URL(request.url).searchParams.get('experiment_name');
      return HttpResponse.json({
        experiment: {
          experiment_id: `${host}-id`,
          name,
          artifact_location: `mlflow-artifacts:/${host}-id`,
          lifecycle_stage: 'active',
        },
      });
    }),
  ),
);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

const client = (host: string) =>
  createMlflowClient({ trackingUri: `http://mlflow-${host}.test`, fetch: (r) => globalThis.fetch(r) });

describe('experimentIdFor', () => {
  it('experimentIdFor: two clients on different servers with the same experiment name get their own server ids', async () => {
    const a = client('a');
    const b = client('b');
    expect(await experimentIdFor(a, 'shared-name')).toBe('a-id');
    expect(await experimentIdFor(b, 'shared-name')).toBe('b-id');
    expect(await experimentIdFor(a, 'shared-name')).toBe('a-id');
    expect(await experimentIdFor(b, 'shared-name')).toBe('b-id');
    // One lookup per client: the second call of each came from its own cache.
    expect(calls).toEqual({ a: 1, b: 1 });
    expect([a.experimentIds.get('shared-name'), b.experimentIds.get('shared-name')]).toEqual([
      'a-id',
      'b-id',
    ]);
  });

  it('experimentIdFor: after forgetExperimentId, asks the server again', async () => {
    const a = client('a');
    const before = calls.a ?? 0;
    await experimentIdFor(a, 'forget-me');
    forgetExperimentId(a, 'forget-me');
    await experimentIdFor(a, 'forget-me');
    expect((calls.a ?? 0) - before).toBe(2);
  });
});
