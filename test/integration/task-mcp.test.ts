// The task tools and the task event stream of `runwarden serve` against the real services: a
// spawned `runwarden worker` runs the fixture template `quick`; enqueue_task + wait_for_task with
// progress notifications, get_task/list_tasks, the SSE stream of a running task (snapshot,
// progress/metric events, end), cancel_task of a running task ending its MLflow run KILLED (as
// MLflow's Python client sees it), and refused specs that queue nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, callError, httpClient, type ServeProcess, startServe } from '../support/mcp.js';
import { pyGetRun } from '../support/python.js';
import {
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  type WorkerEnv,
  type WorkerProcess,
  waitFor,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const TOKEN = 'task-mcp-token-0123456789';
const prefix = `rw-taskmcp-${process.pid}-${Date.now().toString(36)}`;

let workDir = '';
let serve: ServeProcess | undefined;
let worker: WorkerProcess | undefined;
let client: Client;

/** waitFor (60 s by default) whose error also shows the worker's stderr. */
function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  return waitFor(what, probe, { timeoutMs: ms }).catch((err: Error) => {
    throw new Error(`${err.message}\nworker stderr:\n${worker?.stderr() ?? ''}`);
  });
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'rw-taskmcp-'));
  const workerEnv: WorkerEnv = { mlflowUrl, redisUrl, prefix, workDir };
  // Both settle before a failure is reported, so afterAll stops whichever did start.
  const [s, w] = await Promise.allSettled([
    startServe({ ...taskEnv(workerEnv), RUNWARDEN_HTTP_TOKEN: TOKEN }),
    startWorkerProcess(workerEnv),
  ]);
  if (s.status === 'fulfilled') serve = s.value;
  if (w.status === 'fulfilled') worker = w.value;
  if (s.status === 'rejected') throw s.reason;
  if (w.status === 'rejected') throw w.reason;
  client = (await httpClient(s.value.url, TOKEN)).client;
});

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await Promise.all([stopAllWorkers(), serve?.stop()]);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface TaskOut {
  task_id: string;
  state: string;
  existing: boolean;
  finished: boolean;
  run_url?: string;
  runs: { attempt: number; run_id: string; url: string }[];
  metrics?: Record<string, number>;
  fraction?: number;
}

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Read an SSE response until `end` (or the deadline), parsing `event:`/`data:` blocks. */
async function readSse(url: string, ms = 90_000): Promise<{ events: SseEvent[]; pings: number }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const events: SseEvent[] = [];
  let pings = 0;
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        i = buf.indexOf('\n\n');
        if (block.startsWith(':')) {
          pings++;
          continue;
        }
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? '{}';
        events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  } finally {
    clearTimeout(timer);
  }
  return { events, pings };
}

describe('task tools over MCP HTTP, with a worker', () => {
  it('enqueue_task then wait_for_task: progress notifications arrive and the task completes with its run link; get_task and list_tasks show it', async () => {
    const enq = await call<TaskOut>(client, 'enqueue_task', {
      template: 'quick',
      params: { epochs: 3, sleep_ms: 400 },
    });
    expect(enq).toMatchObject({ existing: false });
    expect(enq.task_id).toMatch(/^t-[0-9a-f]{16}$/);
    const again = await call<TaskOut>(client, 'enqueue_task', {
      template: 'quick',
      params: { epochs: 3, sleep_ms: 400 },
    });
    expect(again).toMatchObject({ task_id: enq.task_id, existing: true });

    const seen: Progress[] = [];
    const res = (await client.callTool(
      { name: 'wait_for_task', arguments: { task_id: enq.task_id, timeout_seconds: 50 } },
      undefined,
      { onprogress: (p) => seen.push(p), resetTimeoutOnProgress: true, timeout: 120_000 },
    )) as CallToolResult;
    expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
    const done = res.structuredContent as unknown as TaskOut;
    expect(done).toMatchObject({ task_id: enq.task_id, finished: true, state: 'completed' });
    expect(done.run_url).toMatch(new RegExp(`^${mlflowUrl}/#/experiments/\\d+/runs/[0-9a-f]+$`));
    expect(done.metrics?.val_loss).toBeCloseTo(0.4, 5);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.progress).toBeGreaterThan(seen[i - 1]!.progress);
    expect(seen.at(-1)).toMatchObject({ progress: 100 });

    const got = await call<TaskOut>(client, 'get_task', { task_id: enq.task_id });
    expect(got).toMatchObject({ state: 'completed', run_url: done.run_url, attempts: 1 });
    expect(got.runs).toHaveLength(1);
    expect(got.runs[0]!.url).toBe(done.run_url);
    const runId = got.runs[0]!.run_id;
    expect((await pyGetRun(mlflowUrl, runId)).status).toBe('FINISHED');

    const listed = await call<{ tasks: TaskOut[] }>(client, 'list_tasks', { states: ['completed'] });
    expect(listed.tasks.find((t) => t.task_id === enq.task_id)).toMatchObject({
      state: 'completed',
      run_url: done.run_url,
    });
  });

  it('GET /tasks/:id/events: snapshot first, then progress and metric events, then end with state completed', async () => {
    const enq = await call<TaskOut>(client, 'enqueue_task', {
      template: 'quick',
      params: { epochs: 4, sleep_ms: 800 },
    });
    const { events } = await readSse(`${serve!.url}/tasks/${enq.task_id}/events`);
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('snapshot');
    expect(events[0]!.data).toMatchObject({ task_id: enq.task_id, template: 'quick' });
    expect(names.at(-1)).toBe('end');
    expect(events.at(-1)!.data).toMatchObject({ task_id: enq.task_id, state: 'completed' });
    expect(events.at(-1)!.data.run_url).toMatch(/\/#\/experiments\/\d+\/runs\//);
    const progress = events.filter((e) => e.event === 'progress');
    const metrics = events.filter((e) => e.event === 'metric');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.some((e) => e.data.message === 'epoch 2/4')).toBe(true);
    expect(metrics.map((e) => e.data.key)).toEqual(expect.arrayContaining(['train_loss', 'val_loss']));
    expect(names.indexOf('progress')).toBeGreaterThan(0);
    expect(names.filter((n) => n === 'snapshot' || n === 'end')).toEqual(['snapshot', 'end']);
    expect(names.includes('log')).toBe(true);
  });

  it('GET /tasks/:id/events: 404 JSON for an unknown task, 401 without the token', async () => {
    const missing = await fetch(`${serve!.url}/tasks/t-0000000000000000/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toContain('no task t-0000000000000000');
    const anon = await fetch(`${serve!.url}/tasks/t-0000000000000000/events`);
    expect(anon.status).toBe(401);
    await anon.arrayBuffer();
  });

  it('cancel_task of a running task: state cancelled and its MLflow run KILLED', async () => {
    const enq = await call<TaskOut>(client, 'enqueue_task', {
      template: 'quick',
      params: { epochs: 60, sleep_ms: 1000 },
    });
    const running = await until('the task to run with an MLflow run', async () => {
      const t = await call<TaskOut>(client, 'get_task', { task_id: enq.task_id });
      return t.state === 'active' && t.runs.length && t.fraction !== undefined && t.fraction > 0
        ? t
        : undefined;
    });
    const runId = running.runs[0]!.run_id;
    const cancelled = await call<{ previous_state: string; state: string; reason?: string }>(
      client,
      'cancel_task',
      {
        task_id: enq.task_id,
        reason: 'integration test cancels it',
      },
    );
    expect(cancelled.previous_state).toBe('active');
    const final =
      cancelled.state === 'cancelled'
        ? cancelled.state
        : await until('the task to be cancelled', async () => {
            const t = await call<TaskOut>(client, 'get_task', { task_id: enq.task_id });
            return t.state === 'cancelled' ? t.state : undefined;
          });
    expect(final).toBe('cancelled');
    const run = await until('the run to end KILLED', async () => {
      const r = await pyGetRun(mlflowUrl, runId);
      return r.status === 'RUNNING' ? undefined : r;
    });
    expect(run.status).toBe('KILLED');
    const again = await call<{ previous_state: string; state: string }>(client, 'cancel_task', {
      task_id: enq.task_id,
    });
    expect(again).toMatchObject({ previous_state: 'cancelled', state: 'cancelled' });
  });

  it('enqueue_task refuses an unknown template and an out-of-bounds param naming the field, and queues nothing', async () => {
    const ids = async () =>
      (await call<{ tasks: TaskOut[] }>(client, 'list_tasks', { limit: 200 })).tasks
        .map((t) => t.task_id)
        .sort();
    const before = await ids();
    const unknown = await callError(client, 'enqueue_task', { template: 'gru-nope' });
    expect(unknown).toMatch(/^template: no template 'gru-nope'; registered templates: [a-z, -]*quick/);
    const bounds = await callError(client, 'enqueue_task', { template: 'quick', params: { epochs: 5000 } });
    expect(bounds).toContain('params.epochs: 5000 is out of bounds; allowed 1 to 1000');
    expect(bounds).toContain('list_task_templates');
    const sdk = await callError(client, 'enqueue_task', { template: 'quick', priority: 0 });
    expect(sdk).toMatch(/Input validation error.*priority/s);
    expect(await ids()).toEqual(before);
  });
});
