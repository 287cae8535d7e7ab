// The agent judge through MCP against the real services: a spawned `runwarden worker` runs a
// template whose review mode is `agent` (written to this file's own tasks folder, with its own
// registered model name), its completion hook creates the review item, and two MCP servers
// (two `runwarden mcp` processes over stdio: two judges, each its server's owner id) decide:
// approve → a model version and the `champion` alias (read with MLflow's Python client) and the
// promotion in get_model_history; reject → the run tagged with the review; rework → a new task
// whose run links back and whose command got the notes; two judges deciding at once → one
// decision, the other refused naming the winner, one model version.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from '../support/clients.js';
import { call, callError, stdioClient } from '../support/mcp.js';
import { pyGetRun, runPythonMlflow } from '../support/python.js';
import {
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  type WorkerProcess,
  waitFor,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const prefix = `rw-revmcp-${process.pid}-${Date.now().toString(36)}`;
const modelName = uniqueName('review-mcp-model');
const TEMPLATE = 'mcp-judged';

const TASK_YAML = `name: ${TEMPLATE}
description: Test fixture - logs the rmse/mae/mse it is given and writes a model folder; reviewed by an agent judge
runner: shell
language: node
command: ["{node}", "judge_fixture.mjs", "config.yml", "{output_dir}"]
params:
  rmse: { type: float, default: 1.0, min: 0, max: 1000, description: RMSE to log }
  mae: { type: float, default: 1.0, min: 0, max: 1000, description: MAE to log }
  mse: { type: float, default: 1.0, min: 0, max: 1000, description: MSE to log }
  tag: { type: string, default: "", description: Makes specs distinct }
metrics: [rmse, mae, mse]
primary_metric: { name: composite, direction: min }
model: { path: model, format: json }
timeout_seconds: 300
review:
  mode: agent
  model_name: ${modelName}
`;

const SCRIPT = `import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
const [configFile, outDir] = process.argv.slice(2);
const text = readFileSync(configFile, 'utf8');
const value = (k) => (new RegExp('^\\\\s+' + k + ': (.+)$', 'm').exec(text) ?? [])[1];
const say = (o) => process.stdout.write('@@runwarden ' + JSON.stringify(o) + '\\n');
for (const k of ['rmse', 'mae', 'mse']) say({ metric: k, value: Number(value(k)), step: 0 });
if (process.env.RUNWARDEN_REVIEW_NOTES) say({ tag: 'fixture.review_notes', value: process.env.RUNWARDEN_REVIEW_NOTES });
mkdirSync(path.join(outDir, 'model'), { recursive: true });
writeFileSync(path.join(outDir, 'model', 'model.json'), JSON.stringify({ rmse: Number(value('rmse')) }));
`;

let workDir = '';
let worker: WorkerProcess | undefined;
/** Judge A: `runwarden mcp` over stdio. */
let a: Client | undefined;
/** Judge B: another `runwarden mcp` process, with its own owner id. */
let b: Client | undefined;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'rw-revmcp-'));
  const tasksDir = join(workDir, 'tasks');
  await mkdir(join(tasksDir, TEMPLATE), { recursive: true });
  await writeFile(join(tasksDir, TEMPLATE, 'task.yaml'), TASK_YAML);
  await writeFile(join(tasksDir, TEMPLATE, 'judge_fixture.mjs'), SCRIPT);
  const env = { mlflowUrl, redisUrl, prefix, workDir, env: { RUNWARDEN_TASKS_DIR: tasksDir } };
  // All settle before a failure is reported, so afterAll stops whichever did start.
  const [ca, w, cb] = await Promise.allSettled([
    stdioClient(taskEnv(env)),
    startWorkerProcess(env),
    stdioClient(taskEnv(env)),
  ]);
  if (ca.status === 'fulfilled') a = ca.value.client;
  if (w.status === 'fulfilled') worker = w.value;
  if (cb.status === 'fulfilled') b = cb.value.client;
  for (const r of [ca, w, cb]) if (r.status === 'rejected') throw r.reason;
});

afterAll(async () => {
  await a?.close().catch(() => undefined);
  await b?.close().catch(() => undefined);
  await stopAllWorkers();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface Pending {
  review_id: string;
  task_id: string;
  run_id: string;
  run_url: string;
  metric?: string;
  value?: number;
}

/** Enqueue through MCP and wait (wait_for_task, again while unfinished) until it completed. */
async function completedTask(params: Record<string, unknown>): Promise<{ taskId: string; runId: string }> {
  const { task_id } = await call<{ task_id: string }>(a!, 'enqueue_task', { template: TEMPLATE, params });
  let state = '';
  const deadline = Date.now() + 100_000;
  while (Date.now() < deadline) {
    const w = await call<{ finished: boolean; state: string }>(a!, 'wait_for_task', {
      task_id,
      timeout_seconds: 30,
    });
    state = w.state;
    if (w.finished) break;
  }
  expect(state, `task ${task_id}; worker stderr:\n${worker?.stderr() ?? ''}`).toBe('completed');
  const task = await call<{ runs: { run_id: string }[] }>(a!, 'get_task', { task_id });
  return { taskId: task_id, runId: task.runs.at(-1)!.run_id };
}

/** Wait until list_pending_reviews shows the task's item. */
function pendingFor(client: Client, taskId: string): Promise<Pending> {
  return waitFor(
    `the review item of ${taskId} in list_pending_reviews`,
    async () => {
      const { reviews } = await call<{ reviews: Pending[] }>(client, 'list_pending_reviews', { limit: 100 });
      return reviews.find((r) => r.task_id === taskId);
    },
    { timeoutMs: 30_000, intervalMs: 300 },
  );
}

interface Registry {
  versions: { version: string; run_id: string; aliases: string[]; tags: Record<string, string> }[];
  champion: string | null;
  /** alias → version, from the registered model */
  aliases: Record<string, string>;
  tags: Record<string, string>;
  description: string | null;
}

/** The registered model as MLflow's Python client sees it. */
function pyRegistry(): Promise<Registry> {
  return runPythonMlflow<Registry>(
    `
import json, os
from mlflow.tracking import MlflowClient
c = MlflowClient()
name = os.environ['RW_MODEL']
vs = c.search_model_versions(f"name = '{name}'")
out = {'versions': [{'version': v.version, 'run_id': v.run_id, 'aliases': list(v.aliases), 'tags': dict(v.tags)} for v in vs]}
try:
    out['champion'] = c.get_model_version_by_alias(name, 'champion').version
except Exception:
    out['champion'] = None
rm = c.get_registered_model(name)
out['tags'] = dict(rm.tags)
out['aliases'] = {a: str(v) for a, v in (rm.aliases or {}).items()}
out['description'] = rm.description
print(json.dumps(out))
`,
    { trackingUri: mlflowUrl, env: { RW_MODEL: modelName } },
  );
}

interface Submitted {
  review_id: string;
  state: string;
  applied: boolean;
  verdict: string;
  judge: string;
  outcome?: {
    model_name?: string;
    version?: string;
    alias?: string;
    previous_version?: string;
    rework_task_id?: string;
  };
}

describe('the agent judge over MCP, with a worker and two MCP servers', () => {
  it('approve: the completed task waits in list_pending_reviews, get_review shows its evidence, approval makes version + champion alias (MLflow’s client agrees); a better one is shown beside the champion and moves the alias; get_model_history shows both moves', async () => {
    const { taskId, runId } = await completedTask({ rmse: 2, mae: 1, mse: 4, tag: 'approve' });
    const pending = await pendingFor(a!, taskId);
    expect(pending).toMatchObject({ review_id: `r-${taskId}`, run_id: runId, metric: 'composite' });
    expect(pending.value).toBeCloseTo(0.5 * 2 + 0.3 * 1 + 0.2 * 4);
    expect(pending.run_url).toContain(runId);

    const evidence = await call<Record<string, unknown>>(a!, 'get_review', { review_id: pending.review_id });
    expect(evidence).toMatchObject({
      review_id: `r-${taskId}`,
      state: 'pending',
      mode: 'agent',
      task_id: taskId,
      template: TEMPLATE,
      run_id: runId,
      candidate_model_uri: `runs:/${runId}/model`,
      metrics: { rmse: 2, mae: 1, mse: 4 },
      primary_metric: { name: 'composite', direction: 'min' },
    });
    expect(evidence.champion).toBeUndefined();

    const done = await call<Submitted>(a!, 'submit_review', {
      review_id: pending.review_id,
      verdict: 'approve',
      score: 0.8,
      notes: 'first candidate: composite 2.1, no champion to beat; model present',
    });
    expect(done).toMatchObject({ state: 'applied', applied: true, verdict: 'approve' });
    expect(done.judge).toMatch(/^mcp:/);
    expect(done.outcome).toMatchObject({ model_name: modelName, alias: 'champion' });

    const reg = await pyRegistry();
    const mine = reg.versions.filter((v) => v.run_id === runId);
    expect(mine).toHaveLength(1);
    expect(reg.champion).toBe(mine[0]!.version);
    expect(mine[0]!.version).toBe(done.outcome!.version);

    const history = await call<{ promotions: Record<string, unknown>[] }>(a!, 'get_model_history', {
      name: modelName,
    });
    expect(history.promotions[0]).toMatchObject({
      alias: 'champion',
      version: done.outcome!.version,
      judge: done.judge,
      review_id: `r-${taskId}`,
      run_id: runId,
      task_id: taskId,
      score: 0.8,
    });
    // Decided items leave the pending list; the evidence now carries the decision.
    const { reviews } = await call<{ reviews: Pending[] }>(a!, 'list_pending_reviews', { limit: 100 });
    expect(reviews.map((r) => r.task_id)).not.toContain(taskId);
    const after = await call<{ state: string; decision: { verdict: string; judge: string } }>(
      b!,
      'get_review',
      {
        review_id: `r-${taskId}`,
      },
    );
    expect(after).toMatchObject({ state: 'applied', decision: { verdict: 'approve', judge: done.judge } });

    // A better candidate: its evidence shows the champion beside it; approving moves the alias and
    // the history shows both moves, newest first.
    const next = await completedTask({ rmse: 1.5, mae: 1, mse: 2.25, tag: 'approve-better' });
    const second = await pendingFor(b!, next.taskId);
    const vs = await call<{
      champion: { version: string; run_id: string; metrics: Record<string, number> };
      primary_metric: { candidate: number; champion: number; delta: number; better: boolean };
    }>(b!, 'get_review', { review_id: second.review_id });
    expect(vs.champion).toMatchObject({ version: done.outcome!.version, run_id: runId });
    expect(vs.primary_metric.champion).toBeCloseTo(2.1);
    expect(vs.primary_metric.candidate).toBeCloseTo(0.5 * 1.5 + 0.3 + 0.2 * 2.25);
    expect(vs.primary_metric.better).toBe(true);
    const moved = await call<Submitted>(b!, 'submit_review', {
      review_id: second.review_id,
      verdict: 'approve',
      score: 0.9,
      notes: 'composite 1.5 vs the champion’s 2.1',
    });
    expect(moved.outcome).toMatchObject({ alias: 'champion', previous_version: done.outcome!.version });
    expect(moved.judge).not.toBe(done.judge);
    const reg2 = await pyRegistry();
    expect(reg2.champion).toBe(moved.outcome!.version);
    expect(reg2.aliases['previous-champion']).toBe(done.outcome!.version);
    const both = await call<{
      promotions: { review_id: string; version: string; previous_version?: string }[];
    }>(a!, 'get_model_history', { name: modelName, alias: 'champion' });
    expect(both.promotions.slice(0, 2)).toMatchObject([
      {
        review_id: second.review_id,
        version: moved.outcome!.version,
        previous_version: done.outcome!.version,
      },
      { review_id: `r-${taskId}`, version: done.outcome!.version },
    ]);
  });

  it('reject: the run carries the review’s tags and notes in MLflow, and no version is made from it', async () => {
    const { taskId, runId } = await completedTask({ rmse: 9, mae: 9, mse: 81, tag: 'reject' });
    const pending = await pendingFor(b!, taskId);
    const done = await call<Submitted>(b!, 'submit_review', {
      review_id: pending.review_id,
      verdict: 'reject',
      score: 0.1,
      notes: 'composite 23.4 is far worse than the champion',
    });
    expect(done).toMatchObject({ state: 'applied', applied: true, verdict: 'reject' });
    const run = await pyGetRun(mlflowUrl, runId);
    expect(run.tags).toMatchObject({
      'runwarden.review.id': `r-${taskId}`,
      'runwarden.review.verdict': 'reject',
      'runwarden.review.judge': done.judge,
      'runwarden.review.notes': 'composite 23.4 is far worse than the champion',
    });
    expect(run.tags['mlflow.note.content']).toContain('composite 23.4 is far worse than the champion');
    expect((await pyRegistry()).versions.filter((v) => v.run_id === runId)).toEqual([]);
  });

  it('rework: a new task is queued with the judge’s notes; its run links back to the reviewed run and task', async () => {
    const { taskId, runId } = await completedTask({ rmse: 3, mae: 3, mse: 9, tag: 'rework' });
    const pending = await pendingFor(a!, taskId);
    const notes = 'train longer: the loss was still falling';
    const done = await call<Submitted>(a!, 'submit_review', {
      review_id: pending.review_id,
      verdict: 'rework',
      score: 0.4,
      notes,
    });
    expect(done).toMatchObject({ state: 'applied', applied: true, verdict: 'rework' });
    const reworkTask = done.outcome?.rework_task_id;
    expect(reworkTask).toBeTruthy();
    expect(reworkTask).not.toBe(taskId);
    let finished = false;
    for (let i = 0; i < 4 && !finished; i++)
      finished = (
        await call<{ finished: boolean }>(a!, 'wait_for_task', { task_id: reworkTask, timeout_seconds: 30 })
      ).finished;
    const task = await call<{ state: string; runs: { run_id: string }[] }>(a!, 'get_task', {
      task_id: reworkTask,
    });
    expect(task.state).toBe('completed');
    const newRun = await pyGetRun(mlflowUrl, task.runs.at(-1)!.run_id);
    expect(newRun.tags).toMatchObject({
      'runwarden.rework_of_run': runId,
      'runwarden.rework_of_task': taskId,
      'fixture.review_notes': notes,
    });
    const old = await pyGetRun(mlflowUrl, runId);
    expect(old.tags['runwarden.review.verdict']).toBe('rework');
  });

  it('two judges in two MCP servers approving one item at once: one decision; the other is refused naming the winner and when, or finishes it and is told the first decision stands; one model version', async () => {
    const { taskId, runId } = await completedTask({ rmse: 1, mae: 1, mse: 1, tag: 'race' });
    const pending = await pendingFor(a!, taskId);
    const args = {
      review_id: pending.review_id,
      verdict: 'approve',
      score: 0.9,
      notes: 'composite 1.0 beats 2.1',
    };
    const [ra, rb] = (await Promise.all([
      a!.callTool({ name: 'submit_review', arguments: args }),
      b!.callTool({ name: 'submit_review', arguments: args }),
    ])) as CallToolResult[];
    const results = [ra!, rb!];
    const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
    const won = results.filter((r) => !r.isError);
    // The one whose decision was recorded carries no note; the other is refused or (the same
    // verdict arriving while the first was applied) finishes it and is told the first one stands.
    const first = won.filter((r) => !textOf(r).includes('stands'));
    expect(first, JSON.stringify(results)).toHaveLength(1);
    const winner = first[0]!.structuredContent as unknown as Submitted;
    for (const r of results) {
      if (r === first[0]) continue;
      if (r.isError) {
        expect(textOf(r)).toMatch(
          new RegExp(
            `already decided: approve by ${winner.judge.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} at \\d{4}-\\d\\d-\\d\\dT`,
          ),
        );
        expect(textOf(r)).toContain('get_review');
      } else {
        expect(textOf(r)).toContain(`by ${winner.judge}`);
        expect((r.structuredContent as unknown as Submitted).judge).toBe(winner.judge);
      }
    }
    expect(results.some((r) => (r.structuredContent as unknown as Submitted | undefined)?.applied)).toBe(
      true,
    );
    const applied = await call<{ state: string; outcome?: Submitted['outcome'] }>(a!, 'get_review', {
      review_id: pending.review_id,
    });
    expect(applied).toMatchObject({ state: 'applied', outcome: { alias: 'champion' } });
    winner.outcome = applied.outcome;

    const reg = await pyRegistry();
    expect(reg.versions.filter((v) => v.run_id === runId)).toHaveLength(1);
    expect(reg.champion).toBe(winner.outcome!.version);
    const history = await call<{ promotions: { review_id: string; previous_version?: string }[] }>(
      b!,
      'get_model_history',
      { name: modelName, alias: 'champion' },
    );
    expect(history.promotions.filter((p) => p.review_id === `r-${taskId}`)).toHaveLength(1);
    // A third attempt, later, is refused the same way.
    expect(await callError(a!, 'submit_review', { ...args, verdict: 'reject' })).toContain(
      `already decided: approve by ${winner.judge}`,
    );
  });
});
