/**
 * The HTTP transport under every MLflow call: adds auth the way MLflow's clients do (Bearer token
 * or Basic), bounds each attempt with a timeout, retries what is safe to repeat, and turns every
 * failure into one of two typed errors (`MlflowApiError`, `MlflowUnreachableError`), whatever the
 * body looked like (JSON, empty, text, HTML). openapi-fetch uses it as its `fetch`.
 */
import { MlflowApiError, MlflowUnreachableError } from '../errors/index.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { parseRetryAfter, type RetryPolicy, withRetry } from './retry.js';

export interface TransportOptions {
  trackingUri: string;
  token?: string;
  username?: string;
  password?: string;
  fetch?: typeof fetch;
  timeoutMs: number;
  retry: RetryPolicy;
  logger?: Logger;
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
];

export function isIdempotentRequest(method: string, pathname: string): boolean {
  if (method !== 'POST') return true;
  return !NON_IDEMPOTENT.some((p) => pathname.endsWith(p));
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
}

export interface Transport {
  /** A `fetch` for openapi-fetch: throws typed errors, never returns a non-2xx response. */
  fetch: (input: Request) => Promise<Response>;
  /**
   * Send a request built fresh for every attempt (so streamed bodies can be re-created).
   * Returns the 2xx response with its body unread; throws typed errors otherwise.
   */
  send: (
    build: (attempt: number) => { url: string; init: RequestInit },
    opts?: SendOptions,
  ) => Promise<Response>;
  readonly trackingUri: string;
}

export function createTransport(opts: TransportOptions): Transport {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const auth = authHeader(opts);
  const log = opts.logger ?? silentLogger;

  async function once(url: string, init: RequestInit, timeoutMs: number, signal?: AbortSignal) {
    const method = (init.method ?? 'GET').toUpperCase();
    const endpoint = describeEndpoint(method, url);
    const headers = new Headers(init.headers);
    if (auth && !headers.has('authorization')) headers.set('authorization', auth);
    const signals: AbortSignal[] = [];
    if (timeoutMs > 0) signals.push(AbortSignal.timeout(timeoutMs));
    if (signal) signals.push(signal);
    let res: Response;
    try {
      res = await doFetch(url, {
        ...init,
        headers,
        signal: signals.length ? AbortSignal.any(signals) : undefined,
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const name = (err as { name?: string }).name;
      const detail =
        name === 'TimeoutError' || name === 'AbortError'
          ? `no answer within ${timeoutMs} ms`
          : describeNetworkError(err);
      throw new MlflowUnreachableError(endpoint, detail, err);
    }
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
        return once(url, init, timeoutMs, sendOpts.signal);
      },
      {
        signal: sendOpts.signal,
        onRetry: (err, attempt, delayMs) =>
          log.warn({ err: (err as Error).message, attempt, delayMs }, 'mlflow request failed; retrying'),
      },
    );
  };

  const fetchForClient = async (input: Request): Promise<Response> => {
    const body = input.body ? await input.text() : undefined;
    return send(() => ({ url: input.url, init: { method: input.method, headers: input.headers, body } }), {
      signal: input.signal,
    });
  };

  return { fetch: fetchForClient, send, trackingUri: opts.trackingUri };
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  return (err as Error).message ?? String(err);
}
