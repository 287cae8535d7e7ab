// Covers src/mlflow/transport.ts on real sockets (no msw): a local node:http server stands in for
// MLflow, so the node:http path with buffered answers is exercised end to end, including a refused
// connection, keep-alive off for loopback, request bodies and a retried 503.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowApiError, MlflowUnreachableError } from '../../src/errors/index.js';
import { readArtifact } from '../../src/mlflow/artifacts.js';
import { createMlflowClient, ok } from '../../src/mlflow/client.js';
import { getOrCreateExperiment } from '../../src/tracking/experiments.js';

let server: http.Server;
let base = '';
const seen: { method: string; url: string; body: string; connection?: string }[] = [];
let failNext = 0;
let bigBytesSent = 0;

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
      if (req.url === '/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/big.bin') {
        // 8 MB in 64 KB writes; a reader that stops early closes the connection.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const more = () => {
          while (sent < 8 * 1024 * 1024) {
            sent += 65_536;
            if (!res.write(Buffer.alloc(65_536, 1))) return void res.once('drain', more);
          }
          res.end();
        };
        res.on('close', () => {
          bigBytesSent = sent;
        });
        more();
        return;
      }
      if (req.url?.startsWith('/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/out.bin')) {
        res.writeHead(200).end(Buffer.alloc(1000, 2));
        return;
      }
      if (req.url?.startsWith('/api/2.0/mlflow/experiments/get-by-name')) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded');
        return;
      }
      if (req.url?.startsWith('/api/2.0/mlflow/runs/get')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            run: {
              info: {
                run_id: 'r1',
                experiment_id: '1',
                status: 'RUNNING',
                artifact_uri: 'mlflow-artifacts:/1/r1/artifacts',
                lifecycle_stage: 'active',
              },
            },
          }),
        );
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

  it('readArtifact: an 8 MB file with a 1,000-byte cap comes back as 1,000 bytes, truncated, and is not read to the end', async () => {
    const { bytes, truncated } = await readArtifact(
      client(),
      'mlflow-artifacts:/1/r1/artifacts',
      'big.bin',
      1_000,
    );
    expect(bytes.length).toBe(1_000);
    expect(truncated).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(bigBytesSent).toBeLessThan(8 * 1024 * 1024);
  });

  it('readArtifact: a file within the cap comes back whole and not truncated', async () => {
    const { bytes, truncated } = await readArtifact(
      client(),
      'mlflow-artifacts:/1/r1/artifacts',
      'out.bin',
      1_000,
    );
    expect(bytes.length).toBe(1_000);
    expect(truncated).toBe(false);
  });

  it('transport: a local file error while downloading (ENOTDIR) is thrown as it is, once, not as MLflow unreachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rw-sock-'));
    try {
      const notADir = join(dir, 'file');
      writeFileSync(notADir, 'x');
      seen.length = 0;
      const err = await client()
        .transport.getToFile(
          `${base}/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/out.bin`,
          join(notADir, 'out.bin'),
        )
        .catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(MlflowUnreachableError);
      expect((err as NodeJS.ErrnoException).code).toBe('ENOTDIR');
      expect(seen).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('getOrCreateExperiment: a read that keeps failing is retried by the transport only, not again by the create loop around it', async () => {
    seen.length = 0;
    const err = await getOrCreateExperiment(client(), 'never-reachable').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    // maxRetries 2: three attempts in all (nine if both loops retried).
    expect(seen.filter((r) => r.url.startsWith('/api/2.0/mlflow/experiments/get-by-name'))).toHaveLength(3);
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
