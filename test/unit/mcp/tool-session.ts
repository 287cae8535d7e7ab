// The fixture the MCP tool tests share: an msw server with a fresh FakeMlflow, a temp allowed root
// and one open MCP session per test (`useToolSessions()` installs the hooks), plus the helpers that
// check results and seed runs and models. The bindings below are live: they change per test.
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, expect, vi } from 'vitest';
import {
  baseSettings,
  FakeMlflow,
  type FakeRun,
  type LogBatch,
  openSession,
  type Session,
  tempDir,
  textOf,
} from './harness.js';

export type Json = Record<string, unknown>;

export const server = setupServer();

export let fake: FakeMlflow;
export let tmp: ReturnType<typeof tempDir>;
export let s: Session;
const sessions: Session[] = [];

export async function open(overrides: Partial<ReturnType<typeof baseSettings>> = {}, sessionKey?: string) {
  const session = await openSession({ ...baseSettings(tmp.dir), ...overrides }, sessionKey);
  sessions.push(session);
  return session;
}

/** Install the per-file and per-test hooks: msw listening, a fresh fake and session per test. */
export function useToolSessions(): void {
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterAll(() => server.close());

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
}

const ajv = new AjvJsonSchemaValidator();

export function toolNamed(session: Session, name: string): Tool {
  const tool = session.tools.find((t) => t.name === name);
  if (!tool) throw new Error(`tool ${name} is not listed`);
  return tool;
}

/** A success result: no isError, non-empty text, structuredContent valid against the listed outputSchema. */
export function ok<T = Json>(result: CallToolResult, tool: string, session: Session = s): T {
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
export function failed(result: CallToolResult): string {
  expect(result.isError).toBe(true);
  expect(result.structuredContent).toBeUndefined();
  return textOf(result);
}

export async function startRun(args: Json = {}, session: Session = s): Promise<string> {
  const res = await session.call('start_run', { experiment_name: 'weekly-cases/gru', ...args });
  return ok<{ run_id: string }>(res, 'start_run', session).run_id;
}

export function seedRun(init: Parameters<FakeMlflow['addRun']>[1] = {}, experiment = 'seeded'): FakeRun {
  const e =
    [...fake.experiments.values()].find((x) => x.name === experiment) ?? fake.addExperiment(experiment);
  return fake.addRun(e.experiment_id, init);
}

export const artifactKey = (run: FakeRun, rel: string) =>
  `${run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '')}/${rel}`;

export function seedModel(
  name: string,
  run: FakeRun,
  versions: number,
  aliases: Record<string, string> = {},
): void {
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
export const writes = () => fake.requests.filter((r) => WRITE_OPS.has(r.op)).length;

export const logBatchesFor = (runId: string) =>
  fake.bodies<LogBatch>('runs/log-batch').filter((b) => b.run_id === runId);
