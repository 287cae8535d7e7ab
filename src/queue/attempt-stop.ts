/**
 * How an attempt's end is put into words: why it was stopped (the worker's signal: cancellation,
 * a sweep's early stop, shutdown or a lost queue lock, which wins over the attempt's own timeout)
 * and the close reason that says so, and how a command's exit reads (`exit code 137 (SIGKILL)`).
 */
import { constants as osConstants } from 'node:os';
import { isEarlyStop } from '../sweep/early-stop-reason.js';
import { LOCK_LOST_REASON } from './lock-fence.js';

/** Abort reasons the worker uses. */
export const SHUTDOWN_REASON = 'runwarden:shutdown';

export type StopKind = 'timeout' | 'shutdown' | 'cancelled' | 'lock-lost';

/**
 * Why an attempt was stopped: the worker's signal (cancel, shutdown, lost lock) wins over its own
 * timeout.
 */
export function stopKind(signal: AbortSignal, timeout: AbortSignal): StopKind | undefined {
  if (signal.aborted) {
    if (signal.reason === SHUTDOWN_REASON) return 'shutdown';
    return signal.reason === LOCK_LOST_REASON ? 'lock-lost' : 'cancelled';
  }
  return timeout.aborted ? 'timeout' : undefined;
}

export function stopReason(
  kind: StopKind,
  ctx: { signal: AbortSignal; lockLostWhy?: () => string | undefined },
  timeoutSeconds: number,
) {
  if (kind === 'timeout') return `timed out after ${timeoutSeconds} s; process group killed`;
  if (kind === 'shutdown') return 'the worker shut down; the task goes back to the queue';
  if (kind === 'lock-lost')
    return `lock lost: this worker lost the task's queue lock (${ctx.lockLostWhy?.() ?? 'not renewed in time'}); the task was re-delivered and this attempt stopped`;
  // A sweep child stopped by the median rule (src/sweep/early-stop.ts): `early-stopped: ...`.
  if (isEarlyStop(ctx.signal.reason)) return ctx.signal.reason.message;
  return `cancelled: ${String(ctx.signal.reason ?? 'by request')}`;
}

/**
 * Whether the attempt lost its task (its outcome is then `lock-lost`: no task record, no end
 * event): the worker's signal says the queue lock was lost, or the run was closed by someone else
 * (another attempt settled it as superseded) and the worker cannot confirm it still holds the lock.
 * Without a lock to confirm (an attempt run outside a queue) a run closed elsewhere is a failure.
 */
export async function lostTask(
  ctx: { signal: AbortSignal; confirmLock?: () => Promise<boolean> },
  runSignal: AbortSignal,
): Promise<boolean> {
  if (ctx.signal.aborted && ctx.signal.reason === LOCK_LOST_REASON) return true;
  if (!runSignal.aborted || !ctx.confirmLock) return false;
  return !(await ctx.confirmLock());
}

/** `exit code 2`, or `exit code 137 (SIGKILL)` for a command that died of a signal. */
export function describeExit(exitCode: number | null, signal: NodeJS.Signals | null): string {
  if (exitCode === null) return `signal ${signal ?? 'unknown'}`;
  const name =
    exitCode > 128
      ? Object.entries(osConstants.signals).find(([, n]) => n === exitCode - 128)?.[0]
      : undefined;
  return name ? `exit code ${exitCode} (${name})` : `exit code ${exitCode}`;
}
