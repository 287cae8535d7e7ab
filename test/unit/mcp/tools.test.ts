// Covers the MCP server end to end through a real MCP Client over InMemoryTransport against an msw fake MLflow: every tool's success result, input validation, isError recovery texts, downsampling, read caps, leases, session close, read-only mode, prompts and resources.

import { symlinkSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { downsample } from '../../../src/mcp/tools/get-metric-history.js';
import type { Metric } from '../../../src/mlflow/client.js';
import { openRuns } from '../../../src/tracking/open-runs.js';
import {
  API,
  BASE,
  baseSettings,
  FakeMlflow,
  type FakeRun,
  type LogBatch,
  openSession,
  type Session,
  tagsOf,
  tempDir,
  textOf,
} from './harness.js';

type Json = Record<string, unknown>;

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

let fake: FakeMlflow;
let tmp: ReturnType<typeof tempDir>;
let s: Session;
const sessions: Session[] = [];

async function open(overrides: Partial<ReturnType<typeof baseSettings>> = {}, sessionKey?: string) {
  const session = await openSession({ ...baseSettings(tmp.dir), ...overrides }, sessionKey);
  sessions.push(session);
  return session;
}

beforeEach(async () => {
  fake = new FakeMlflow();
  server.use(...fake.handlers());
  tmp = tempDir('rw-mcp-');
  s = await open();
});

afterEach(async () => {
  vi.useRealTimers();
  for (const session of sessions.splice(0)) await session.close();
  server.resetHandlers();
  tmp.remove();
});

const ajv = new AjvJsonSchemaValidator();

function toolNamed(session: Session, name: string): Tool {
  const tool = session.tools.find((t) => t.name === name);
  if (!tool) throw new Error(`tool ${name} is not listed`);
  return tool;
}

/** A success result: no isError, non-empty text, structuredContent valid against the listed outputSchema. */
function ok<T = Json>(result: CallToolResult, tool: string, session: Session = s): T {
  expect(result.isError, textOf(result)).toBeFalsy();
  expect(textOf(result).trim().length).toBeGreaterThan(0);
  expect(result.structuredContent).toBeDefined();
  const schema = toolNamed(session, tool).outputSchema;
  expect(schema).toBeDefined();
  const verdict = ajv.getValidator(schema!)(result.structuredContent);
  expect(verdict.valid ? 'valid' : verdict.errorMessage).toBe('valid');
  return result.structuredContent as T;
}

/** An isError result; returns its text. */
function failed(result: CallToolResult): string {
  expect(result.isError).toBe(true);
  expect(result.structuredContent).toBeUndefined();
  return textOf(result);
}

async function startRun(args: Json = {}, session: Session = s): Promise<string> {
  const res = await session.call('start_run', { experiment_name: 'weekly-cases/gru', ...args });
  return ok<{ run_id: string }>(res, 'start_run', session).run_id;
}

function seedRun(init: Parameters<FakeMlflow['addRun']>[1] = {}, experiment = 'seeded'): FakeRun {
  const e =
    [...fake.experiments.values()].find((x) => x.name === experiment) ?? fake.addExperiment(experiment);
  return fake.addRun(e.experiment_id, init);
}

const artifactKey = (run: FakeRun, rel: string) =>
  `${run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '')}/${rel}`;

function seedModel(name: string, run: FakeRun, versions: number, aliases: Record<string, string> = {}) {
  fake.models.set(name, { name, aliases: new Map(Object.entries(aliases)), tags: [] });
  for (let i = 1; i <= versions; i++) {
    fake.versions.push({
      name,
      version: String(i),
      source: `${run.info.artifact_uri}/model`,
      run_id: run.info.run_id,
      status: 'READY',
      tags: [{ key: 'stage', value: `v${i}` }],
      creation_timestamp: Date.UTC(2030, 0, i),
    });
  }
}

/** Requests that change something in MLflow. */
const WRITE_OPS = new Set([
  'experiments/create',
  'runs/create',
  'runs/log-batch',
  'runs/update',
  'artifact PUT',
  'registered-models/create',
  'model-versions/create',
  'registered-models/alias POST',
]);
const writes = () => fake.requests.filter((r) => WRITE_OPS.has(r.op)).length;

const logBatchesFor = (runId: string) =>
  fake.bodies<LogBatch>('runs/log-batch').filter((b) => b.run_id === runId);

interface SuccessCase {
  args: (session: Session) => Promise<Json>;
  check: (structured: Json, text: string) => void;
}

/** One successful call per tool, with the fields that matter checked. */
const successCases: Record<string, SuccessCase> = {
  get_or_create_experiment: {
    args: async () => ({ name: 'weekly-cases/gru', tags: { team: 'forecast' } }),
    check: (out, text) => {
      expect(out).toMatchObject({
        experiment_id: '1',
        created: true,
        experiment: {
          experiment_id: '1',
          name: 'weekly-cases/gru',
          tags: { team: 'forecast' },
          url: `${BASE}/#/experiments/1`,
        },
      });
      expect(text).toContain("Created experiment 'weekly-cases/gru' (id 1)");
    },
  },
  search_experiments: {
    args: async () => {
      for (const name of ['a', 'b', 'c']) fake.addExperiment(name);
      return { max_results: 2 };
    },
    check: (out, text) => {
      expect((out.experiments as Json[]).map((e) => e.name)).toEqual(['a', 'b']);
      expect(out.next_page_token).toBe('2');
      expect(text).toContain('pass next_page_token');
    },
  },
  start_run: {
    args: async () => ({ experiment_name: 'weekly-cases/gru', run_name: 'gru-1', params: { lr: 0.001 } }),
    check: (out, text) => {
      const runId = out.run_id as string;
      expect(out).toMatchObject({
        experiment_id: '1',
        experiment_created: true,
        run_name: 'gru-1',
        artifact_uri: `mlflow-artifacts:/1/${runId}/artifacts`,
        lease_seconds: 900,
        url: `${BASE}/#/experiments/1/runs/${runId}`,
      });
      const expires = Date.parse(out.lease_expires_at as string);
      expect(Math.abs(expires - (Date.now() + 900_000))).toBeLessThan(60_000);
      expect(fake.runs.get(runId)?.params.get('lr')).toBe('0.001');
      expect(text).toContain(`Started run ${runId}`);
      expect(text).toContain('end_run');
    },
  },
  log_params: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      params: { lr: 0.01, optimizer: 'adam' },
    }),
    check: (out) => {
      expect(out.logged).toBe(2);
      const run = fake.runs.get(out.run_id as string)!;
      expect(Object.fromEntries(run.params)).toEqual({ lr: '0.01', optimizer: 'adam' });
    },
  },
  log_metrics: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      metrics: [
        { key: 'loss', value: 0.5, step: 1 },
        { key: 'acc', value: 0.9, step: 1 },
        { key: 'loss', value: 0.4, step: 2 },
      ],
    }),
    check: (out) => {
      expect(out).toMatchObject({ logged: 3, keys: ['loss', 'acc'] });
      expect(fake.runs.get(out.run_id as string)!.history.map((m) => [m.key, m.value, m.step])).toEqual([
        ['loss', 0.5, 1],
        ['acc', 0.9, 1],
        ['loss', 0.4, 2],
      ]);
    },
  },
  set_tags: {
    args: async (session) => ({ run_id: await startRun({}, session), tags: { dataset: 'cases-v3' } }),
    check: (out) => {
      expect(out.set).toBe(1);
      expect(fake.runs.get(out.run_id as string)!.tags.get('dataset')).toBe('cases-v3');
    },
  },
  log_artifact: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      content: '# summary\n',
      artifact_path: 'notes/summary.md',
    }),
    check: (out, text) => {
      expect(out).toMatchObject({ files: 1, bytes: 10, artifact_path: 'notes/summary.md' });
      const run = fake.runs.get(out.run_id as string)!;
      expect(fake.artifacts.get(artifactKey(run, 'notes/summary.md'))?.toString()).toBe('# summary\n');
      expect(text).toContain('Stored 10 bytes at notes/summary.md');
    },
  },
  end_run: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      status: 'FAILED',
      note: 'diverged at epoch 3',
    }),
    check: (out, text) => {
      expect(out).toMatchObject({ status: 'FAILED', already_closed: false, closed_by: 'owner' });
      expect(out.close_reason).toBe('diverged at epoch 3');
      const run = fake.runs.get(out.run_id as string)!;
      expect(run.info.status).toBe('FAILED');
      expect(run.tags.get('runwarden.error')).toContain('diverged at epoch 3');
      expect(text).toContain('ended FAILED');
    },
  },
  get_run: {
    args: async () => {
      const run = seedRun({ run_name: 'gru-7', status: 'FINISHED', end_time: 1_900_000_000_000 });
      run.params.set('lr', '0.01');
      run.history.push(
        { key: 'rmse', value: 0.8, step: 0, timestamp: 1 },
        { key: 'rmse', value: 0.3, step: 5, timestamp: 2 },
      );
      return { run_id: run.info.run_id };
    },
    check: (out, text) => {
      expect(out).toMatchObject({
        run_name: 'gru-7',
        experiment_id: '1',
        status: 'FINISHED',
        end_time: 1_900_000_000_000,
        params: { lr: '0.01' },
        metrics: { rmse: 0.3 },
        url: `${BASE}/#/experiments/1/runs/${out.run_id}`,
      });
      expect(text).toContain('rmse=0.3');
    },
  },
  search_runs: {
    args: async () => {
      seedRun({ run_name: 'a', tags: { team: 'x' } }, 'exp-a');
      seedRun({ run_name: 'b' }, 'exp-a');
      seedRun({ run_name: 'other' }, 'exp-b');
      return {
        experiment_names: ['exp-a'],
        filter: "attributes.status = 'RUNNING'",
        order_by: ['start_time DESC'],
      };
    },
    check: (out, text) => {
      const runs = out.runs as Json[];
      expect(runs.map((r) => r.run_name)).toEqual(['a', 'b']);
      // include_tags defaults to false: only the run name tag is kept
      expect(runs[0]!.tags).toEqual({ 'mlflow.runName': 'a' });
      expect(fake.bodies<Json>('runs/search')[0]).toMatchObject({
        experiment_ids: ['1'],
        filter: "attributes.status = 'RUNNING'",
        max_results: 25,
      });
      expect(text).toContain('2 run(s)');
    },
  },
  get_metric_history: {
    args: async () => {
      const run = seedRun();
      run.history.push(
        { key: 'loss', value: 0.5, step: 2, timestamp: 3 },
        { key: 'loss', value: 0.9, step: 0, timestamp: 1 },
        { key: 'loss', value: 0.7, step: 1, timestamp: 2 },
      );
      return { run_id: run.info.run_id, key: 'loss' };
    },
    check: (out) => {
      expect(out).toMatchObject({
        key: 'loss',
        total_points: 3,
        returned_points: 3,
        downsampled: false,
        min: 0.5,
        max: 0.9,
        last: 0.5,
      });
      expect((out.points as { step: number }[]).map((p) => p.step)).toEqual([0, 1, 2]);
    },
  },
  compare_runs: {
    args: async () => {
      const a = seedRun({ run_name: 'a' });
      const b = seedRun({ run_name: 'b' });
      a.params.set('lr', '0.1').set('opt', 'adam');
      b.params.set('lr', '0.01').set('opt', 'adam');
      a.history.push({ key: 'rmse', value: 0.5, step: 0, timestamp: 1 });
      b.history.push({ key: 'rmse', value: 0.4, step: 0, timestamp: 1 });
      return { run_ids: [a.info.run_id, b.info.run_id] };
    },
    check: (out, text) => {
      const [a, b] = (out.runs as { run_id: string }[]).map((r) => r.run_id);
      expect(out.differing_params).toEqual(['lr']);
      expect(out.params).toEqual({ lr: { [a!]: '0.1', [b!]: '0.01' }, opt: { [a!]: 'adam', [b!]: 'adam' } });
      expect(out.metrics).toEqual({ rmse: { [a!]: 0.5, [b!]: 0.4 } });
      expect(text).toContain('rmse: a=0.5, b=0.4');
    },
  },
  list_artifacts: {
    args: async () => {
      const run = seedRun();
      fake.artifacts.set(artifactKey(run, 'model/MLmodel'), Buffer.from('flavors: {}'));
      fake.artifacts.set(artifactKey(run, 'model/model.pkl'), Buffer.alloc(300));
      fake.artifacts.set(artifactKey(run, 'notes.md'), Buffer.from('hi'));
      return { run_id: run.info.run_id, recursive: true };
    },
    check: (out) => {
      expect(out.truncated).toBe(false);
      expect(out.files).toEqual([
        { path: 'model', is_dir: true },
        { path: 'model/MLmodel', is_dir: false, file_size: 11 },
        { path: 'model/model.pkl', is_dir: false, file_size: 300 },
        { path: 'notes.md', is_dir: false, file_size: 2 },
      ]);
    },
  },
  read_artifact: {
    args: async () => {
      const run = seedRun();
      fake.artifacts.set(artifactKey(run, 'reports/r.json'), Buffer.from('{"rmse":0.3}'));
      return { run_id: run.info.run_id, path: 'reports/r.json' };
    },
    check: (out, text) => {
      expect(out).toMatchObject({
        path: 'reports/r.json',
        content: '{"rmse":0.3}',
        bytes_returned: 12,
        truncated: false,
        cap_bytes: 64,
      });
      expect(text).toContain('{"rmse":0.3}');
    },
  },
  register_model: {
    args: async () => {
      const run = seedRun({ status: 'FINISHED' });
      return { run_id: run.info.run_id, artifact_path: 'model', name: 'cases-gru', alias: 'champion' };
    },
    check: (out, text) => {
      const run = [...fake.runs.values()][0]!;
      expect(out).toMatchObject({
        name: 'cases-gru',
        version: '1',
        source: `${run.info.artifact_uri}/model`,
        alias: 'champion',
        created: true,
        status: 'READY',
        url: `${BASE}/#/models/cases-gru/versions/1`,
      });
      expect(fake.models.get('cases-gru')?.aliases.get('champion')).toBe('1');
      expect(text).toContain('Registered cases-gru version 1 (alias champion)');
    },
  },
  set_model_alias: {
    args: async () => {
      seedModel('cases-gru', seedRun(), 2, { champion: '1' });
      return { name: 'cases-gru', alias: 'champion', version: '2' };
    },
    check: (out, text) => {
      expect(out).toEqual({ name: 'cases-gru', alias: 'champion', version: '2', previous_version: '1' });
      expect(fake.models.get('cases-gru')?.aliases.get('champion')).toBe('2');
      expect(text).toBe('cases-gru@champion → version 2 (was 1).');
    },
  },
  get_model_version: {
    args: async () => {
      seedModel('cases-gru', seedRun(), 2, { champion: '2' });
      return { name: 'cases-gru', alias: 'champion' };
    },
    check: (out) => {
      expect(out).toMatchObject({
        name: 'cases-gru',
        version: '2',
        status: 'READY',
        run_id: 'run0001',
        aliases: ['champion'],
        tags: { stage: 'v2' },
        created_at: '2030-01-02T00:00:00.000Z',
        url: `${BASE}/#/models/cases-gru/versions/2`,
      });
    },
  },
};

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

describe('tools: failures carry a recovery step', () => {
  it('get_run: an unknown run id is RESOURCE_DOES_NOT_EXIST and the text points to search_runs', async () => {
    const text = failed(await s.call('get_run', { run_id: 'nope' }));
    expect(text).toBe(
      "Run 'nope' not found (MLflow RESOURCE_DOES_NOT_EXIST, GET /api/2.0/mlflow/runs/get). " +
        'Check the id or name: search_experiments and search_runs list what exists.',
    );
  });

  it('search_runs: a filter MLflow rejects (400 INVALID_PARAMETER_VALUE) returns text explaining the filter syntax', async () => {
    fake.addExperiment('e');
    server.use(
      http.post(`${API}/runs/search`, () =>
        HttpResponse.json(
          { error_code: 'INVALID_PARAMETER_VALUE', message: "Invalid clause(s) in 'metrics.rmse << 1'" },
          { status: 400 },
        ),
      ),
    );
    const text = failed(await s.call('search_runs', { experiment_ids: ['1'], filter: 'metrics.rmse << 1' }));
    expect(text).toContain("Invalid clause(s) in 'metrics.rmse << 1' (MLflow INVALID_PARAMETER_VALUE");
    expect(text).toContain('Check the filter: clauses joined by AND, strings in single quotes');
  });

  it('search_runs: neither experiment_ids nor experiment_names is refused, naming both', async () => {
    const text = failed(await s.call('search_runs', {}));
    expect(text).toContain('experiment_ids: give experiment_ids or experiment_names');
  });

  it('search_runs: an unknown experiment name is refused with its name', async () => {
    const text = failed(await s.call('search_runs', { experiment_names: ['ghost'] }));
    expect(text).toContain("experiment_names: no experiment named 'ghost'");
  });

  it('log_params: a changed value for a param this session logged is PARAM_CONFLICT naming both values, and nothing is written', async () => {
    const runId = await startRun({ params: { lr: 0.1 } });
    const before = writes();
    const text = failed(await s.call('log_params', { run_id: runId, params: { lr: 0.2 } }));
    expect(text).toContain(`param 'lr' on run ${runId} already has value '0.1'; refusing new value '0.2'`);
    expect(text).toContain('log the new value under another key, or start a new run');
    expect(writes()).toBe(before);
  });

  it('log_params: a param another writer set on the server is PARAM_CONFLICT naming the server value', async () => {
    const runId = await startRun();
    fake.runs.get(runId)!.params.set('lr', '0.5');
    const text = failed(await s.call('log_params', { run_id: runId, params: { lr: 0.2 } }));
    expect(text).toContain(`param 'lr' on run ${runId} already has value '0.5'; refusing new value '0.2'`);
  });

  it('log_params: the same value again succeeds without writing anything', async () => {
    const runId = await startRun({ params: { lr: 0.1 } });
    const before = writes();
    ok(await s.call('log_params', { run_id: runId, params: { lr: '0.1' } }), 'log_params');
    expect(writes()).toBe(before);
  });

  it('end_run: ending a run that is already FINISHED succeeds with already_closed, who closed it, and a hint to start_run with parent_run_id', async () => {
    const run = seedRun({
      status: 'FINISHED',
      end_time: Date.UTC(2030, 0, 1),
      tags: { 'runwarden.closed_by': 'reaper', 'runwarden.close_reason': 'lease expired' },
    });
    const res = await s.call('end_run', { run_id: run.info.run_id });
    const out = ok(res, 'end_run');
    expect(out).toEqual({
      run_id: run.info.run_id,
      status: 'FINISHED',
      already_closed: true,
      closed_by: 'reaper',
      close_reason: 'lease expired',
      end_time: Date.UTC(2030, 0, 1),
      url: `${BASE}/#/experiments/1/runs/${run.info.run_id}`,
    });
    expect(textOf(res)).toBe(
      `Run ${run.info.run_id} was already FINISHED, closed by reaper at 2030-01-01T00:00:00.000Z (lease expired). ` +
        `Nothing changed. To continue the work, start_run with parent_run_id="${run.info.run_id}".`,
    );
    expect(fake.bodies('runs/update')).toEqual([]);
  });

  it('end_run: ending the same run twice reports already_closed the second time', async () => {
    const runId = await startRun();
    expect(ok(await s.call('end_run', { run_id: runId }), 'end_run').already_closed).toBe(false);
    const second = ok(await s.call('end_run', { run_id: runId }), 'end_run');
    expect(second).toMatchObject({ already_closed: true, status: 'FINISHED', closed_by: 'owner' });
    expect(fake.bodies('runs/update')).toHaveLength(1);
  });

  it('end_run: an unknown run id is an isError result pointing to search_runs', async () => {
    const text = failed(await s.call('end_run', { run_id: 'ghost' }));
    expect(text).toContain('RESOURCE_DOES_NOT_EXIST');
    expect(text).toContain('search_runs');
  });

  it('log_metrics: writing to a run that was closed elsewhere says who closed it and to start_run with parent_run_id', async () => {
    const run = seedRun({
      status: 'KILLED',
      tags: { 'runwarden.closed_by': 'reaper', 'runwarden.close_reason': 'lease expired' },
    });
    const text = failed(
      await s.call('log_metrics', { run_id: run.info.run_id, metrics: [{ key: 'loss', value: 1 }] }),
    );
    expect(text).toContain(
      `run ${run.info.run_id} is already closed (KILLED, closed by reaper: lease expired)`,
    );
    expect(text).toContain('start_run (parent_run_id links it to the old one)');
  });

  it('log_metrics: a run this session started that the reaper closed meanwhile is refused with who closed it, and close() leaves it alone', async () => {
    const runId = await startRun();
    const run = fake.runs.get(runId)!;
    run.info.status = 'KILLED';
    run.tags.set('runwarden.closed_by', 'reaper').set('runwarden.close_reason', 'lease expired');
    const before = writes();
    const text = failed(await s.call('log_metrics', { run_id: runId, metrics: [{ key: 'loss', value: 1 }] }));
    expect(text).toContain(`run ${runId} is already closed (KILLED, closed by reaper: lease expired)`);
    expect(text).toContain('start_run (parent_run_id links it to the old one)');
    await s.close();
    expect(writes()).toBe(before);
  });

  it('log_artifact: a local_path outside the allowed roots is refused naming the allowed roots, and nothing is uploaded', async () => {
    const runId = await startRun();
    const outside = tempDir('rw-outside-');
    try {
      const file = path.join(outside.dir, 'secret.txt');
      writeFileSync(file, 'secret');
      const text = failed(await s.call('log_artifact', { run_id: runId, local_path: file }));
      expect(text).toContain(`local_path: ${file} is outside the allowed roots (${tmp.dir})`);
      expect(text).toContain('RUNWARDEN_ALLOWED_ROOTS');
      expect(fake.bodies('artifact PUT')).toEqual([]);
    } finally {
      outside.remove();
    }
  });

  it('log_artifact: a symlink inside an allowed root that points outside it is refused', async () => {
    const runId = await startRun();
    const outside = tempDir('rw-outside-');
    try {
      writeFileSync(path.join(outside.dir, 'secret.txt'), 'secret');
      const link = path.join(tmp.dir, 'innocent.txt');
      symlinkSync(path.join(outside.dir, 'secret.txt'), link);
      const text = failed(await s.call('log_artifact', { run_id: runId, local_path: link }));
      expect(text).toContain('is outside the allowed roots');
      expect(fake.bodies('artifact PUT')).toEqual([]);
    } finally {
      outside.remove();
    }
  });

  it('log_artifact: inline content over the cap is refused naming the cap and the local_path way out', async () => {
    const runId = await startRun();
    const text = failed(
      await s.call('log_artifact', { run_id: runId, content: 'x'.repeat(2000), artifact_path: 'big.txt' }),
    );
    expect(text).toContain('content: 2000 bytes exceeds the inline cap of 1024 bytes');
    expect(text).toContain('local_path');
    expect(fake.bodies('artifact PUT')).toEqual([]);
  });

  it('log_artifact: inline content without artifact_path, or two sources at once, is refused', async () => {
    const runId = await startRun();
    expect(failed(await s.call('log_artifact', { run_id: runId, content: 'hi' }))).toContain(
      'artifact_path: inline content needs a file path',
    );
    expect(
      failed(
        await s.call('log_artifact', {
          run_id: runId,
          content: 'hi',
          content_base64: 'aGk=',
          artifact_path: 'a',
        }),
      ),
    ).toContain('give exactly one of local_path, content or content_base64');
  });

  it('log_artifact: a file and a folder under an allowed root are uploaded under artifact_path', async () => {
    const runId = await startRun();
    const run = fake.runs.get(runId)!;
    await mkdir(path.join(tmp.dir, 'model', 'sub'), { recursive: true });
    writeFileSync(path.join(tmp.dir, 'model', 'MLmodel'), 'flavors: {}\n');
    writeFileSync(path.join(tmp.dir, 'model', 'sub', 'weights.bin'), Buffer.alloc(100, 1));
    writeFileSync(path.join(tmp.dir, 'loss.csv'), 'step,loss\n0,1\n');

    const file = ok(
      await s.call('log_artifact', {
        run_id: runId,
        local_path: path.join(tmp.dir, 'loss.csv'),
        artifact_path: 'plots',
      }),
      'log_artifact',
    );
    expect(file).toEqual({ run_id: runId, files: 1, bytes: 14, artifact_path: 'plots' });
    const dir = ok(
      await s.call('log_artifact', {
        run_id: runId,
        local_path: path.join(tmp.dir, 'model'),
        artifact_path: 'model',
      }),
      'log_artifact',
    );
    expect(dir).toEqual({ run_id: runId, files: 2, bytes: 112, artifact_path: 'model' });
    expect([...fake.artifacts.keys()].sort()).toEqual(
      ['model/MLmodel', 'model/sub/weights.bin', 'plots/loss.csv'].map((p) => artifactKey(run, p)),
    );
  });

  it('log_artifact: content_base64 stores the decoded bytes', async () => {
    const runId = await startRun();
    const out = ok(
      await s.call('log_artifact', {
        run_id: runId,
        content_base64: Buffer.from([0, 1, 2, 255]).toString('base64'),
        artifact_path: 'b.bin',
      }),
      'log_artifact',
    );
    expect(out.bytes).toBe(4);
    expect([...fake.artifacts.get(artifactKey(fake.runs.get(runId)!, 'b.bin'))!]).toEqual([0, 1, 2, 255]);
  });

  it('get_run: when MLflow is unreachable the text says so and how to recover', async () => {
    server.use(http.all(`${BASE}/*`, () => HttpResponse.error()));
    const text = failed(await s.call('get_run', { run_id: 'r1' }));
    expect(text).toContain('GET /api/2.0/mlflow/runs/get: MLflow tracking server unreachable');
    expect(text).toContain('Check MLFLOW_TRACKING_URI and that the server is running.');
    expect(text).toContain('Retry later, or ask the user to start MLflow');
  });

  it('start_run: when MLflow is unreachable the text says so and how to recover', async () => {
    server.use(http.all(`${BASE}/*`, () => HttpResponse.error()));
    const text = failed(await s.call('start_run', { experiment_name: 'e' }));
    expect(text).toContain('MLflow tracking server unreachable');
    expect(text).toContain('Retry later');
  });

  it('start_run: a tag under runwarden. is refused before anything is created', async () => {
    const before = writes();
    const text = failed(
      await s.call('start_run', {
        experiment_name: 'reserved-tags',
        tags: { 'runwarden.cancel_requested': 'true' },
      }),
    );
    expect(text).toContain(
      "tags.runwarden.cancel_requested: keys starting with 'runwarden.' are managed by runwarden",
    );
    expect(writes()).toBe(before);
    expect([...fake.experiments.values()].some((e) => e.name === 'reserved-tags')).toBe(false);
  });

  it('session close: a run the reaper already closed KILLED is forgotten, not closed again over its status and reason', async () => {
    const other = await openSession(baseSettings(tmp.dir), 'closing-session');
    const runId = await startRun({}, other);
    const run = fake.runs.get(runId)!;
    run.info.status = 'FAILED';
    run.info.end_time = 12_345;
    run.tags.set('runwarden.closed_by', 'reaper');
    run.tags.set('runwarden.close_reason', 'lease expired');
    const before = writes();
    await other.close('test over');
    expect(writes()).toBe(before);
    expect(run.info.status).toBe('FAILED');
    expect(run.info.end_time).toBe(12_345);
    expect(run.tags.get('runwarden.close_reason')).toBe('lease expired');
  });

  it('session close: a run still RUNNING is ended KILLED with the session reason', async () => {
    const other = await openSession(baseSettings(tmp.dir), 'closing-session-2');
    const runId = await startRun({}, other);
    await other.close('client went away');
    expect(fake.runs.get(runId)!.info.status).toBe('KILLED');
    expect(fake.runs.get(runId)!.tags.get('runwarden.close_reason')).toBe('client went away');
  });

  it('set_tags: a key under runwarden. is refused and nothing is written', async () => {
    const runId = await startRun();
    const before = writes();
    const text = failed(
      await s.call('set_tags', { run_id: runId, tags: { ok: 'x', 'runwarden.owner': 'me' } }),
    );
    expect(text).toContain("tags.runwarden.owner: keys starting with 'runwarden.' are managed by runwarden");
    expect(text).toContain('Fix that field and call again.');
    expect(writes()).toBe(before);
    expect(fake.runs.get(runId)!.tags.get('runwarden.owner')).toBe('mcp:test');
  });

  it.each([
    ['both', { experiment_id: '1', experiment_name: 'e' }],
    ['neither', {}],
  ])('start_run: %s of experiment_id and experiment_name is refused before any request', async (_, args) => {
    const text = failed(await s.call('start_run', args));
    expect(text).toContain('experiment_id: give exactly one of experiment_id or experiment_name');
    expect(fake.requests).toEqual([]);
  });

  it('start_run: an unknown experiment_id is RESOURCE_DOES_NOT_EXIST with a pointer to search_experiments', async () => {
    const text = failed(await s.call('start_run', { experiment_id: '42' }));
    expect(text).toContain('No Experiment with id=42 exists (MLflow RESOURCE_DOES_NOT_EXIST');
    expect(text).toContain('search_experiments');
  });

  it.each([
    ['both', { name: 'm', version: '1', alias: 'champion' }],
    ['neither', { name: 'm' }],
  ])('get_model_version: %s of version and alias is refused', async (_, args) => {
    const text = failed(await s.call('get_model_version', args));
    expect(text).toContain('version: give exactly one of version or alias');
    expect(fake.requests).toEqual([]);
  });

  it('get_model_version: an unknown alias gives the tool-specific hint', async () => {
    seedModel('m', seedRun(), 1);
    const text = failed(await s.call('get_model_version', { name: 'm', alias: 'ghost' }));
    expect(text).toContain('Registered model alias ghost not found.');
    expect(text).toContain('That alias or version does not exist on this model');
  });

  it('get_model_version: by version number returns that version', async () => {
    seedModel('m', seedRun(), 3);
    const out = ok(await s.call('get_model_version', { name: 'm', version: '3' }), 'get_model_version');
    expect(out).toMatchObject({ name: 'm', version: '3', aliases: [], tags: { stage: 'v3' } });
  });

  it.each([
    ['latest', 'is reserved by MLflow'],
    ['LATEST', 'is reserved by MLflow'],
    ['v3', 'is reserved by MLflow'],
    ['has space', "is not a valid alias: use letters, digits, '_' and '-'"],
  ])("set_model_alias: alias '%s' is refused before any request, in register_model's words", async (alias, why) => {
    const text = failed(await s.call('set_model_alias', { name: 'm', alias, version: '1' }));
    expect(text).toContain(`alias: '${alias}' ${why}`);
    expect(fake.requests).toEqual([]);
  });

  it('set_model_alias: a new alias reports no previous version', async () => {
    seedModel('m', seedRun(), 1);
    const out = ok(
      await s.call('set_model_alias', { name: 'm', alias: 'champion', version: '1' }),
      'set_model_alias',
    );
    expect(out).toEqual({ name: 'm', alias: 'champion', version: '1' });
  });

  it('register_model: the reserved alias latest is refused', async () => {
    const run = seedRun();
    const text = failed(
      await s.call('register_model', {
        run_id: run.info.run_id,
        artifact_path: 'model',
        name: 'm',
        alias: 'latest',
      }),
    );
    expect(text).toContain("alias: 'latest' is reserved by MLflow");
  });

  it('register_model: the same idempotency_key returns the first version with created false', async () => {
    const run = seedRun();
    const args = { run_id: run.info.run_id, artifact_path: 'model', name: 'm', idempotency_key: 'job-7' };
    expect(ok(await s.call('register_model', args), 'register_model')).toMatchObject({
      version: '1',
      created: true,
    });
    expect(ok(await s.call('register_model', args), 'register_model')).toMatchObject({
      version: '1',
      created: false,
    });
    expect(fake.versions).toHaveLength(1);
  });

  it('get_or_create_experiment: a second call finds the same experiment with created false', async () => {
    const first = ok(await s.call('get_or_create_experiment', { name: 'e' }), 'get_or_create_experiment');
    const second = ok(await s.call('get_or_create_experiment', { name: 'e' }), 'get_or_create_experiment');
    expect(first).toMatchObject({ experiment_id: '1', created: true });
    expect(second).toMatchObject({ experiment_id: '1', created: false });
    expect(fake.experiments.size).toBe(1);
  });

  it('get_or_create_experiment: a deleted experiment holding the name is refused with the way out', async () => {
    fake.addExperiment('old').lifecycle_stage = 'deleted';
    const text = failed(await s.call('get_or_create_experiment', { name: 'old' }));
    expect(text).toContain("experiment 'old' (id 1) is deleted and still holds its name");
    expect(text).toContain('mlflow experiments restore --experiment-id 1');
  });
});

describe('get_metric_history: downsampling', () => {
  const MIN_AT = 777;
  const MAX_AT = 1333;
  const valueAt = (i: number) => (i === MIN_AT ? -100 : i === MAX_AT ? 100 : Math.sin(i / 50));

  it('get_metric_history: 2000 points with max_points 100 return at most 100, with the true total and first, last, min and max kept', async () => {
    const run = seedRun();
    // Out of order on purpose: the tool sorts by step.
    for (let i = 1999; i >= 0; i--)
      run.history.push({ key: 'loss', value: valueAt(i), step: i, timestamp: 1_000 + i });
    const res = await s.call('get_metric_history', { run_id: run.info.run_id, key: 'loss', max_points: 100 });
    const out = ok<{
      total_points: number;
      returned_points: number;
      downsampled: boolean;
      min: number;
      max: number;
      last: number;
      points: { step: number; value: number; timestamp: number }[];
    }>(res, 'get_metric_history');
    expect(out.total_points).toBe(2000);
    expect(out.returned_points).toBeLessThanOrEqual(100);
    expect(out.returned_points).toBeGreaterThanOrEqual(90);
    expect(out.points).toHaveLength(out.returned_points);
    expect(out.downsampled).toBe(true);
    expect(out).toMatchObject({ min: -100, max: 100, last: valueAt(1999) });
    const steps = out.points.map((p) => p.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
    expect(steps).toEqual(expect.arrayContaining([0, 1999, MIN_AT, MAX_AT]));
    expect(out.points.find((p) => p.step === MIN_AT)).toEqual({
      step: MIN_AT,
      value: -100,
      timestamp: 1_000 + MIN_AT,
    });
    expect(textOf(res)).toContain('2000 points (showing');
  });

  it('get_metric_history: 200,000 points give the true min and max (no call-stack overflow from spreading them)', async () => {
    const run = seedRun();
    for (let i = 0; i < 200_000; i++)
      run.history.push({ key: 'loss', value: i === 150_000 ? -5 : i === 3 ? 9 : 1, step: i, timestamp: i });
    const out = ok<{ total_points: number; min: number; max: number }>(
      await s.call('get_metric_history', { run_id: run.info.run_id, key: 'loss', max_points: 100 }),
      'get_metric_history',
    );
    expect(out).toMatchObject({ total_points: 200_000, min: -5, max: 9 });
  }, 60_000);

  it('get_run and get_metric_history: NaN and infinite metric values come back as the strings "NaN" and "Infinity", not a schema error', async () => {
    const run = seedRun();
    run.history.push({ key: 'odd', value: 'NaN', step: 0, timestamp: 1 });
    run.history.push({ key: 'odd', value: 1.7976931348623157e308, step: 1, timestamp: 2 });
    run.history.push({ key: 'odd', value: 0.5, step: 2, timestamp: 3 });
    const hist = ok<{ points: { value: unknown }[]; min: number; max: number; last: unknown }>(
      await s.call('get_metric_history', { run_id: run.info.run_id, key: 'odd' }),
      'get_metric_history',
    );
    expect(hist.points.map((p) => p.value)).toEqual(['NaN', 'Infinity', 0.5]);
    expect(hist).toMatchObject({ min: 0.5, max: 0.5, last: 0.5 });
    const got = ok<{ metrics: Record<string, unknown> }>(
      await s.call('get_run', { run_id: run.info.run_id }),
      'get_run',
    );
    expect(got.metrics).toEqual({ odd: 0.5 });
  });

  it('downsample: max_points 2 or 3 never returns more points than asked', () => {
    const points = Array.from({ length: 50 }, (_, i) => ({
      key: 'm',
      value: (i * 37) % 11,
      step: i,
      timestamp: i,
    }));
    expect(downsample(points, 2).map((p) => p.step)).toEqual([0, 49]);
    expect(downsample(points, 3)).toHaveLength(3);
    expect(downsample(points, 4)).toHaveLength(4);
  });

  it('get_metric_history: an unknown run is RESOURCE_DOES_NOT_EXIST, not an empty history', async () => {
    const text = failed(await s.call('get_metric_history', { run_id: 'ghost', key: 'loss' }));
    expect(text).toContain('RESOURCE_DOES_NOT_EXIST');
  });

  it('get_metric_history: a run without the metric returns zero points', async () => {
    const run = seedRun();
    const out = ok(
      await s.call('get_metric_history', { run_id: run.info.run_id, key: 'loss' }),
      'get_metric_history',
    );
    expect(out).toMatchObject({ total_points: 0, returned_points: 0, downsampled: false, points: [] });
  });

  const series = (n: number, at: (i: number) => number = valueAt): Metric[] =>
    Array.from({ length: n }, (_, i) => ({ key: 'm', value: at(i), step: i, timestamp: i }));

  it('downsample: a series no longer than max comes back unchanged', () => {
    const points = series(50);
    expect(downsample(points, 50)).toBe(points);
    expect(downsample(points, 500)).toBe(points);
  });

  it('downsample: 2000 points to 100 keeps first, last, min and max, in step order, without duplicates', () => {
    const out = downsample(series(2000), 100);
    const steps = out.map((p) => p.step!);
    expect(out.length).toBeLessThanOrEqual(100);
    expect(out.length).toBeGreaterThanOrEqual(90);
    expect(steps[0]).toBe(0);
    expect(steps.at(-1)).toBe(1999);
    expect(steps).toEqual(expect.arrayContaining([MIN_AT, MAX_AT]));
    expect(steps).toEqual([...new Set(steps)].sort((a, b) => a - b));
  });

  it('downsample: the kept points are spread over the whole series', () => {
    const steps = downsample(
      series(10_000, (i) => i),
      200,
    ).map((p) => p.step!);
    const gaps = steps.slice(1).map((st, i) => st - steps[i]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * (10_000 / 200));
  });

  it('downsample: with max 4, the extremes at interior steps are the 4 points kept', () => {
    const out = downsample(series(2000), 4);
    expect(out.map((p) => p.step)).toEqual([0, MIN_AT, MAX_AT, 1999]);
  });

  it('downsample: monotonic series keep their endpoints as min and max', () => {
    const out = downsample(
      series(1000, (i) => -i),
      10,
    );
    expect(out.length).toBeLessThanOrEqual(10);
    expect(out[0]!.step).toBe(0);
    expect(out.at(-1)!.step).toBe(999);
  });
});

describe('read_artifact: the byte cap', () => {
  it('read_artifact: a 200-byte artifact with readArtifactMaxBytes 64 returns 64 bytes, truncated true and cap_bytes 64', async () => {
    const run = seedRun();
    const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => 'abcdefghij'[i % 10]).join(''));
    fake.artifacts.set(artifactKey(run, 'logs/train.log'), bytes);
    const res = await s.call('read_artifact', { run_id: run.info.run_id, path: 'logs/train.log' });
    const out = ok(res, 'read_artifact');
    expect(out).toEqual({
      run_id: run.info.run_id,
      path: 'logs/train.log',
      content: bytes.subarray(0, 64).toString('utf8'),
      bytes_returned: 64,
      truncated: true,
      cap_bytes: 64,
    });
    expect(textOf(res)).toContain('64 bytes, truncated at the 64-byte cap');
  });

  it('read_artifact: max_bytes above the server cap is held to the cap; below it, it is the cap', async () => {
    const run = seedRun();
    fake.artifacts.set(artifactKey(run, 'a.txt'), Buffer.alloc(200, 'a'));
    const big = ok(
      await s.call('read_artifact', { run_id: run.info.run_id, path: 'a.txt', max_bytes: 10_000 }),
      'read_artifact',
    );
    expect(big).toMatchObject({ bytes_returned: 64, cap_bytes: 64, truncated: true });
    const small = ok(
      await s.call('read_artifact', { run_id: run.info.run_id, path: 'a.txt', max_bytes: 10 }),
      'read_artifact',
    );
    expect(small).toMatchObject({
      bytes_returned: 10,
      cap_bytes: 10,
      truncated: true,
      content: 'a'.repeat(10),
    });
  });

  it('read_artifact: encoding base64 returns the bytes as base64 and keeps them out of the text', async () => {
    const run = seedRun();
    fake.artifacts.set(artifactKey(run, 'w.bin'), Buffer.from([0, 159, 255]));
    const res = await s.call('read_artifact', { run_id: run.info.run_id, path: 'w.bin', encoding: 'base64' });
    expect(ok(res, 'read_artifact')).toMatchObject({ content: 'AJ//', bytes_returned: 3, truncated: false });
    expect(textOf(res)).toContain('[base64 in structuredContent]');
  });

  it('read_artifact: a path escaping the run root is refused', async () => {
    const run = seedRun();
    const text = failed(await s.call('read_artifact', { run_id: run.info.run_id, path: '../other/secret' }));
    expect(text).toContain("contains a '..' segment");
  });
});

describe('leases and run tags', () => {
  it('log_metrics: 2,500 points are all sent, in log-batch requests of at most 1000 metrics', async () => {
    const runId = await startRun();
    const metrics = Array.from({ length: 2500 }, (_, i) => ({
      key: i % 2 ? 'acc' : 'loss',
      value: i / 100,
      step: i,
    }));
    const out = ok(await s.call('log_metrics', { run_id: runId, metrics }), 'log_metrics');
    expect(out).toEqual({ run_id: runId, logged: 2500, keys: ['loss', 'acc'] });
    const batches = logBatchesFor(runId).filter((b) => b.metrics?.length);
    expect(batches.reduce((n, b) => n + b.metrics!.length, 0)).toBe(2500);
    for (const b of batches) expect(b.metrics!.length).toBeLessThanOrEqual(1000);
    expect(fake.runs.get(runId)!.history.map((m) => m.step)).toEqual(
      Array.from({ length: 2500 }, (_, i) => i),
    );
  });

  it('log_metrics: the lease tag runwarden.lease_expires_at rides along with the points, renewed from the call time', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(t0);
    const runId = await startRun();
    vi.setSystemTime(t0 + 5_000);
    ok(
      await s.call('log_metrics', { run_id: runId, metrics: [{ key: 'loss', value: 1, step: 0 }] }),
      'log_metrics',
    );
    const withPoints = logBatchesFor(runId).filter((b) => b.metrics?.length);
    expect(withPoints).toHaveLength(1);
    expect(withPoints[0]!.metrics).toEqual([{ key: 'loss', value: 1, step: 0, timestamp: t0 + 5_000 }]);
    expect(tagsOf(withPoints[0]!)).toEqual({
      'runwarden.lease_expires_at': String(t0 + 5_000 + 900_000),
      'runwarden.heartbeat_at': String(t0 + 5_000),
    });
    expect(fake.runs.get(runId)!.tags.get('runwarden.lease_expires_at')).toBe(String(t0 + 905_000));
  });

  it('start_run: tags the run with owner mcp:test, lease expiry KILLED, the expiry note, the MCP session and the lease from lease_seconds', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(t0);
    const session = await open({}, 'session-abc');
    const res = await session.call('start_run', {
      experiment_name: 'e',
      run_name: 'r1',
      description: 'trying GRU',
      tags: { dataset: 'v3' },
      lease_seconds: 120,
    });
    const out = ok(res, 'start_run', session);
    expect(out).toMatchObject({ lease_seconds: 120, lease_expires_at: new Date(t0 + 120_000).toISOString() });
    const [create] = fake.bodies<{
      tags: { key: string; value: string }[];
      run_name: string;
      start_time: number;
    }>('runs/create');
    expect(create!.run_name).toBe('r1');
    expect(create!.start_time).toBe(t0);
    expect(tagsOf(create!)).toMatchObject({
      dataset: 'v3',
      'mlflow.runName': 'r1',
      'mlflow.note.content': 'trying GRU',
      'mlflow.source.name': 'runwarden-mcp',
      'mlflow.source.type': 'LOCAL',
      'runwarden.owner': 'mcp:test',
      'runwarden.lease_expiry_status': 'KILLED',
      'runwarden.expiry_note': 'the MCP client never called end_run',
      'runwarden.mcp_session': 'session-abc',
      'runwarden.lease_expires_at': String(t0 + 120_000),
      'runwarden.heartbeat_at': String(t0),
    });
    expect(tagsOf(create!)['runwarden.request_id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('start_run: without lease_seconds the lease is the server setting', async () => {
    const session = await open({ leaseSeconds: 300 });
    const out = ok(await session.call('start_run', { experiment_name: 'e' }), 'start_run', session);
    expect(out.lease_seconds).toBe(300);
    const [create] = fake.bodies<{ tags: { key: string; value: string }[]; start_time: number }>(
      'runs/create',
    );
    expect(Number(tagsOf(create!)['runwarden.lease_expires_at']) - create!.start_time).toBe(300_000);
  });

  it('start_run: parent_run_id nests the run under its parent', async () => {
    const parent = seedRun({}, 'e');
    await startRun({ experiment_name: 'e', parent_run_id: parent.info.run_id });
    const [create] = fake.bodies<{ tags: { key: string; value: string }[] }>('runs/create');
    expect(tagsOf(create!)['mlflow.parentRunId']).toBe(parent.info.run_id);
  });

  it('start_run: a tag key under runwarden. cannot override the ownership tags: it is refused and no run is created', async () => {
    const text = failed(
      await s.call('start_run', {
        experiment_name: 'weekly-cases/gru',
        tags: { 'runwarden.owner': 'someone-else' },
      }),
    );
    expect(text).toContain('tags.runwarden.owner');
    expect(fake.bodies('runs/create')).toHaveLength(0);
  });

  it("log_metrics: a task attempt's run (owner worker:...) is refused, not adopted, and nothing is written to it", async () => {
    const run = seedRun({ tags: { 'runwarden.owner': 'worker:w@h:1' } });
    const before = writes();
    const text = failed(
      await s.call('log_metrics', { run_id: run.info.run_id, metrics: [{ key: 'loss', value: 1 }] }),
    );
    expect(text).toContain(`run ${run.info.run_id} belongs to a task attempt (worker:w@h:1)`);
    expect(writes()).toBe(before);
    expect(run.info.status).toBe('RUNNING');
  });

  it("log_params: a script's own run (no runwarden owner) may be written to, but is not among the runs the server ends on shutdown", async () => {
    const run = seedRun();
    ok(await s.call('log_params', { run_id: run.info.run_id, params: { lr: 0.1 } }), 'log_params');
    expect(run.params.get('lr')).toBe('0.1');
    expect(openRuns().map((h) => h.runId)).not.toContain(run.info.run_id);
    const mcpRun = seedRun({ tags: { 'runwarden.owner': 'mcp:restarted@h:1' } });
    ok(await s.call('log_params', { run_id: mcpRun.info.run_id, params: { lr: 0.2 } }), 'log_params');
    expect(openRuns().map((h) => h.runId)).toContain(mcpRun.info.run_id);
  });

  it('log_params: a run this server process does not hold (server restarted) is adopted and written to', async () => {
    const run = seedRun();
    run.params.set('lr', '0.1');
    ok(await s.call('log_params', { run_id: run.info.run_id, params: { lr: 0.1, epochs: 5 } }), 'log_params');
    expect(Object.fromEntries(run.params)).toEqual({ lr: '0.1', epochs: '5' });
    expect(logBatchesFor(run.info.run_id).map((b) => b.params)).toEqual([[{ key: 'epochs', value: '5' }]]);
  });
});

describe('session close', () => {
  it("close(): the session's open runs are ended KILLED with runwarden.close_reason saying the client disconnected", async () => {
    const open1 = await startRun({ run_name: 'open-1' });
    const open2 = await startRun({ run_name: 'open-2' });
    const ended = await startRun({ run_name: 'ended' });
    ok(await s.call('end_run', { run_id: ended }), 'end_run');
    // A run another session started is not this session's to close.
    const other = await open();
    const foreign = await startRun({ run_name: 'foreign' }, other);
    const updatesBefore = fake.bodies('runs/update').length;

    await s.close();

    const updates = fake.bodies<{ run_id: string; status: string }>('runs/update').slice(updatesBefore);
    expect(updates.map((u) => [u.run_id, u.status]).sort()).toEqual(
      [
        [open1, 'KILLED'],
        [open2, 'KILLED'],
      ].sort(),
    );
    for (const id of [open1, open2]) {
      const closing = logBatchesFor(id)
        .map(tagsOf)
        .find((t) => t['runwarden.close_reason']);
      expect(closing?.['runwarden.close_reason']).toContain('disconnected');
      expect(closing?.['runwarden.closed_by']).toBe('mcp-server');
      expect(fake.runs.get(id)!.info.status).toBe('KILLED');
    }
    expect(fake.runs.get(ended)!.info.status).toBe('FINISHED');
    expect(fake.runs.get(foreign)!.info.status).toBe('RUNNING');
    expect(s.runs.openFor(s.sessionKey)).toEqual([]);
  });

  it('close(): a second close does nothing more', async () => {
    await startRun();
    await s.close();
    const n = fake.requests.length;
    await s.close();
    expect(fake.requests.length).toBe(n);
  });

  it('close(): buffered metrics are flushed before the run is ended KILLED', async () => {
    const runId = await startRun();
    // Logged through the registry's handle without flushing, as if a call were cut short.
    const handle = await s.runs.get(runId);
    await handle.logMetric('loss', 0.25, { step: 7 });
    await s.close();
    expect(fake.runs.get(runId)!.history).toEqual([
      expect.objectContaining({ key: 'loss', value: 0.25, step: 7 }),
    ]);
    expect(fake.runs.get(runId)!.info.status).toBe('KILLED');
  });
});

describe('read-only mode', () => {
  const READ_ONLY = [
    'search_experiments',
    'get_run',
    'search_runs',
    'get_metric_history',
    'compare_runs',
    'list_artifacts',
    'read_artifact',
    'get_model_version',
  ];

  it('tools/list in read-only mode holds exactly the read-only tools and no mutating one', async () => {
    const ro = await open({ readOnly: true });
    expect(ro.tools.map((t) => t.name).sort()).toEqual([...READ_ONLY].sort());
    for (const t of ro.tools) expect(t.annotations?.readOnlyHint).toBe(true);
  });

  it('read-only mode: calling a mutating tool anyway is an isError result and nothing is sent', async () => {
    const ro = await open({ readOnly: true });
    const text = failed(await ro.call('start_run', { experiment_name: 'e' }));
    expect(text).toBe('MCP error -32602: Tool start_run not found');
    expect(fake.requests).toEqual([]);
  });

  it('read-only mode: a read-only tool still works', async () => {
    const ro = await open({ readOnly: true });
    const run = seedRun();
    expect(ok(await ro.call('get_run', { run_id: run.info.run_id }), 'get_run', ro).run_id).toBe(
      run.info.run_id,
    );
  });
});

describe('prompts', () => {
  it('prompts/list has tracked-experiment and compare-and-choose with their arguments', async () => {
    const { prompts } = await s.mcp.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['compare-and-choose', 'tracked-experiment']);
    const tracked = prompts.find((p) => p.name === 'tracked-experiment')!;
    expect(tracked.title).toBe('Run a tracked experiment');
    expect(tracked.arguments).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'experiment', required: true })]),
    );
  });

  it('prompts/get tracked-experiment fills {{experiment}} and says when an optional argument was not given', async () => {
    const res = await s.mcp.getPrompt({
      name: 'tracked-experiment',
      arguments: { experiment: 'weekly-cases/gru' },
    });
    const content = res.messages[0]!.content;
    expect(content.type).toBe('text');
    const text = content.type === 'text' ? content.text : '';
    expect(text).toContain('Track this work as an MLflow experiment named "weekly-cases/gru".');
    expect(text).toContain('Goal: (goal not given).');
    expect(text).not.toContain('{{');
  });

  it('prompts/get compare-and-choose fills every placeholder', async () => {
    const res = await s.mcp.getPrompt({
      name: 'compare-and-choose',
      arguments: { experiment: 'e1', metric: 'rmse', direction: 'min' },
    });
    const content = res.messages[0]!.content;
    const text = content.type === 'text' ? content.text : '';
    expect(text).toContain('experiment_names: ["e1"]');
    expect(text).toContain('metrics.rmse ASC');
    expect(text).not.toContain('{{');
  });

  it('prompts/get without a required argument is refused by the SDK', async () => {
    await expect(s.mcp.getPrompt({ name: 'tracked-experiment', arguments: {} })).rejects.toThrow(
      /Invalid arguments for prompt tracked-experiment/,
    );
  });
});

describe('resources', () => {
  it('resources/templates/list has experiments, runs and models', async () => {
    const { resourceTemplates } = await s.mcp.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      'mlflow://experiments/{experiment_id}',
      'mlflow://models/{name}',
      'mlflow://runs/{run_id}',
    ]);
    for (const t of resourceTemplates) expect(t.mimeType).toBe('application/json');
  });

  it('resources/read of a run returns JSON with run_id, status, params and url', async () => {
    const run = seedRun({ run_name: 'r' });
    run.params.set('lr', '0.1');
    const res = await s.mcp.readResource({ uri: `mlflow://runs/${run.info.run_id}` });
    const first = res.contents[0]!;
    expect(first.mimeType).toBe('application/json');
    expect(first.uri).toBe(`mlflow://runs/${run.info.run_id}`);
    const json = JSON.parse('text' in first ? first.text : '{}') as Json;
    expect(json).toMatchObject({
      run_id: run.info.run_id,
      run_name: 'r',
      status: 'RUNNING',
      params: { lr: '0.1' },
      url: `${BASE}/#/experiments/1/runs/${run.info.run_id}`,
    });
  });

  it('resources/read of an experiment and of a model return their JSON with UI links', async () => {
    const run = seedRun({}, 'weekly');
    seedModel('cases gru', run, 2, { champion: '2' });
    const exp = await s.mcp.readResource({ uri: 'mlflow://experiments/1' });
    const e = exp.contents[0]!;
    expect(JSON.parse('text' in e ? e.text : '{}')).toMatchObject({
      experiment_id: '1',
      name: 'weekly',
      url: `${BASE}/#/experiments/1`,
    });
    const model = await s.mcp.readResource({ uri: 'mlflow://models/cases%20gru' });
    const m = model.contents[0]!;
    expect(JSON.parse('text' in m ? m.text : '{}')).toMatchObject({
      name: 'cases gru',
      aliases: { champion: '2' },
      url: `${BASE}/#/models/cases%20gru`,
    });
  });

  it('resources/read of an unknown run fails with the MLflow error', async () => {
    await expect(s.mcp.readResource({ uri: 'mlflow://runs/ghost' })).rejects.toThrow(
      /RESOURCE_DOES_NOT_EXIST/,
    );
  });
});
