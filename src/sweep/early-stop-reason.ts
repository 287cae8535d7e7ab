/**
 * The abort reason the median-stopping rule hands the worker's attempt signal, recognised by its
 * code (src/queue/attempt-stop.ts turns it into the close reason `early-stopped: ...`, the run
 * ends KILLED and the task `cancelled` without a retry). Kept apart from early-stop.ts so the
 * attempt's stop logic depends on nothing else of the sweep.
 */

/** Every early-stop close reason and task reason starts with this. */
export const EARLY_STOP_PREFIX = 'early-stopped:';

export class EarlyStopReason {
  readonly code = 'EARLY_STOPPED' as const;
  /** `early-stopped: <metric> <value> at step <s> worse than the median <m> of <n> finished siblings`. */
  constructor(readonly message: string) {}
  toString(): string {
    return this.message;
  }
}

/** Whether an abort reason is the median rule's. */
export function isEarlyStop(reason: unknown): reason is EarlyStopReason {
  return (reason as { code?: unknown } | null | undefined)?.code === 'EARLY_STOPPED';
}

/**
 * Whether a task's final reason (or a run's close reason) says the median rule stopped it: the
 * reason is written by this module's rule only, so its prefix is the marker.
 */
export function isEarlyStoppedReason(reason: string | undefined): boolean {
  return reason?.startsWith(EARLY_STOP_PREFIX) === true;
}
