/**
 * The fence around one attempt's BullMQ lock. BullMQ renews a worker's lock in the background but
 * never tells the processor when it lost it: a worker whose Redis traffic stalls past the lock
 * duration, or whose lock was taken, keeps training while another worker runs the re-delivered
 * job. The fence renews the lock itself (`job.extendLock`, every quarter of the lock duration),
 * knows until when the lock is surely held (send time of the last renewal Redis confirmed, plus
 * the lock duration), and aborts its signal with `LOCK_LOST_REASON` as soon as a renewal finds the
 * lock gone (another token, or none), or when less than half the lock duration is left without a
 * confirmed renewal: the attempt then stops (process killed, run closed) while the lock still
 * holds, before any other worker can be given the task. `confirm()` renews once more before a
 * result is reported, retrying until that point.
 */
import type { Job } from 'bullmq';
import { sleep } from '../mlflow/retry.js';

/** Abort reason of an attempt whose worker lost the task's queue lock. */
export const LOCK_LOST_REASON = 'runwarden:lock-lost';

export interface LockFence {
  /** Aborted (reason `LOCK_LOST_REASON`) once the lock is lost or can no longer be vouched for. */
  readonly signal: AbortSignal;
  /** Why the lock counts as lost (undefined while it is held). */
  readonly why: string | undefined;
  /** Renew now; true if Redis confirmed the lock is still ours before it could have expired. */
  confirm(): Promise<boolean>;
  stop(): void;
}

export function startLockFence(
  job: Pick<Job, 'extendLock' | 'processedOn'>,
  token: string,
  lockMs: number,
): LockFence {
  const controller = new AbortController();
  // moveToActive set the lock (for lockMs) just before processedOn was stamped.
  let heldUntil = (job.processedOn ?? Date.now()) + lockMs;
  let why: string | undefined;
  let inflight: Promise<boolean> | undefined;
  let lastSent = 0;

  const lose = (reason: string) => {
    if (why) return;
    why = reason;
    controller.abort(LOCK_LOST_REASON);
  };
  const renew = (): Promise<boolean> => {
    if (why) return Promise.resolve(false);
    if (inflight) return inflight;
    const sentAt = Date.now();
    lastSent = sentAt;
    inflight = job
      .extendLock(token, lockMs)
      .then(
        (r) => {
          if (Number(r) === 1) {
            heldUntil = Math.max(heldUntil, sentAt + lockMs);
            return true;
          }
          lose('another worker holds the lock now (or it expired), so the task was re-delivered');
          return false;
        },
        () => false,
      )
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };
  // Past this point the lock is not vouched for long enough to stop cleanly before it expires.
  const deadline = () => heldUntil - lockMs / 2;
  const check = () => {
    if (why) return;
    const now = Date.now();
    if (now >= deadline()) {
      lose(
        `no renewal confirmed for ${Math.round(lockMs / 2)} ms of its ${lockMs} ms (Redis unreachable or stalled), so the task may be re-delivered`,
      );
    } else if (now - lastSent >= lockMs / 4) {
      void renew();
    }
  };
  const timer = setInterval(check, Math.max(100, Math.min(1_000, Math.floor(lockMs / 10))));
  timer.unref();

  return {
    signal: controller.signal,
    get why() {
      return why;
    },
    async confirm() {
      while (!why) {
        const left = deadline() - Date.now();
        if (left <= 0) {
          check();
          break;
        }
        const ok = await Promise.race([renew(), sleep(left, undefined, { unref: true }).then(() => false)]);
        if (ok) return true;
        if (!why)
          await sleep(Math.min(250, Math.max(0, deadline() - Date.now())), undefined, { unref: true });
      }
      return false;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
