// /metrics and the queue dashboard of `runwarden serve`, against the real MLflow server and Redis:
// after an MCP call and a task run by a spawned worker, /metrics parses as Prometheus text and
// holds the task-state, task-duration and MLflow-latency series; MLflow answering 503 (a fault
// proxy in between) shows as request errors by endpoint; Redis hanging (a fault proxy in between)
// makes a scrape answer within its timeout saying the task and review collectors are down, and
// they come back when Redis does; a run left to its lease counts as open, then as reaped; without the token /metrics and the dashboard answer 401, with it
// the dashboard page, its assets and its queue API load, and the API refuses to change a job.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { getOrCreateExperiment } from '../../src/index.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { call, callError, httpClient, type ServeProcess, startServe } from '../support/mcp.js';
import { pyGetRun } from '../support/python.js';
import { startWorkerProcess, stopAllWorkers, taskEnv, type WorkerEnv, waitFor } from '../support/tasks.js';
import { type Exposition, find, parsePrometheusText } from '../unit/obs/prom-text.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const TOKEN = 'metrics-token-0123456789abcdef';
const prefix = `rw-metrics-${process.pid}-${Date.now().toString(36)}`;
const auth = { authorization: `Bearer ${TOKEN}` };

let workDir = '';
let serve: ServeProcess | undefined;
let client: Client | undefined;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'rw-metrics-'));
  const workerEnv: WorkerEnv = { mlflowUrl, redisUrl, prefix, workDir };
  const [s, w] = await Promise.allSettled([
    startServe({ ...taskEnv(workerEnv), RUNWARDEN_HTTP_TOKEN: TOKEN }),
    startWorkerProcess(workerEnv),
  ]);
  if (s.status === 'fulfilled') serve = s.value;
  if (s.status === 'rejected') throw s.reason;
  if (w.status === 'rejected') throw w.reason;
  client = (await httpClient(s.value.url, TOKEN)).client;
});

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await Promise.all([stopAllWorkers(), serve?.stop()]);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function scrape(url: string): Promise<{ status: number; text: string; exposition: Exposition }> {
  const res = await fetch(`${url}/metrics`, { headers: auth });
  const text = await res.text();
  expect(res.headers.get('content-type')).toContain('text/plain');
  return { status: res.status, text, exposition: parsePrometheusText(text) };
}

const value = (e: Exposition, name: string, labels: Record<string, string> = {}) =>
  find(e, name, labels).reduce((n, s) => n + s.value, 0);

describe('/metrics', () => {
  it('metrics: after an MCP call and a finished task, /metrics parses as Prometheus text and holds task states, task durations and MLflow latencies by endpoint', async () => {
    await call(client!, 'get_or_create_experiment', { name: uniqueName('metrics-exp') });
    const enq = await call<{ task_id: string }>(client!, 'enqueue_task', {
      template: 'noop',
      params: { n: Date.now() % 1_000_000 },
    });
    await waitFor(
      `task ${enq.task_id} to complete`,
      async () =>
        (await call<{ state: string }>(client!, 'get_task', { task_id: enq.task_id })).state === 'completed',
      { timeoutMs: 90_000 },
    );
    // The duration comes from the queue's event stream: wait for the listener to have seen it.
    const { exposition: e } = await waitFor(
      'the finished task in runwarden_task_duration_seconds',
      async () => {
        const s = await scrape(serve!.url);
        return (
          value(s.exposition, 'runwarden_task_duration_seconds_count', {
            template: 'noop',
            outcome: 'completed',
          }) >= 1 && s
        );
      },
      { timeoutMs: 30_000 },
    );

    expect(e.types.get('runwarden_tasks')).toBe('gauge');
    expect(value(e, 'runwarden_tasks', { state: 'completed' })).toBeGreaterThanOrEqual(1);
    for (const state of ['waiting', 'active', 'delayed', 'failed'])
      expect(find(e, 'runwarden_tasks', { state }), state).toHaveLength(1);
    expect(value(e, 'runwarden_collector_up', { collector: 'tasks' })).toBe(1);
    expect(value(e, 'runwarden_collector_up', { collector: 'reviews' })).toBe(1);
    expect(find(e, 'runwarden_reviews', { decision: 'pending' })).toHaveLength(1);
    expect(e.types.get('runwarden_task_duration_seconds')).toBe('histogram');
    expect(e.types.get('runwarden_mlflow_request_duration_seconds')).toBe('histogram');
    expect(
      value(e, 'runwarden_mlflow_request_duration_seconds_count', {
        method: 'GET',
        endpoint: '/api/2.0/mlflow/experiments/get-by-name',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(find(e, 'runwarden_runs_reaped_total')).toHaveLength(1);
    expect(find(e, 'runwarden_points_buffered')).toHaveLength(1);
    // No id ever becomes a label value.
    expect(e.samples.some((s) => Object.values(s.labels).some((v) => v.includes(enq.task_id)))).toBe(false);
  });

  it('metrics: without the bearer token /metrics, the dashboard and its API answer 401', async () => {
    for (const path of [
      '/metrics',
      '/admin/queues',
      '/admin/queues/api/queues',
      '/admin/queues/static/x.js',
    ]) {
      const res = await fetch(`${serve!.url}${path}`);
      await res.arrayBuffer();
      expect(res.status, path).toBe(401);
      const wrong = await fetch(`${serve!.url}${path}`, { headers: { authorization: 'Bearer nope' } });
      await wrong.arrayBuffer();
      expect(wrong.status, path).toBe(401);
    }
  });

  it('dashboard: with the token the page, its script and the queue API load, showing the tasks and reviews queues read-only; a retry is refused', async () => {
    const page = await fetch(`${serve!.url}/admin/queues`, { headers: auth });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const script = /src="([^"]+\.js)"/.exec(html)?.[1];
    expect(script, html.slice(0, 500)).toBeDefined();
    const asset = await fetch(new URL(script!, `${serve!.url}/admin/queues/`), { headers: auth });
    await asset.arrayBuffer();
    expect(asset.status).toBe(200);

    const api = await fetch(`${serve!.url}/admin/queues/api/queues?activeQueue=tasks&page=1&jobsPerPage=10`, {
      headers: auth,
    });
    const body = (await api.json()) as { queues: { name: string; readOnlyMode: boolean }[] };
    expect(api.status).toBe(200);
    expect(body.queues.map((q) => q.name).sort()).toEqual(['reviews', 'tasks']);
    expect(body.queues.every((q) => q.readOnlyMode)).toBe(true);

    const retry = await fetch(`${serve!.url}/admin/queues/api/queues/tasks/retry/failed`, {
      method: 'PUT',
      headers: auth,
    });
    await retry.arrayBuffer();
    expect(retry.status).toBe(405);
    // A page from another origin is stopped before the dashboard, token or not.
    const foreign = await fetch(`${serve!.url}/admin/queues/api/queues/tasks/retry/failed`, {
      method: 'PUT',
      headers: { ...auth, origin: 'https://evil.example' },
    });
    await foreign.arrayBuffer();
    expect(foreign.status).toBe(403);
  });
});

describe('/metrics and the reaper', () => {
  it('metrics: a run left open through MCP counts in runwarden_open_runs, and once its lease expires in runwarden_runs_reaped_total', async () => {
    const experiment_name = uniqueName('metrics-reap');
    const { experimentId } = await getOrCreateExperiment(testClient(mlflowUrl), experiment_name);
    const own = await startServe({
      MLFLOW_TRACKING_URI: mlflowUrl,
      REDIS_URL: redisUrl,
      RUNWARDEN_QUEUE_PREFIX: prefix,
      RUNWARDEN_HTTP_TOKEN: TOKEN,
      RUNWARDEN_REAP_INTERVAL_MS: '1000',
      RUNWARDEN_REAP_EXPERIMENT_IDS: experimentId,
    });
    onTestFinished(async () => {
      await own.stop(10_000);
    });
    const { client: c, transport } = await httpClient(own.url, TOKEN);
    const run = await call<{ run_id: string }>(c, 'start_run', { experiment_name, lease_seconds: 10 });
    const open = await scrape(own.url);
    expect(value(open.exposition, 'runwarden_open_runs')).toBe(1);
    expect(value(open.exposition, 'runwarden_runs_reaped_total')).toBe(0);
    await transport.terminateSession();
    await c.close();

    await waitFor(
      'the reaper to close the run, as /metrics counts it',
      async () => value((await scrape(own.url)).exposition, 'runwarden_runs_reaped_total') === 1,
      { timeoutMs: 60_000 },
    );
    expect((await pyGetRun(mlflowUrl, run.run_id)).status).toBe('KILLED');
    expect(value((await scrape(own.url)).exposition, 'runwarden_open_runs')).toBe(0);
  });
});

describe('/metrics under faults', () => {
  let mlflowPath: FaultProxy | undefined;
  let redisPath: FaultProxy | undefined;
  let faulty: ServeProcess | undefined;

  beforeAll(async () => {
    [mlflowPath, redisPath] = await Promise.all([startFaultProxy(mlflowUrl), startFaultProxy(redisUrl)]);
    faulty = await startServe({
      ...taskEnv({
        mlflowUrl: mlflowPath.url,
        redisUrl: `redis://127.0.0.1:${redisPath.port}`,
        prefix,
        workDir,
      }),
      RUNWARDEN_HTTP_TOKEN: TOKEN,
      RUNWARDEN_MLFLOW_MAX_RETRIES: '1',
      RUNWARDEN_METRICS_TIMEOUT_MS: '500',
    });
  });
  afterAll(async () => {
    await faulty?.stop();
    await Promise.all([mlflowPath?.close(), redisPath?.close()]);
  });

  it('metrics: MLflow answering 503 shows as request errors by endpoint and status code', async () => {
    const { client: c } = await httpClient(faulty!.url, TOKEN);
    try {
      await mlflowPath!.setMode('http503');
      await callError(c, 'get_or_create_experiment', { name: uniqueName('metrics-503') });
    } finally {
      await mlflowPath!.setMode('pass');
      await c.close();
    }
    const { exposition: e } = await scrape(faulty!.url);
    const labels = { method: 'GET', endpoint: '/api/2.0/mlflow/experiments/get-by-name', code: '503' };
    // The first try and its one retry.
    expect(value(e, 'runwarden_mlflow_request_errors_total', labels)).toBeGreaterThanOrEqual(2);
    expect(value(e, 'runwarden_mlflow_request_duration_seconds_count', labels)).toBeGreaterThanOrEqual(2);
  });

  it('metrics: with Redis hanging, a scrape answers within its timeout saying the task and review collectors are down, and they come back with Redis', async () => {
    const before = await scrape(faulty!.url);
    expect(value(before.exposition, 'runwarden_collector_up', { collector: 'tasks' })).toBe(1);
    await redisPath!.setMode('hang', { existing: true });
    try {
      const started = Date.now();
      const during = await scrape(faulty!.url);
      const tookMs = Date.now() - started;
      expect(during.status).toBe(200);
      expect(tookMs).toBeLessThan(5_000);
      expect(value(during.exposition, 'runwarden_collector_up', { collector: 'tasks' })).toBe(0);
      expect(value(during.exposition, 'runwarden_collector_up', { collector: 'reviews' })).toBe(0);
      expect(find(during.exposition, 'runwarden_tasks')).toHaveLength(0);
      // The MLflow series are still there.
      expect(
        find(during.exposition, 'runwarden_mlflow_request_duration_seconds_count').length,
      ).toBeGreaterThan(0);
    } finally {
      await redisPath!.setMode('pass');
    }
    await waitFor(
      'the task collector to answer again',
      async () =>
        value((await scrape(faulty!.url)).exposition, 'runwarden_collector_up', { collector: 'tasks' }) === 1,
      { timeoutMs: 30_000 },
    );
  });
});
