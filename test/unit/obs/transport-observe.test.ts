// Covers Transport.observe (src/mlflow/transport.ts): every HTTP exchange with MLflow, each attempt
// of a retried call included, reaches the observers with its status, or `timeout`/`network` when
// no answer came; an observer that throws does not fail the request; unsubscribing stops it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMlflowClient } from '../../../src/mlflow/client.js';
import type { RequestEvent } from '../../../src/mlflow/transport.js';

let server: http.Server;
let base: string;
let answers: ((res: http.ServerResponse) => void)[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    const next = answers.shift() ?? ((r) => r.end('{}'));
    next(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const json = (status: number) => (res: http.ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(
    status === 200
      ? '{"run":{"info":{"run_id":"r"}}}'
      : '{"error_code":"TEMPORARILY_UNAVAILABLE","message":"busy"}',
  );
};

describe('transport observers', () => {
  it('observe: a 503 then a 200 on one retried call reach the observer as two exchanges with their status', async () => {
    const client = createMlflowClient({
      trackingUri: base,
      retry: { baseDelayMs: 1, maxDelayMs: 2, maxRetries: 2 },
    });
    const seen: RequestEvent[] = [];
    client.transport.observe((e) => seen.push(e));
    answers = [json(503), json(200)];
    await client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r' } } });
    expect(seen.map((e) => e.status)).toEqual([503, 200]);
    expect(seen[0]).toMatchObject({ method: 'GET', url: `${base}/api/2.0/mlflow/runs/get?run_id=r` });
    expect(seen.every((e) => e.durationMs >= 0)).toBe(true);
  });

  it('observe: no answer within the timeout is reported as timeout, a dropped connection as network', async () => {
    const client = createMlflowClient({ trackingUri: base, timeoutMs: 150, retry: { maxRetries: 0 } });
    const seen: RequestEvent[] = [];
    client.transport.observe((e) => seen.push(e));
    answers = [() => undefined];
    await expect(
      client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r' } } }),
    ).rejects.toThrow();
    answers = [(res) => res.socket?.destroy()];
    await expect(
      client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r' } } }),
    ).rejects.toThrow();
    expect(seen.map((e) => e.error)).toEqual(['timeout', 'network']);
    expect(seen.every((e) => e.status === undefined)).toBe(true);
  });

  it('observe: an observer that throws never fails the request, and a removed observer hears nothing more', async () => {
    const client = createMlflowClient({ trackingUri: base });
    const seen: RequestEvent[] = [];
    client.transport.observe(() => {
      throw new Error('observer bug');
    });
    const stop = client.transport.observe((e) => seen.push(e));
    answers = [json(200)];
    await client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r' } } });
    stop();
    answers = [json(200)];
    await client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r' } } });
    expect(seen).toHaveLength(1);
  });
});
