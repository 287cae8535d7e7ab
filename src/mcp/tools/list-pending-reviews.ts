/**
 * Tool `list_pending_reviews`: the review items waiting for a decision, oldest first, with each
 * one's task, template, run (UI link), creation time and the value of its template's primary
 * metric, and a warning at the top for each item whose re-score disagreed with its run or could
 * not run (the run's `runwarden.eval.note`). The values come from one MLflow search for the whole
 * page; when MLflow cannot answer, the list still comes back (from Redis) without them and says so.
 */
import { z } from 'zod';
import { capForEcho } from '../../errors/index.js';
import { EVAL_TAGS } from '../../eval/rescore.js';
import { type ReviewItem, withComposite } from '../../review/index.js';
import { searchRuns } from '../../tracking/search.js';
import type { ToolContext } from '../context.js';
import { defineTool } from './define.js';
import { iso, metricValue, reviewsOf } from './get-review.js';
import { type MetricValue, toMetricValue } from './shapes.js';

/** Each template's primary metric (`primary_metric`, else its first listed metric). */
function primaryMetrics(ctx: ToolContext): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of ctx.tasks?.templates() ?? []) {
    const name = t.primary_metric?.name ?? t.metrics[0];
    if (name) out.set(t.name, name);
  }
  return out;
}

/** Latest metrics of the items' runs, by run id, in one search; undefined when MLflow failed. */
async function runMetrics(
  ctx: ToolContext,
  items: ReviewItem[],
): Promise<{ metrics?: Map<string, Record<string, number>>; flags?: Map<string, string>; error?: string }> {
  if (!items.length) return { metrics: new Map() };
  // Ids from the store; only id-shaped ones go into the filter.
  const runIds = [...new Set(items.map((i) => i.runId))].filter((r) => /^[A-Za-z0-9_-]{1,64}$/.test(r));
  if (!runIds.length) return { metrics: new Map() };
  try {
    const runs = await searchRuns(ctx.client, {
      experimentIds: [...new Set(items.map((i) => i.experimentId))],
      filter: `attributes.run_id IN (${runIds.map((r) => `'${r}'`).join(', ')})`,
      viewType: 'ALL',
      limit: runIds.length,
    });
    // A re-score that disagreed or failed leaves its note on the run (src/eval/rescore.ts): the
    // claim check's flag (own test rows) first, then the holdout's.
    const flags = new Map<string, string>();
    for (const r of runs) {
      const note = (r.data?.tags ?? []).find((t) => t.key === EVAL_TAGS.note)?.value;
      if (note && r.info?.run_id) flags.set(r.info.run_id, capForEcho(note, 500));
    }
    return {
      flags,
      metrics: new Map(
        runs.map((r) => [
          r.info?.run_id ?? '',
          // `composite` (0.5·RMSE + 0.3·MAE + 0.2·MSE) as the judge computes it, when the run lacks it.
          withComposite(
            Object.fromEntries((r.data?.metrics ?? []).map((m) => [m.key ?? '', Number(m.value)])),
          ),
        ]),
      ),
    };
  } catch (err) {
    return { error: capForEcho((err as Error).message, 300) };
  }
}

export const listPendingReviewsTool = defineTool({
  name: 'list_pending_reviews',
  title: 'List pending reviews',
  description:
    'Reviews waiting for a decision, oldest first, with run link and primary metric value. Then get_review ' +
    'and submit_review.',
  input: {
    mode: z
      .enum(['agent', 'policy'])
      .optional()
      .describe('agent (default): yours to decide; policy: the policy judge’s'),
    limit: z.number().int().min(1).max(100).optional().describe('Default 20, max 100'),
  },
  output: {
    reviews: z.array(
      z.object({
        review_id: z.string(),
        task_id: z.string(),
        template: z.string(),
        sweep_id: z.string().optional(),
        run_id: z.string(),
        run_url: z.string(),
        created_at: z.string(),
        metric: z.string().optional(),
        value: metricValue.optional(),
        /** The judge's re-score disagreed with the run or could not run: why. */
        rescore_flag: z.string().optional(),
      }),
    ),
    more: z.boolean(),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx) {
    const mode = args.mode ?? 'agent';
    const limit = args.limit ?? 20;
    const page = await reviewsOf(ctx).list({ states: ['pending'], mode, limit: limit + 1 });
    const items = page.slice(0, limit);
    const primary = primaryMetrics(ctx);
    const { metrics, flags, error } = await runMetrics(ctx, items);
    const reviews = items.map((i) => {
      const pm = primary.get(i.template);
      const value: MetricValue | undefined =
        pm && metrics?.get(i.runId)?.[pm] !== undefined
          ? toMetricValue(metrics.get(i.runId)?.[pm])
          : undefined;
      return {
        review_id: i.id,
        task_id: i.taskId,
        template: i.template,
        sweep_id: i.sweepId,
        run_id: i.runId,
        run_url: ctx.client.runUrl(i.experimentId, i.runId),
        created_at: iso(i.createdAt),
        metric: pm,
        value,
        rescore_flag: flags?.get(i.runId),
      };
    });
    const more = page.length > limit;
    const lines = reviews.map(
      (r) =>
        `${r.review_id} task ${r.task_id} (${r.template}) run ${r.run_id} since ${r.created_at}` +
        `${r.metric ? ` ${r.metric}=${r.value ?? '?'}` : ''} ${r.run_url}`,
    );
    // Flagged items first, before the list: an agent must not miss them.
    const flagged = reviews.filter((r) => r.rescore_flag).map((r) => `⚠ ${r.review_id}: ${r.rescore_flag}`);
    const text = reviews.length
      ? `${[...flagged, ...lines].join('\n')}${more ? `\nMore are waiting: raise limit (max 100) or decide these first.` : ''}` +
        `${error ? `\nMetric values unavailable (MLflow: ${error}).` : ''}`
      : `No ${mode} reviews pending.`;
    return { structured: { reviews, more }, text };
  },
});
