// The closed input boundary against the real MLflow server (issue 8 §1): `runwarden serve` refuses
// look-alike loopback Origins and Hosts with 403 and never shows the credentials a URI carries
// (/health, UI links, its own stderr); over stdio, NUL names, bad base64, 1 MB ids and lone
// surrogates are refused naming the field, bounded, and MLflow's own client finds nothing stored;
// the CLI refuses control characters in names at enqueue.

import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from '../support/clients.js';
import { call, callError, httpClient, type ServeProcess, startServe, stdioClient } from '../support/mcp.js';
import { pyListArtifacts, runPythonMlflow } from '../support/python.js';
import { runCli, taskEnv } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const ERROR_CAP = 2_048;

/** Names of experiments and registered models (any lifecycle) that start with `prefix`, per MLflow's Python client. */
function pyNamesStartingWith(prefix: string): Promise<{ experiments: string[]; models: string[] }> {
  return runPythonMlflow(
    `
import json, os
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
c = MlflowClient()
p = os.environ['RW_PREFIX']
exps = [e.name for e in c.search_experiments(view_type=ViewType.ALL, max_results=50000) if e.name.startswith(p)]
models = [m.name for m in c.search_registered_models(max_results=1000) if m.name.startswith(p)]
print(json.dumps({'experiments': exps, 'models': models}))
`,
    { trackingUri: mlflowUrl, env: { RW_PREFIX: prefix } },
  );
}

/** A raw POST /mcp initialize, so the test sets Host and Origin exactly. */
function rawInitialize(port: number, headers: Record<string, string>) {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mcp',
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('runwarden serve: Origin, Host and credentials', () => {
  let serve: ServeProcess;
  const ui = new URL(mlflowUrl);
  beforeAll(async () => {
    serve = await startServe({
      MLFLOW_TRACKING_URI: mlflowUrl,
      RUNWARDEN_MLFLOW_UI_URL: `http://uiuser:uipass-secret@${ui.host}`,
      REDIS_URL: 'redis://:redis-secret@127.0.0.1:1',
    });
  });
  afterAll(async () => {
    await serve?.stop();
  });

  it.each([
    'http://127.0.0.1.evil.example',
    'http://127.evil.example',
    'http://localhost.evil.example',
    'http://127.0.0.1.nip.io',
  ])('serve: the look-alike loopback Origin %s is refused with 403', async (origin) => {
    const res = await rawInitialize(serve.port, { host: `127.0.0.1:${serve.port}`, origin });
    expect(res.status).toBe(403);
    expect(res.body).toContain('RUNWARDEN_HTTP_ALLOWED_ORIGINS');
  });

  it('serve: a loopback Origin (127.0.0.1, another 127/8 address, localhost) is still let through', async () => {
    for (const origin of [
      `http://127.0.0.1:${serve.port}`,
      'http://127.0.0.2:3000',
      'http://localhost:3000',
    ]) {
      const res = await rawInitialize(serve.port, { host: `127.0.0.1:${serve.port}`, origin });
      expect(res.status, origin).toBe(200);
    }
  });

  it('serve: look-alike loopback Host headers are refused with 403', async () => {
    for (const host of ['127.0.0.1.evil.example', `127.evil.example:${serve.port}`, 'evil@127.0.0.1']) {
      const res = await rawInitialize(serve.port, { host });
      expect(res.status, host).toBe(403);
      expect(res.body).toContain('RUNWARDEN_HTTP_ALLOWED_HOSTS');
    }
  });

  it('serve: UI links in tool results never carry the credentials of RUNWARDEN_MLFLOW_UI_URL, nor does stderr', async () => {
    const { client } = await httpClient(serve.url);
    try {
      const out = await call<{ run_id: string; url: string }>(client, 'start_run', {
        experiment_name: uniqueName('boundary-links'),
      });
      expect(out.url).toBe(`http://***@${ui.host}/#/experiments/${out.url.split('/experiments/')[1]}`);
      expect(out.url).not.toContain('uipass-secret');
      await call(client, 'end_run', { run_id: out.run_id });
    } finally {
      await client.close();
    }
    expect(serve.stderr()).not.toMatch(/uipass-secret|redis-secret/);
  });
});

describe('runwarden serve: /health with credentials in MLFLOW_TRACKING_URI', () => {
  it('serve: /health shows the tracking URI and the error without the password embedded in it', async () => {
    const u = new URL(mlflowUrl);
    const serve = await startServe({ MLFLOW_TRACKING_URI: `http://tracker:track-secret@${u.host}` });
    try {
      const res = await fetch(`${serve.url}/health`);
      const text = await res.text();
      const body = JSON.parse(text) as { mlflow: { trackingUri: string } };
      expect(body.mlflow.trackingUri).toBe(`http://***@${u.host}`);
      expect(text).not.toContain('track-secret');
      expect(text).not.toContain('tracker:');
      expect(serve.stderr()).not.toContain('track-secret');
    } finally {
      await serve.stop();
    }
  });
});

describe('runwarden mcp (stdio): refused inputs store nothing', () => {
  let client: Client;
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rw-boundary-'));
    ({ client } = await stdioClient({ MLFLOW_TRACKING_URI: mlflowUrl, RUNWARDEN_ALLOWED_ROOTS: root }));
  });
  afterAll(async () => {
    await client?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('stdio: a NUL byte in an experiment name (get_or_create_experiment, start_run) or a model name (register_model) is refused naming the field, and MLflow has no such experiment or model', async () => {
    const prefix = uniqueName('nul');
    const a = await callError(client, 'get_or_create_experiment', { name: `${prefix}\u0000x` });
    expect(a).toContain('name: name contains the control character U+0000');
    const b = await callError(client, 'start_run', { experiment_name: `${prefix}-run\u0000` });
    expect(b).toContain('experiment_name: experiment name contains the control character U+0000');
    const c = await callError(client, 'register_model', {
      run_id: '0123456789abcdef0123456789abcdef',
      artifact_path: 'model',
      name: `${prefix}\u0000model`,
    });
    expect(c).toContain('name: name contains the control character U+0000');
    expect(await pyNamesStartingWith(prefix)).toEqual({ experiments: [], models: [] });
  });

  it('stdio: content_base64 that is not base64 is refused naming content_base64, and the run has no artifact', async () => {
    const run = await call<{ run_id: string }>(client, 'start_run', { experiment_name: uniqueName('b64') });
    try {
      const text = await callError(client, 'log_artifact', {
        run_id: run.run_id,
        content_base64: 'this is not base64!',
        artifact_path: 'data.bin',
      });
      expect(text).toContain('content_base64: ');
      expect(text).toContain('outside the base64 alphabet');
      expect(await pyListArtifacts(mlflowUrl, run.run_id)).toEqual([]);
    } finally {
      await call(client, 'end_run', { run_id: run.run_id });
    }
  });

  it('stdio: a 1 MB run id is refused naming run_id in under 2 KB, instead of "Invalid HTTP request received"', async () => {
    const text = await callError(client, 'get_run', { run_id: 'a'.repeat(1_000_000) });
    expect(text).toMatch(/^run_id: 'a{80}…\(999920 more\)' \(1000000 characters\) is not a valid id/);
    expect(text.length).toBeLessThan(ERROR_CAP);
  });

  it('stdio: a lone UTF-16 surrogate in an experiment name or a tag is refused naming the field, not "URI malformed"', async () => {
    const prefix = uniqueName('surrogate');
    const a = await callError(client, 'get_or_create_experiment', { name: `${prefix}\ud800` });
    expect(a).toContain('name: contains a lone UTF-16 surrogate');
    const b = await callError(client, 'start_run', {
      experiment_name: prefix,
      tags: { note: 'half \udc00' },
    });
    expect(b).toContain('tags.note: contains a lone UTF-16 surrogate');
    for (const t of [a, b]) expect(t).not.toContain('URI malformed');
    expect((await pyNamesStartingWith(prefix)).experiments).toEqual([]);
  });

  it("stdio: MLflow's own error quoting a 1 MB filter comes back under 2 KB", async () => {
    const exp = await call<{ experiment_id: string }>(client, 'get_or_create_experiment', {
      name: uniqueName('filter'),
    });
    const text = await callError(client, 'search_runs', {
      experiment_ids: [exp.experiment_id],
      filter: `metrics.rmse < 1 AND nonsense${'x'.repeat(1_000_000)}`,
    });
    expect(text.length).toBeLessThan(ERROR_CAP);
    expect(text).toContain("Invalid clause(s) in filter string: 'nonsensexxx");
    expect(text).toContain('more) (MLflow INVALID_PARAMETER_VALUE');
  });
});

describe('runwarden enqueue: names at the CLI', () => {
  it('enqueue: an --experiment with a control character is refused naming experiment, and no experiment is made', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'rw-boundary-cli-'));
    try {
      const prefix = uniqueName('cli-ctl');
      const env = taskEnv({ mlflowUrl, redisUrl, prefix: uniqueName('rwq'), workDir });
      const { code, err } = await runCli(['enqueue', 'quick', '--experiment', `${prefix}\u0001x`], env);
      expect(code).not.toBe(0);
      expect(err).toContain('experiment');
      expect(err).toContain('control characters');
      expect((await pyNamesStartingWith(prefix)).experiments).toEqual([]);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
