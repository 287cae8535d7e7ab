// Covers RunHandle (src/tracking/run-handle.ts) against an msw fake of log-batch/update/get and the artifact PUT: batching limits, write-once params, validation, long params, lossless flush failures, the bounded buffer's backpressure, end() (retryable, fenced), lease renewal and the heartbeat fence.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  MlflowApiError,
  ParamConflictError,
  RunClosedError,
  ValidationError,
} from '../../src/errors/index.js';
import { createMlflowClient, type MlflowClient } from '../../src/mlflow/client.js';
import { RunHandle } from '../../src/tracking/run-handle.js';

const BASE = 'http://mlflow.test';
const API = `${BASE}/api/2.0/mlflow`;
const ARTIFACTS = `${BASE}/api/2.0/mlflow-artifacts/artifacts`;

interface KV {
  key: string;
  value: string;
}
interface Metric {
  key: string;
  value: number | string;
  step: number;
  timestamp: number;
}
interface LogBatch {
  run_id: string;
  metrics?: Metric[];
  params?: KV[];
  tags?: KV[];
}

/** In-memory MLflow for one run ('abc'): records every request in order. */
class FakeRun {
  params = new Map<string, string>();
  tags = new Map<string, string>();
  metrics: Metric[] = [];
  status = 'RUNNING';
  /** While set, runs/update answers this status. */
  failUpdateWith: number | undefined;
  /** Every request, in arrival order. */
  events: { op: string; body: unknown }[] = [];
  /** Accepted log-batch bodies, in order. */
  batches: LogBatch[] = [];
  uploads = new Map<string, string>();
  /** While set, log-batch answers this status. */
  failWith: number | undefined;
  failedBatches = 0;

  ops(op: string) {
    return this.events.filter((e) => e.op === op);
  }

  handlers() {
    return [
      http.post(`${API}/runs/log-batch`, async ({ request }) => {
        const body = (await request.json()) as LogBatch;
        this.events.push({ op: 'log-batch', body });
        if (this.failWith) {
          this.failedBatches++;
          return HttpResponse.json(
            { error_code: 'INTERNAL_ERROR', message: 'database is locked' },
            { status: this.failWith },
          );
        }
        // MLflow refuses the whole batch when a param would change value.
        const changed = (body.params ?? []).filter(
          (p) => this.params.has(p.key) && this.params.get(p.key) !== p.value,
        );
        if (changed.length) {
          const c = changed[0]!;
          return HttpResponse.json(
            {
              error_code: 'INVALID_PARAMETER_VALUE',
              message: `Changing param values is not allowed. Params were already logged='[{'key': '${c.key}', 'old_value': '${this.params.get(c.key)}', 'new_value': '${c.value}'}]' for run ID='abc'.`,
            },
            { status: 400 },
          );
        }
        for (const p of body.params ?? []) this.params.set(p.key, p.value);
        for (const t of body.tags ?? []) this.tags.set(t.key, t.value);
        this.metrics.push(...(body.metrics ?? []));
        this.batches.push(body);
        return HttpResponse.json({});
      }),
      http.post(`${API}/runs/update`, async ({ request }) => {
        const body = (await request.json()) as { run_id: string; status: string; end_time: number };
        this.events.push({ op: 'update', body });
        if (this.failUpdateWith)
          return HttpResponse.json(
            { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'down' },
            { status: this.failUpdateWith },
          );
        this.status = body.status;
        return HttpResponse.json({
          run_info: {
            run_id: 'abc',
            experiment_id: '1',
            status: body.status,
            artifact_uri: 'mlflow-artifacts:/1/abc/artifacts',
            lifecycle_stage: 'active',
          },
        });
      }),
      http.get(`${API}/runs/get`, ({ request }) => {
        this.events.push({ op: 'get', body: new URL(request.url).searchParams.get('run_id') });
        return HttpResponse.json({
          run: {
            info: {
              run_id: 'abc',
              experiment_id: '1',
              status: this.status,
              artifact_uri: 'mlflow-artifacts:/1/abc/artifacts',
              lifecycle_stage: 'active',
            },
            data: {
              params: [...this.params].map(([key, value]) => ({ key, value })),
              tags: [...this.tags].map(([key, value]) => ({ key, value })),
            },
          },
        });
      }),
      http.put(`${ARTIFACTS}/*`, async ({ request }) => {
        const path = new URL(request.url).pathname.slice('/api/2.0/mlflow-artifacts/artifacts/'.length);
        const text = await request.text();
        this.events.push({ op: 'put', body: path });
        this.uploads.set(path, text);
        // No body: msw hands out a tee'd clone of mocked responses, and uploadBytes awaits
        // res.body.cancel(), which never settles on one branch of a tee (see the report).
        return new HttpResponse(null, { status: 200 });
      }),
    ];
  }
}

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

let fake: FakeRun;
const handles: RunHandle[] = [];
beforeEach(() => {
  fake = new FakeRun();
  server.use(...fake.handlers());
});
afterEach(async () => {
  vi.useRealTimers();
  fake.failWith = undefined;
  for (const h of handles.splice(0)) await h.end().catch(() => undefined);
  server.resetHandlers();
});

function makeClient(maxRetries = 2): MlflowClient {
  return createMlflowClient({
    trackingUri: BASE,
    retry: { baseDelayMs: 1, maxDelayMs: 5, maxRetries },
    timeoutMs: 2_000,
  });
}

function newHandle(
  client: MlflowClient = makeClient(),
  extra: Partial<ConstructorParameters<typeof RunHandle>[0]> = {},
): RunHandle {
  const h = new RunHandle({
    client,
    runId: 'abc',
    experimentId: '1',
    runName: 'r',
    artifactUri: 'mlflow-artifacts:/1/abc/artifacts',
    leaseMs: 60000,
    heartbeatMs: 30000,
    flushIntervalMs: 60000,
    ...extra,
  });
  handles.push(h);
  return h;
}

const tagsOf = (b: LogBatch) => Object.fromEntries((b.tags ?? []).map((t) => [t.key, t.value]));
const entities = (b: LogBatch) => (b.metrics?.length ?? 0) + (b.params?.length ?? 0) + (b.tags?.length ?? 0);
const logBatchBodies = () => fake.ops('log-batch').map((e) => e.body as LogBatch);

describe('RunHandle: metric batching', () => {
  it('RunHandle: 2,500 metric points go out in log-batch requests of at most 1000 metrics, each point once and in order', async () => {
    const h = newHandle();
    for (let i = 0; i < 2500; i++)
      await h.logMetric('loss', i / 10, { step: i, timestamp: 1_700_000_000_000 + i });
    await h.flush();

    const bodies = logBatchBodies();
    expect(bodies.length).toBeGreaterThanOrEqual(3);
    for (const b of bodies) {
      expect(b.run_id).toBe('abc');
      expect(b.metrics?.length ?? 0).toBeLessThanOrEqual(1000);
      expect(entities(b)).toBeLessThanOrEqual(1000);
    }
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect(fake.metrics[1234]).toEqual({
      key: 'loss',
      value: 123.4,
      step: 1234,
      timestamp: 1_700_000_001_234,
    });
    expect(h.pending).toBe(0);
  });

  it('RunHandle: when lease tags ride along, a batch holds at most 1000 entities in total', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const t0 = Date.now();
    const h = newHandle();
    vi.setSystemTime(t0 + 5_000); // a renewal is due, so the first batch carries the 2 lease tags
    for (let i = 0; i < 2500; i++) await h.logMetric('acc', 0.5, { step: i });
    await h.flush();

    const bodies = logBatchBodies();
    const withLease = bodies.filter((b) => tagsOf(b)['runwarden.lease_expires_at']);
    expect(withLease).toHaveLength(1);
    expect(withLease[0]!.tags).toHaveLength(2);
    expect(withLease[0]!.metrics).toHaveLength(998);
    for (const b of bodies) expect(entities(b)).toBeLessThanOrEqual(1000);
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
  });

  it('RunHandle: NaN and infinite metric values are sent as the strings MLflow expects', async () => {
    const h = newHandle();
    await h.logMetric('a', Number.NaN);
    await h.logMetric('b', Number.POSITIVE_INFINITY);
    await h.logMetric('c', Number.NEGATIVE_INFINITY);
    await h.flush();
    expect(fake.metrics.map((m) => m.value)).toEqual(['NaN', 'Infinity', '-Infinity']);
  });

  it('RunHandle: nothing is sent until a batch fills, the interval passes or flush() is called', async () => {
    const h = newHandle();
    for (let i = 0; i < 10; i++) await h.logMetric('loss', i, { step: i });
    expect(h.pending).toBe(10);
    expect(fake.events).toHaveLength(0);
    await h.flush();
    expect(fake.ops('log-batch')).toHaveLength(1);
    expect(h.pending).toBe(0);
  });

  it('RunHandle: the 1000th buffered point starts a flush without waiting for the interval', async () => {
    const h = newHandle();
    for (let i = 0; i < 999; i++) await h.logMetric('loss', i, { step: i });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.events).toHaveLength(0);
    await h.logMetric('loss', 999, { step: 999 });
    await expect.poll(() => fake.metrics.length).toBe(1000);
    expect(fake.ops('log-batch')).toHaveLength(1);
    expect(h.pending).toBe(0);
  });
});

describe('RunHandle: params', () => {
  it('RunHandle: 250 params in one logParams call go out in requests of at most 100 params', async () => {
    const h = newHandle();
    const record = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, i]));
    await h.logParams(record);

    const bodies = logBatchBodies();
    expect(bodies.map((b) => b.params?.length)).toEqual([100, 100, 50]);
    for (const b of bodies) expect(entities(b)).toBeLessThanOrEqual(1000);
    expect(fake.params.size).toBe(250);
    expect(fake.params.get('p249')).toBe('249');
  });

  it('RunHandle: logging the same param value twice sends one request; a different value throws ParamConflictError and sends nothing', async () => {
    const h = newHandle();
    await h.logParam('lr', 0.1);
    await h.logParam('lr', '0.1');
    expect(fake.ops('log-batch')).toHaveLength(1);

    const err = await h.logParam('lr', 0.2).catch((e) => e);
    expect(err).toBeInstanceOf(ParamConflictError);
    const e = err as ParamConflictError;
    expect(e.code).toBe('PARAM_CONFLICT');
    expect(e.key).toBe('lr');
    expect(e.runId).toBe('abc');
    expect(e.existingValue).toBe('0.1');
    expect(e.newValue).toBe('0.2');
    expect(e.message).toContain("'lr'");
    expect(e.message).toContain("'0.1'");
    expect(e.message).toContain("'0.2'");
    expect(fake.ops('log-batch')).toHaveLength(1);
    expect(fake.params.get('lr')).toBe('0.1');
  });

  it('RunHandle: a conflicting param in a record refuses the whole record before anything is sent', async () => {
    const h = newHandle();
    await h.logParam('lr', 0.1);
    await expect(h.logParams({ batch_size: 32, lr: 0.3 })).rejects.toBeInstanceOf(ParamConflictError);
    expect(fake.ops('log-batch')).toHaveLength(1);
    expect(fake.params.has('batch_size')).toBe(false);
  });

  it("RunHandle: when MLflow refuses a param someone else logged, ParamConflictError carries the server's value", async () => {
    fake.params.set('lr', '0.5'); // logged by another process
    const h = newHandle();
    const err = await h.logParams({ lr: 0.1, epochs: 3 }).catch((e) => e);

    expect(err).toBeInstanceOf(ParamConflictError);
    const e = err as ParamConflictError;
    expect(e.code).toBe('PARAM_CONFLICT');
    expect(e.key).toBe('lr');
    expect(e.existingValue).toBe('0.5');
    expect(e.newValue).toBe('0.1');
    expect(fake.ops('log-batch')).toHaveLength(1);
    expect(fake.ops('get')).toEqual([{ op: 'get', body: 'abc' }]);
    expect(fake.params.get('lr')).toBe('0.5');

    // the handle now knows the server's value: re-logging it is a no-op, another value is refused locally
    await h.logParam('lr', '0.5');
    await expect(h.logParam('lr', 0.7)).rejects.toMatchObject({
      code: 'PARAM_CONFLICT',
      existingValue: '0.5',
    });
    expect(fake.ops('log-batch')).toHaveLength(1);
  });

  it('RunHandle: an INVALID_PARAMETER_VALUE that is not a param conflict is rethrown as the MlflowApiError', async () => {
    server.use(
      http.post(`${API}/runs/log-batch`, () =>
        HttpResponse.json(
          { error_code: 'INVALID_PARAMETER_VALUE', message: 'something else' },
          { status: 400 },
        ),
      ),
    );
    const h = newHandle();
    const err = await h.logParam('lr', 0.1).catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(fake.ops('get')).toHaveLength(1);
  });

  it('RunHandle: a 7000-character param value is truncated to 6000, uploaded whole as an artifact and listed in runwarden.truncated_params', async () => {
    const h = newHandle();
    const full = `${'x'.repeat(6990)}0123456789`;
    await h.logParams({ prompt: full, short: 'ok' });

    expect(fake.ops('put')).toEqual([{ op: 'put', body: '1/abc/artifacts/runwarden/params/prompt.txt' }]);
    expect(fake.uploads.get('1/abc/artifacts/runwarden/params/prompt.txt')).toBe(full);
    const sent = fake.params.get('prompt')!;
    expect(sent.length).toBeLessThanOrEqual(6000);
    expect(sent.length).toBeGreaterThan(5900);
    expect(full.startsWith(sent.replace(/…\[truncated\]$/, ''))).toBe(true);
    expect(fake.params.get('short')).toBe('ok');
    expect(fake.tags.get('runwarden.truncated_params')).toBe('prompt');
    // the upload happens before the batch, so the param never points at a missing file
    expect(fake.events.map((e) => e.op)).toEqual(['put', 'log-batch']);

    // the same long value again is a no-op
    await h.logParams({ prompt: full });
    expect(fake.events).toHaveLength(2);
  });

  it('RunHandle: runwarden.truncated_params accumulates every truncated key', async () => {
    const h = newHandle();
    await h.logParam('a', 'x'.repeat(7000));
    await h.logParam('b', 'y'.repeat(7000));
    expect(fake.tags.get('runwarden.truncated_params')).toBe('a,b');
    expect([...fake.uploads.keys()].sort()).toEqual([
      '1/abc/artifacts/runwarden/params/a.txt',
      '1/abc/artifacts/runwarden/params/b.txt',
    ]);
  });
});

describe('RunHandle: validation', () => {
  const badKeys = ['', 'a'.repeat(251), 'bad*key', '../x', '/abs', 'a//b', './x'];

  it.each(
    badKeys.map((k) => [k.length > 20 ? `${k.slice(0, 10)}…(${k.length})` : JSON.stringify(k), k]),
  )('RunHandle: the invalid key %s is refused with ValidationError for params, metrics and tags, and nothing is sent', async (_label, key) => {
    const h = newHandle();
    for (const call of [
      () => h.logParam(key, 1),
      () => h.logMetric(key, 1),
      () => h.setTag(key, 'v'),
      () => h.logParams({ fine: 1, [key]: 2 }),
    ]) {
      const err = await call().catch((e) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).code).toBe('VALIDATION_ERROR');
    }
    await h.flush();
    expect(h.pending).toBe(0);
    expect(fake.events).toHaveLength(0);
  });

  it('RunHandle: a 250-character key is accepted', async () => {
    const h = newHandle();
    await h.logParam('k'.repeat(250), 1);
    expect(fake.params.get('k'.repeat(250))).toBe('1');
  });

  it('RunHandle: bad metric steps, timestamps and values are refused before buffering', async () => {
    const h = newHandle();
    await expect(h.logMetric('m', 1, { step: 1.5 })).rejects.toMatchObject({ field: 'metrics.m.step' });
    await expect(h.logMetric('m', 1, { timestamp: -1 })).rejects.toMatchObject({
      field: 'metrics.m.timestamp',
    });
    await expect(h.logMetric('m', '1' as unknown as number)).rejects.toBeInstanceOf(ValidationError);
    expect(h.pending).toBe(0);
  });
});

describe('RunHandle: flush failures', () => {
  it('RunHandle: a failed flush keeps the points, and the next flush after recovery sends each exactly once', async () => {
    const h = newHandle(makeClient(0));
    for (let i = 0; i < 700; i++) await h.logMetric('loss', i, { step: i });
    fake.failWith = 500;

    const err = await h.flush().catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(500);
    expect(h.pending).toBe(700);
    const err2 = await h.flush().catch((e) => e);
    expect(err2).toBeInstanceOf(MlflowApiError);
    expect(fake.failedBatches).toBe(2);
    expect(fake.metrics).toHaveLength(0);

    fake.failWith = undefined;
    await h.flush();
    expect(h.pending).toBe(0);
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 700 }, (_, i) => i));
  });

  it('RunHandle: during an outage, 5,000 points logged are all kept, background retries back off (a handful of requests, not one per point), and all arrive after recovery', async () => {
    const h = newHandle(makeClient(0));
    fake.failWith = 503;
    for (let i = 0; i < 5_000; i++) await h.logMetric('loss', i, { step: i });
    expect(h.pending).toBe(5_000);
    await expect.poll(() => h.flushError).toBeInstanceOf(MlflowApiError);
    expect(fake.failedBatches).toBeLessThan(10);
    fake.failWith = undefined;
    await h.flush();
    expect(h.pending).toBe(0);
    expect(h.flushError).toBeUndefined();
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
  });

  it('RunHandle: when the server fails mid-stream, accepted points are not re-sent and the rest arrive after recovery', async () => {
    const h = newHandle(makeClient(0));
    let seen = 0;
    let recovered = false;
    let release!: () => void;
    const firstHeld = new Promise<void>((resolve) => {
      release = resolve;
    });
    server.use(
      http.post(`${API}/runs/log-batch`, async () => {
        // The first batch is held until every point is buffered, then accepted; the server
        // fails every later batch until it recovers.
        if (++seen === 1) await firstHeld;
        else if (!recovered) fake.failWith = 503;
        return undefined; // fall through to the fake's handler
      }),
    );
    for (let i = 0; i < 2000; i++) await h.logMetric('loss', i, { step: i });
    release();
    const err = await h.flush().catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(503);
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(h.pending).toBe(1000);

    recovered = true;
    fake.failWith = undefined;
    await h.flush();
    expect(h.pending).toBe(0);
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });

  it('RunHandle: points logged while a failing flush is in flight stay behind the returned points, in order', async () => {
    const h = newHandle(makeClient(0));
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inFlight = false;
    server.use(
      http.post(`${API}/runs/log-batch`, async () => {
        if (fake.failWith) {
          inFlight = true;
          await held;
        }
        return undefined; // fall through to the fake's handler
      }),
    );
    for (let i = 0; i < 700; i++) await h.logMetric('loss', i, { step: i });
    fake.failWith = 503;
    const first = h.flush().catch((e) => e);
    await expect.poll(() => inFlight).toBe(true);
    for (let i = 700; i < 800; i++) await h.logMetric('loss', i, { step: i });
    release();
    expect(await first).toBeInstanceOf(MlflowApiError);
    expect(h.pending).toBe(800);

    fake.failWith = undefined;
    await h.flush();
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 800 }, (_, i) => i));
  });

  it('RunHandle: a background flush failure never refuses a point: the next logMetric call takes its point, flushError reports the failure', async () => {
    const h = newHandle(makeClient(0));
    fake.failWith = 500;
    for (let i = 0; i < 1000; i++) await h.logMetric('loss', i, { step: i }); // the 1000th starts a flush
    await expect.poll(() => fake.failedBatches).toBeGreaterThanOrEqual(1);
    await h.logMetric('loss', 1000, { step: 1000 });
    expect(h.pending).toBe(1001);
    expect((h.flushError as MlflowApiError).status).toBe(500);

    fake.failWith = undefined;
    await h.flush();
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 1001 }, (_, i) => i));
  });

  it('RunHandle: the background flush keeps retrying on its interval after a failure, without any further call, until the points are stored', async () => {
    const h = newHandle(makeClient(0), { flushIntervalMs: 20 });
    fake.failWith = 503;
    for (let i = 0; i < 10; i++) await h.logMetric('loss', i, { step: i });
    await expect.poll(() => fake.failedBatches).toBeGreaterThanOrEqual(2);
    fake.failWith = undefined;
    await expect.poll(() => fake.metrics.length, { timeout: 10_000 }).toBe(10);
    expect(h.pending).toBe(0);
  });

  it('RunHandle: end() when points still cannot be stored at its deadline ends the run FAILED, says how many were not stored, keeps them, and throws', async () => {
    const h = newHandle(makeClient(0), { endFlushTimeoutMs: 300 });
    for (let i = 0; i < 5; i++) await h.logMetric('loss', i, { step: i });
    let failMetrics = true;
    server.use(
      http.post(`${API}/runs/log-batch`, async ({ request }) => {
        const body = (await request.clone().json()) as LogBatch;
        if (failMetrics && body.metrics?.length) {
          return HttpResponse.json({ error_code: 'INTERNAL_ERROR', message: 'disk full' }, { status: 500 });
        }
        return undefined; // fall through to the fake's handler
      }),
    );
    const err = await h.end('FINISHED').catch((e) => e);
    failMetrics = false;
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).serverMessage).toBe('disk full');
    expect(fake.status).toBe('FAILED');
    expect(fake.tags.get('runwarden.close_reason')).toMatch(
      /^5 metric points not stored within 0.3 s: .*disk full/,
    );
    expect(h.status).toBe('FAILED');
    expect(h.unsentPoints().map((p) => p.step)).toEqual([0, 1, 2, 3, 4]);
  });

  it('RunHandle: end() waits for the buffer to drain through an outage shorter than its deadline, then ends FINISHED with every point stored', async () => {
    const h = newHandle(makeClient(0), { endFlushTimeoutMs: 30_000, flushIntervalMs: 20 });
    for (let i = 0; i < 5; i++) await h.logMetric('loss', i, { step: i });
    fake.failWith = 503;
    const ending = h.end('FINISHED');
    await expect.poll(() => fake.failedBatches).toBeGreaterThanOrEqual(2);
    expect(fake.ops('update')).toHaveLength(0);
    fake.failWith = undefined;
    await ending;
    expect(fake.status).toBe('FINISHED');
    expect(fake.metrics.map((m) => m.step)).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('RunHandle: bounded buffer', () => {
  it('RunHandle: logMetric into a full buffer waits until a flush stored enough to make room; the buffer never holds more than its bound', async () => {
    const h = newHandle(makeClient(0), { maxBufferedPoints: 1_500 });
    fake.failWith = 503;
    let accepted = 0;
    let peak = 0;
    const producer = (async () => {
      for (let i = 0; i < 3_000; i++) {
        await h.logMetric('loss', i, { step: i });
        accepted++;
        peak = Math.max(peak, h.pending);
      }
    })();
    await expect.poll(() => accepted).toBe(1_500);
    await expect.poll(() => fake.failedBatches).toBeGreaterThanOrEqual(1);
    expect(accepted).toBe(1_500); // blocked, not dropped
    fake.failWith = undefined;
    await h.flush();
    await producer;
    await h.flush();
    expect(peak).toBeLessThanOrEqual(1_500);
    expect(fake.metrics.map((m) => m.step)).toEqual(Array.from({ length: 3_000 }, (_, i) => i));
  });

  it('RunHandle: the byte bound also holds: long keys fill the buffer sooner', async () => {
    const key = 'k'.repeat(250);
    const h = newHandle(makeClient(0), { maxBufferedBytes: 100 * (64 + 500) });
    fake.failWith = 503;
    let accepted = 0;
    const producer = (async () => {
      for (let i = 0; i < 200; i++) {
        await h.logMetric(key, i, { step: i });
        accepted++;
      }
    })();
    await expect.poll(() => accepted).toBe(100);
    expect(h.pendingBytes).toBeLessThanOrEqual(100 * (64 + 500));
    fake.failWith = undefined;
    await h.flush();
    await producer;
    await h.flush();
    expect(fake.metrics).toHaveLength(200);
  });
});

describe('RunHandle: end()', () => {
  it('RunHandle: end() flushes buffered metrics first, re-reads the run, then sends closed_by/close_reason and runs/update together', async () => {
    const h = newHandle();
    for (let i = 0; i < 3; i++) await h.logMetric('loss', i, { step: i });
    await h.end();

    expect(fake.events).toHaveLength(4);
    expect(fake.events[0]!.op).toBe('log-batch');
    expect((fake.events[0]!.body as LogBatch).metrics).toHaveLength(3);
    expect(fake.events[1]!.op).toBe('get'); // the fence: is the run still ours?
    const last = fake.events.slice(2);
    expect(last.map((e) => e.op).sort()).toEqual(['log-batch', 'update']);
    const closeTags = tagsOf(last.find((e) => e.op === 'log-batch')!.body as LogBatch);
    expect(closeTags['runwarden.closed_by']).toBe('owner');
    expect(closeTags['runwarden.close_reason']).toBe('completed');
    const update = last.find((e) => e.op === 'update')!.body as {
      run_id: string;
      status: string;
      end_time: number;
    };
    expect(update.run_id).toBe('abc');
    expect(update.status).toBe('FINISHED');
    expect(Math.abs(update.end_time - Date.now())).toBeLessThan(5_000);
    expect(h.status).toBe('FINISHED');
    expect(h.pending).toBe(0);
  });

  it('RunHandle: end() when MLflow refuses the close tags still sets the terminal status, then throws the refusal', async () => {
    const h = newHandle();
    server.use(
      http.post('*/api/2.0/mlflow/runs/log-batch', () =>
        HttpResponse.json({ error_code: 'INVALID_PARAMETER_VALUE', message: 'tag refused' }, { status: 400 }),
      ),
    );
    const err = await h.end('FINISHED').catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect(fake.status).toBe('FINISHED');
    expect(h.status).toBe('FINISHED');
  });

  it('RunHandle: end() passes closedBy and reason through to the tags', async () => {
    const h = newHandle();
    await h.end('KILLED', { closedBy: 'signal', reason: 'process received SIGTERM' });
    expect(fake.tags.get('runwarden.closed_by')).toBe('signal');
    expect(fake.tags.get('runwarden.close_reason')).toBe('process received SIGTERM');
    expect(fake.status).toBe('KILLED');
  });

  it("RunHandle: end('FAILED', { error }) writes runwarden.error and a run description containing the error message", async () => {
    const h = newHandle(makeClient(), { description: 'Sweep over lr' });
    await h.end('FAILED', { error: new Error('CUDA out of memory') });

    expect(fake.status).toBe('FAILED');
    expect(fake.tags.get('runwarden.error')).toBe('Error: CUDA out of memory');
    const note = fake.tags.get('mlflow.note.content')!;
    expect(note).toContain('CUDA out of memory');
    expect(note.startsWith('Sweep over lr\n\n')).toBe(true);
    expect(fake.tags.get('runwarden.close_reason')).toBe('failed');
  });

  it("RunHandle: end('FAILED', { error }) names a runwarden error by its code", async () => {
    const h = newHandle();
    await h.end('FAILED', { error: new ValidationError('params.x', 'bad value') });
    expect(fake.tags.get('runwarden.error')).toBe('VALIDATION_ERROR: params.x: bad value');
  });

  it('RunHandle: calling end() twice sends one runs/update and both calls resolve', async () => {
    const h = newHandle();
    const [a, b] = [h.end(), h.end('FAILED')];
    await Promise.all([a, b]);
    await h.end();
    expect(fake.ops('update')).toHaveLength(1);
    expect(fake.status).toBe('FINISHED');
  });

  it('RunHandle: logging after end() throws RunClosedError and sends nothing', async () => {
    const h = newHandle();
    await h.end();
    const before = fake.events.length;
    for (const call of [
      () => h.logMetric('loss', 1),
      () => h.logParam('lr', 1),
      () => h.setTag('t', 'v'),
      () => h.logText('hello', 'notes.txt'),
    ]) {
      const err = await call().catch((e) => e);
      expect(err).toBeInstanceOf(RunClosedError);
      expect((err as RunClosedError).code).toBe('RUN_CLOSED');
      expect((err as RunClosedError).runId).toBe('abc');
    }
    expect(fake.events.length).toBe(before);
  });
});

describe('RunHandle: retryable end()', () => {
  it('RunHandle: after an end() that failed because MLflow was unreachable, a later end() tries again and ends the run', async () => {
    const h = newHandle(makeClient(0));
    await h.logMetric('loss', 1);
    fake.failUpdateWith = 503;
    const err = await h.end('FINISHED').catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect(h.status).toBe('RUNNING');
    expect(fake.status).toBe('RUNNING');
    // Writes stay refused once the owner asked to end the run.
    expect(await h.logMetric('loss', 2).catch((e) => e)).toBeInstanceOf(RunClosedError);

    fake.failUpdateWith = undefined;
    await h.end('FINISHED');
    expect(fake.status).toBe('FINISHED');
    expect(h.status).toBe('FINISHED');
    expect(fake.tags.get('runwarden.closed_by')).toBe('owner');
    expect(fake.metrics).toHaveLength(1);
  });

  it('RunHandle: concurrent end() calls share one attempt: one runs/update', async () => {
    const h = newHandle();
    await Promise.all([h.end(), h.end(), h.end('KILLED')]);
    expect(fake.ops('update')).toHaveLength(1);
    expect(fake.status).toBe('FINISHED');
  });
});

describe('RunHandle: the lease is a fence', () => {
  function closeElsewhere(status: string, closedBy: string, reason: string) {
    fake.status = status;
    fake.tags.set('runwarden.closed_by', closedBy);
    fake.tags.set('runwarden.close_reason', reason);
  }

  it('RunHandle: a heartbeat that finds the run closed by the reaper detaches: signal aborts with RUN_CLOSED naming the closer, writes are refused, end() sends nothing', async () => {
    const h = newHandle(makeClient(0), { heartbeatMs: 20, owner: 'me@host:1' });
    fake.tags.set('runwarden.owner', 'me@host:1');
    await h.logMetric('loss', 1);
    closeElsewhere('FAILED', 'reaper', 'lease expired');
    await expect.poll(() => h.signal.aborted).toBe(true);
    const reason = h.signal.reason as RunClosedError;
    expect(reason).toBeInstanceOf(RunClosedError);
    expect(reason.code).toBe('RUN_CLOSED');
    expect(reason.closedBy).toBe('reaper');
    expect(reason.message).toContain('lease expired');
    expect(reason.message).toContain('1 buffered metric points were not stored');
    const before = fake.events.filter((e) => e.op !== 'get').length;
    for (const call of [() => h.logMetric('loss', 2), () => h.setTag('t', 'v'), () => h.end('FINISHED')]) {
      const err = await call().catch((e) => e);
      expect(err).toBeInstanceOf(RunClosedError);
      expect((err as RunClosedError).closedBy).toBe('reaper');
    }
    expect(fake.events.filter((e) => e.op !== 'get').length).toBe(before);
    expect(fake.status).toBe('FAILED');
    expect(h.status).toBe('FAILED');
    expect(h.pending).toBe(1); // kept, reported, not sent to a run that is not ours
  });

  it('RunHandle: a heartbeat that finds another owner on the run detaches, naming the new owner', async () => {
    const h = newHandle(makeClient(0), { heartbeatMs: 20, owner: 'worker:a' });
    fake.tags.set('runwarden.owner', 'worker:b');
    await expect.poll(() => h.signal.aborted).toBe(true);
    expect((h.signal.reason as RunClosedError).closedBy).toBe('worker:b');
    expect(fake.status).toBe('RUNNING');
    expect(fake.ops('update')).toHaveLength(0);
  });

  it('RunHandle: end() that finds the run closed by someone else leaves its status and closed_by alone and throws RUN_CLOSED', async () => {
    const h = newHandle();
    closeElsewhere('KILLED', 'worker', 'superseded');
    const err = await h.end('FINISHED').catch((e) => e);
    expect(err).toBeInstanceOf(RunClosedError);
    expect((err as RunClosedError).closedBy).toBe('worker');
    expect(fake.ops('update')).toHaveLength(0);
    expect(fake.status).toBe('KILLED');
    expect(fake.tags.get('runwarden.closed_by')).toBe('worker');
    expect(h.signal.aborted).toBe(true);
  });

  it('RunHandle: a retried end() whose first attempt stored the closing tags but not the status recognises its own closed_by and ends the run', async () => {
    const h = newHandle(makeClient(0));
    fake.failUpdateWith = 503;
    await h.end('KILLED', { closedBy: 'signal' }).catch(() => undefined);
    expect(fake.tags.get('runwarden.closed_by')).toBe('signal');
    fake.failUpdateWith = undefined;
    await h.end('KILLED', { closedBy: 'signal' });
    expect(fake.status).toBe('KILLED');
  });
});

describe('RunHandle: lease renewal', () => {
  it('RunHandle: a log call more than 1 s after the last renewal carries the lease tags; one within 1 s does not', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const t0 = Date.now();
    const h = newHandle();

    vi.setSystemTime(t0 + 500);
    await h.setTag('phase', 'warmup');
    expect(tagsOf(logBatchBodies()[0]!)).toEqual({ phase: 'warmup' });

    vi.setSystemTime(t0 + 1_500);
    await h.logParam('lr', 0.1);
    const renewed = tagsOf(logBatchBodies()[1]!);
    expect(renewed['runwarden.lease_expires_at']).toBe(String(t0 + 1_500 + 60_000));
    expect(renewed['runwarden.heartbeat_at']).toBe(String(t0 + 1_500));

    vi.setSystemTime(t0 + 2_000); // 500 ms after the renewal: throttled
    await h.setTag('phase', 'train');
    expect(tagsOf(logBatchBodies()[2]!)).toEqual({ phase: 'train' });

    vi.setSystemTime(t0 + 3_000);
    await h.logMetric('loss', 1);
    await h.flush();
    const last = logBatchBodies()[3]!;
    expect(last.metrics).toHaveLength(1);
    expect(tagsOf(last)['runwarden.lease_expires_at']).toBe(String(t0 + 3_000 + 60_000));
  });

  it('RunHandle: renewLease() sends only the lease tags', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const t0 = Date.now();
    const h = newHandle();
    await h.renewLease();
    expect(logBatchBodies()).toEqual([
      {
        run_id: 'abc',
        tags: [
          { key: 'runwarden.lease_expires_at', value: String(t0 + 60_000) },
          { key: 'runwarden.heartbeat_at', value: String(t0) },
        ],
      },
    ]);
  });
});
