// Covers src/mlflow/transport.ts on real sockets (no msw): a local node:http server stands in for
// MLflow, so the node:http path with buffered answers is exercised end to end, including a refused
// connection, keep-alive off for loopback, request bodies and a retried 503.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowApiError, MlflowUnreachableError } from '../../src/errors/index.js';
import { createMlflowClient, ok } from '../../src/mlflow/client.js';

let server: http.Server;
let base = '';
const seen: { method: string; url: string; body: string; connection?: string }[] = [];
let failNext = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body: Buffer.concat(chunks).toString('utf8'),
        connection: req.headers.connection,
      });
      if (failNext > 0) {
        failNext--;
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      if (req.url?.startsWith('/api/2.0/mlflow/runs/get')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ run: { info: { run_id: 'r1', status: 'RUNNING' } } }));
      } else if (req.url === '/api/2.0/mlflow/runs/log-batch') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function client(uri = base) {
  return createMlflowClient({
    trackingUri: uri,
    retry: { baseDelayMs: 1, maxDelayMs: 5, maxRetries: 2 },
    timeoutMs: 5_000,
  });
}

describe('transport on real sockets', () => {
  it('transport: a GET answer is parsed, and a loopback server gets a fresh connection (Connection: close)', async () => {
    seen.length = 0;
    const res = await ok(
      client().api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r1' } } }),
    );
    expect(res.run?.info?.run_id).toBe('r1');
    expect(seen[0]).toMatchObject({
      method: 'GET',
      url: '/api/2.0/mlflow/runs/get?run_id=r1',
      connection: 'close',
    });
  });

  it('transport: a POST body arrives whole, and a 503 before it is retried', async () => {
    seen.length = 0;
    failNext = 1;
    await ok(
      client().api.POST('/api/2.0/mlflow/runs/log-batch', {
        body: { run_id: 'r1', params: [{ key: 'lr', value: '0.01' }] },
      }),
    );
    expect(seen.map((s) => s.method)).toEqual(['POST', 'POST']);
    expect(JSON.parse(seen[1]!.body)).toEqual({ run_id: 'r1', params: [{ key: 'lr', value: '0.01' }] });
  });

  it('transport: an empty 404 becomes MlflowApiError HTTP_404', async () => {
    const err = await ok(client().api.POST('/api/2.0/mlflow/runs/update', { body: { run_id: 'r1' } })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('HTTP_404');
  });

  it('transport: nothing listening becomes MlflowUnreachableError naming ECONNREFUSED', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await ok(
      client(`http://127.0.0.1:${port}`).api.GET('/api/2.0/mlflow/runs/get', {
        params: { query: { run_id: 'x' } },
      }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowUnreachableError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });
});
