// Covers src/mlflow/transport.ts (through createMlflowClient): retries, typed errors for JSON and non-JSON bodies, auth headers, non-idempotent POSTs, timeouts.
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MlflowApiError, MlflowUnreachableError } from '../../src/errors/index.js';
import { createMlflowClient, type MlflowClientOptions } from '../../src/mlflow/client.js';

const BASE = 'http://mlflow.test';
const LOG_BATCH = `${BASE}/api/2.0/mlflow/runs/log-batch`;
const RUNS_GET = `${BASE}/api/2.0/mlflow/runs/get`;
const RUNS_CREATE = `${BASE}/api/2.0/mlflow/runs/create`;
const MV_CREATE = `${BASE}/api/2.0/mlflow/model-versions/create`;

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function makeClient(opts: Partial<MlflowClientOptions> & { maxRetries?: number } = {}) {
  const { maxRetries = 3, ...rest } = opts;
  return createMlflowClient({
    trackingUri: BASE,
    retry: { baseDelayMs: 1, maxDelayMs: 5, maxRetries },
    timeoutMs: 2_000,
    ...rest,
  });
}

/** Answers `responses[i]` to the i-th request (the last one repeats) and counts requests. */
function sequence(method: 'get' | 'post', url: string, responses: (() => Response | Promise<Response>)[]) {
  const seen = { count: 0, requests: [] as Request[] };
  server.use(
    http[method](url, ({ request }) => {
      const i = seen.count++;
      seen.requests.push(request.clone());
      const make = responses[Math.min(i, responses.length - 1)]!;
      return make();
    }),
  );
  return seen;
}

const logBatch = (client: ReturnType<typeof makeClient>) =>
  client.api.POST('/api/2.0/mlflow/runs/log-batch', {
    body: { run_id: 'r1', tags: [{ key: 'k', value: 'v' }] },
  });

/** Await a promise that must reject; return the rejection. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

describe('transport retries', () => {
  it('transport: a 503 followed by a success is retried and returns the success', async () => {
    const seen = sequence('get', RUNS_GET, [
      () => HttpResponse.json({ error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }, { status: 503 }),
      () => HttpResponse.json({ run: { info: { run_id: 'r1', status: 'RUNNING' } } }),
    ]);
    const res = await makeClient().api.GET('/api/2.0/mlflow/runs/get', {
      params: { query: { run_id: 'r1' } },
    });
    expect(res.data?.run?.info?.run_id).toBe('r1');
    expect(seen.count).toBe(2);
  });

  it('transport: a 429 with Retry-After: 0 is retried and returns the success', async () => {
    const seen = sequence('post', LOG_BATCH, [
      () =>
        HttpResponse.json(
          { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' },
          { status: 429, headers: { 'Retry-After': '0' } },
        ),
      () => HttpResponse.json({}),
    ]);
    const res = await logBatch(makeClient());
    expect(res.data).toEqual({});
    expect(seen.count).toBe(2);
  });

  it('transport: a 400 INVALID_PARAMETER_VALUE is not retried and becomes an MlflowApiError with the server fields', async () => {
    const seen = sequence('post', LOG_BATCH, [
      () =>
        HttpResponse.json(
          {
            error_code: 'INVALID_PARAMETER_VALUE',
            message: "Changing param values is not allowed. Param with key='lr'",
          },
          { status: 400 },
        ),
    ]);
    const err = await rejection(logBatch(makeClient()));
    expect(err).toBeInstanceOf(MlflowApiError);
    const e = err as MlflowApiError;
    expect(e.code).toBe('MLFLOW_API_ERROR');
    expect(e.status).toBe(400);
    expect(e.errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(e.endpoint).toBe('POST /api/2.0/mlflow/runs/log-batch');
    expect(e.serverMessage).toBe("Changing param values is not allowed. Param with key='lr'");
    expect(e.message).toContain('POST /api/2.0/mlflow/runs/log-batch failed (400 INVALID_PARAMETER_VALUE)');
    expect(seen.count).toBe(1);
  });

  it('transport: a network error on every attempt becomes MlflowUnreachableError after maxRetries retries', async () => {
    const seen = sequence('post', LOG_BATCH, [() => HttpResponse.error()]);
    const err = await rejection(logBatch(makeClient({ maxRetries: 3 })));
    expect(err).toBeInstanceOf(MlflowUnreachableError);
    expect((err as MlflowUnreachableError).code).toBe('MLFLOW_UNREACHABLE');
    expect((err as MlflowUnreachableError).endpoint).toBe('POST /api/2.0/mlflow/runs/log-batch');
    expect((err as Error).message).toContain('MLFLOW_TRACKING_URI');
    expect(seen.count).toBe(4);
  });

  it('transport: a network error followed by a success is retried and returns the success', async () => {
    const seen = sequence('post', LOG_BATCH, [() => HttpResponse.error(), () => HttpResponse.json({})]);
    const res = await logBatch(makeClient());
    expect(res.data).toEqual({});
    expect(seen.count).toBe(2);
  });

  it('transport: a retried POST re-sends the same JSON body', async () => {
    const seen = sequence('post', LOG_BATCH, [
      () => new HttpResponse(null, { status: 502 }),
      () => HttpResponse.json({}),
    ]);
    await logBatch(makeClient());
    expect(seen.count).toBe(2);
    const bodies = await Promise.all(seen.requests.map((r) => r.json()));
    expect(bodies[0]).toEqual({ run_id: 'r1', tags: [{ key: 'k', value: 'v' }] });
    expect(bodies[1]).toEqual(bodies[0]);
  });
});

describe('transport errors from non-JSON bodies', () => {
  it('transport: an empty 404 becomes HTTP_404 saying the endpoint is not implemented', async () => {
    const seen = sequence('post', LOG_BATCH, [() => new HttpResponse(null, { status: 404 })]);
    const err = await rejection(logBatch(makeClient()));
    expect(err).toBeInstanceOf(MlflowApiError);
    const e = err as MlflowApiError;
    expect(e.status).toBe(404);
    expect(e.errorCode).toBe('HTTP_404');
    expect(e.serverMessage).toContain('does not implement the endpoint');
    expect(e.message).toContain('POST /api/2.0/mlflow/runs/log-batch');
    expect(seen.count).toBe(1);
  });

  it('transport: a text/plain 503 becomes HTTP_503 with the text once retries are exhausted', async () => {
    const text =
      'Endpoint: /api/2.0/mlflow-artifacts/artifacts disabled due to the mlflow server running with `--no-serve-artifacts`.';
    const seen = sequence('post', LOG_BATCH, [
      () => new HttpResponse(text, { status: 503, headers: { 'Content-Type': 'text/plain' } }),
    ]);
    const err = await rejection(logBatch(makeClient({ maxRetries: 1 })));
    expect(err).toBeInstanceOf(MlflowApiError);
    const e = err as MlflowApiError;
    expect(e.status).toBe(503);
    expect(e.errorCode).toBe('HTTP_503');
    expect(e.serverMessage).toBe(text);
    expect(e.message).toContain('--no-serve-artifacts');
    expect(seen.count).toBe(2);
  });

  it('transport: an HTML 500 page becomes HTTP_500 with the page text and no tags', async () => {
    const html =
      '<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n' +
      '<p>The server encountered an internal error and was unable to complete your request.</p>\n';
    const seen = sequence('post', LOG_BATCH, [
      () => new HttpResponse(html, { status: 500, headers: { 'Content-Type': 'text/html; charset=utf-8' } }),
    ]);
    const err = await rejection(logBatch(makeClient({ maxRetries: 0 })));
    expect(err).toBeInstanceOf(MlflowApiError);
    const e = err as MlflowApiError;
    expect(e.status).toBe(500);
    expect(e.errorCode).toBe('HTTP_500');
    expect(e.serverMessage).toBe(
      'HTML error page: 500 Internal Server Error Internal Server Error The server encountered an internal error and was unable to complete your request.',
    );
    expect(e.serverMessage).not.toMatch(/[<>]/);
    expect(seen.count).toBe(1);
  });

  it("transport: a text/plain 403 'Invalid Host header' becomes HTTP_403 and is not retried", async () => {
    const text = 'Invalid Host header - possible DNS rebinding attack detected';
    const seen = sequence('post', LOG_BATCH, [
      () => new HttpResponse(text, { status: 403, headers: { 'Content-Type': 'text/plain' } }),
    ]);
    const err = await rejection(logBatch(makeClient()));
    expect(err).toBeInstanceOf(MlflowApiError);
    const e = err as MlflowApiError;
    expect(e.status).toBe(403);
    expect(e.errorCode).toBe('HTTP_403');
    expect(e.serverMessage).toBe(text);
    expect(seen.count).toBe(1);
  });

  it('transport: a JSON body with neither error_code nor detail is kept as text under HTTP_<status>', async () => {
    sequence('post', LOG_BATCH, [() => HttpResponse.json({ oops: 'nope' }, { status: 400 })]);
    const err = await rejection(logBatch(makeClient()));
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('HTTP_400');
    expect((err as MlflowApiError).serverMessage).toBe('{"oops":"nope"}');
  });

  it('transport: a FastAPI {"detail": ...} body becomes HTTP_<status> with the detail as message', async () => {
    sequence('post', LOG_BATCH, [() => HttpResponse.json({ detail: 'Not Found' }, { status: 404 })]);
    const err = await rejection(logBatch(makeClient()));
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(404);
    expect((err as MlflowApiError).errorCode).toBe('HTTP_404');
    expect((err as MlflowApiError).serverMessage).toBe('Not Found');
  });
});

describe('transport auth headers', () => {
  async function authSeen(opts: Partial<MlflowClientOptions>): Promise<string | null> {
    const seen = sequence('get', RUNS_GET, [() => HttpResponse.json({ run: {} })]);
    await makeClient(opts).api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: 'r1' } } });
    expect(seen.count).toBe(1);
    return seen.requests[0]!.headers.get('authorization');
  }

  it('transport: a token is sent as Authorization: Bearer <token>', async () => {
    expect(await authSeen({ token: 't' })).toBe('Bearer t');
  });

  it('transport: username and password are sent as Basic base64(user:pass)', async () => {
    expect(await authSeen({ username: 'u', password: 'p' })).toBe(
      `Basic ${Buffer.from('u:p').toString('base64')}`,
    );
    expect(await authSeen({ username: 'u', password: 'p' })).toBe('Basic dTpw');
  });

  it('transport: a token takes precedence over username and password', async () => {
    expect(await authSeen({ token: 't', username: 'u', password: 'p' })).toBe('Bearer t');
  });

  it('transport: without credentials no Authorization header is sent', async () => {
    expect(await authSeen({})).toBeNull();
  });

  it('transport: the auth header is sent again on a retried request', async () => {
    const seen = sequence('post', LOG_BATCH, [
      () => new HttpResponse(null, { status: 503 }),
      () => HttpResponse.json({}),
    ]);
    await logBatch(makeClient({ token: 't' }));
    expect(seen.requests.map((r) => r.headers.get('authorization'))).toEqual(['Bearer t', 'Bearer t']);
  });
});

describe('transport and non-idempotent POSTs', () => {
  it('transport: a 503 on runs/create is not re-sent and surfaces as MlflowApiError', async () => {
    const seen = sequence('post', RUNS_CREATE, [
      () => HttpResponse.json({ error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }, { status: 503 }),
    ]);
    const err = await rejection(
      makeClient({ maxRetries: 3 }).api.POST('/api/2.0/mlflow/runs/create', {
        body: { experiment_id: '1', run_name: 'r' },
      }),
    );
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(503);
    expect((err as MlflowApiError).errorCode).toBe('TEMPORARILY_UNAVAILABLE');
    expect(seen.count).toBe(1);
  });

  it('transport: a 503 on model-versions/create is not re-sent and surfaces as MlflowApiError', async () => {
    const seen = sequence('post', MV_CREATE, [() => new HttpResponse(null, { status: 503 })]);
    const err = await rejection(
      makeClient({ maxRetries: 3 }).api.POST('/api/2.0/mlflow/model-versions/create', {
        body: { name: 'm', source: 'mlflow-artifacts:/1/r/artifacts/model', run_id: 'r' },
      }),
    );
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).status).toBe(503);
    expect((err as MlflowApiError).errorCode).toBe('HTTP_503');
    expect((err as MlflowApiError).endpoint).toBe('POST /api/2.0/mlflow/model-versions/create');
    expect(seen.count).toBe(1);
  });

  it('transport: a network error on runs/create is not re-sent either', async () => {
    const seen = sequence('post', RUNS_CREATE, [() => HttpResponse.error()]);
    const err = await rejection(
      makeClient({ maxRetries: 3 }).api.POST('/api/2.0/mlflow/runs/create', { body: { experiment_id: '1' } }),
    );
    expect(err).toBeInstanceOf(MlflowUnreachableError);
    expect(seen.count).toBe(1);
  });
});

describe('transport timeouts', () => {
  it('transport: an answer slower than timeoutMs becomes MlflowUnreachableError saying no answer within 50 ms', async () => {
    let count = 0;
    server.use(
      http.post(LOG_BATCH, async () => {
        count++;
        await delay(500);
        return HttpResponse.json({});
      }),
    );
    const started = Date.now();
    const err = await rejection(logBatch(makeClient({ timeoutMs: 50, maxRetries: 1 })));
    expect(err).toBeInstanceOf(MlflowUnreachableError);
    expect((err as MlflowUnreachableError).code).toBe('MLFLOW_UNREACHABLE');
    expect((err as Error).message).toContain('no answer within 50 ms');
    expect((err as MlflowUnreachableError).endpoint).toBe('POST /api/2.0/mlflow/runs/log-batch');
    expect(count).toBe(2);
    // two attempts of 50 ms each, far less than one 500 ms answer
    expect(Date.now() - started).toBeLessThan(450);
  });

  it("transport: a caller's abort is passed through as the caller's reason, not retried", async () => {
    let count = 0;
    server.use(
      http.post(LOG_BATCH, async () => {
        count++;
        await delay(500);
        return HttpResponse.json({});
      }),
    );
    const controller = new AbortController();
    const client = makeClient({ maxRetries: 3 });
    const p = client.transport.send(
      () => ({
        url: LOG_BATCH,
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"run_id":"r"}' },
      }),
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error('stop now')), 20);
    const err = await rejection(p);
    expect((err as Error).message).toBe('stop now');
    expect(err).not.toBeInstanceOf(MlflowUnreachableError);
    expect(count).toBe(1);
  });
});
