// Proves the fault-injection proxy the guarantee tests stand on: in front of the real MLflow
// server it passes requests through untouched, and each fault mode does what its name says, as
// seen by runwarden's own MLflow client (so a guarantee test's fault is the fault it claims).

import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MlflowApiError } from '../../src/errors/index.js';
import { ok } from '../../src/mlflow/client.js';
import { testClient } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';

const mlflowUrl = inject('mlflowUrl');
let proxy: FaultProxy;

/** GET /version on a fresh connection (no keep-alive: the proxy's mode applies per connection). */
const version = (url: string, timeoutMs = 2_000) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(`${url}/version`, { agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: text.trim() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });

beforeAll(async () => {
  proxy = await startFaultProxy(mlflowUrl);
});
afterAll(async () => {
  await proxy?.close();
});

describe('fault proxy in front of the real MLflow', () => {
  it('fault proxy: in pass mode, MLflow answers through it as it does directly', async () => {
    await proxy.setMode('pass');
    expect(await version(proxy.url)).toEqual({ status: 200, text: '3.17.2' });
    const client = testClient(proxy.url);
    const res = await ok(client.api.POST('/api/2.0/mlflow/experiments/search', { body: { max_results: 1 } }));
    expect(Array.isArray(res.experiments ?? [])).toBe(true);
  });

  it('fault proxy: http503 mode answers 503, and runwarden sees a retryable MLflow error', async () => {
    await proxy.setMode('http503');
    expect((await version(proxy.url)).status).toBe(503);
    const client = testClient(proxy.url, { timeoutMs: 2_000 });
    const err = await ok(
      client.api.POST('/api/2.0/mlflow/experiments/search', { body: { max_results: 1 } }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(503);
    await proxy.setMode('pass');
  });

  it('fault proxy: reset and refuse modes fail the connection, and pass mode restores it', async () => {
    await proxy.setMode('reset');
    await expect(version(proxy.url)).rejects.toThrow();
    await proxy.setMode('refuse');
    await expect(version(proxy.url)).rejects.toThrow();
    await proxy.setMode('pass');
    expect((await version(proxy.url)).status).toBe(200);
  });

  it('fault proxy: hang mode never answers until the mode changes', async () => {
    await proxy.setMode('hang');
    await expect(version(proxy.url, 500)).rejects.toThrow(/timeout/);
    await proxy.setMode('pass');
    expect((await version(proxy.url)).status).toBe(200);
  });

  it('fault proxy: delay mode answers, no sooner than the delay', async () => {
    await proxy.setMode('delay', { delayMs: 400 });
    const started = performance.now();
    expect((await version(proxy.url)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    await proxy.setMode('pass');
  });

  it('fault proxy: refuse with existing drops a connection still open and refuses new ones at once, and pass restores it', async () => {
    const open = connect(proxy.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => open.once('connect', resolve).once('error', reject));
    const closed = new Promise<void>((resolve) => open.once('close', () => resolve()));
    open.on('error', () => undefined);
    // Settles although the open connection never ends by itself (the listener does not wait for it).
    await proxy.setMode('refuse', { existing: true });
    await closed;
    await expect(version(proxy.url)).rejects.toThrow(/ECONNREFUSED/);
    await proxy.setMode('pass');
    expect((await version(proxy.url)).status).toBe(200);
  });

  it('fault proxy: dropMidBody passes the first bytes of the answer, then resets', async () => {
    await proxy.setMode('dropMidBody', { dropAfterBytes: 20 });
    await expect(version(proxy.url)).rejects.toThrow();
    await proxy.setMode('pass');
    expect(proxy.stats().byMode.dropMidBody).toBeGreaterThanOrEqual(1);
  });
});
