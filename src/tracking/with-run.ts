/**
 * `withRun(client, opts, fn)`: a run whose end is guaranteed. FINISHED when `fn` resolves, FAILED
 * when it throws (the error goes into the run's description and the `runwarden.error` tag), KILLED
 * as soon as `opts.signal` aborts, without waiting for `fn`. If the run is found closed or taken
 * over by someone else (the handle's fence), the signal `fn` receives aborts, withRun rejects with
 * that RunClosedError at once and leaves the run's status alone. Ending waits for buffered metrics
 * to be stored (up to the handle's end deadline), and a failed end is retried once with the same
 * status: a run whose `fn` resolved is never ended FAILED because MLflow was unreachable while it
 * ended (if both tries fail, withRun rejects with the end error and the run's lease expiry closes it).
 */
import type { MlflowClient } from '../mlflow/client.js';
import type { EndOptions } from './close-run.js';
import type { RunHandle } from './run-handle.js';
import { type StartRunOptions, startRun } from './start-run.js';
import type { TerminalStatus } from './tags.js';

export interface WithRunOptions extends StartRunOptions {
  /** Aborting ends the run KILLED and rejects with the abort reason. */
  signal?: AbortSignal;
}

export async function withRun<T>(
  client: MlflowClient,
  opts: WithRunOptions,
  fn: (run: RunHandle, signal: AbortSignal) => Promise<T> | T,
): Promise<T> {
  const outer = opts.signal ?? new AbortController().signal;
  outer.throwIfAborted();
  const run = await startRun(client, opts);
  // What `fn` sees: the caller's abort, or the run lost to someone else.
  const signal = AbortSignal.any([outer, run.signal]);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  let result: T;
  try {
    result = await Promise.race([Promise.resolve().then(() => fn(run, signal)), aborted]);
    if (signal.aborted) throw signal.reason;
  } catch (err) {
    // Lost to someone else: nothing to end (end() would refuse anyway); report who closed it.
    if (run.signal.aborted) throw run.signal.reason;
    if (run.status !== 'RUNNING') throw err; // ended; only its closing tags or points failed
    if (outer.aborted) {
      await endOnce(run, 'KILLED', { reason: `aborted: ${describe(outer.reason)}` });
    } else {
      await endOnce(run, 'FAILED', { error: err, reason: `error: ${describe(err)}` });
    }
    throw err;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
  // `fn` resolved: FINISHED is the run's true status, and the only one tried (a lost run rejects).
  await endOnce(run, 'FINISHED');
  return result;
}

/** end(), tried a second time after a failure (e.g. MLflow briefly unreachable); the second error wins. */
async function endOnce(run: RunHandle, status: TerminalStatus, opts: EndOptions = {}): Promise<void> {
  try {
    await run.end(status, opts);
  } catch (err) {
    if (run.status !== 'RUNNING' || run.signal.aborted) throw err;
    await run.end(status, opts);
  }
}

function describe(x: unknown): string {
  if (x instanceof Error) return x.message || x.name;
  return String(x);
}
