/**
 * Promotion history, which MLflow does not keep (an alias move overwrites the last one): each
 * approval that moves an alias is recorded IN MLflow, so it is visible in the UI and survives the
 * loss of Redis: a registered-model tag `runwarden.promotion.<reviewId>` holding the record as
 * compact JSON (≤ 5000 characters), and a row in a "Promotion history" Markdown table at the end
 * of the registered model's description. Both are idempotent: re-applying a promotion overwrites
 * the tag with the same record and finds its row already there.
 */
import { capForEcho } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import type { PromotionRecord } from './types.js';

export const PROMOTION_TAG_PREFIX = 'runwarden.promotion.';
/** Longest promotion tag value (characters). */
export const PROMOTION_TAG_MAX = 5_000;
const HEADING = '## Promotion history';
const TABLE_HEAD =
  '| when (UTC) | alias | version | previous | judge | review | run | score | notes |\n' +
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |';

/** The record as compact JSON within PROMOTION_TAG_MAX: notes, then metrics, give way first. */
export function promotionJson(rec: PromotionRecord): string {
  let r: PromotionRecord = rec.notes ? { ...rec, notes: capForEcho(rec.notes, 1_000) } : rec;
  let json = JSON.stringify(r);
  if (json.length > PROMOTION_TAG_MAX) {
    const metrics = Object.fromEntries(Object.entries(r.metrics).slice(0, 20));
    r = { ...r, notes: r.notes && capForEcho(r.notes, 200), metrics };
    json = JSON.stringify(r);
  }
  if (json.length > PROMOTION_TAG_MAX) json = JSON.stringify({ ...r, notes: undefined, metrics: {} });
  return json;
}

const cell = (v: unknown, max = 120) =>
  capForEcho(String(v ?? ''), max)
    .replace(/\|/g, '\\|')
    .replace(/\s+/g, ' ');

export function historyRow(rec: PromotionRecord): string {
  return `| ${new Date(rec.at).toISOString().replace('T', ' ').slice(0, 19)} | ${cell(rec.alias)} | ${cell(rec.version)} | ${cell(rec.previousVersion ?? '-')} | ${cell(rec.judge)} | ${cell(rec.reviewId)} | ${cell(rec.runId)} | ${cell(rec.score ?? '')} | ${cell(rec.notes ?? '', 200)} |`;
}

/** The description with the record's row added (unchanged when the row is there already). */
export function withHistoryRow(description: string, rec: PromotionRecord): string {
  if (description.includes(`| ${cell(rec.reviewId)} |`)) return description;
  const trimmed = description.replace(/\s+$/, '');
  const lastLine = trimmed.split('\n').pop() ?? '';
  // Append to the table when it ends the description; otherwise start a new one.
  const tableAtEnd = trimmed.includes(HEADING) && lastLine.startsWith('|');
  const row = historyRow(rec);
  if (tableAtEnd) return `${trimmed}\n${row}\n`;
  return `${trimmed ? `${trimmed}\n\n` : ''}${HEADING}\n\n${TABLE_HEAD}\n${row}\n`;
}

/** Record one promotion on the registered model (tag, then description row). Idempotent. */
export async function recordPromotion(client: MlflowClient, rec: PromotionRecord): Promise<void> {
  await ok(
    client.api.POST('/api/2.0/mlflow/registered-models/set-tag', {
      body: { name: rec.name, key: `${PROMOTION_TAG_PREFIX}${rec.reviewId}`, value: promotionJson(rec) },
    }),
  );
  const { registered_model } = await ok(
    client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name: rec.name } } }),
  );
  const before = registered_model.description ?? '';
  const after = withHistoryRow(before, rec);
  if (after !== before) {
    await ok(
      client.api.PATCH('/api/2.0/mlflow/registered-models/update', {
        body: { name: rec.name, description: after },
      }),
    );
  }
}

/** Promotions of `name` (optionally of one alias), newest first, read from its tags. */
export async function modelHistory(
  client: MlflowClient,
  name: string,
  opts: { alias?: string; limit?: number } = {},
): Promise<PromotionRecord[]> {
  const { registered_model } = await ok(
    client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name } } }),
  );
  const out: PromotionRecord[] = [];
  for (const t of registered_model.tags ?? []) {
    if (!t.key.startsWith(PROMOTION_TAG_PREFIX) || !t.value) continue;
    try {
      const r = JSON.parse(t.value) as PromotionRecord;
      if (!opts.alias || r.alias === opts.alias) out.push(r);
    } catch {
      // a tag someone else wrote by hand: not ours to read
    }
  }
  out.sort((a, b) => b.at - a.at);
  return out.slice(0, opts.limit ?? 100);
}
