// The MCP server over Streamable HTTP (`runwarden serve`) against the real MLflow server: the
// workflow with a token, 30 concurrent get-or-creates across sessions, 401 without the token,
// Host and Origin checks, the body limit, a closed session's runs left to their lease (then
// reaped), the server's own runs ended KILLED on SIGTERM, /health, and
// refusing a non-loopback bind without a token.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { getOrCreateExperiment } from '../../src/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { call, httpClient, type ServeProcess, startServe } from '../support/mcp.js';
import { pyGetRun, runPythonMlflow } from '../support/python.js';
import { runCli, waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const TOKEN = 'test-token-0123456789abcdef';
let serve: ServeProcess;

beforeAll(async () => {
  serve = await startServe({ MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_HTTP_TOKEN: TOKEN });
});
afterAll(async () => {
  await serve?.stop();
});

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

/** A raw request, so the test controls Host and Origin exactly. */
function raw(opts: { headers: Record<string, string>; body?: string; path?: string }) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: serve.port,
        path: opts.path ?? '/mcp',
        method: 'POST',
        headers: opts.headers,
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body ?? JSON.stringify(initialize));
  });
}

const jsonHeaders = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${TOKEN}`,
};

describe('runwarden serve (Streamable HTTP)', () => {
  it("http: the workflow runs over HTTP with the token, and MLflow's client sees the finished run", async () => {
    const { client } = await httpClient(serve.url, TOKEN);
    try {
      const run = await call<{ run_id: string }>(client, 'start_run', {
        experiment_name: uniqueName('http-flow'),
        run_name: 'over-http',
        params: { model: 'lstm' },
      });
      await call(client, 'log_metrics', {
        run_id: run.run_id,
        metrics: [
          { key: 'val_loss', value: 0.9, step: 0 },
          { key: 'val_loss', value: 0.4, step: 1 },
        ],
      });
      await call(client, 'set_tags', { run_id: run.run_id, tags: { dataset: 'weekly-cases' } });
      expect(await call(client, 'end_run', { run_id: run.run_id, status: 'FINISHED' })).toMatchObject({
        status: 'FINISHED',
      });
      const py = await pyGetRun(mlflowUrl, run.run_id);
      expect(py).toMatchObject({ status: 'FINISHED', params: { model: 'lstm' }, metrics: { val_loss: 0.4 } });
      expect(py.tags.dataset).toBe('weekly-cases');
    } finally {
      await client.close();
    }
  });

  it('http: 30 concurrent get_or_create_experiment calls from 3 sessions make one experiment', async () => {
    const name = uniqueName('http-race');
    const clients = await Promise.all([1, 2, 3].map(() => httpClient(serve.url, TOKEN)));
    try {
      const results = await Promise.all(
        clients.flatMap(({ client }) =>
          Array.from({ length: 10 }, () =>
            call<{ experiment_id: string; created: boolean }>(client, 'get_or_create_experiment', { name }),
          ),
        ),
      );
      expect(new Set(results.map((r) => r.experiment_id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const count = await runPythonMlflow<number>(
        `import json, mlflow\nprint(json.dumps(len(mlflow.search_experiments(filter_string="name = '${name}'"))))`,
        { trackingUri: mlflowUrl },
      );
      expect(count).toBe(1);
    } finally {
      await Promise.all(clients.map(({ client }) => client.close()));
    }
  });

  it('http: without the bearer token the server answers 401 and says which header to send', async () => {
    const { authorization: _, ...noAuth } = jsonHeaders;
    const res = await raw({ headers: { ...noAuth, host: `127.0.0.1:${serve.port}` } });
    expect(res.status).toBe(401);
    expect(res.body).toContain('Authorization: Bearer');
    const wrong = await raw({
      headers: { ...jsonHeaders, authorization: 'Bearer nope', host: `127.0.0.1:${serve.port}` },
    });
    expect(wrong.status).toBe(401);
  });

  it('http: a foreign Host header (DNS rebinding) or Origin is refused with 403', async () => {
    const badHost = await raw({ headers: { ...jsonHeaders, host: 'evil.example:80' } });
    expect(badHost.status).toBe(403);
    expect(badHost.body).toContain('Host header');
    const badOrigin = await raw({
      headers: { ...jsonHeaders, host: `localhost:${serve.port}`, origin: 'https://evil.example' },
    });
    expect(badOrigin.status).toBe(403);
    expect(badOrigin.body).toContain('Origin');
    const localOrigin = await raw({
      headers: { ...jsonHeaders, host: `localhost:${serve.port}`, origin: `http://localhost:${serve.port}` },
    });
    expect(localOrigin.status).toBe(200);
  });

  it('http: a body past the size limit is refused with 413', async () => {
    const big = JSON.stringify({ ...initialize, padding: 'x'.repeat(17 * 1024 * 1024) });
    const res = await raw({ headers: { ...jsonHeaders, host: `127.0.0.1:${serve.port}` }, body: big });
    expect(res.status).toBe(413);
    expect(res.body).toContain('limit');
  });

  it('http: a closed session (DELETE /mcp) leaves its run RUNNING under a valid lease; a new session continues it, and once nobody renews the lease the reaper closes it KILLED', async () => {
    const experiment_name = uniqueName('http-close');
    const { experimentId } = await getOrCreateExperiment(testClient(mlflowUrl), experiment_name);
    const own = await startServe({
      MLFLOW_TRACKING_URI: mlflowUrl,
      RUNWARDEN_HTTP_TOKEN: TOKEN,
      RUNWARDEN_REAP_INTERVAL_MS: '1000',
      RUNWARDEN_REAP_EXPERIMENT_IDS: experimentId,
    });
    onTestFinished(async () => {
      await own.stop(10_000);
    });
    const first = await httpClient(own.url, TOKEN);
    const run = await call<{ run_id: string }>(first.client, 'start_run', {
      experiment_name,
      lease_seconds: 10,
    });
    await call(first.client, 'log_metrics', {
      run_id: run.run_id,
      metrics: [{ key: 'loss', value: 0.5, step: 1 }],
    });
    await first.transport.terminateSession();
    await first.client.close();

    // The agent comes back on a new session and carries on: the run is still open.
    const second = await httpClient(own.url, TOKEN);
    await call(second.client, 'log_metrics', {
      run_id: run.run_id,
      metrics: [{ key: 'loss', value: 0.25, step: 2 }],
    });
    await second.transport.terminateSession();
    await second.client.close();

    // Nobody renews the lease any more: the server's reaper closes the run once it expires.
    const py = await waitFor(
      'the run to leave RUNNING',
      async () => {
        const r = await pyGetRun(mlflowUrl, run.run_id);
        return r.status !== 'RUNNING' && r;
      },
      { timeoutMs: 45_000, intervalMs: 500 },
    );
    expect(py.status).toBe('KILLED');
    expect(py.tags['runwarden.closed_by']).toBe('reaper');
    expect(py.tags['runwarden.close_reason']).toContain('the MCP client never called end_run');
    expect(py.end_time).toBeGreaterThanOrEqual(Number(py.tags['runwarden.lease_expires_at']));
    expect(py.metrics.loss).toBe(0.25);
  });

  it('http: a session closed for idleness leaves its run RUNNING under a valid lease, and the agent continues and ends it from a new session', async () => {
    const own = await startServe({
      MLFLOW_TRACKING_URI: mlflowUrl,
      RUNWARDEN_HTTP_TOKEN: TOKEN,
      RUNWARDEN_HTTP_SESSION_IDLE_MS: '1500',
    });
    onTestFinished(async () => {
      await own.stop(10_000);
    });
    const first = await httpClient(own.url, TOKEN);
    const run = await call<{ run_id: string }>(first.client, 'start_run', {
      experiment_name: uniqueName('http-idle'),
      lease_seconds: 600,
    });
    // /health counts open sessions without touching any: wait for the idle one to be closed.
    await waitFor(
      'the idle session to be closed',
      async () => {
        const res = await fetch(`${own.url}/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
        return ((await res.json()) as { sessions: number }).sessions === 0;
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    await first.client.close().catch(() => undefined);
    expect((await pyGetRun(mlflowUrl, run.run_id)).status).toBe('RUNNING');

    const second = await httpClient(own.url, TOKEN);
    await call(second.client, 'log_metrics', {
      run_id: run.run_id,
      metrics: [{ key: 'loss', value: 0.125, step: 3 }],
    });
    await call(second.client, 'end_run', { run_id: run.run_id, status: 'FINISHED' });
    await second.client.close();
    const py = await pyGetRun(mlflowUrl, run.run_id);
    expect(py.status).toBe('FINISHED');
    expect(py.tags['runwarden.closed_by']).toBe('owner');
    expect(py.metrics.loss).toBe(0.125);
  });

  it('http: SIGTERM to the server ends the runs its sessions left open, KILLED, before it exits', async () => {
    const own = await startServe({ MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_HTTP_TOKEN: TOKEN });
    // Stopped even when the test fails before its own stop (a no-op after it).
    onTestFinished(async () => {
      await own.stop(10_000);
    });
    const { client } = await httpClient(own.url, TOKEN);
    const run = await call<{ run_id: string }>(client, 'start_run', {
      experiment_name: uniqueName('http-sigterm'),
    });
    const code = await own.stop();
    expect(code).toBe(0);
    const py = await pyGetRun(mlflowUrl, run.run_id);
    expect(py.status).toBe('KILLED');
    expect(py.tags['runwarden.close_reason']).toBe('the runwarden server received SIGTERM');
    await client.close().catch(() => undefined);
  });

  it('http: /health reports the MLflow server as reachable with its version', async () => {
    const res = await fetch(`${serve.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', mlflow: { reachable: true, version: '3.17.2' } });
  });

  it('http: serve refuses to bind a non-loopback address without a token and exits 1', async () => {
    // runCli SIGKILLs a server that starts listening instead of refusing, and fails the test.
    const { code, err } = await runCli(
      ['serve'],
      { MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_HTTP_HOST: '0.0.0.0', RUNWARDEN_HTTP_PORT: '0' },
      15_000,
    );
    expect(code).toBe(1);
    expect(err).toContain('RUNWARDEN_HTTP_TOKEN');
  });
});
