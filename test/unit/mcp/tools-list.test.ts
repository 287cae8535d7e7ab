// Covers tools/list as an MCP client sees it: the committed snapshot of names, annotations and schemas, its size budget, and the metadata every tool must carry.
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { baseSettings, FakeMlflow, openSession, type Session, tempDir } from './harness.js';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

let tmp: ReturnType<typeof tempDir>;
let session: Session;
let tools: Tool[];
beforeEach(async () => {
  server.use(...new FakeMlflow().handlers());
  tmp = tempDir('rw-mcp-list-');
  session = await openSession(baseSettings(tmp.dir));
  tools = session.tools;
});
afterEach(async () => {
  await session.close();
  server.resetHandlers();
  tmp.remove();
});

const READ_ONLY = [
  'compare_runs',
  'get_metric_history',
  'get_model_version',
  'get_run',
  'list_artifacts',
  'read_artifact',
  'search_experiments',
  'search_runs',
];

describe('tools/list', () => {
  it('tools/list: names, annotations and schemas match the snapshot', () => {
    expect(tools).toMatchSnapshot();
  });

  it('tools/list: the whole JSON stays under 32,000 characters', async () => {
    const size = JSON.stringify(await session.mcp.listTools()).length;
    console.info(`tools/list JSON: ${size} characters for ${tools.length} tools`);
    expect(size).toBeLessThan(32_000);
  });

  it('tools/list: lists the 17 MLflow tools in the documented order', () => {
    expect(tools.map((t) => t.name)).toEqual([
      'get_or_create_experiment',
      'search_experiments',
      'start_run',
      'log_params',
      'log_metrics',
      'set_tags',
      'log_artifact',
      'end_run',
      'get_run',
      'search_runs',
      'get_metric_history',
      'compare_runs',
      'list_artifacts',
      'read_artifact',
      'register_model',
      'set_model_alias',
      'get_model_version',
    ]);
  });

  it('tools/list: every tool sets all four annotations explicitly, has a title, a description of at most 300 characters and an outputSchema', () => {
    for (const t of tools) {
      const a = t.annotations ?? {};
      for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
        expect(typeof a[hint], `${t.name}.annotations.${hint}`).toBe('boolean');
      }
      expect(t.title, `${t.name}.title`).toMatch(/\S/);
      expect(t.description, `${t.name}.description`).toMatch(/\S/);
      expect(t.description!.length, `${t.name}.description length`).toBeLessThanOrEqual(300);
      expect(t.outputSchema?.type, `${t.name}.outputSchema`).toBe('object');
      expect(
        Object.keys(t.outputSchema?.properties ?? {}).length,
        `${t.name}.outputSchema.properties`,
      ).toBeGreaterThan(0);
    }
  });

  it('tools/list: every input property of every tool has a description', () => {
    for (const t of tools) {
      expect(t.inputSchema.type).toBe('object');
      const props = Object.entries(t.inputSchema.properties ?? {}) as [string, { description?: unknown }][];
      expect(props.length, `${t.name} input properties`).toBeGreaterThan(0);
      for (const [name, schema] of props) {
        expect(typeof schema.description, `${t.name}.${name}.description`).toBe('string');
        expect((schema.description as string).length, `${t.name}.${name}.description`).toBeGreaterThan(0);
      }
    }
  });

  it('tools/list: the read-only tools are exactly those with readOnlyHint true', () => {
    const readOnly = tools.filter((t) => t.annotations?.readOnlyHint === true).map((t) => t.name);
    expect(readOnly.sort()).toEqual(READ_ONLY);
    for (const t of tools) {
      if (!READ_ONLY.includes(t.name)) expect(t.annotations?.readOnlyHint, t.name).toBe(false);
    }
  });

  it('tools/list: get_or_create_experiment and set_tags are idempotent, and no tool is destructive or open-world', () => {
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('get_or_create_experiment')?.annotations?.idempotentHint).toBe(true);
    expect(byName.get('set_tags')?.annotations?.idempotentHint).toBe(true);
    // Creating a run, a model version or a metric point twice makes two: not idempotent.
    for (const name of ['start_run', 'log_metrics', 'register_model']) {
      expect(byName.get(name)?.annotations?.idempotentHint, name).toBe(false);
    }
    for (const t of tools) {
      expect(t.annotations?.destructiveHint, t.name).toBe(false);
      expect(t.annotations?.openWorldHint, t.name).toBe(false);
    }
  });

  it('tools/list: the required input fields are the ones a call cannot do without', () => {
    const required = Object.fromEntries(
      tools.map((t) => [t.name, [...(t.inputSchema.required ?? [])].sort()]),
    );
    expect(required).toMatchObject({
      get_or_create_experiment: ['name'],
      start_run: [],
      log_params: ['params', 'run_id'],
      log_metrics: ['metrics', 'run_id'],
      end_run: ['run_id'],
      get_metric_history: ['key', 'run_id'],
      compare_runs: ['run_ids'],
      read_artifact: ['path', 'run_id'],
      register_model: ['artifact_path', 'name', 'run_id'],
      set_model_alias: ['alias', 'name', 'version'],
      get_model_version: ['name'],
    });
  });
});
