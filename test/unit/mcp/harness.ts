// Shared by the MCP unit tests: an msw fake of the MLflow REST API (experiments, runs, metrics, artifacts, model registry) and a real MCP Client linked in memory to createServer().
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { HttpResponse, http } from 'msw';
import { silentLogger } from '../../../src/log.js';
import type { McpSettings } from '../../../src/mcp/context.js';
import { loadPrompts } from '../../../src/mcp/prompts.js';
import { McpRunRegistry } from '../../../src/mcp/runs.js';
import { createServer } from '../../../src/mcp/server.js';
import { createMlflowClient, type MlflowClient } from '../../../src/mlflow/client.js';

export const BASE = 'http://mlflow.test';
export const API = `${BASE}/api/2.0/mlflow`;
export const ARTIFACTS = `${BASE}/api/2.0/mlflow-artifacts/artifacts`;
export const PROMPTS_DIR = fileURLToPath(new URL('../../../prompts', import.meta.url));

export interface KV {
  key: string;
  value: string;
}
export interface FakeMetric {
  key: string;
  value: number | string;
  step: number;
  timestamp: number;
}
export interface LogBatch {
  run_id: string;
  metrics?: FakeMetric[];
  params?: KV[];
  tags?: KV[];
}
export interface FakeExperiment {
  experiment_id: string;
  name: string;
  lifecycle_stage: string;
  artifact_location: string;
  tags: KV[];
}
export interface FakeRun {
  info: {
    run_id: string;
    experiment_id: string;
    run_name: string;
    status: string;
    start_time: number;
    end_time?: number;
    artifact_uri: string;
    lifecycle_stage: string;
  };
  params: Map<string, string>;
  tags: Map<string, string>;
  /** Every metric point, in arrival order. */
  history: FakeMetric[];
}
export interface FakeVersion {
  name: string;
  version: string;
  source: string;
  run_id: string;
  status: string;
  tags: KV[];
  description?: string;
  creation_timestamp: number;
}

const notFound = (message: string) =>
  HttpResponse.json({ error_code: 'RESOURCE_DOES_NOT_EXIST', message }, { status: 404 });
const invalid = (message: string) =>
  HttpResponse.json({ error_code: 'INVALID_PARAMETER_VALUE', message }, { status: 400 });
const kvs = (m: Map<string, string>): KV[] => [...m].map(([key, value]) => ({ key, value }));

/** An in-memory MLflow tracking server and model registry; records every request it answers. */
export class FakeMlflow {
  experiments = new Map<string, FakeExperiment>();
  runs = new Map<string, FakeRun>();
  /** Artifact bytes by path under the artifact proxy root, e.g. `1/run0001/artifacts/notes.md`. */
  artifacts = new Map<string, Buffer>();
  models = new Map<string, { name: string; aliases: Map<string, string>; tags: KV[] }>();
  versions: FakeVersion[] = [];
  /** Every request: operation (path after /api/2.0/mlflow/, or `artifact PUT|GET`) and JSON body or query. */
  requests: { op: string; body: unknown }[] = [];
  private nextExperiment = 1;
  private nextRun = 1;

  bodies<T>(op: string): T[] {
    return this.requests.filter((r) => r.op === op).map((r) => r.body as T);
  }

  addExperiment(name: string, tags: KV[] = []): FakeExperiment {
    const id = String(this.nextExperiment++);
    const e = {
      experiment_id: id,
      name,
      lifecycle_stage: 'active',
      artifact_location: `mlflow-artifacts:/${id}`,
      tags,
    };
    this.experiments.set(id, e);
    return e;
  }

  addRun(
    experimentId: string,
    init: Partial<FakeRun['info']> & { tags?: Record<string, string> } = {},
  ): FakeRun {
    const id = init.run_id ?? `run${String(this.nextRun++).padStart(4, '0')}`;
    const { tags, ...info } = init;
    const run: FakeRun = {
      info: {
        run_id: id,
        experiment_id: experimentId,
        run_name: `calm-fox-${this.nextRun}`,
        status: 'RUNNING',
        start_time: Date.now(),
        artifact_uri: `mlflow-artifacts:/${experimentId}/${id}/artifacts`,
        lifecycle_stage: 'active',
        ...info,
      },
      params: new Map(),
      tags: new Map(Object.entries(tags ?? {})),
      history: [],
    };
    if (!run.tags.has('mlflow.runName')) run.tags.set('mlflow.runName', run.info.run_name);
    this.runs.set(id, run);
    return run;
  }

  /** The run as runs/get answers it: latest value per metric key. */
  runJson(run: FakeRun) {
    const latest = new Map<string, FakeMetric>();
    for (const m of run.history) {
      const cur = latest.get(m.key);
      if (!cur || m.step >= cur.step) latest.set(m.key, m);
    }
    return {
      info: { ...run.info, run_uuid: run.info.run_id },
      data: { params: kvs(run.params), tags: kvs(run.tags), metrics: [...latest.values()] },
    };
  }

  private versionJson(v: FakeVersion) {
    const model = this.models.get(v.name);
    const aliases = [...(model?.aliases ?? [])].filter(([, ver]) => ver === v.version).map(([a]) => a);
    return { ...v, aliases };
  }

  private record(op: string, body: unknown) {
    this.requests.push({ op, body });
  }

  handlers() {
    const query = (request: Request) => Object.fromEntries(new URL(request.url).searchParams);
    return [
      // Experiments
      http.get(`${API}/experiments/get-by-name`, ({ request }) => {
        const q = query(request);
        this.record('experiments/get-by-name', q);
        const e = [...this.experiments.values()].find((x) => x.name === q.experiment_name);
        return e
          ? HttpResponse.json({ experiment: e })
          : notFound(`Could not find experiment with name '${q.experiment_name}'`);
      }),
      http.get(`${API}/experiments/get`, ({ request }) => {
        const q = query(request);
        this.record('experiments/get', q);
        const e = this.experiments.get(q.experiment_id ?? '');
        return e
          ? HttpResponse.json({ experiment: e })
          : notFound(`No Experiment with id=${q.experiment_id} exists`);
      }),
      http.post(`${API}/experiments/create`, async ({ request }) => {
        const body = (await request.json()) as { name: string; tags?: KV[] };
        this.record('experiments/create', body);
        if ([...this.experiments.values()].some((x) => x.name === body.name)) {
          return HttpResponse.json(
            { error_code: 'RESOURCE_ALREADY_EXISTS', message: `Experiment '${body.name}' already exists.` },
            { status: 400 },
          );
        }
        return HttpResponse.json({
          experiment_id: this.addExperiment(body.name, body.tags ?? []).experiment_id,
        });
      }),
      http.post(`${API}/experiments/search`, async ({ request }) => {
        const body = (await request.json()) as { max_results?: number; page_token?: string };
        this.record('experiments/search', body);
        const all = [...this.experiments.values()];
        const from = Number(body.page_token ?? 0);
        const to = from + (body.max_results ?? 1000);
        return HttpResponse.json({
          experiments: all.slice(from, to),
          ...(to < all.length ? { next_page_token: String(to) } : {}),
        });
      }),
      // Runs
      http.post(`${API}/runs/create`, async ({ request }) => {
        const body = (await request.json()) as {
          experiment_id: string;
          run_name?: string;
          start_time?: number;
          tags?: KV[];
        };
        this.record('runs/create', body);
        if (!this.experiments.has(body.experiment_id))
          return notFound(`No Experiment with id=${body.experiment_id} exists`);
        const run = this.addRun(body.experiment_id, {
          ...(body.run_name ? { run_name: body.run_name } : {}),
          start_time: body.start_time ?? Date.now(),
          tags: Object.fromEntries((body.tags ?? []).map((t) => [t.key, t.value])),
        });
        return HttpResponse.json({ run: this.runJson(run) });
      }),
      http.get(`${API}/runs/get`, ({ request }) => {
        const q = query(request);
        this.record('runs/get', q);
        const run = this.runs.get(q.run_id ?? '');
        return run ? HttpResponse.json({ run: this.runJson(run) }) : notFound(`Run '${q.run_id}' not found`);
      }),
      http.post(`${API}/runs/search`, async ({ request }) => {
        const body = (await request.json()) as {
          experiment_ids: string[];
          max_results?: number;
          filter?: string;
        };
        this.record('runs/search', body);
        const runs = [...this.runs.values()]
          .filter((r) => body.experiment_ids.includes(r.info.experiment_id))
          .slice(0, body.max_results ?? 1000)
          .map((r) => this.runJson(r));
        return HttpResponse.json(runs.length ? { runs } : {});
      }),
      http.post(`${API}/runs/log-batch`, async ({ request }) => {
        const body = (await request.json()) as LogBatch;
        this.record('runs/log-batch', body);
        const run = this.runs.get(body.run_id);
        if (!run) return notFound(`Run '${body.run_id}' not found`);
        const changed = (body.params ?? []).find(
          (p) => run.params.has(p.key) && run.params.get(p.key) !== p.value,
        );
        if (changed) {
          return invalid(
            `Changing param values is not allowed. Params were already logged='[{'key': '${changed.key}', 'old_value': '${run.params.get(changed.key)}', 'new_value': '${changed.value}'}]' for run ID='${run.info.run_id}'.`,
          );
        }
        for (const p of body.params ?? []) run.params.set(p.key, p.value);
        for (const t of body.tags ?? []) run.tags.set(t.key, t.value);
        run.history.push(...(body.metrics ?? []));
        return HttpResponse.json({});
      }),
      http.post(`${API}/runs/update`, async ({ request }) => {
        const body = (await request.json()) as { run_id: string; status: string; end_time?: number };
        this.record('runs/update', body);
        const run = this.runs.get(body.run_id);
        if (!run) return notFound(`Run '${body.run_id}' not found`);
        run.info.status = body.status;
        run.info.end_time = body.end_time;
        return HttpResponse.json({ run_info: run.info });
      }),
      http.get(`${API}/metrics/get-history`, ({ request }) => {
        const q = query(request);
        this.record('metrics/get-history', q);
        const metrics = (this.runs.get(q.run_id ?? '')?.history ?? []).filter((m) => m.key === q.metric_key);
        return HttpResponse.json(metrics.length ? { metrics } : {});
      }),
      // Artifacts
      http.get(`${API}/artifacts/list`, ({ request }) => {
        const q = query(request);
        this.record('artifacts/list', q);
        const run = this.runs.get(q.run_id ?? '');
        if (!run) return notFound(`Run '${q.run_id}' not found`);
        const root = `${run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '')}/`;
        const dir = q.path ? `${q.path}/` : '';
        const seen = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
        for (const [key, bytes] of this.artifacts) {
          if (!key.startsWith(root + dir)) continue;
          const rest = key.slice(root.length + dir.length);
          const [head, ...tail] = rest.split('/');
          const p = `${dir}${head}`;
          seen.set(
            p,
            tail.length ? { path: p, is_dir: true } : { path: p, is_dir: false, file_size: bytes.length },
          );
        }
        return HttpResponse.json({ root_uri: run.info.artifact_uri, files: [...seen.values()] });
      }),
      http.put(`${ARTIFACTS}/*`, async ({ request }) => {
        const key = decodeURIComponent(
          new URL(request.url).pathname.slice('/api/2.0/mlflow-artifacts/artifacts/'.length),
        );
        this.record('artifact PUT', key);
        this.artifacts.set(key, Buffer.from(await request.arrayBuffer()));
        return new HttpResponse(null, { status: 200 });
      }),
      http.get(`${ARTIFACTS}/*`, ({ request }) => {
        const key = decodeURIComponent(
          new URL(request.url).pathname.slice('/api/2.0/mlflow-artifacts/artifacts/'.length),
        );
        this.record('artifact GET', key);
        const bytes = this.artifacts.get(key);
        if (!bytes) return notFound(`artifact ${key} not found`);
        return new HttpResponse(new Uint8Array(bytes), {
          status: 200,
          headers: { 'content-type': 'application/octet-stream' },
        });
      }),
      // Model registry
      http.get(`${API}/registered-models/get`, ({ request }) => {
        const q = query(request);
        this.record('registered-models/get', q);
        const m = this.models.get(q.name ?? '');
        if (!m) return notFound(`Registered Model with name=${q.name} not found`);
        return HttpResponse.json({
          registered_model: {
            name: m.name,
            tags: m.tags,
            aliases: [...m.aliases].map(([alias, version]) => ({ alias, version })),
            latest_versions: this.versions.filter((v) => v.name === m.name).map((v) => this.versionJson(v)),
          },
        });
      }),
      http.post(`${API}/registered-models/create`, async ({ request }) => {
        const body = (await request.json()) as { name: string; tags?: KV[] };
        this.record('registered-models/create', body);
        if (this.models.has(body.name)) {
          return HttpResponse.json(
            {
              error_code: 'RESOURCE_ALREADY_EXISTS',
              message: `Registered Model (name=${body.name}) already exists.`,
            },
            { status: 400 },
          );
        }
        this.models.set(body.name, { name: body.name, aliases: new Map(), tags: body.tags ?? [] });
        return HttpResponse.json({ registered_model: { name: body.name } });
      }),
      http.get(`${API}/model-versions/search`, ({ request }) => {
        const q = query(request);
        this.record('model-versions/search', q);
        const filter = q.filter ?? '';
        const name = /name = '([^']*)'/.exec(filter)?.[1];
        const runId = /run_id = '([^']*)'/.exec(filter)?.[1];
        const found = this.versions
          .filter((v) => v.name === name && (runId === undefined || v.run_id === runId))
          .map((v) => this.versionJson(v));
        return HttpResponse.json(found.length ? { model_versions: found } : {});
      }),
      http.post(`${API}/model-versions/create`, async ({ request }) => {
        const body = (await request.json()) as Omit<FakeVersion, 'version' | 'status' | 'creation_timestamp'>;
        this.record('model-versions/create', body);
        if (!this.models.has(body.name)) return notFound(`Registered Model with name=${body.name} not found`);
        const v: FakeVersion = {
          name: body.name,
          source: body.source,
          run_id: body.run_id,
          tags: body.tags ?? [],
          description: body.description,
          version: String(this.versions.filter((x) => x.name === body.name).length + 1),
          status: 'READY',
          creation_timestamp: Date.UTC(2030, 0, 1),
        };
        this.versions.push(v);
        return HttpResponse.json({ model_version: this.versionJson(v) });
      }),
      http.get(`${API}/model-versions/get`, ({ request }) => {
        const q = query(request);
        this.record('model-versions/get', q);
        const v = this.versions.find((x) => x.name === q.name && x.version === q.version);
        if (!v) return notFound(`Model Version (name=${q.name}, version=${q.version}) not found`);
        return HttpResponse.json({ model_version: this.versionJson(v) });
      }),
      http.get(`${API}/registered-models/alias`, ({ request }) => {
        const q = query(request);
        this.record('registered-models/alias GET', q);
        const version = this.models.get(q.name ?? '')?.aliases.get(q.alias ?? '');
        const v = this.versions.find((x) => x.name === q.name && x.version === version);
        // MLflow answers an unknown alias with INVALID_PARAMETER_VALUE.
        if (!v) return invalid(`Registered model alias ${q.alias} not found.`);
        return HttpResponse.json({ model_version: this.versionJson(v) });
      }),
      http.post(`${API}/registered-models/alias`, async ({ request }) => {
        const body = (await request.json()) as { name: string; alias: string; version: string };
        this.record('registered-models/alias POST', body);
        const m = this.models.get(body.name);
        if (!m) return notFound(`Registered Model with name=${body.name} not found`);
        m.aliases.set(body.alias, body.version);
        return HttpResponse.json({});
      }),
    ];
  }
}

export const tagsOf = (b: { tags?: KV[] }) => Object.fromEntries((b.tags ?? []).map((t) => [t.key, t.value]));

export const baseSettings = (allowedRoot: string): McpSettings => ({
  readOnly: false,
  allowedRoots: [allowedRoot],
  maxInlineArtifactBytes: 1024,
  readArtifactMaxBytes: 64,
  leaseSeconds: 900,
  owner: 'mcp:test',
});

export interface Session {
  mcp: Client;
  /** The `close()` createServer returned: ends the session's open runs, then the server. */
  close: (reason?: string) => Promise<void>;
  sessionKey: string;
  runs: McpRunRegistry;
  mlflow: MlflowClient;
  tools: Tool[];
  /** Call a tool; the result as the SDK client returns it (after its output-schema check). */
  call: (name: string, args?: Record<string, unknown>) => Promise<CallToolResult>;
}

/** createServer() on an msw-backed MLflow client, linked in memory to a real MCP Client that has listed the tools. */
export async function openSession(settings: McpSettings, sessionKey?: string): Promise<Session> {
  const mlflow = createMlflowClient({ trackingUri: BASE, retry: { maxRetries: 0 } });
  const runs = new McpRunRegistry(mlflow, 900_000, { owner: settings.owner });
  const created = createServer({
    client: mlflow,
    runs,
    settings,
    logger: silentLogger,
    prompts: loadPrompts(PROMPTS_DIR),
    version: '0.0.0-test',
    ...(sessionKey ? { sessionKey } : {}),
  });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await created.server.connect(serverTransport);
  const mcp = new Client({ name: 'runwarden-unit-test', version: '0.0.0' });
  await mcp.connect(clientTransport);
  const { tools } = await mcp.listTools();
  return {
    mcp,
    close: created.close,
    sessionKey: created.sessionKey,
    runs,
    mlflow,
    tools,
    call: async (name, args = {}) => (await mcp.callTool({ name, arguments: args })) as CallToolResult,
  };
}

/** The first text content of a result. */
export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`expected text content, got ${JSON.stringify(result)}`);
  return first.text;
}

/** A temp directory removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
