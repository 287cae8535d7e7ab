// The input boundary every tool shares (src/mcp/tools/boundary.ts, results.ts): 1 MB strings and lone
// UTF-16 surrogates in every string field of every tool give bounded answers naming the field; ids,
// names and MLflow's own error messages are checked or capped before they reach the agent.
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { API, textOf } from '../harness.js';
import { failed, fake, type Json, s, server, startRun, useToolSessions, writes } from '../tool-session.js';
import { successCases } from './success-cases.js';

useToolSessions();

const MB = 'x'.repeat(1_000_000);
const LONE = 'ok\ud800';
/** Every isError text is at most 2,000 characters plus the `…(N more)` mark. */
const ERROR_CAP = 2_048;

type Prop = {
  type?: string;
  items?: Prop;
  additionalProperties?: unknown;
  properties?: Record<string, Prop>;
};

/** Argument sets that put `bad` into one string slot of `tool`'s input, starting from valid args. */
function slots(tool: Tool, valid: Json, bad: string): { field: string; args: Json }[] {
  const props = (tool.inputSchema.properties ?? {}) as Record<string, Prop>;
  const out: { field: string; args: Json }[] = [];
  for (const [field, p] of Object.entries(props)) {
    const put = (v: unknown) => out.push({ field, args: { ...valid, [field]: v } });
    if (p.type === 'string') put(bad);
    else if (p.type === 'array' && p.items?.type === 'string') {
      const base = Array.isArray(valid[field]) ? (valid[field] as string[]) : ['1', '2'];
      put([base[0], bad, ...base.slice(2)]);
    } else if (p.type === 'array' && p.items?.type === 'object') {
      const first = ((valid[field] as Json[] | undefined) ?? [])[0] ?? {};
      for (const [k, q] of Object.entries(p.items.properties ?? {}))
        if (q.type === 'string') put([{ ...first, [k]: bad }]);
    } else if (p.type === 'object' && p.additionalProperties) {
      put({ [bad]: 'v' });
      put({ key: bad });
    }
  }
  return out;
}

function sizeOf(res: CallToolResult): { text: string; structured: number } {
  return { text: textOf(res), structured: JSON.stringify(res.structuredContent ?? null).length };
}

describe('tools: a 1 MB string in any string field', () => {
  it.each(
    Object.keys(successCases),
  )('%s: a 1 MB string in each string field gives an error or result under the cap, never the input back', async (name) => {
    const tool = s.tools.find((t) => t.name === name)!;
    const cases = slots(tool, await successCases[name]!.args(s), MB);
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const res = await s.call(
        name,
        await (async () => ({ ...(await successCases[name]!.args(s)), ...c.args }))(),
      );
      const { text, structured } = sizeOf(res);
      const where = `${name}.${c.field}: ${text.slice(0, 300)}`;
      if (res.isError) expect(text.length, where).toBeLessThanOrEqual(ERROR_CAP);
      else {
        expect(text.length, where).toBeLessThanOrEqual(4_000);
        expect(structured, where).toBeLessThanOrEqual(64_000);
      }
      expect(text.includes('x'.repeat(1_000)), where).toBe(false);
    }
  }, 60_000);
});

describe('tools: a lone UTF-16 surrogate in any string field', () => {
  it.each(
    Object.keys(successCases),
  )('%s: a lone surrogate in each string field is refused naming that field, not "URI malformed"', async (name) => {
    const tool = s.tools.find((t) => t.name === name)!;
    for (const c of slots(tool, await successCases[name]!.args(s), LONE)) {
      const res = await s.call(name, { ...(await successCases[name]!.args(s)), ...c.args });
      const text = textOf(res);
      expect(res.isError, `${name}.${c.field}: ${text}`).toBe(true);
      expect(text, `${name}.${c.field}`).toContain(c.field);
      expect(text).not.toContain('URI malformed');
    }
  }, 60_000);
});

describe('tools: ids are checked before any request', () => {
  it('get_run: a 1 MB run id is refused naming run_id, capped, and nothing is sent to MLflow', async () => {
    const text = failed(await s.call('get_run', { run_id: MB }));
    expect(text).toMatch(
      /^run_id: 'x{80}…\(999920 more\)' \(1000000 characters\) is not a valid id: use 1-64 letters/,
    );
    expect(text.length).toBeLessThan(500);
    expect(fake.requests).toEqual([]);
  });

  it.each([
    ['get_run', { run_id: 'a/b' }, 'run_id'],
    ['end_run', { run_id: '../runs' }, 'run_id'],
    ['compare_runs', { run_ids: ['r1', 'r 2'] }, 'run_ids[1]'],
    ['search_runs', { experiment_ids: ['1', 'abc'] }, 'experiment_ids[1]'],
    ['search_runs', { experiment_ids: ['1'.repeat(20)] }, 'experiment_ids[0]'],
    ['start_run', { experiment_id: '-1' }, 'experiment_id'],
    ['start_run', { experiment_name: 'e', parent_run_id: 'p?x=1' }, 'parent_run_id'],
    ['get_model_version', { name: 'm', version: '1'.repeat(11) }, 'version'],
    ['get_model_version', { name: 'm', alias: 'a b' }, 'alias'],
  ] as const)('%s: %j is refused naming %s before any request', async (name, args, field) => {
    const text = failed(await s.call(name, args));
    expect(text.startsWith(`${field}: `), text).toBe(true);
    expect(fake.requests).toEqual([]);
  });
});

describe('tools: names without control characters', () => {
  it.each([
    ['get_or_create_experiment', { name: 'a\u0000b' }, 'name', 'U+0000 at index 1'],
    ['start_run', { experiment_name: 'exp\u0000' }, 'experiment_name', 'U+0000 at index 3'],
    ['start_run', { experiment_name: 'e', run_name: 'two\nlines' }, 'run_name', 'U+000A at index 3'],
    ['search_runs', { experiment_names: ['ok', 'b\u001b[31m'] }, 'experiment_names[1]', 'U+001B at index 1'],
    [
      'register_model',
      { run_id: 'r1', artifact_path: 'model', name: 'm\u0000' },
      'name',
      'U+0000 at index 1',
    ],
    ['set_model_alias', { name: 'm\u0007', alias: 'champion', version: '1' }, 'name', 'U+0007 at index 1'],
  ] as const)('%s: %j is refused naming %s, and nothing is created', async (name, args, field, where) => {
    const text = failed(await s.call(name, args));
    expect(text).toContain(`${field}: `);
    expect(text).toContain(`control character ${where}`);
    expect(fake.requests).toEqual([]);
  });

  it('set_tags: a tag key with a NUL byte is refused naming the key, and nothing is written', async () => {
    const runId = await startRun();
    const before = writes();
    const text = failed(await s.call('set_tags', { run_id: runId, tags: { 'a\u0000b': 'v' } }));
    expect(text).toContain('has characters MLflow refuses');
    expect(writes()).toBe(before);
  });
});

describe("tools: MLflow's own error messages are capped", () => {
  it('get_run: a 400 whose MLflow message quotes 1 MB comes back under 2 KB, with the code and a recovery step', async () => {
    server.use(
      http.get(`${API}/runs/get`, () =>
        HttpResponse.json(
          { error_code: 'INVALID_PARAMETER_VALUE', message: `Invalid value ${MB}` },
          { status: 400 },
        ),
      ),
    );
    const text = failed(await s.call('get_run', { run_id: 'r1' }));
    expect(text.length).toBeLessThan(ERROR_CAP);
    expect(text).toContain('more) (MLflow INVALID_PARAMETER_VALUE, GET /api/2.0/mlflow/runs/get)');
    expect(text).toContain('Fix the argument MLflow names');
  });
});

describe("tools: the SDK's own schema errors are capped", () => {
  it('log_metrics: 10,000 points with a bad value give one isError under 2 KB, not one line per zod issue', async () => {
    const metrics = Array.from({ length: 10_000 }, () => ({ key: 'loss', value: 'high' }));
    const text = failed(await s.call('log_metrics', { run_id: 'r1', metrics }));
    expect(text).toMatch(
      /^MCP error -32602: Input validation error: Invalid arguments for tool log_metrics:/,
    );
    expect(text.length).toBeLessThanOrEqual(ERROR_CAP);
    expect(text).toMatch(/…\(\d+ more\)$/);
    expect(fake.requests).toEqual([]);
  });
});
