/**
 * A decision made visible on the reviewed run in the MLflow UI: `runwarden.review.*` tags, and a
 * "Review" section appended to the run's description (the `mlflow.note.content` tag), which keeps
 * its original text. Idempotent: the section names the review id and is added once.
 */
import { capForEcho } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { MLFLOW_TAGS } from '../tracking/tags.js';
import { readRun } from './mlflow-reads.js';
import { reviewTags } from './review-tags.js';

/** Longest notes in the description section (run descriptions are tags: MLflow keeps 8000 characters). */
export const NOTES_IN_DESCRIPTION_MAX = 2_000;

import type { ReviewDecision, ReviewItem } from './types.js';

export function reviewSection(item: ReviewItem, d: ReviewDecision, extra?: string): string {
  const lines = [
    `## Review (${item.id})`,
    '',
    `**Verdict:** ${d.verdict} · **Judge:** ${capForEcho(d.judge, 200)} · **When:** ${new Date(d.at).toISOString()}${d.score !== undefined ? ` · **Score:** ${d.score}` : ''}`,
  ];
  if (extra) lines.push('', extra);
  if (d.notes) lines.push('', capForEcho(d.notes, NOTES_IN_DESCRIPTION_MAX));
  return lines.join('\n');
}

export async function noteReviewOnRun(
  client: MlflowClient,
  item: ReviewItem,
  d: ReviewDecision,
  opts: { extraTags?: Record<string, string>; extra?: string } = {},
): Promise<void> {
  const tags = { ...reviewTags(item, d), ...opts.extraTags };
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/log-batch', {
      body: { run_id: item.runId, tags: Object.entries(tags).map(([key, value]) => ({ key, value })) },
    }),
  );
  const { tags: now } = await readRun(client, item.runId);
  const before = now[MLFLOW_TAGS.note] ?? '';
  if (before.includes(`## Review (${item.id})`)) return;
  const section = reviewSection(item, d, opts.extra);
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/set-tag', {
      body: {
        run_id: item.runId,
        key: MLFLOW_TAGS.note,
        value: before.trim() ? `${before.replace(/\s+$/, '')}\n\n${section}\n` : `${section}\n`,
      },
    }),
  );
}
