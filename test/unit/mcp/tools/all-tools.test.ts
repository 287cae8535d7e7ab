// Every tool through a real MCP Client over InMemoryTransport against the msw fake MLflow: one successful call per tool (text plus structuredContent valid against its outputSchema), and the SDK's own input validation naming the field.
import { describe, expect, it } from 'vitest';
import { textOf } from '../harness.js';
import { failed, fake, ok, s, useToolSessions } from '../tool-session.js';
import { successCases } from './success-cases.js';

useToolSessions();

describe('tools: every successful result', () => {
  it('tools/list: the success cases below cover every listed tool', () => {
    expect(Object.keys(successCases).sort()).toEqual(s.tools.map((t) => t.name).sort());
    expect(s.tools).toHaveLength(17);
  });

  it.each(
    Object.keys(successCases),
  )('%s: a successful call returns text and structuredContent that validates against its outputSchema', async (name) => {
    const c = successCases[name]!;
    const res = await s.call(name, await c.args(s));
    c.check(ok(res, name), textOf(res));
  });
});

describe('tools: input validation by the SDK', () => {
  it.each([
    ['get_run', {}, 'run_id'],
    ['log_metrics', { run_id: 'r', metrics: [] }, 'metrics'],
    ['log_metrics', { run_id: 'r', metrics: [{ key: 'loss', value: 'high' }] }, 'value'],
    ['get_metric_history', { run_id: 'r', key: 'loss', max_points: 1 }, 'max_points'],
    ['end_run', { run_id: 'r', status: 'DONE' }, 'status'],
    ['compare_runs', { run_ids: ['only-one'] }, 'run_ids'],
    ['get_model_version', { name: 'm', version: 'one' }, 'version'],
    ['start_run', { experiment_name: '' }, 'experiment_name'],
    ['search_runs', { experiment_ids: ['1'], max_results: 500 }, 'max_results'],
  ] as const)('%s: invalid arguments %j give an isError result naming the field, before any MLflow request', async (name, args, field) => {
    const res = await s.call(name, args);
    const text = failed(res);
    // SDK 1.32: McpServer catches its own McpError(InvalidParams) and returns it as an isError result.
    expect(text).toMatch(
      new RegExp(`^MCP error -32602: Input validation error: Invalid arguments for tool ${name}:`),
    );
    expect(text).toContain(field);
    expect(fake.requests).toEqual([]);
  });

  it('tools/call: an unknown tool name gives an isError result saying it was not found', async () => {
    const text = failed(await s.call('drop_experiment', { experiment_id: '1' }));
    expect(text).toBe('MCP error -32602: Tool drop_experiment not found');
  });
});
