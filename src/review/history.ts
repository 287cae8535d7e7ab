/**
 * Promotion history, which MLflow does not keep (an alias move overwrites the last one): each
 * approval that moves an alias is recorded IN MLflow, so it is visible in the UI and survives the
 * loss of Redis: a registered-model tag `runwarden.promotion.<reviewId>` holding the record as
 * compact JSON (≤ 5000 characters) — the record of truth — and a "Promotion history" Markdown
 * table at the end of the registered model's description, REBUILT from those tags on every write
 * (under the model's promotion lock; never read-modify-append, so concurrent promotions lose no
 * row). The table keeps the newest rows that fit in HISTORY_TABLE_MAX characters (MLflow's
 * description column is String(5000) on Postgres) with a line pointing at the tags /
 * `runwarden history`; the description write is best effort (the tags are the record). Cells are
 * plain text: backslashes and Markdown specials are escaped, so notes cannot break or fake a row.
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

/** Longest description the table is kept within, with the text before it (characters). */
export const HISTORY_TABLE_MAX = 4_000;
const FOOTER = (shown: number, all: number) =>
  `_Newest ${shown} of ${all} promotions shown; the full history is in this model's \`${PROMOTION_TAG_PREFIX}*\` tags (\`runwarden history <model>\`)._`;

/** Plain text in a table cell: backslashes and Markdown specials escaped, whitespace folded. */
export const cell = (v: unknown, max = 120) =>
  capForEcho(String(v ?? ''), max)
    .replace(/\s+/g, ' ')
    .replace(/[\\`*_[\]{}()<>#!|~&]/g, (c) => `\\${c}`);

export function historyRow(rec: PromotionRecord): string {
  return `| ${new Date(rec.at).toISOString().replace('T', ' ').slice(0, 19)} | ${cell(rec.alias)} | ${cell(rec.version)} | ${cell(rec.previousVersion ?? '-')} | ${cell(rec.judge)} | ${cell(rec.reviewId)} | ${cell(rec.runId)} | ${cell(rec.score ?? '')} | ${cell(rec.notes ?? '', 200)} |`;
}

/**
 * The description with its history table rebuilt from `records` (any order): the text before the
 * heading is kept (capped), then the newest rows that fit within HISTORY_TABLE_MAX, oldest first.
 */
export function withHistoryTable(description: string, records: PromotionRecord[]): string {
  const at = description.indexOf(HEADING);
  // Text written by hand after the table is kept (moved before it); our rows and footer are rebuilt.
  const after =
    at >= 0
      ? description
          .slice(at)
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('|') && l !== HEADING && !l.startsWith('_Newest '))
      : [];
  const before = (at >= 0 ? description.slice(0, at) : description).replace(/\s+$/, '');
  const own = capForEcho([before, ...after].filter(Boolean).join('\n\n'), 1_500);
  const newest = [...records].sort((a, b) => b.at - a.at || a.reviewId.localeCompare(b.reviewId));
  const head = `${own ? `${own}\n\n` : ''}${HEADING}\n\n${TABLE_HEAD}\n`;
  let budget = HISTORY_TABLE_MAX - head.length - FOOTER(newest.length, newest.length).length - 2;
  const rows: string[] = [];
  for (const r of newest) {
    const row = historyRow(r);
    if (row.length + 1 > budget) break;
    budget -= row.length + 1;
    rows.unshift(row);
  }
  const footer = rows.length < newest.length ? `\n${FOOTER(rows.length, newest.length)}\n` : '';
  return `${head}${rows.join('\n')}\n${footer}`;
}

/** Every promotion record on the registered model, newest first (tags someone else wrote are skipped). */
export async function promotionRecords(client: MlflowClient, name: string): Promise<PromotionRecord[]> {
  const { registered_model } = await ok(
    client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name } } }),
  );
  const out: PromotionRecord[] = [];
  for (const t of registered_model.tags ?? []) {
    if (!t.key.startsWith(PROMOTION_TAG_PREFIX) || !t.value) continue;
    try {
      out.push(JSON.parse(t.value) as PromotionRecord);
    } catch {
      // a tag someone else wrote by hand: not ours to read
    }
  }
  return out.sort((a, b) => b.at - a.at);
}

/**
 * Record one promotion on the registered model: the tag (the record), then the description's
 * table rebuilt from every tag, best effort (a failure there is logged, not thrown). Idempotent.
 * Call it under the model's promotion lock; `fence` is checked before each write.
 */
export async function recordPromotion(
  client: MlflowClient,
  rec: PromotionRecord,
  opts: {
    fence?: () => Promise<void>;
    warn?: (msg: string, extra: Record<string, unknown>) => void;
  } = {},
): Promise<void> {
  await opts.fence?.();
  await ok(
    client.api.POST('/api/2.0/mlflow/registered-models/set-tag', {
      body: { name: rec.name, key: `${PROMOTION_TAG_PREFIX}${rec.reviewId}`, value: promotionJson(rec) },
    }),
  );
  try {
    const { registered_model } = await ok(
      client.api.GET('/api/2.0/mlflow/registered-models/get', { params: { query: { name: rec.name } } }),
    );
    const records: PromotionRecord[] = [];
    for (const t of registered_model.tags ?? []) {
      if (!t.key.startsWith(PROMOTION_TAG_PREFIX) || !t.value) continue;
      try {
        records.push(JSON.parse(t.value) as PromotionRecord);
      } catch {
        // not ours
      }
    }
    const before = registered_model.description ?? '';
    const after = withHistoryTable(before, records);
    if (after !== before) {
      await opts.fence?.();
      await ok(
        client.api.PATCH('/api/2.0/mlflow/registered-models/update', {
          body: { name: rec.name, description: after },
        }),
      );
    }
  } catch (err) {
    if ((err as { name?: string }).name === 'LockLostError') throw err;
    opts.warn?.('the promotion history table was not written (the tags hold the record)', {
      model: rec.name,
      err: (err as Error).message,
    });
  }
}

/** Promotions of `name` (optionally of one alias), newest first, read from its tags. */
export async function modelHistory(
  client: MlflowClient,
  name: string,
  opts: { alias?: string; limit?: number } = {},
): Promise<PromotionRecord[]> {
  const all = await promotionRecords(client, name);
  const out = opts.alias ? all.filter((r) => r.alias === opts.alias) : all;
  return out.slice(0, opts.limit ?? 100);
}
