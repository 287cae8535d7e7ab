/**
 * `withRun(client, opts, fn)`: a run whose end is guaranteed. FINISHED when `fn` resolves, FAILED
 * when it throws (the error goes into the run's description and the `runwarden.error` tag), KILLED
 * as soon as `opts.signal` aborts, without waiting for `fn`.
 */
import type { MlflowClient } from '../mlflow/client.js';
import type { RunHandle } from './run-handle.js';
import { type StartRunOptions, startRun } from './start-run.js';

export interface WithRunOptions extends StartRunOptions {
  /** Aborting ends the run KILLED and rejects with the abort reason. */
  signal?: AbortSignal;
}

export async function withRun<T>(
  client: MlflowClient,
  opts: WithRunOptions,
  fn: (run: RunHandle, signal: AbortSignal) => Promise<T> | T,
): Promise<T> {
  const signal = opts.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const run = await startRun(client, opts);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    const result = await Promise.race([Promise.resolve().then(() => fn(run, signal)), aborted]);
    if (signal.aborted) throw signal.reason;
    await run.end('FINISHED');
    return result;
  } catch (err) {
    if (signal.aborted) {
      await run.end('KILLED', { reason: `aborted: ${describe(signal.reason)}` });
    } else {
      await run.end('FAILED', { error: err, reason: `error: ${describe(err)}` });
    }
    throw err;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function describe(x: unknown): string {
  if (x instanceof Error) return x.message || x.name;
  return String(x);
}
