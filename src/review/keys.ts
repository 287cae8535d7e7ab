/**
 * Where review items live in Redis, under the queue prefix: one hash per item (`item` JSON, `state`,
 * `decision` JSON, `outcome` JSON, `plan` JSON), a sorted set per state scored by creation time,
 * decision counters, and a short-lived apply lock per item. Names avoid `<prefix>:reviews:*`, which
 * belongs to the BullMQ `reviews` queue.
 */
import type { ReviewState } from './types.js';

export function reviewKeys(prefix: string) {
  return {
    item: (id: string) => `${prefix}:review:${id}`,
    byState: (state: ReviewState) => `${prefix}:review-index:${state}`,
    counts: `${prefix}:review-counts`,
    applyLock: (id: string) => `${prefix}:review-apply:${id}`,
  };
}
export type ReviewKeys = ReturnType<typeof reviewKeys>;
