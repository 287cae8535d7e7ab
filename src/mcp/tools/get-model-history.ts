/**
 * Tool `get_model_history`: the promotions of a registered model, newest first: which version an
 * alias moved to and from, when, by which judge and review, with the metrics it was judged on.
 * MLflow keeps no history of alias moves; runwarden records each promotion in MLflow itself (on
 * the registered model), so this reads MLflow only and needs no Redis.
 */
import { z } from 'zod';
import { capForEcho } from '../../errors/index.js';
import { modelHistory } from '../../review/index.js';
import { defineTool } from './define.js';
import { iso, MAX_ENTRIES, metricsRecord } from './get-review.js';
import { toMetricValue } from './shapes.js';

/** Longest judge notes shown per promotion. */
const NOTES_SHOWN = 500;

export const getModelHistoryTool = defineTool({
  name: 'get_model_history',
  title: 'Get model history',
  description:
    'Promotions of a registered model, newest first (MLflow keeps no alias history; runwarden records each ' +
    'approval): alias, version, previous version, judge, review, run, score, metrics, time.',
  input: {
    name: z.string().min(1).describe('Registered model name'),
    alias: z.string().min(1).max(255).optional().describe('Only moves of this alias, e.g. "champion"'),
    limit: z.number().int().min(1).max(100).optional().describe('Default 20, max 100'),
  },
  output: {
    name: z.string(),
    promotions: z.array(
      z.object({
        at: z.string(),
        alias: z.string(),
        version: z.string(),
        previous_version: z.string().optional(),
        judge: z.string(),
        review_id: z.string(),
        run_id: z.string(),
        task_id: z.string(),
        score: z.number().optional(),
        notes: z.string().optional(),
        metrics: metricsRecord,
      }),
    ),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    RESOURCE_DOES_NOT_EXIST:
      'No registered model by that name: check the name (get_model_version reads one).',
  },
  async run(args, ctx) {
    const records = await modelHistory(ctx.client, args.name, {
      alias: args.alias,
      limit: args.limit ?? 20,
    });
    const promotions = records.slice(0, args.limit ?? 20).map((r) => ({
      at: iso(r.at),
      alias: r.alias,
      version: r.version,
      previous_version: r.previousVersion,
      judge: capForEcho(r.judge),
      review_id: r.reviewId,
      run_id: r.runId,
      task_id: r.taskId,
      score: r.score,
      notes: r.notes === undefined ? undefined : capForEcho(r.notes, NOTES_SHOWN),
      metrics: Object.fromEntries(
        Object.entries(r.metrics)
          .slice(0, MAX_ENTRIES)
          .map(([k, v]) => [capForEcho(k, 250), toMetricValue(v)]),
      ),
    }));
    const text = promotions.length
      ? promotions
          .map(
            (p) =>
              `${p.at} ${args.name}@${p.alias} → v${p.version}${p.previous_version ? ` (was v${p.previous_version})` : ''} ` +
              `by ${p.judge}, review ${p.review_id}, run ${p.run_id}${p.score === undefined ? '' : `, score ${p.score}`}`,
          )
          .join('\n')
      : `No promotions recorded for ${capForEcho(args.name)}${args.alias ? `@${capForEcho(args.alias)}` : ''}.`;
    return { structured: { name: args.name, promotions }, text };
  },
});
