// Covers startRun (src/tracking/start-run.ts) against an in-memory fake MLflow: the idempotent create (request-id search, duplicate cleanup) and the tags and fields of the create request.
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MlflowApiError, ValidationError } from '../../src/errors/index.js';
import { createMlflowClient } from '../../src/mlflow/client.js';
import { OpenRunRegistry } from '../../src/tracking/open-runs.js';
import type { RunHandle } from '../../src/tracking/run-handle.js';
import { startRun } from '../../src/tracking/start-run.js';

const BASE = 'http://mlflow.test';
const API = `${BASE}/api/2.0/mlflow`;
const REQUEST_ID_TAG = 'runwarden.request_id';

interface KV {
  key: string;
  value: string;
}
interface FakeRun {
  run_id: string;
  experiment_id: string;
  run_name: string;
  status: string;
  lifecycle_stage: 'active' | 'deleted';
  start_time: number;
  end_time?: number;
  tags: Map<string, string>;
  params: Map<string, string>;
  metrics: KV[];
}

/** A tiny in-memory MLflow tracking server: just what startRun and RunHandle.end() use. */
class FakeMlflow {
  runs = new Map<string, FakeRun>();
  calls: Record<string, number> = {};
  createBodies: Record<string, unknown>[] = [];
  /** Ids handed out in this order (so a test can decide which racer's run sorts first). */
  ids: string[] = [];
  private nextId = 0;

  count(name: string) {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
  }

  newId(): string {
    return this.ids[this.nextId++] ?? `run${String(this.nextId).padStart(4, '0')}`;
  }

  /** Store a run as runs/create would, returning the response body. */
  store(
    body: { experiment_id: string; run_name?: string; start_time?: number; tags?: KV[] },
    id = this.newId(),
  ) {
    const run: FakeRun = {
      run_id: id,
      experiment_id: body.experiment_id,
      run_name: body.run_name ?? id,
      status: 'RUNNING',
      lifecycle_stage: 'active',
      start_time: body.start_time ?? Date.now(),
      tags: new Map((body.tags ?? []).map((t) => [t.key, t.value])),
      params: new Map(),
      metrics: [],
    };
    this.runs.set(id, run);
    return { run: this.toJson(run) };
  }

  toJson(r: FakeRun) {
    return {
      info: {
        run_id: r.run_id,
        run_uuid: r.run_id,
        experiment_id: r.experiment_id,
        run_name: r.run_name,
        status: r.status,
        start_time: r.start_time,
        end_time: r.end_time,
        lifecycle_stage: r.lifecycle_stage,
        artifact_uri: `mlflow-artifacts:/${r.experiment_id}/${r.run_id}/artifacts`,
      },
      data: {
        tags: [...r.tags].map(([key, value]) => ({ key, value })),
        params: [...r.params].map(([key, value]) => ({ key, value })),
      },
    };
  }

  active(): FakeRun[] {
    return [...this.runs.values()].filter((r) => r.lifecycle_stage === 'active');
  }

  /** What runs/search answers for `tags.\`runwarden.request_id\` = '<id>'` (active runs only). */
  search(body: { experiment_ids?: string[]; filter?: string; run_view_type?: string }) {
    const m = /tags\.`?runwarden\.request_id`?\s*=\s*'([^']*)'/.exec(body.filter ?? '');
    if (!m) throw new Error(`fake MLflow: unsupported filter ${body.filter}`);
    const requestId = m[1];
    const found = [...this.runs.values()].filter(
      (r) =>
        (body.experiment_ids ?? []).includes(r.experiment_id) &&
        r.tags.get(REQUEST_ID_TAG) === requestId &&
        (body.run_view_type === 'ALL' || r.lifecycle_stage === 'active'),
    );
    return found.length ? { runs: found.map((r) => this.toJson(r)) } : {};
  }

  /** Handlers; `create` lets a test replace the runs/create behaviour. */
  handlers(create?: (body: Record<string, unknown>, n: number) => Promise<Response>) {
    return [
      http.post(`${API}/runs/create`, async ({ request }) => {
        this.count('create');
        const body = (await request.json()) as Record<string, unknown>;
        this.createBodies.push(body);
        if (create) return create(body, this.calls.create!);
        return HttpResponse.json(this.store(body as never));
      }),
      http.get(`${API}/runs/get`, ({ request }) => {
        this.count('get');
        const runId = new URL(request.url).searchParams.get('run_id') ?? '';
        const run = this.runs.get(runId);
        if (!run) {
          return HttpResponse.json(
            { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run '${runId.slice(0, 40)}' not found` },
            { status: 404 },
          );
        }
        return HttpResponse.json({ run: this.toJson(run) });
      }),
      http.post(`${API}/runs/search`, async ({ request }) => {
        this.count('search');
        return HttpResponse.json(this.search((await request.json()) as never));
      }),
      http.post(`${API}/runs/delete`, async ({ request }) => {
        this.count('delete');
        const { run_id } = (await request.json()) as { run_id: string };
        const run = this.runs.get(run_id);
        if (!run) {
          return HttpResponse.json(
            { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run '${run_id}' not found` },
            { status: 404 },
          );
        }
        run.lifecycle_stage = 'deleted';
        return HttpResponse.json({});
      }),
      http.post(`${API}/runs/log-batch`, async ({ request }) => {
        this.count('log-batch');
        const body = (await request.json()) as { run_id: string; tags?: KV[]; params?: KV[]; metrics?: KV[] };
        const run = this.runs.get(body.run_id);
        if (!run) {
          return HttpResponse.json(
            { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run '${body.run_id}' not found` },
            { status: 404 },
          );
        }
        for (const t of body.tags ?? []) run.tags.set(t.key, t.value);
        for (const p of body.params ?? []) run.params.set(p.key, p.value);
        run.metrics.push(...(body.metrics ?? []));
        return HttpResponse.json({});
      }),
      http.post(`${API}/runs/update`, async ({ request }) => {
        this.count('update');
        const body = (await request.json()) as { run_id: string; status?: string; end_time?: number };
        const run = this.runs.get(body.run_id);
        if (!run) {
          return HttpResponse.json(
            { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run '${body.run_id}' not found` },
            { status: 404 },
          );
        }
        if (body.status) run.status = body.status;
        if (body.end_time) run.end_time = body.end_time;
        return HttpResponse.json({ run_info: this.toJson(run).info });
      }),
    ];
  }
}

/** A promise with its resolve function, to order events across concurrent handlers. */
function gate<T = void>() {
  let open!: (v: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

let fake: FakeMlflow;
let handle: RunHandle | undefined;
beforeEach(() => {
  fake = new FakeMlflow();
  handle = undefined;
});
afterEach(async () => {
  // a test that failed half-way still closes its handle so no timer or open-run entry leaks
  if (handle && handle.status === 'RUNNING') await handle.end().catch(() => undefined);
  server.resetHandlers();
});

const client = (timeoutMs = 2_000) =>
  createMlflowClient({
    trackingUri: BASE,
    retry: { baseDelayMs: 1, maxDelayMs: 5, maxRetries: 3 },
    timeoutMs,
  });

describe('startRun: idempotent create', () => {
  it('startRun: when runs/create times out after the server created the run, the retry finds it and exactly one run exists', async () => {
    server.use(
      ...fake.handlers(async (body) => {
        fake.store(body as never);
        await delay(1_000); // the answer never reaches the client (timeout 100 ms)
        return HttpResponse.json({});
      }),
    );
    handle = await startRun(client(100), { experimentId: '1', runName: 'r', handleSignals: false });

    expect(fake.runs.size).toBe(1);
    const only = [...fake.runs.values()][0]!;
    expect(only.lifecycle_stage).toBe('active');
    expect(handle.runId).toBe(only.run_id);
    expect(handle.artifactUri).toBe(`mlflow-artifacts:/1/${only.run_id}/artifacts`);
    expect(fake.calls.create).toBe(1);
    expect(fake.calls.search).toBe(1);
    expect(fake.calls.delete).toBeUndefined();

    await handle.end();
    expect(only.status).toBe('FINISHED');
    expect(fake.calls.update).toBe(1);
  });

  // The retry's own run is kept whatever the ids; the late one is closed KILLED, tagged and deleted.
  it.each([
    { order: 'the late run sorts last', lateId: 'run-b', retryId: 'run-a' },
    { order: 'the late run sorts first', lateId: 'run-a', retryId: 'run-b' },
  ])('startRun: when a timed-out create lands after the retry created a second run, the late run is closed KILLED and deleted so exactly one remains ($order)', async ({
    lateId,
    retryId,
  }) => {
    const retryStored = gate();
    const lateStored = gate();
    server.use(
      ...fake.handlers(async (body, n) => {
        if (n === 1) {
          // The first create is slow: it lands only after the retry has searched (nothing found)
          // and created its own run, but before the retry's duplicate check.
          await Promise.race([retryStored.promise, delay(3_000)]);
          fake.store(body as never, lateId);
          lateStored.open();
          return HttpResponse.json({});
        }
        const res = fake.store(body as never, retryId);
        retryStored.open();
        await lateStored.promise;
        return HttpResponse.json(res);
      }),
    );
    handle = await startRun(client(100), { experimentId: '1', runName: 'r', handleSignals: false });

    expect(fake.calls.create).toBe(2);
    expect(fake.runs.size).toBe(2);
    const active = fake.active();
    expect(active).toHaveLength(1);
    expect(active[0]!.run_id).toBe(retryId);
    expect(handle.runId).toBe(retryId);
    const late = fake.runs.get(lateId)!;
    expect(late.lifecycle_stage).toBe('deleted');
    expect(late.status).toBe('KILLED');
    expect(late.tags.get('runwarden.closed_by')).toBe('runwarden:create-sweep');
    expect(late.tags.get('runwarden.close_reason')).toContain(`duplicate of run ${retryId}`);
    expect(fake.calls.delete).toBe(1);
    // both runs came from the same create request
    expect(late.tags.get(REQUEST_ID_TAG)).toBe(fake.runs.get(retryId)!.tags.get(REQUEST_ID_TAG));

    await handle.end();
    expect(fake.runs.get(retryId)!.status).toBe('FINISHED');
    expect(late.status).toBe('KILLED');
  });

  it('startRun: a 503 on runs/create (nothing created) is retried and creates one run', async () => {
    server.use(
      ...fake.handlers(async (body, n) => {
        if (n === 1) {
          return HttpResponse.json(
            { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' },
            { status: 503 },
          );
        }
        return HttpResponse.json(fake.store(body as never));
      }),
    );
    handle = await startRun(client(), { experimentId: '1', runName: 'r', handleSignals: false });

    expect(fake.calls.create).toBe(2);
    expect(fake.calls.search).toBe(2); // one before the retry's create, one duplicate check after it
    expect(fake.runs.size).toBe(1);
    expect(fake.active()).toHaveLength(1);
    expect(handle.runId).toBe([...fake.runs.keys()][0]);
    expect(fake.calls.delete).toBeUndefined();
    await handle.end();
  });

  it('startRun: a 404 RESOURCE_DOES_NOT_EXIST on runs/create is not retried and no run is left behind', async () => {
    server.use(
      ...fake.handlers(async () =>
        HttpResponse.json(
          { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'No Experiment with id=99 exists' },
          { status: 404 },
        ),
      ),
    );
    const err = await startRun(client(), { experimentId: '99', handleSignals: false }).catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(fake.calls.create).toBe(1);
    expect(fake.calls.search).toBeUndefined();
    expect(fake.runs.size).toBe(0);
  });

  it('startRun: a create that keeps failing with 503 gives up after maxRetries and creates nothing', async () => {
    server.use(...fake.handlers(async () => new HttpResponse(null, { status: 503 })));
    const err = await startRun(client(), { experimentId: '1', handleSignals: false }).catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(503);
    expect(fake.calls.create).toBe(4); // 1 + maxRetries (3)
    expect(fake.runs.size).toBe(0);
  });
});

describe('startRun: the create request', () => {
  it('startRun: the create request carries the MLflow system tags, runwarden lease tags, request id and start_time', async () => {
    server.use(...fake.handlers());
    fake.store({ experiment_id: '1', run_name: 'parent' }, 'parent123');
    const before = Date.now();
    handle = await startRun(client(), {
      experimentId: '1',
      runName: 'my-run',
      description: 'what this run is for',
      parentRunId: 'parent123',
      owner: 'alice@box:42',
      user: 'alice',
      sourceName: 'train.ts',
      leaseMs: 120_000,
      tags: { team: 'ml' },
      handleSignals: false,
    });
    const after = Date.now();

    expect(fake.createBodies).toHaveLength(1);
    const body = fake.createBodies[0] as {
      experiment_id: string;
      run_name: string;
      start_time: number;
      tags: KV[];
    };
    expect(body.experiment_id).toBe('1');
    expect(body.run_name).toBe('my-run');
    expect(body.start_time).toBeGreaterThanOrEqual(before);
    expect(body.start_time).toBeLessThanOrEqual(after);

    const tags = Object.fromEntries(body.tags.map((t) => [t.key, t.value]));
    expect(body.tags).toHaveLength(Object.keys(tags).length); // no key sent twice
    expect(tags['mlflow.user']).toBe('alice');
    expect(tags['mlflow.source.name']).toBe('train.ts');
    expect(tags['mlflow.source.type']).toBe('LOCAL');
    expect(tags['mlflow.runName']).toBe('my-run');
    expect(tags['mlflow.note.content']).toBe('what this run is for');
    expect(tags['mlflow.parentRunId']).toBe('parent123');
    expect(tags['runwarden.owner']).toBe('alice@box:42');
    expect(tags.team).toBe('ml');
    expect(Number(tags['runwarden.heartbeat_at'])).toBe(body.start_time);
    expect(Number(tags['runwarden.lease_expires_at'])).toBe(body.start_time + 120_000);
    expect(Number(tags['runwarden.lease_expires_at'])).toBeGreaterThanOrEqual(before + 120_000);
    expect(Number(tags['runwarden.lease_expires_at'])).toBeLessThanOrEqual(after + 120_000);
    expect(tags['runwarden.lease_expiry_status']).toBe('FAILED');
    expect(tags['runwarden.request_id']).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );

    expect(handle.runName).toBe('my-run');
    expect(handle.experimentId).toBe('1');
    await handle.end();
  });

  it('startRun: without description or parent the create request has no note or parent tag, and a new request id each time', async () => {
    server.use(...fake.handlers());
    handle = await startRun(client(), { experimentId: '1', handleSignals: false });
    await handle.end();
    handle = await startRun(client(), { experimentId: '1', handleSignals: false });
    await handle.end();

    const [a, b] = fake.createBodies.map((body) =>
      Object.fromEntries((body.tags as KV[]).map((t) => [t.key, t.value])),
    );
    expect(a).not.toHaveProperty('mlflow.note.content');
    expect(a).not.toHaveProperty('mlflow.parentRunId');
    expect(a).not.toHaveProperty('mlflow.runName');
    expect(a!['mlflow.source.type']).toBe('LOCAL');
    expect(a!['runwarden.request_id']).toBeTruthy();
    expect(a!['runwarden.request_id']).not.toBe(b!['runwarden.request_id']);
  });

  it('startRun: the handle is tracked in the registry it was given until end(), then untracked', async () => {
    server.use(...fake.handlers());
    const registry = new OpenRunRegistry();
    handle = await startRun(client(), { experimentId: '1', registry });
    expect(registry.list()).toContain(handle);
    await handle.end();
    expect(registry.list()).not.toContain(handle);
  });

  it('startRun: a missing experimentId or a too-short lease is refused before any request', async () => {
    server.use(...fake.handlers());
    await expect(startRun(client(), { experimentId: '', handleSignals: false })).rejects.toBeInstanceOf(
      ValidationError,
    );
    const err = await startRun(client(), { experimentId: '1', leaseMs: 500, handleSignals: false }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('leaseMs');
    await expect(
      startRun(client(), { experimentId: '1', tags: { 'bad*key': 'x' }, handleSignals: false }),
    ).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'tags.bad*key' });
    expect(fake.calls).toEqual({});
  });
});
