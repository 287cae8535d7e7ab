/**
 * Leased Redis locks with an owner token: the per-item apply lock and the per-registered-model
 * promotion lock. A lock is taken only when free (or already ours), renewed every third of the
 * lease while the work runs, and released only by its owner. A holder that dies frees it when the
 * lease runs out. Fencing: the work gets a `Lease` whose `check()` re-reads the key and throws
 * (LOCK_LOST) when the lock is no longer ours or a renewal failed; callers check before each MLflow
 * write, so a stalled holder whose lease ran out stops instead of writing beside the next one.
 */
import { randomUUID } from 'node:crypto';
import { RunwardenError } from '../errors/index.js';
import type { reviewScripts } from './scripts.js';

type Scripts = ReturnType<typeof reviewScripts>;

export interface Lease {
  /** Throws when the lock is no longer held by this owner (or a renewal failed). */
  check(): Promise<void>;
}

export class LockLostError extends RunwardenError {
  constructor(key: string) {
    super('MLFLOW_API_ERROR', `lost the lock ${key.slice(-120)} while applying; the next pass finishes it`);
  }
}

/** Run `fn` holding the lock; undefined (and `fn` not run) when someone else holds it. */
export async function withApplyLock<T>(
  scripts: Scripts,
  key: string,
  leaseMs: number,
  fn: (lease: Lease) => Promise<T>,
): Promise<T | undefined> {
  const owner = randomUUID();
  if (!(await scripts.lock(key, owner, leaseMs))) return undefined;
  let lost = false;
  const renew = setInterval(
    () =>
      void scripts.lock(key, owner, leaseMs).then(
        (held) => {
          if (!held) lost = true;
        },
        () => {
          lost = true;
        },
      ),
    Math.max(100, Math.floor(leaseMs / 3)),
  );
  renew.unref();
  const lease: Lease = {
    check: async () => {
      if (lost || !(await scripts.held(key, owner))) {
        lost = true;
        throw new LockLostError(key);
      }
    },
  };
  try {
    return await fn(lease);
  } finally {
    clearInterval(renew);
    await scripts.unlock(key, owner).catch(() => undefined);
  }
}

/**
 * Like withApplyLock, but waits (polling every 50-250 ms) up to `waitMs` for the lock; throws a
 * transient error when it stays taken, so the caller's retry finishes later.
 */
export async function withWaitedLock<T>(
  scripts: Scripts,
  key: string,
  leaseMs: number,
  waitMs: number,
  fn: (lease: Lease) => Promise<T>,
): Promise<T> {
  const until = Date.now() + waitMs;
  for (;;) {
    const r = await withApplyLock(scripts, key, leaseMs, async (l) => ({ v: await fn(l) }));
    if (r) return r.v;
    if (Date.now() > until)
      throw new RunwardenError(
        'MLFLOW_API_ERROR',
        `the promotion lock ${key.slice(-120)} stayed taken; retried later`,
      );
    await new Promise((res) => setTimeout(res, 50 + Math.floor(Math.random() * 200)));
  }
}
