/**
 * The `runwarden.review.*` tags a decision leaves on the reviewed run and on a promoted model
 * version, so the MLflow UI shows who decided what, when and why. Notes are capped (tag values in
 * the UI stay readable; the full notes are in the review item).
 */
import { capForEcho } from '../errors/index.js';
import type { ReviewDecision, ReviewItem } from './types.js';

/** Longest notes kept in a tag or a description (characters). */
export const NOTES_IN_TAG_MAX = 5_000;

export const REVIEW_TAGS = {
  id: 'runwarden.review.id',
  verdict: 'runwarden.review.verdict',
  judge: 'runwarden.review.judge',
  score: 'runwarden.review.score',
  notes: 'runwarden.review.notes',
  decidedAt: 'runwarden.review.decided_at',
  taskId: 'runwarden.review.task_id',
  reworkTaskId: 'runwarden.review.rework_task_id',
} as const;

export function reviewTags(item: ReviewItem, d: ReviewDecision): Record<string, string> {
  return {
    [REVIEW_TAGS.id]: item.id,
    [REVIEW_TAGS.verdict]: d.verdict,
    [REVIEW_TAGS.judge]: d.judge,
    ...(d.score !== undefined ? { [REVIEW_TAGS.score]: String(d.score) } : {}),
    ...(d.notes ? { [REVIEW_TAGS.notes]: capForEcho(d.notes, NOTES_IN_TAG_MAX) } : {}),
    [REVIEW_TAGS.decidedAt]: new Date(d.at).toISOString(),
    [REVIEW_TAGS.taskId]: item.taskId,
  };
}
