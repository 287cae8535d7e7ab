/**
 * A decision made visible on the reviewed run in the MLflow UI: `runwarden.review.*` tags, and a
 * "Review" section appended to the run's description (the `mlflow.note.content` tag), which keeps
 * its original text. Idempotent: the section names the review id and is added once. The combined
 * text stays within RUN_NOTE_MAX (MLflow keeps 8000 characters in a tag): the appended section is
 * shortened first (its notes, pointing at the `runwarden.review.notes` tag), then the original
 * text's end.
 */
import { capForEcho } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { MLFLOW_TAGS } from '../tracking/tags.js';
import { readRun } from './mlflow-reads.js';
import { reviewTags } from './review-tags.js';

/** Longest notes in the description section (run descriptions are tags: MLflow keeps 8000 characters). */
export const NOTES_IN_DESCRIPTION_MAX = 2_000;
/** Longest run description written (MLflow's tag value limit is 8000 characters). */
export const RUN_NOTE_MAX = 7_900;

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
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/set-tag', {
      body: {
        run_id: item.runId,
        key: MLFLOW_TAGS.note,
        value: withReviewSection(before, item, d, opts.extra),
      },
    }),
  );
}

/** `before` with the review section appended, within RUN_NOTE_MAX characters. */
export function withReviewSection(
  before: string,
  item: ReviewItem,
  d: ReviewDecision,
  extra?: string,
): string {
  const join = (head: string, section: string) =>
    head.trim() ? `${head.replace(/\s+$/, '')}\n\n${section}\n` : `${section}\n`;
  let text = join(before, reviewSection(item, d, extra));
  if (text.length <= RUN_NOTE_MAX) return text;
  // Shorten the section's notes first: the full notes are in the runwarden.review.notes tag.
  const pointer = '\n\n_(notes shortened; the full notes are in the `runwarden.review.notes` tag)_';
  const bare = reviewSection(item, { ...d, notes: undefined }, extra ? capForEcho(extra, 1_000) : undefined);
  const room = RUN_NOTE_MAX - join(before, bare).length - pointer.length - 40; // 40: the cut mark and blank line
  const section =
    d.notes && room > 200
      ? `${reviewSection(item, { ...d, notes: capForEcho(d.notes, room) }, extra ? capForEcho(extra, 1_000) : undefined)}${pointer}`
      : `${bare}${d.notes ? pointer : ''}`;
  text = join(before, section);
  if (text.length <= RUN_NOTE_MAX) return text;
  // Then the original text's end (the section must fit whole).
  const keep = Math.max(0, RUN_NOTE_MAX - section.length - 40);
  return join(`${before.slice(0, keep)}\n\n[…shortened]`, section);
}
