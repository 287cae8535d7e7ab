/**
 * Retry policy for MLflow calls: exponential backoff with full jitter, honouring `Retry-After`,
 * only for failures worth repeating (network errors, timeouts, 408, 429, 5xx). The same policy
 * serves the JSON transport, artifact transfers and the domain-level "look before re-sending"
 * loops for non-idempotent requests.
 */
import { MlflowApiError, MlflowUnreachableError } from '../errors/index.js';

export interface RetryPolicy {
  /** Retries after the first attempt (0 = never retry). */
  maxRetries: number;
  /** Delay before the first retry, before jitter. */
  baseDelayMs: number;
  /** Cap on any single delay. */
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxRetries: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** True for failures that may succeed if repeated: unreachable server, 408, 429 and 5xx. */
export function isTransient(err: unknown): boolean {
  if (err instanceof MlflowUnreachableError) return true;
  if (err instanceof MlflowApiError) return TRANSIENT_STATUS.has(err.status);
  return false;
}

/** Delay before retry number `attempt` (1-based): full jitter over an exponential ceiling. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** Parse a `Retry-After` header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Resolve after `ms`; with `signal`, reject with its reason as soon as it aborts (at once when it
 * already has). `unref` lets the process exit while the timer runs. The one sleep of the code
 * base: callers that want an abort to end the wait quietly add `.catch(() => undefined)`.
 */
export function sleep(ms: number, signal?: AbortSignal, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (opts.unref) t.unref();
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryHooks {
  /** Called before each retry with the error that caused it. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Stop retrying (and rethrow) when this fires. */
  signal?: AbortSignal;
  /** Decide whether an error is worth retrying (default: `isTransient`). */
  retryable?: (err: unknown) => boolean;
}

/**
 * Run `fn` until it succeeds, a non-retryable error occurs, or the policy is exhausted.
 * `fn` receives the 0-based attempt number so it can rebuild request bodies (streams) each time.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<T> {
  const retryable = hooks.retryable ?? isTransient;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.maxRetries || !retryable(err) || hooks.signal?.aborted) throw err;
      const retryAfter = err instanceof MlflowApiError ? err.retryAfterMs : undefined;
      const delay = backoffDelay(policy, attempt + 1, retryAfter);
      hooks.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, hooks.signal);
    }
  }
}
