/**
 * Where review items live in Redis, under the queue prefix: one hash per item (`item` JSON, `state`,
 * `decision` JSON, `outcome` JSON, `plan` JSON), a sorted set per state scored by creation time,
 * a pending index per mode, decision counters, a short-lived apply lock per item and a promotion
 * lock per registered model. Names avoid `<prefix>:reviews:*`, which
 * belongs to the BullMQ `reviews` queue.
 */
import type { ReviewState } from './types.js';

export function reviewKeys(prefix: string) {
  return {
    item: (id: string) => `${prefix}:review:${id}`,
    byState: (state: ReviewState) => `${prefix}:review-index:${state}`,
    /** Pending items of one mode (list_pending_reviews with a mode reads only these). */
    pendingByMode: (mode: string) => `${prefix}:review-index:pending:${mode}`,
    /** The per-registered-model promotion lock. */
    modelLock: (name: string) => `${prefix}:review-model-lock:${name}`,
    counts: `${prefix}:review-counts`,
    applyLock: (id: string) => `${prefix}:review-apply:${id}`,
  };
}
export type ReviewKeys = ReturnType<typeof reviewKeys>;
