/**
 * MCP resource templates: experiments, runs and registered models as JSON, addressed
 * `mlflow://experiments/{experiment_id}`, `mlflow://runs/{run_id}`, `mlflow://models/{name}`.
 */
import { type McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { summarizeExperiment, summarizeRun } from './tools/shapes.js';

const json = (uri: URL, value: unknown) => ({
  contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }],
});

const one = (v: string | string[] | undefined) =>
  decodeURIComponent(Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));

export function registerResources(server: McpServer, client: MlflowClient): void {
  server.registerResource(
    'experiment',
    new ResourceTemplate('mlflow://experiments/{experiment_id}', { list: undefined }),
    {
      title: 'MLflow experiment',
      description: 'An experiment as JSON, with its UI link',
      mimeType: 'application/json',
    },
    async (uri, vars) => {
      const res = await ok(
        client.api.GET('/api/2.0/mlflow/experiments/get', {
          params: { query: { experiment_id: one(vars.experiment_id) } },
        }),
      );
      return json(uri, summarizeExperiment(client, res.experiment ?? {}));
    },
  );
  server.registerResource(
    'run',
    new ResourceTemplate('mlflow://runs/{run_id}', { list: undefined }),
    {
      title: 'MLflow run',
      description: 'A run as JSON: status, params, latest metrics, tags, UI link',
      mimeType: 'application/json',
    },
    async (uri, vars) => {
      const res = await ok(
        client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: one(vars.run_id) } } }),
      );
      return json(uri, summarizeRun(client, res.run ?? {}));
    },
  );
  server.registerResource(
    'model',
    new ResourceTemplate('mlflow://models/{name}', { list: undefined }),
    {
      title: 'Registered model',
      description: 'A registered model as JSON: versions, aliases, tags',
      mimeType: 'application/json',
    },
    async (uri, vars) => {
      const name = one(vars.name);
      const res = await ok(
        client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name } } }),
      );
      const m = res.registered_model ?? {};
      return json(uri, {
        name: m.name,
        description: m.description,
        aliases: Object.fromEntries((m.aliases ?? []).map((a) => [a.alias ?? '', a.version ?? ''])),
        latest_versions: (m.latest_versions ?? []).map((v) => ({
          version: v.version,
          status: v.status,
          run_id: v.run_id,
        })),
        tags: Object.fromEntries((m.tags ?? []).map((t) => [t.key ?? '', t.value ?? ''])),
        url: `${client.uiUrl}/#/models/${encodeURIComponent(name)}`,
      });
    },
  );
}
