/**
 * The per-item apply lock: a Redis key holding a random owner id with a lease, taken only when free
 * (or already ours), renewed every third of the lease while the work runs, and released only by
 * its owner. A holder that dies frees it when the lease runs out, so the next judge can finish.
 */
import { randomUUID } from 'node:crypto';
import type { reviewScripts } from './scripts.js';

/** Run `fn` holding the lock; undefined (and `fn` not run) when someone else holds it. */
export async function withApplyLock<T>(
  scripts: ReturnType<typeof reviewScripts>,
  key: string,
  leaseMs: number,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  const owner = randomUUID();
  if (!(await scripts.lock(key, owner, leaseMs))) return undefined;
  const renew = setInterval(
    () => void scripts.lock(key, owner, leaseMs).catch(() => undefined),
    Math.max(100, Math.floor(leaseMs / 3)),
  );
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await scripts.unlock(key, owner).catch(() => undefined);
  }
}
