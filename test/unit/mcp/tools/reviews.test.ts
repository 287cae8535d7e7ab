// The review tools (list_pending_reviews, get_review, submit_review, get_model_history) through a
// real MCP Client over InMemoryTransport, with a fake review store holding items in memory (the
// contract's semantics: one decision per item, a different second one refused naming who and
// when) and msw for the MLflow reads: listing, annotations and read-only mode, bounded evidence,
// the judge taken from the server's owner id, refusals and recovery texts.
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  MlflowUnreachableError,
  ReviewAlreadyDecidedError,
  RunwardenError,
  ValidationError,
} from '../../../../src/errors/index.js';
import { silentLogger } from '../../../../src/log.js';
import type { McpSettings, ReviewStoreApi, TaskQueueApi } from '../../../../src/mcp/context.js';
import { LazyReviewStore } from '../../../../src/mcp/lazy-reviews.js';
import { McpRunRegistry } from '../../../../src/mcp/runs.js';
import { createServer } from '../../../../src/mcp/server.js';
import { createMlflowClient } from '../../../../src/mlflow/client.js';
import { TaskQueue } from '../../../../src/queue/task-queue.js';
import { listTemplates } from '../../../../src/queue/templates.js';
import type { Evidence, ReviewItem, ReviewMode, ReviewState, Verdict } from '../../../../src/review/index.js';
import { ReviewStore } from '../../../../src/review/index.js';
import { API, BASE, FakeMlflow } from '../harness.js';

const TASKS_DIR = fileURLToPath(new URL('../../../fixtures/tasks', import.meta.url));
const OWNER = 'mcp:judge@host:1:abcd1234';
type Json = Record<string, unknown>;

const msw = setupServer();
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }));
afterAll(() => msw.close());
let fake: FakeMlflow;
beforeEach(() => {
  fake = new FakeMlflow();
  msw.use(...fake.handlers());
});
afterEach(() => msw.resetHandlers());

function item(id: string, over: Partial<ReviewItem> = {}): ReviewItem {
  const taskId = id.replace(/^r-/, '');
  return {
    id,
    taskId,
    runId: `run-${taskId}`,
    experimentId: '1',
    template: 'quick',
    mode: 'agent',
    state: 'pending',
    createdAt: Date.UTC(2026, 10, 28, 10, 0, 0),
    ...over,
  };
}

const notFound = (id: string) =>
  new RunwardenError(
    'REVIEW_NOT_FOUND',
    `review_id: no review item ${id}; list_pending_reviews shows the open ones`,
  );

/** The review store's contract over a map (the real store's errors). */
class FakeReviews implements ReviewStoreApi {
  items = new Map<string, ReviewItem>();
  evidenceOf = new Map<string, Partial<Omit<Evidence, 'item'>>>();
  listCalls: unknown[] = [];
  decideCalls: { id: string; d: { verdict: Verdict; judge: string; score?: number; notes?: string } }[] = [];
  /** Applying fails this many times after the decision is recorded (MLflow down half-way). */
  failApplies = 0;
  /** Thrown once after the decision is recorded (an error the store does not turn into applyError). */
  throwAfterClaim?: Error;

  add(i: ReviewItem): ReviewItem {
    this.items.set(i.id, i);
    return i;
  }

  async get(id: string) {
    return this.items.get(id);
  }

  async list(opts: { states?: ReviewState[]; mode?: ReviewMode; limit?: number } = {}) {
    this.listCalls.push(opts);
    return [...this.items.values()]
      .filter((i) => (!opts.states || opts.states.includes(i.state)) && (!opts.mode || i.mode === opts.mode))
      .sort((a, b) => a.createdAt - b.createdAt)
      .slice(0, opts.limit ?? 50);
  }

  async evidence(id: string): Promise<Evidence> {
    const i = this.items.get(id);
    if (!i) throw notFound(id);
    return {
      item: i,
      runUrl: `${BASE}/#/experiments/${i.experimentId}/runs/${i.runId}`,
      metrics: {},
      params: {},
      ...this.evidenceOf.get(id),
    };
  }

  async decide(id: string, d: { verdict: Verdict; judge: string; score?: number; notes?: string }) {
    this.decideCalls.push({ id, d });
    const cur = this.items.get(id);
    if (!cur) throw notFound(id);
    const prior = cur.decision;
    if (prior && (prior.verdict !== d.verdict || prior.judge !== d.judge))
      throw new ReviewAlreadyDecidedError(id, prior);
    if (prior && cur.state === 'applied') return { item: cur, applied: true };
    const decided: ReviewItem = {
      ...cur,
      state: 'decided',
      decision: prior ?? { ...d, at: Date.UTC(2026, 10, 28, 11) },
    };
    this.items.set(id, decided);
    const thrown = this.throwAfterClaim;
    this.throwAfterClaim = undefined;
    if (thrown) throw thrown;
    if (this.failApplies > 0) {
      this.failApplies--;
      const err = new MlflowUnreachableError('POST /api/2.0/mlflow/registered-models/alias', 'ECONNREFUSED');
      return { item: decided, applied: false, applyError: err.message };
    }
    const outcome: ReviewItem['outcome'] =
      d.verdict === 'approve'
        ? { modelName: 'quick', version: '2', alias: 'champion', previousVersion: '1' }
        : d.verdict === 'rework'
          ? { reworkTaskId: 't-rework0000000001' }
          : {};
    const applied: ReviewItem = { ...decided, state: 'applied', outcome };
    this.items.set(id, applied);
    return { item: applied, applied: true };
  }
}

const templatesOnly = { templates: () => listTemplates(TASKS_DIR) } as unknown as TaskQueueApi;

const settings = (over: Partial<McpSettings> = {}): McpSettings => ({
  readOnly: false,
  allowedRoots: [TASKS_DIR],
  maxInlineArtifactBytes: 1024,
  readArtifactMaxBytes: 64,
  leaseSeconds: 900,
  owner: OWNER,
  ...over,
});

interface Session {
  tools: Tool[];
  mcp: Client;
  call: (name: string, args?: Json) => Promise<CallToolResult>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function open(reviews: ReviewStoreApi | undefined, over: Partial<McpSettings> = {}): Promise<Session> {
  const client = createMlflowClient({ trackingUri: BASE, retry: { maxRetries: 0 } });
  const created = createServer({
    client,
    runs: new McpRunRegistry(client, 900_000),
    settings: settings(over),
    logger: silentLogger,
    prompts: [],
    version: '0.0.0-test',
    tasks: templatesOnly,
    reviews,
  });
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await created.server.connect(st);
  const mcp = new Client({ name: 'runwarden-review-test', version: '0.0.0' });
  await mcp.connect(ct);
  closers.push(async () => {
    await mcp.close();
    await created.close();
  });
  const { tools } = await mcp.listTools();
  return {
    tools,
    mcp,
    call: async (name, args = {}) => (await mcp.callTool({ name, arguments: args })) as CallToolResult,
  };
}

const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

function ok<T = Json>(r: CallToolResult): T {
  expect(r.isError, textOf(r)).toBeFalsy();
  expect(textOf(r).trim()).not.toBe('');
  return r.structuredContent as T;
}

function failed(r: CallToolResult): string {
  expect(r.isError, JSON.stringify(r.structuredContent)).toBe(true);
  return textOf(r);
}

const REVIEW_TOOLS = ['list_pending_reviews', 'get_review', 'submit_review', 'get_model_history'];

describe('review tools: listing', () => {
  it('tools/list: with a review store the review tools come last, fully described, and the whole list stays under the 42,000-character budget', async () => {
    const s = await open(new FakeReviews());
    const names = s.tools.map((t) => t.name);
    expect(names.slice(-REVIEW_TOOLS.length)).toEqual(REVIEW_TOOLS);
    for (const t of s.tools.filter((x) => REVIEW_TOOLS.includes(x.name))) {
      expect(t.title, t.name).toMatch(/\S/);
      expect(t.description!.length, t.name).toBeLessThanOrEqual(300);
      expect(t.outputSchema?.type, t.name).toBe('object');
      for (const [field, schema] of Object.entries(t.inputSchema.properties ?? {}))
        expect((schema as { description?: string }).description, `${t.name}.${field}`).toMatch(/\S/);
    }
    const size = JSON.stringify(await s.mcp.listTools()).length;
    console.info(`tools/list JSON with task and review tools: ${size} characters for ${names.length} tools`);
    expect(size).toBeLessThan(42_000);
  });

  it('tools/list: list/get/history are read-only and idempotent; submit_review writes and is not idempotent; none destructive', async () => {
    const s = await open(new FakeReviews());
    const a = Object.fromEntries(s.tools.map((t) => [t.name, t.annotations]));
    for (const name of ['list_pending_reviews', 'get_review', 'get_model_history'])
      expect(a[name], name).toEqual({
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      });
    expect(a.submit_review).toEqual({
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
      openWorldHint: false,
    });
    const submit = s.tools.find((t) => t.name === 'submit_review')!;
    expect([...(submit.inputSchema.required ?? [])].sort()).toEqual([
      'notes',
      'review_id',
      'score',
      'verdict',
    ]);
    expect(Object.keys(submit.inputSchema.properties ?? {})).not.toContain('judge');
  });

  it('tools/list: in read-only mode submit_review is hidden and the reading tools stay; without a store no review tool is listed', async () => {
    const ro = await open(new FakeReviews(), { readOnly: true });
    expect(ro.tools.map((t) => t.name).filter((n) => REVIEW_TOOLS.includes(n))).toEqual([
      'list_pending_reviews',
      'get_review',
      'get_model_history',
    ]);
    const none = await open(undefined);
    expect(none.tools.map((t) => t.name).filter((n) => REVIEW_TOOLS.includes(n))).toEqual([]);
  });
});

describe('list_pending_reviews', () => {
  it('list_pending_reviews: agent items oldest first with run link, creation time and the primary metric read from MLflow', async () => {
    const reviews = new FakeReviews();
    const exp = fake.addExperiment('tasks/quick');
    const a = fake.addRun(exp.experiment_id, { status: 'FINISHED' });
    a.history.push({ key: 'val_loss', value: 0.42, step: 3, timestamp: 1 });
    const b = fake.addRun(exp.experiment_id, { status: 'FINISHED' });
    b.history.push({ key: 'val_loss', value: 0.37, step: 3, timestamp: 1 });
    reviews.add(item('r-t-a', { runId: a.info.run_id, experimentId: exp.experiment_id, createdAt: 1_000 }));
    reviews.add(item('r-t-b', { runId: b.info.run_id, experimentId: exp.experiment_id, createdAt: 2_000 }));
    reviews.add(item('r-t-p', { mode: 'policy' }));
    reviews.add(item('r-t-d', { state: 'applied' }));
    const s = await open(reviews);
    const out = ok<{ reviews: Json[]; more: boolean }>(await s.call('list_pending_reviews', {}));
    expect(reviews.listCalls).toEqual([{ states: ['pending'], mode: 'agent', limit: 21 }]);
    expect(out.more).toBe(false);
    expect(out.reviews).toEqual([
      {
        review_id: 'r-t-a',
        task_id: 't-a',
        template: 'quick',
        run_id: a.info.run_id,
        run_url: expect.stringContaining(a.info.run_id),
        created_at: new Date(1_000).toISOString(),
        metric: 'val_loss',
        value: 0.42,
      },
      expect.objectContaining({
        review_id: 'r-t-b',
        metric: 'val_loss',
        value: 0.37,
      }),
    ]);
    const search = fake.bodies<{ filter: string }>('runs/search');
    expect(search).toHaveLength(1);
    expect(search[0]!.filter).toBe(`attributes.run_id IN ('${a.info.run_id}', '${b.info.run_id}')`);
  });

  it('list_pending_reviews: limit bounds the page and more says others wait; a limit over 100 is refused', async () => {
    const reviews = new FakeReviews();
    for (let i = 0; i < 5; i++) reviews.add(item(`r-t-${i}`, { createdAt: i }));
    const s = await open(reviews);
    const out = ok<{ reviews: Json[]; more: boolean }>(await s.call('list_pending_reviews', { limit: 2 }));
    expect(out.reviews.map((r) => r.review_id)).toEqual(['r-t-0', 'r-t-1']);
    expect(out.more).toBe(true);
    expect(failed(await s.call('list_pending_reviews', { limit: 101 }))).toMatch(/limit/);
    const policy = ok<{ reviews: Json[] }>(await s.call('list_pending_reviews', { mode: 'policy' }));
    expect(policy.reviews).toEqual([]);
  });

  it('list_pending_reviews: when MLflow fails the list still comes back, without metric values, and says why', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    const s = await open(reviews);
    msw.use(
      http.post(`${API}/runs/search`, () =>
        HttpResponse.json({ error_code: 'INTERNAL_ERROR', message: 'db locked' }, { status: 500 }),
      ),
    );
    const r = await s.call('list_pending_reviews', {});
    const out = ok<{ reviews: Json[] }>(r);
    expect(out.reviews).toHaveLength(1);
    expect(out.reviews[0]!.metric).toBe('val_loss');
    expect(out.reviews[0]!.value).toBeUndefined();
    expect(textOf(r)).toMatch(/Metric values unavailable \(MLflow: .*db locked/);
  });
});

describe('get_review', () => {
  it('get_review: returns the evidence with the primary metric beside the champion’s, says which is better, and mirrors it in text', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    reviews.evidenceOf.set('r-t-a', {
      metrics: { val_loss: 0.4, train_loss: 0.3 },
      params: { epochs: '3' },
      candidateModelUri: 'runs:/run-t-a/model',
      workspaceArtifact: 'workspace.zip',
      primaryMetric: { name: 'val_loss', direction: 'min' },
      champion: {
        name: 'quick',
        alias: 'champion',
        version: '4',
        runId: 'run-old',
        metrics: { val_loss: 0.5 },
      },
    });
    const s = await open(reviews);
    const r = await s.call('get_review', { review_id: 'r-t-a' });
    const out = ok<Json>(r);
    expect(out).toMatchObject({
      review_id: 'r-t-a',
      state: 'pending',
      mode: 'agent',
      task_id: 't-a',
      run_id: 'run-t-a',
      metrics: { val_loss: 0.4, train_loss: 0.3 },
      metrics_total: 2,
      params: { epochs: '3' },
      candidate_model_uri: 'runs:/run-t-a/model',
      workspace_artifact: 'workspace.zip',
      champion: {
        name: 'quick',
        alias: 'champion',
        version: '4',
        run_id: 'run-old',
        metrics: { val_loss: 0.5 },
      },
      primary_metric: { name: 'val_loss', direction: 'min', candidate: 0.4, champion: 0.5, better: true },
    });
    expect((out.primary_metric as { delta: number }).delta).toBeCloseTo(-0.1);
    expect(Object.keys(out.metrics as Json)[0]).toBe('val_loss');
    const text = textOf(r);
    expect(text).toContain(
      'Primary metric val_loss (min): candidate 0.4 vs champion quick@champion v4 0.5: better by 0.1',
    );
    expect(text).toContain('Candidate model: runs:/run-t-a/model');
  });

  it('get_review: 150 metrics and 150 long params come back bounded to 100 each, values capped, totals stated', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-big'));
    const metrics = Object.fromEntries(
      Array.from({ length: 150 }, (_, i) => [`m${String(i).padStart(3, '0')}`, i]),
    );
    const params = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, 'x'.repeat(6000)]));
    reviews.evidenceOf.set('r-t-big', {
      metrics: { ...metrics, zz_primary: Number.NaN },
      params,
      primaryMetric: { name: 'zz_primary', direction: 'max' },
    });
    const s = await open(reviews);
    const r = await s.call('get_review', { review_id: 'r-t-big' });
    const out = ok<{
      metrics: Json;
      params: Record<string, string>;
      metrics_total: number;
      primary_metric: Json;
    }>(r);
    expect(Object.keys(out.metrics)).toHaveLength(100);
    expect(Object.keys(out.metrics)[0]).toBe('zz_primary');
    expect(out.metrics.zz_primary).toBe('NaN');
    expect(out.metrics_total).toBe(151);
    expect(Object.keys(out.params)).toHaveLength(100);
    for (const v of Object.values(out.params)) expect(v).toBe(`${'x'.repeat(500)}…(5500 more)`);
    expect(out.primary_metric).toEqual({ name: 'zz_primary', direction: 'max', candidate: 'NaN' });
    expect(JSON.stringify(r).length).toBeLessThan(80_000);
    expect(textOf(r)).toContain('(151 in all)');
  });

  it('get_review: an unknown review is an isError pointing at list_pending_reviews; a malformed id is refused before the store is asked', async () => {
    const reviews = new FakeReviews();
    const s = await open(reviews);
    expect(failed(await s.call('get_review', { review_id: 'r-t-nope' }))).toMatch(
      /^review_id: no review item r-t-nope; list_pending_reviews shows the open ones$/,
    );
    const bad = failed(await s.call('get_review', { review_id: `../${'x'.repeat(300)}` }));
    expect(bad).toMatch(/^review_id: .*not a valid id: use 'r-' and a task or sweep id/);
    expect(bad.length).toBeLessThan(400);
  });
});

describe('submit_review', () => {
  it('submit_review: approve decides as the server’s owner (never a judge from input) and reports the version, alias and previous version', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    const s = await open(reviews);
    const r = await s.call('submit_review', {
      review_id: 'r-t-a',
      verdict: 'approve',
      score: 0.9,
      notes: 'val_loss 0.40 beats the champion’s 0.50',
      judge: 'someone-else',
    });
    const out = ok<Json>(r);
    expect(reviews.decideCalls).toEqual([
      {
        id: 'r-t-a',
        d: { verdict: 'approve', judge: OWNER, score: 0.9, notes: 'val_loss 0.40 beats the champion’s 0.50' },
      },
    ]);
    expect(out).toMatchObject({
      review_id: 'r-t-a',
      state: 'applied',
      applied: true,
      verdict: 'approve',
      judge: OWNER,
      decided_at: '2026-11-28T11:00:00.000Z',
      outcome: { model_name: 'quick', version: '2', alias: 'champion', previous_version: '1' },
    });
    expect(textOf(r)).toContain('quick version 2 is now @champion (was version 1, now @previous-champion)');
  });

  it('submit_review: a second, different decision is refused saying who decided and when, and points at get_review', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    const s = await open(reviews);
    ok(await s.call('submit_review', { review_id: 'r-t-a', verdict: 'reject', score: 0.1, notes: 'worse' }));
    const text = failed(
      await s.call('submit_review', {
        review_id: 'r-t-a',
        verdict: 'approve',
        score: 0.9,
        notes: 'changed my mind',
      }),
    );
    expect(text).toContain(`already decided: reject by ${OWNER} at 2026-11-28T11:00:00.000Z`);
    expect(text).toContain('Read it with get_review. Do not submit it again');
    expect(reviews.items.get('r-t-a')!.decision!.verdict).toBe('reject');
  });

  it('submit_review: rework reports the new task to follow; reject says the run is tagged', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    reviews.add(item('r-t-b'));
    const s = await open(reviews);
    const rework = await s.call('submit_review', {
      review_id: 'r-t-a',
      verdict: 'rework',
      score: 0.3,
      notes: 'more epochs',
    });
    expect(ok<Json>(rework).outcome).toEqual({ rework_task_id: 't-rework0000000001' });
    expect(textOf(rework)).toContain('Task t-rework0000000001 is queued again with your notes');
    const reject = await s.call('submit_review', {
      review_id: 'r-t-b',
      verdict: 'reject',
      score: 0,
      notes: 'diverged',
    });
    expect(textOf(reject)).toContain('Run run-t-b is tagged with the review');
  });

  it('submit_review: a decision recorded whose applying failed (MLflow down) says so and how to finish; the same verdict again finishes it', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    reviews.failApplies = 1;
    const s = await open(reviews);
    const args = { review_id: 'r-t-a', verdict: 'approve', score: 0.8, notes: 'better' };
    const first = await s.call('submit_review', args);
    expect(ok<Json>(first)).toMatchObject({
      state: 'decided',
      applied: false,
      apply_error: expect.stringContaining('unreachable'),
    });
    expect(textOf(first)).toMatch(
      /approve by mcp:judge@host:1:abcd1234 is recorded but not applied yet \(.*unreachable.*\)\. Call submit_review again with the same verdict/,
    );
    const out = ok<Json>(await s.call('submit_review', args));
    expect(out).toMatchObject({ state: 'applied', applied: true, outcome: { version: '2' } });
  });

  it('submit_review: an error thrown after the decision was recorded says it is recorded; send again for a transient one, tell the operator for a refusal', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    reviews.add(item('r-t-b'));
    const s = await open(reviews);
    reviews.throwAfterClaim = new MlflowUnreachableError(
      'POST /api/2.0/mlflow/model-versions/create',
      'ETIMEDOUT',
    );
    const transient = failed(
      await s.call('submit_review', { review_id: 'r-t-a', verdict: 'approve', score: 0.7, notes: 'ok' }),
    );
    expect(transient).toMatch(/^Your approve of r-t-a is recorded, but applying it failed: .*ETIMEDOUT/);
    expect(transient).toContain('Call submit_review again with the same verdict');
    reviews.throwAfterClaim = new ValidationError('verdict', 'the run stored no model folder');
    const refusal = failed(
      await s.call('submit_review', { review_id: 'r-t-b', verdict: 'approve', score: 0.7, notes: 'ok' }),
    );
    expect(refusal).toMatch(
      /^Your approve of r-t-b is recorded, but applying it failed: verdict: the run stored no model/,
    );
    expect(refusal).toContain('Tell the operator');
    expect(refusal).not.toContain('Call submit_review again');
  });

  it('submit_review: refuses policy items, unknown items, scores outside 0..1, notes over 4,000 characters and missing notes, deciding nothing', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-p', { mode: 'policy' }));
    reviews.add(item('r-t-a'));
    const s = await open(reviews);
    const base = { review_id: 'r-t-a', verdict: 'approve', score: 0.5, notes: 'ok' };
    expect(failed(await s.call('submit_review', { ...base, review_id: 'r-t-p' }))).toMatch(
      /review_id: r-t-p is decided by the policy judge/,
    );
    expect(failed(await s.call('submit_review', { ...base, review_id: 'r-t-zz' }))).toMatch(
      /^review_id: no review item r-t-zz; list_pending_reviews shows the open ones/,
    );
    expect(failed(await s.call('submit_review', { ...base, score: 1.5 }))).toMatch(/score/);
    expect(failed(await s.call('submit_review', { ...base, score: 90 }))).toMatch(/score/);
    const long = failed(await s.call('submit_review', { ...base, notes: 'n'.repeat(4001) }));
    expect(long).toMatch(/notes/);
    expect(long.length).toBeLessThan(2_100);
    expect(failed(await s.call('submit_review', { ...base, notes: '' }))).toMatch(/notes/);
    expect(failed(await s.call('submit_review', { ...base, verdict: 'maybe' }))).toMatch(/verdict/);
    expect(reviews.decideCalls).toEqual([]);
  });

  it('submit_review: a lone surrogate in the notes or a 1 MB review id is refused with a bounded text naming the field, deciding nothing', async () => {
    const reviews = new FakeReviews();
    reviews.add(item('r-t-a'));
    const s = await open(reviews);
    const base = { review_id: 'r-t-a', verdict: 'reject', score: 0.2 };
    expect(failed(await s.call('submit_review', { ...base, notes: 'bad \uD800 half' }))).toMatch(/^notes: /);
    const huge = failed(
      await s.call('submit_review', { ...base, notes: 'x', review_id: `r-${'a'.repeat(1_000_000)}` }),
    );
    expect(huge).toMatch(/^review_id: /);
    expect(huge.length).toBeLessThan(2_100);
    expect(reviews.decideCalls).toEqual([]);
  });
});

describe('review tools: Redis not there', () => {
  it('the review tools answer isError within seconds saying Redis is unreachable and how to start it (password masked); get_model_history still reads MLflow', async () => {
    const client = createMlflowClient({ trackingUri: BASE, retry: { maxRetries: 0 } });
    const redisUrl = 'redis://127.0.0.1:1';
    const lazy = new LazyReviewStore({
      create: () => ({
        store: new ReviewStore({ redisUrl, prefix: 'rw-unit', client, tasksDir: TASKS_DIR }),
        tasks: new TaskQueue({ redisUrl, prefix: 'rw-unit', tasksDir: TASKS_DIR, client }),
      }),
      redisUrl: 'redis://user:secret@127.0.0.1:1',
      logger: silentLogger,
      connectTimeoutMs: 1_500,
    });
    closers.push(() => lazy.close());
    const s = await open(lazy);
    for (const [name, args] of [
      ['list_pending_reviews', {}],
      ['get_review', { review_id: 'r-t-1' }],
      ['submit_review', { review_id: 'r-t-1', verdict: 'reject', score: 0, notes: 'x' }],
    ] as const) {
      const started = Date.now();
      const text = failed(await s.call(name, args));
      expect(Date.now() - started, name).toBeLessThan(10_000);
      expect(text, name).toMatch(/^Redis at redis:\/\/\*\*\*@127\.0\.0\.1:1 is unreachable \(/);
      expect(text, name).toContain('redis-server');
      expect(text, name).not.toContain('secret');
    }
    fake.models.set('m', { name: 'm', aliases: new Map(), tags: [] });
    expect(
      ok<{ promotions: unknown[] }>(await s.call('get_model_history', { name: 'm' })).promotions,
    ).toEqual([]);
  });
});

describe('get_model_history', () => {
  it('get_model_history: reads the promotion records off the registered model, newest first, one alias when asked, bounded by limit', async () => {
    const rec = (n: number, alias: string) => ({
      key: `runwarden.promotion.r-t-${n}`,
      value: JSON.stringify({
        at: Date.UTC(2026, 10, 28, n),
        name: 'm',
        alias,
        version: String(n),
        ...(n > 1 ? { previousVersion: String(n - 1) } : {}),
        judge: 'policy',
        reviewId: `r-t-${n}`,
        runId: `run${n}`,
        taskId: `t-${n}`,
        score: n / 10,
        notes: 'n'.repeat(2_000),
        metrics: { composite: 1 / n },
      }),
    });
    fake.models.set('m', {
      name: 'm',
      aliases: new Map(),
      tags: [rec(1, 'champion'), rec(3, 'champion'), rec(2, 'staging'), { key: 'team', value: 'x' }],
    });
    const s = await open(new FakeReviews());
    const all = await s.call('get_model_history', { name: 'm' });
    const out = ok<{
      promotions: { version: string; previous_version?: string; notes: string; at: string }[];
    }>(all);
    expect(out.promotions.map((p) => p.version)).toEqual(['3', '2', '1']);
    expect(out.promotions[0]).toMatchObject({
      alias: 'champion',
      previous_version: '2',
      judge: 'policy',
      review_id: 'r-t-3',
      run_id: 'run3',
      task_id: 't-3',
      score: 0.3,
      at: '2026-11-28T03:00:00.000Z',
      metrics: { composite: 1 / 3 },
    });
    expect(out.promotions[0]!.notes).toBe(`${'n'.repeat(500)}…(1500 more)`);
    expect(textOf(all)).toContain('m@champion → v3 (was v2) by policy, review r-t-3, run run3, score 0.3');
    const champ = ok<{ promotions: { version: string }[] }>(
      await s.call('get_model_history', { name: 'm', alias: 'champion', limit: 1 }),
    );
    expect(champ.promotions.map((p) => p.version)).toEqual(['3']);
    const missing = failed(await s.call('get_model_history', { name: 'nope' }));
    expect(missing).toContain('No registered model by that name');
  });
});
