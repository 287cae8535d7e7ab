/**
 * Early stopping for a sweep child: the worker starts one `EarlyStopper` per attempt of a child
 * whose sweep asked for it (`task.sweep.earlyStop`), tells it the attempt's run, and feeds it the
 * attempt's metric events. It keeps the child's best value so far and latest step of the watched
 * metric, reads the sweep's FINISHED siblings from MLflow (siblings.ts: first when the warm-up
 * ends, then at most every `refreshMs`, 5 s by default, and only while metric points arrive; each
 * sibling's history is read once), and applies the median rule (medians.ts) whenever the step advances (coalesced to at
 * most one decision per `evaluateMs`). When the rule fires it calls `stop` once with an
 * `EarlyStopReason`: the worker aborts the attempt with it, the run ends KILLED with close reason
 * `early-stopped: ...`, and the task ends `cancelled` without a retry. A failed MLflow read never
 * stops a child: it is logged and tried again at the next refresh.
 */
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { SweepChild } from '../model/sweep-spec.js';
import { EarlyStopReason } from './early-stop-reason.js';
import { better, decide, stopReasonText } from './medians.js';
import { DEFAULT_MAX_POINTS, DEFAULT_MAX_SIBLINGS, isFilterSafeId, SiblingCache } from './siblings.js';

/** Finished siblings needed before a child can be stopped. */
export const DEFAULT_MIN_SIBLINGS = 2;
/** Shortest time between two looks for newly finished siblings. */
export const DEFAULT_REFRESH_MS = 5_000;
/** Shortest time between two decisions (bursts of points are coalesced). */
export const DEFAULT_EVALUATE_MS = 100;

export interface EarlyStopOptions {
  client: MlflowClient;
  sweep: SweepChild;
  log: Logger;
  /** Called once, when the rule fires. */
  stop: (reason: EarlyStopReason) => void;
  /** @defaultValue 2 */
  minSiblings?: number;
  /** @defaultValue 5000 */
  refreshMs?: number;
  /** @defaultValue 100 */
  evaluateMs?: number;
  /** @defaultValue 100 */
  maxSiblings?: number;
  /** @defaultValue 10000 */
  maxPoints?: number;
}

export interface EarlyStopper {
  /** The attempt's run exists: siblings are searched in its experiment (and not it). */
  runStarted(experimentId: string, runId: string): void;
  /** One metric point the attempt logged (other keys are ignored). */
  observe(e: { key: string; value: number; step: number }): void;
  /** Stop timers; nothing fires afterwards. */
  close(): void;
  /** The reason it stopped the child, once it has. */
  readonly fired: EarlyStopReason | undefined;
}

/** An early stopper for one attempt of a sweep child, or undefined if its sweep has no early stop. */
export function startEarlyStop(o: EarlyStopOptions): EarlyStopper | undefined {
  const rule = o.sweep.earlyStop;
  if (!rule) return undefined;
  if (!isFilterSafeId(o.sweep.id)) {
    o.log.warn({ sweep: o.sweep.id.slice(0, 80) }, 'early stopping off: the sweep id cannot be searched for');
    return undefined;
  }
  const refreshMs = o.refreshMs ?? DEFAULT_REFRESH_MS;
  const evaluateMs = o.evaluateMs ?? DEFAULT_EVALUATE_MS;
  let cache: SiblingCache | undefined;
  let best: number | undefined;
  let step = Number.NEGATIVE_INFINITY;
  let evaluatedStep = Number.NEGATIVE_INFINITY;
  let lastEvaluate = 0;
  let lastRefresh = 0;
  let refreshing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let fired: EarlyStopReason | undefined;

  const evaluate = () => {
    timer = undefined;
    if (closed || fired || !cache || step === Number.NEGATIVE_INFINITY) return;
    lastEvaluate = Date.now();
    evaluatedStep = step;
    const d = decide({
      direction: rule.direction,
      warmupSteps: rule.warmupSteps,
      minSiblings: o.minSiblings ?? DEFAULT_MIN_SIBLINGS,
      step,
      best,
      siblings: cache.values(),
    });
    if (!d.stop) return;
    fired = new EarlyStopReason(stopReasonText(rule.metric, d));
    o.log.info({ sweep: o.sweep.id, reason: fired.message }, 'early-stopping the sweep child');
    o.stop(fired);
  };
  const schedule = (force = false) => {
    if (closed || fired || timer || (!force && step <= evaluatedStep)) return;
    timer = setTimeout(evaluate, Math.max(0, lastEvaluate + evaluateMs - Date.now()));
    timer.unref();
  };
  const refresh = () => {
    if (closed || fired || !cache || refreshing || Date.now() - lastRefresh < refreshMs) return;
    lastRefresh = Date.now();
    const c = cache;
    refreshing = c
      .refresh()
      .then(
        (added) => {
          if (added) schedule(true);
        },
        (err: unknown) =>
          o.log.warn({ sweep: o.sweep.id, err: (err as Error).message }, 'reading finished siblings failed'),
      )
      .finally(() => {
        refreshing = undefined;
      });
  };

  return {
    runStarted(experimentId, runId) {
      cache = new SiblingCache(o.client, {
        sweepId: o.sweep.id,
        metric: rule.metric,
        ownRunId: runId,
        experimentId,
        maxSiblings: o.maxSiblings ?? DEFAULT_MAX_SIBLINGS,
        maxPoints: o.maxPoints ?? DEFAULT_MAX_POINTS,
      });
    },
    observe(e) {
      if (closed || fired || e.key !== rule.metric) return;
      best = better(best, e.value, rule.direction);
      step = Math.max(step, e.step);
      // Before the warm-up ends no decision is possible: nothing to read yet.
      if (step >= rule.warmupSteps) refresh();
      schedule();
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
    get fired() {
      return fired;
    },
  };
}
