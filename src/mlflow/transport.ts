/**
 * The HTTP transport under every MLflow call: adds auth the way MLflow's clients do (Bearer token
 * or Basic), and only to the tracking server's own origin (`credentialsFor`), bounds each attempt
 * with a timeout, retries what is safe to repeat, and turns every failure into one of two typed
 * errors (`MlflowApiError`, `MlflowUnreachableError`), whatever the body looked like (JSON, empty,
 * text, HTML). openapi-fetch uses it as its `fetch`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { MlflowApiError, MlflowUnreachableError, redactUrisIn } from '../errors/index.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { isTransient, parseRetryAfter, type RetryPolicy, withRetry } from './retry.js';

/**
 * Whether to reuse connections. MLflow 3 serves through uvicorn, which leaves Nagle's algorithm on:
 * on a reused connection each response waits for the client's delayed ACK (~40 ms; measured here:
 * a create+close run pair took 90 ms with keep-alive and 55 ms without). A fresh local connection
 * costs far less, so `auto` turns keep-alive off for plain-http loopback servers and keeps it for
 * everything else (TLS handshakes are not cheap).
 */
export function resolveKeepAlive(setting: 'auto' | boolean | undefined, trackingUri: string): boolean {
  if (typeof setting === 'boolean') return setting;
  try {
    const u = new URL(trackingUri);
    const loopback =
      ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.hostname.startsWith('127.');
    return !(u.protocol === 'http:' && loopback);
  } catch {
    return true;
  }
}

export interface TransportOptions {
  trackingUri: string;
  token?: string;
  username?: string;
  password?: string;
  fetch?: typeof fetch;
  timeoutMs: number;
  retry: RetryPolicy;
  logger?: Logger;
  /** Reuse connections (see `resolveKeepAlive`; default auto). */
  keepAlive?: 'auto' | boolean;
}

/**
 * POST endpoints whose repetition creates a second object. The transport never re-sends them;
 * the domain layer retries them only after looking for the result of the earlier attempt.
 */
const NON_IDEMPOTENT = [
  '/api/2.0/mlflow/runs/create',
  '/api/2.0/mlflow/model-versions/create',
  '/api/2.0/mlflow/experiments/create',
  '/api/2.0/mlflow/registered-models/create',
  '/api/2.0/mlflow/logged-models',
  '/api/2.0/mlflow/runs/outputs',
];

export function isIdempotentRequest(method: string, pathname: string): boolean {
  if (method !== 'POST') return true;
  return !NON_IDEMPOTENT.some((p) => pathname.endsWith(p));
}

/**
 * For the domain's own retry loops around a create: a transient failure of a request the transport
 * does not re-send. Reads and idempotent writes have been retried already by the transport;
 * retrying their failure again would multiply the attempts (and the wait on a dead server).
 */
export function isTransientUnretried(err: unknown): boolean {
  if (!isTransient(err)) return false;
  const [method = '', pathname = ''] = ((err as { endpoint?: string }).endpoint ?? '').split(' ');
  return !isIdempotentRequest(method, pathname);
}

export function authHeader(o: Pick<TransportOptions, 'token' | 'username' | 'password'>): string | undefined {
  if (o.token) return `Bearer ${o.token}`;
  if (o.username !== undefined) {
    return `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64')}`;
  }
  return undefined;
}

const MAX_ERROR_TEXT = 500;

/** Build the typed error for a non-2xx response, whatever its body. Consumes the body. */
export async function errorFromResponse(res: Response, endpoint: string): Promise<MlflowApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // body unreadable: keep the status alone
  }
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  try {
    const body = JSON.parse(text) as { error_code?: unknown; message?: unknown; detail?: unknown };
    if (body && typeof body === 'object' && typeof body.error_code === 'string') {
      return new MlflowApiError({
        status: res.status,
        errorCode: body.error_code,
        message: typeof body.message === 'string' ? body.message : text.slice(0, MAX_ERROR_TEXT),
        endpoint,
        retryAfterMs,
      });
    }
    // MLflow 3's FastAPI artifact routes answer `{"detail": ...}`.
    if (body && typeof body === 'object' && body.detail !== undefined) {
      const detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
      return new MlflowApiError({
        status: res.status,
        errorCode: `HTTP_${res.status}`,
        message: detail.slice(0, MAX_ERROR_TEXT),
        endpoint,
        retryAfterMs,
      });
    }
  } catch {
    // not JSON: fall through to a text summary
  }
  const isHtml = /^\s*</.test(text);
  const summary = !text.trim()
    ? res.status === 404
      ? 'empty 404: this server does not implement the endpoint (MLflow too old, or not an MLflow server?)'
      : `empty ${res.status} response`
    : isHtml
      ? `HTML error page: ${stripHtml(text).slice(0, MAX_ERROR_TEXT)}`
      : text.trim().slice(0, MAX_ERROR_TEXT);
  return new MlflowApiError({
    status: res.status,
    errorCode: `HTTP_${res.status}`,
    message: summary,
    endpoint,
    retryAfterMs,
  });
}

function stripHtml(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function describeEndpoint(method: string, url: string): string {
  try {
    return `${method} ${new URL(url).pathname}`;
  } catch {
    return `${method} ${url}`;
  }
}

export interface SendOptions {
  /** Retry transient failures (default: decided by method and path). */
  retry?: boolean;
  /** Per-attempt timeout in ms (default: the transport's). 0 = none. */
  timeoutMs?: number;
  /** Caller's cancellation. */
  signal?: AbortSignal;
  /** Read at most this many bytes of the answer (the rest is dropped with the connection). */
  maxBodyBytes?: number;
}

/**
 * One HTTP exchange with MLflow as `observe` listeners see it: every attempt of a retried call, with
 * its status, or `error` when no answer came (`timeout`, `network`). `url` may hold ids and a query.
 */
export interface RequestEvent {
  method: string;
  url: string;
  status?: number;
  error?: 'timeout' | 'network';
  durationMs: number;
}

export interface Transport {
  /** Call `listener` after every HTTP exchange (metrics); returns the function that stops it. */
  observe: (listener: (e: RequestEvent) => void) => () => void;
  /** A `fetch` for openapi-fetch: throws typed errors, never returns a non-2xx response. */
  fetch: (input: Request) => Promise<Response>;
  /**
   * Send a request built fresh for every attempt. Returns the 2xx response (its body buffered,
   * unless a caller-supplied fetch streams it); throws typed errors otherwise.
   */
  send: (
    build: (attempt: number) => { url: string; init: RequestInit },
    opts?: SendOptions,
  ) => Promise<Response>;
  /**
   * PUT a file's bytes, streamed from disk with backpressure (node:http, since fetch's request
   * streams buffer ahead of the socket). `timeoutMs` is an idle timeout. Retried with a fresh stream.
   */
  putFile: (
    url: string,
    file: { path: string; size: number; contentType: string },
    opts?: { timeoutMs?: number; signal?: AbortSignal },
  ) => Promise<void>;
  /** GET a URL's body straight into a file (node:http, backpressure to the socket); idle timeout. */
  getToFile: (
    url: string,
    file: string,
    opts?: { timeoutMs?: number; signal?: AbortSignal },
  ) => Promise<void>;
  readonly trackingUri: string;
}

/**
 * A fetch-shaped call. The built-in one buffers the answer, reading at most `maxBodyBytes` of it
 * (the rest is dropped with the connection); a caller-supplied `fetch` ignores the cap.
 */
type FetchLike = (url: string, init: RequestInit, maxBodyBytes?: number) => Promise<Response>;

/** node:http's response headers as a `Headers` (repeated headers kept). */
function headersOf(res: http.IncomingMessage): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (typeof v === 'string') h.set(k, v);
    else if (Array.isArray(v)) for (const one of v) h.append(k, one);
  }
  return h;
}

/** A buffered node:http answer as a `Response` (no body for 204/205/304, which forbid one). */
function toResponse(res: http.IncomingMessage, body: Buffer): Response {
  const status = res.statusCode ?? 0;
  const noBody = status === 204 || status === 205 || status === 304;
  return new Response(noBody ? null : body, {
    status,
    statusText: res.statusMessage,
    headers: headersOf(res),
  });
}

/**
 * MLflow's JSON calls over node:http(s) with the answer buffered, wrapped as a `Response`.
 * undici's fetch costs about a millisecond more per call than node:http here (WHATWG streams on
 * both sides of a few-KB exchange), and every tool call and task pays it several times over.
 * Request bodies are strings or bytes; files go through `putFile`.
 */
function bufferedHttpFetch(agentFor: (protocol: string) => http.Agent): FetchLike {
  return (url, init, maxBodyBytes = Number.POSITIVE_INFINITY) =>
    new Promise<Response>((resolve, reject) => {
      const body = init.body;
      if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
        throw new TypeError('the MLflow transport sends string or byte bodies; stream files with putFile');
      }
      const target = new URL(url);
      const headers: Record<string, string | number> = {};
      new Headers(init.headers).forEach((v, k) => {
        headers[k] = v;
      });
      const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      if (payload) headers['content-length'] = payload.byteLength;
      const req = (target.protocol === 'https:' ? https : http).request(
        target,
        {
          method: init.method ?? 'GET',
          headers,
          agent: agentFor(target.protocol),
          signal: init.signal ?? undefined,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const done = () => {
            try {
              resolve(toResponse(res, Buffer.concat(chunks)));
            } catch (err) {
              reject(err);
            }
          };
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            size += c.length;
            if (size >= maxBodyBytes) {
              res.destroy();
              done();
            }
          });
          res.on('error', reject);
          res.on('end', done);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

/**
 * The one place credentials are attached: the MLflow token or basic auth goes only to the tracking
 * server's own origin (scheme, host and port of `trackingUri`); any other URL gets none.
 */
export function credentialsFor(
  url: string,
  trackingUri: string,
  auth: string | undefined,
): string | undefined {
  if (!auth) return undefined;
  try {
    return new URL(url).origin === new URL(trackingUri).origin ? auth : undefined;
  } catch {
    return undefined;
  }
}

export function createTransport(opts: TransportOptions): Transport {
  const auth = authHeader(opts);
  const authFor = (url: string) => credentialsFor(url, opts.trackingUri, auth);
  const keepAlive = resolveKeepAlive(opts.keepAlive, opts.trackingUri);
  const agents = { http: new http.Agent({ keepAlive }), https: new https.Agent({ keepAlive }) };
  const agentFor = (protocol: string) => (protocol === 'https:' ? agents.https : agents.http);
  // The built-in fetch has the whole answer when it resolves, so its timer can be cleared then; a
  // caller's fetch may still be reading the body, so its timer stays armed.
  const buffered = !opts.fetch;
  const doFetch: FetchLike = opts.fetch ?? bufferedHttpFetch(agentFor);
  const log = opts.logger ?? silentLogger;
  const observers = new Set<(e: RequestEvent) => void>();
  const emit = (e: RequestEvent) => {
    for (const o of observers) {
      try {
        o(e);
      } catch {
        // an observer's failure never fails the request
      }
    }
  };

  async function once(
    url: string,
    init: RequestInit,
    timeoutMs: number,
    signal?: AbortSignal,
    maxBodyBytes?: number,
  ) {
    const method = (init.method ?? 'GET').toUpperCase();
    const endpoint = describeEndpoint(method, url);
    const headers = new Headers(init.headers);
    const credentials = authFor(url);
    if (credentials && !headers.has('authorization')) headers.set('authorization', credentials);
    if (!keepAlive) headers.set('connection', 'close');
    // One controller for both the timeout and the caller's signal (cheaper than
    // AbortSignal.timeout + AbortSignal.any on every call).
    const ac = new AbortController();
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            ac.abort();
          }, timeoutMs).unref()
        : undefined;
    const forward = () => ac.abort(signal?.reason);
    if (signal) {
      if (signal.aborted) throw signal.reason;
      signal.addEventListener('abort', forward, { once: true });
    }
    let res: Response;
    const started = performance.now();
    const took = () => performance.now() - started;
    try {
      res = await doFetch(url, { ...init, headers, signal: ac.signal }, maxBodyBytes);
    } catch (err) {
      clearTimeout(timer);
      if (signal?.aborted) throw signal.reason ?? err;
      if (observers.size) emit({ method, url, error: timedOut ? 'timeout' : 'network', durationMs: took() });
      const detail = timedOut ? `no answer within ${timeoutMs} ms` : describeNetworkError(err);
      throw new MlflowUnreachableError(endpoint, detail, err);
    } finally {
      signal?.removeEventListener('abort', forward);
    }
    if (buffered) clearTimeout(timer);
    if (observers.size) emit({ method, url, status: res.status, durationMs: took() });
    if (!res.ok) throw await errorFromResponse(res, endpoint);
    return res;
  }

  const send: Transport['send'] = (build, sendOpts = {}) => {
    const first = build(0);
    const method = (first.init.method ?? 'GET').toUpperCase();
    const retry = sendOpts.retry ?? isIdempotentRequest(method, new URL(first.url).pathname);
    const timeoutMs = sendOpts.timeoutMs ?? opts.timeoutMs;
    const policy = retry ? opts.retry : { ...opts.retry, maxRetries: 0 };
    return withRetry(
      policy,
      (attempt) => {
        const { url, init } = attempt === 0 ? first : build(attempt);
        return once(url, init, timeoutMs, sendOpts.signal, sendOpts.maxBodyBytes);
      },
      {
        signal: sendOpts.signal,
        onRetry: (err, attempt, delayMs) =>
          log.warn(
            { err: redactUrisIn((err as Error).message), attempt, delayMs },
            'mlflow request failed; retrying',
          ),
      },
    );
  };

  const fetchForClient = async (input: Request): Promise<Response> => {
    const body = input.body ? await input.text() : undefined;
    return send(() => ({ url: input.url, init: { method: input.method, headers: input.headers, body } }), {
      signal: input.signal,
    });
  };

  /** One streamed request with node:http(s): body from `source` (PUT) or into `sink` (GET). */
  const streamOnce = (
    method: 'PUT' | 'GET',
    url: string,
    io: { source?: { path: string; size: number; contentType: string }; sink?: string },
    timeoutMs: number,
    signal?: AbortSignal,
  ) =>
    new Promise<void>((resolve, reject) => {
      const endpoint = describeEndpoint(method, url);
      const started = performance.now();
      const observe = (o: { status?: number; error?: 'network' }) =>
        observers.size && emit({ method, url, ...o, durationMs: performance.now() - started });
      const target = new URL(url);
      const headers: Record<string, string | number> = {};
      if (io.source) {
        headers['content-type'] = io.source.contentType;
        headers['content-length'] = io.source.size;
      }
      const credentials = authFor(url);
      if (credentials) headers.authorization = credentials;
      // Network failures become MlflowUnreachableError; local file errors (ENOSPC, EACCES) stay
      // as they are, since no retry or tracking URI fixes them.
      const fail = (err: Error) => {
        if (signal?.aborted) return reject(signal.reason ?? err);
        observe({ error: 'network' });
        reject(new MlflowUnreachableError(endpoint, describeNetworkError(err), err));
      };
      let localError: Error | undefined;
      const failLocal = (err: Error) => {
        localError ??= err;
        req.destroy(err);
        reject(err);
      };
      const req = (target.protocol === 'https:' ? https : http).request(
        target,
        { method, headers, signal, agent: agentFor(target.protocol) },
        (res) => {
          const status = res.statusCode ?? 0;
          observe({ status });
          if (status >= 200 && status < 300) {
            if (!io.sink) {
              res.resume();
              res.on('end', () => resolve());
              res.on('error', fail);
              return;
            }
            const file = createWriteStream(io.sink);
            file.on('error', failLocal);
            pipeline(res, file).then(
              () => resolve(),
              (err: Error) => (localError ? undefined : fail(err)),
            );
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', fail);
          res.on('end', () => {
            errorFromResponse(toResponse(res, Buffer.concat(chunks)), endpoint).then(reject, reject);
          });
        },
      );
      if (timeoutMs > 0)
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no progress for ${timeoutMs} ms`)));
      req.on('error', (err) => (localError ? undefined : fail(err)));
      if (io.source) {
        const file = createReadStream(io.source.path);
        file.on('error', failLocal);
        pipeline(file, req).catch(() => undefined);
      } else req.end();
    });

  const retrying = (what: string, signal: AbortSignal | undefined, fn: () => Promise<void>) =>
    withRetry(opts.retry, fn, {
      signal,
      onRetry: (err, attempt, delayMs) =>
        log.warn({ err: redactUrisIn((err as Error).message), attempt, delayMs }, `${what} failed; retrying`),
    });

  const putFile: Transport['putFile'] = (url, file, o = {}) =>
    retrying('artifact upload', o.signal, () =>
      streamOnce('PUT', url, { source: file }, o.timeoutMs ?? opts.timeoutMs, o.signal),
    );

  const getToFile: Transport['getToFile'] = (url, file, o = {}) =>
    retrying('artifact download', o.signal, () =>
      streamOnce('GET', url, { sink: file }, o.timeoutMs ?? opts.timeoutMs, o.signal),
    );

  const observe: Transport['observe'] = (listener) => {
    observers.add(listener);
    return () => observers.delete(listener);
  };

  return { observe, fetch: fetchForClient, send, putFile, getToFile, trackingUri: opts.trackingUri };
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  const own = err as { code?: string; message?: string };
  if (own.code && !own.message?.includes(own.code)) return `${own.code}: ${own.message}`;
  return own.message ?? String(err);
}
