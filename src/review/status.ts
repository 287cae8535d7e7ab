/**
 * The review part of `runwarden status`: how many items wait for a judge, decisions so far, and
 * the oldest pending items (id, mode, template, age, run link), as JSON or as text lines.
 */
import type { ReviewStore } from './store.js';
import type { ReviewItem } from './types.js';

export interface ReviewSummary {
  counts: { pending: number; approve: number; reject: number; rework: number };
  oldestPending: ReviewItem[];
  /** Decided items whose apply failed for good (state `failed`), oldest first. */
  failed: ReviewItem[];
}

export async function reviewSummary(store: ReviewStore, oldest = 5): Promise<ReviewSummary> {
  const [counts, oldestPending, failed] = await Promise.all([
    store.counts(),
    store.list({ states: ['pending'], limit: oldest }),
    store.list({ states: ['failed'], limit: oldest }),
  ]);
  return { counts, oldestPending, failed };
}

export function formatReviewSummary(s: ReviewSummary, now = Date.now()): string {
  const c = s.counts;
  const lines = [
    `reviews: pending ${c.pending}  approved ${c.approve}  rejected ${c.reject}  rework ${c.rework}`,
  ];
  for (const i of s.oldestPending) {
    const age = `${Math.round((now - i.createdAt) / 1000)}s`;
    lines.push(
      `  ${i.id}  ${i.mode.padEnd(6)} ${i.template.padEnd(20)} waiting ${age.padStart(7)}  run ${i.runId}`,
    );
  }
  for (const i of s.failed ?? [])
    lines.push(`  ${i.id}  FAILED to apply ${i.decision?.verdict ?? ''}: ${(i.failure ?? '').slice(0, 200)}`);
  return `${lines.join('\n')}\n`;
}
