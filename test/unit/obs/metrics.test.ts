// Covers src/obs/metrics.ts and src/obs/endpoint.ts: the exposition parses as Prometheus text and
// holds every runwarden family; a collector that does not answer in time is reported down without
// holding the scrape; labels are endpoint templates (never ids or artifact paths) and open label
// sets are capped; the parser used by the /metrics tests rejects what a scraper would.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { endpointTemplate } from '../../../src/obs/endpoint.js';
import { createMetrics, MAX_LABEL_VALUES } from '../../../src/obs/metrics.js';
import { find, parsePrometheusText } from './prom-text.js';

const BASE = 'http://mlflow.test';

describe('metrics exposition', () => {
  it('metrics: the exposition parses as Prometheus text and holds tasks, reviews, durations, MLflow requests, reaped runs and buffered points', async () => {
    const m = createMetrics(
      {
        taskCounts: async () => ({ waiting: 3, active: 1, completed: 7, failed: 2 }),
        reviewCounts: async () => ({ pending: 2, approve: 4, reject: 1, rework: 0 }),
        bufferedPoints: () => 1500,
        openRuns: () => 2,
        runsReaped: () => 5,
      },
      { trackingUri: BASE },
    );
    m.observeMlflow({
      method: 'POST',
      url: `${BASE}/api/2.0/mlflow/runs/log-batch`,
      status: 200,
      durationMs: 12,
    });
    m.observeMlflow({
      method: 'POST',
      url: `${BASE}/api/2.0/mlflow/runs/log-batch`,
      status: 503,
      durationMs: 40,
    });
    m.observeMlflow({
      method: 'GET',
      url: `${BASE}/api/2.0/mlflow/runs/get?run_id=abc`,
      error: 'timeout',
      durationMs: 30_000,
    });
    m.observeTask({ template: 'gru-forecast', outcome: 'completed', seconds: 42 });

    const { body, contentType } = await m.render();
    expect(contentType).toContain('text/plain');
    const e = parsePrometheusText(body);

    expect(find(e, 'runwarden_tasks', { state: 'waiting' })[0]?.value).toBe(3);
    expect(find(e, 'runwarden_tasks', { state: 'failed' })[0]?.value).toBe(2);
    expect(find(e, 'runwarden_collector_up', { collector: 'tasks' })[0]?.value).toBe(1);
    expect(find(e, 'runwarden_reviews', { decision: 'approve' })[0]?.value).toBe(4);
    expect(find(e, 'runwarden_reviews', { decision: 'pending' })[0]?.value).toBe(2);
    expect(find(e, 'runwarden_points_buffered')[0]?.value).toBe(1500);
    expect(find(e, 'runwarden_open_runs')[0]?.value).toBe(2);
    expect(find(e, 'runwarden_runs_reaped_total')[0]?.value).toBe(5);
    expect(e.types.get('runwarden_runs_reaped_total')).toBe('counter');

    expect(e.types.get('runwarden_task_duration_seconds')).toBe('histogram');
    expect(
      find(e, 'runwarden_task_duration_seconds_count', { template: 'gru-forecast', outcome: 'completed' })[0]
        ?.value,
    ).toBe(1);
    const logBatch = { method: 'POST', endpoint: '/api/2.0/mlflow/runs/log-batch' };
    expect(
      find(e, 'runwarden_mlflow_request_duration_seconds_count', { ...logBatch, code: '200' })[0]?.value,
    ).toBe(1);
    expect(find(e, 'runwarden_mlflow_request_errors_total', { ...logBatch, code: '503' })[0]?.value).toBe(1);
    expect(find(e, 'runwarden_mlflow_request_errors_total', { ...logBatch, code: '200' })).toHaveLength(0);
    expect(
      find(e, 'runwarden_mlflow_request_errors_total', {
        method: 'GET',
        endpoint: '/api/2.0/mlflow/runs/get',
        code: 'timeout',
      })[0]?.value,
    ).toBe(1);
    expect(find(e, 'process_cpu_user_seconds_total')).toHaveLength(1);
  });

  it('metrics: when the task counts do not answer within the timeout, the scrape still ends in time and says tasks are down', async () => {
    const m = createMetrics(
      {
        taskCounts: () => new Promise(() => undefined),
        reviewCounts: async () => ({ pending: 1, approve: 0, reject: 0, rework: 0 }),
      },
      { trackingUri: BASE, timeoutMs: 150, processMetrics: false },
    );
    const started = Date.now();
    const e = parsePrometheusText((await m.render()).body);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(find(e, 'runwarden_collector_up', { collector: 'tasks' })[0]?.value).toBe(0);
    expect(find(e, 'runwarden_tasks')).toHaveLength(0);
    expect(find(e, 'runwarden_collector_up', { collector: 'reviews' })[0]?.value).toBe(1);
    expect(find(e, 'runwarden_reviews', { decision: 'pending' })[0]?.value).toBe(1);
  });

  it('metrics: a failing collector is reported down and comes back up at the next scrape that answers', async () => {
    let fail = true;
    const m = createMetrics(
      { taskCounts: async () => (fail ? Promise.reject(new Error('ECONNREFUSED')) : { waiting: 1 }) },
      { trackingUri: BASE, processMetrics: false },
    );
    let e = parsePrometheusText((await m.render()).body);
    expect(find(e, 'runwarden_collector_up', { collector: 'tasks' })[0]?.value).toBe(0);
    fail = false;
    e = parsePrometheusText((await m.render()).body);
    expect(find(e, 'runwarden_collector_up', { collector: 'tasks' })[0]?.value).toBe(1);
    expect(find(e, 'runwarden_tasks', { state: 'waiting' })[0]?.value).toBe(1);
  });

  it('metrics: request labels hold the endpoint template, never a run id or an artifact path', async () => {
    const m = createMetrics({}, { trackingUri: BASE, processMetrics: false });
    const runId = 'f00dfacecafe4b1d9a0b5e2c7d3e1a90';
    m.observeMlflow({
      method: 'PUT',
      url: `${BASE}/api/2.0/mlflow-artifacts/artifacts/12/${runId}/artifacts/model/secret-name.onnx`,
      status: 200,
      durationMs: 5,
    });
    m.observeMlflow({
      method: 'GET',
      url: `${BASE}/api/2.0/mlflow/runs/get?run_id=${runId}`,
      status: 200,
      durationMs: 5,
    });
    const { body } = await m.render();
    expect(body).not.toContain(runId);
    expect(body).not.toContain('secret-name');
    const e = parsePrometheusText(body);
    expect(
      find(e, 'runwarden_mlflow_request_duration_seconds_count', {
        endpoint: '/api/2.0/mlflow-artifacts/artifacts/{artifact_path}',
      }),
    ).toHaveLength(1);
  });

  it(`metrics: past ${MAX_LABEL_VALUES} distinct templates or endpoints, new values are counted as other`, async () => {
    const m = createMetrics({}, { trackingUri: BASE, processMetrics: false });
    for (let i = 0; i < MAX_LABEL_VALUES + 20; i++) {
      m.observeTask({ template: `t${i}`, outcome: 'completed', seconds: 1 });
      m.observeMlflow({
        method: 'POST',
        url: `${BASE}/api/2.0/mlflow/runs/made-up-${'x'.repeat(i + 1)}`,
        status: 200,
        durationMs: 1,
      });
    }
    m.observeTask({ template: 't0', outcome: 'weird-state', seconds: 1 });
    const e = parsePrometheusText((await m.render()).body);
    const templates = new Set(find(e, 'runwarden_task_duration_seconds_count').map((s) => s.labels.template));
    expect(templates.size).toBe(MAX_LABEL_VALUES + 1);
    expect(find(e, 'runwarden_task_duration_seconds_count', { template: 'other' })[0]?.value).toBe(20);
    expect(
      find(e, 'runwarden_task_duration_seconds_count', { template: 't0', outcome: 'other' }),
    ).toHaveLength(1);
    const endpoints = new Set(
      find(e, 'runwarden_mlflow_request_duration_seconds_count').map((s) => s.labels.endpoint),
    );
    expect(endpoints.size).toBe(MAX_LABEL_VALUES + 1);
  });
});

describe('endpoint templates', () => {
  it('endpointTemplate: every path of openapi.yaml is its own template (the artifact path and the logged model id filled in)', () => {
    const spec = parse(readFileSync(join(__dirname, '../../../src/mlflow/openapi.yaml'), 'utf8')) as {
      paths: Record<string, unknown>;
    };
    const paths = Object.keys(spec.paths);
    expect(paths.length).toBeGreaterThan(30);
    for (const p of paths) {
      const url = `${BASE}${p
        .replace('{artifact_path}', '3/0a1b2c/artifacts/dir/file.txt')
        .replace('{model_id}', 'm-0123456789abcdef0123456789abcdef')}?x=1`;
      expect(endpointTemplate(url, BASE), p).toBe(p);
    }
  });

  it('endpointTemplate: a tracking server under a path prefix is stripped; unknown routes are other', () => {
    const base = 'https://host.example/mlflow';
    expect(endpointTemplate(`${base}/api/2.0/mlflow/runs/get?run_id=1`, base)).toBe(
      '/api/2.0/mlflow/runs/get',
    );
    expect(endpointTemplate(`${base}/ajax-api/2.0/mlflow/runs/get`, base)).toBe(
      '/ajax-api/2.0/mlflow/runs/get',
    );
    expect(endpointTemplate(`${BASE}/get-artifact?path=x&run_uuid=abc`, BASE)).toBe('other');
    expect(endpointTemplate(`${BASE}/api/2.0/mlflow/runs/get/123`, BASE)).toBe('other');
    expect(endpointTemplate(`${BASE}/api/2.0/mlflow/runs/0a1b2c3d4e5f`, BASE)).toBe('other');
    expect(endpointTemplate(`${BASE}/api/2.0/mlflow/logged-models/0a1b2c3d`, BASE)).toBe('other');
    expect(endpointTemplate(`${BASE}/api/2.0/mlflow/logged-models/search`, BASE)).toBe(
      '/api/2.0/mlflow/logged-models/search',
    );
    expect(endpointTemplate('not a url', BASE)).toBe('other');
  });
});

describe('the Prometheus text parser used by these tests', () => {
  it('prom-text: rejects what a scraper would (bad names, unquoted values, bad escapes, TYPE after samples, bucket without le)', () => {
    const bad = [
      '1metric 1',
      'm{a=b} 1',
      'm{a="x\\q"} 1',
      'm{a="x"}1',
      'm 1 2 3',
      'm abc',
      'm 1\n# TYPE m gauge',
      '# TYPE h histogram\nh_bucket{x="1"} 1',
      '# TYPE m gauge\n# TYPE m gauge',
      'm{a="unterminated} 1',
    ];
    for (const text of bad) expect(() => parsePrometheusText(text), text).toThrow();
    const ok = parsePrometheusText(
      '# HELP m a gauge\n# TYPE m gauge\nm{a="q\\"uote\\\\",b="line\\n"} -1.5e3\nn +Inf 1700000000000\n# free comment\n',
    );
    expect(ok.samples).toEqual([
      { name: 'm', labels: { a: 'q"uote\\', b: 'line\n' }, value: -1500 },
      { name: 'n', labels: {}, value: Number.POSITIVE_INFINITY },
    ]);
  });
});
