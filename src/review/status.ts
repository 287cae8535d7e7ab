/**
 * The review part of `runwarden status`: how many items wait for a judge, decisions so far, and
 * the oldest pending items (id, mode, template, age, run link), as JSON or as text lines.
 */
import type { ReviewStore } from './store.js';
import type { ReviewItem } from './types.js';

export interface ReviewSummary {
  counts: { pending: number; approve: number; reject: number; rework: number };
  oldestPending: ReviewItem[];
}

export async function reviewSummary(store: ReviewStore, oldest = 5): Promise<ReviewSummary> {
  const [counts, oldestPending] = await Promise.all([
    store.counts(),
    store.list({ states: ['pending'], limit: oldest }),
  ]);
  return { counts, oldestPending };
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
  return `${lines.join('\n')}\n`;
}
