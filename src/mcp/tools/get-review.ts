/**
 * Tool `get_review`: the evidence of one review item, what an agent judge decides on: the task,
 * the run (UI link), its metrics and params, the candidate model URI, the current champion with
 * its metrics, the primary metric compared side by side, the policy's checks when there are any,
 * and the decision once there is one. Lists are bounded (100 metrics, 100 params) and every value
 * capped, whatever the run holds. When the template re-scores (review.rescore), the judge's own
 * numbers come with the run's, and a disagreement or a failed re-score heads the text. Also holds
 * what the review tools share (`reviewsOf`, the decision shape).
 */
import { z } from 'zod';
import { capForEcho, RunwardenError } from '../../errors/index.js';
import type { Evidence, ReviewDecision, ReviewItem } from '../../review/index.js';
import type { ReviewStoreApi, ToolContext } from '../context.js';
import { defineTool } from './define.js';
import { type MetricValue, toMetricValue } from './shapes.js';

/** Most metrics and params shown per run; the rest are counted, not shown. */
export const MAX_ENTRIES = 100;
/** Longest param value shown (MLflow allows 6,000 characters). */
const PARAM_VALUE_MAX = 500;
/** Longest decision notes shown (submit_review takes at most 4,000). */
export const NOTES_MAX = 4000;

/** The review store of the context, or an error saying the server has none. */
export function reviewsOf(ctx: ToolContext): ReviewStoreApi {
  if (!ctx.reviews)
    throw new RunwardenError('CONFIG_ERROR', 'this MCP server has no review store (REDIS_URL)');
  return ctx.reviews;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

export const decisionShape = z.object({
  verdict: z.string(),
  judge: z.string(),
  score: z.number().optional(),
  notes: z.string().optional(),
  decided_at: z.string(),
});

export function toDecision(d: ReviewDecision): z.infer<typeof decisionShape> {
  return {
    verdict: d.verdict,
    judge: capForEcho(d.judge),
    score: d.score,
    notes: d.notes === undefined ? undefined : capForEcho(d.notes, NOTES_MAX),
    decided_at: iso(d.at),
  };
}

export const outcomeShape = z.object({
  model_name: z.string().optional(),
  version: z.string().optional(),
  alias: z.string().optional(),
  previous_version: z.string().optional(),
  rework_task_id: z.string().optional(),
  not_promoted: z.string().optional(),
});

export function toOutcome(o: ReviewItem['outcome']): z.infer<typeof outcomeShape> | undefined {
  if (!o) return undefined;
  return {
    model_name: o.modelName,
    version: o.version,
    alias: o.alias,
    previous_version: o.previousVersion,
    rework_task_id: o.reworkTaskId,
    not_promoted: o.notPromoted === undefined ? undefined : capForEcho(o.notPromoted, 1_000),
  };
}

/** At most MAX_ENTRIES metrics, `first` (the primary metric) kept, the rest by name. */
function boundedMetrics(m: Record<string, number>, first?: string): Record<string, MetricValue> {
  const keys = Object.keys(m).sort();
  const ordered = first && first in m ? [first, ...keys.filter((k) => k !== first)] : keys;
  return Object.fromEntries(
    ordered.slice(0, MAX_ENTRIES).map((k) => [capForEcho(k, 250), toMetricValue(m[k])]),
  );
}

function boundedParams(p: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(p)
      .sort()
      .slice(0, MAX_ENTRIES)
      .map((k) => [capForEcho(k, 250), capForEcho(p[k], PARAM_VALUE_MAX)]),
  );
}

/** A metric value: a number, or "NaN" / "Infinity" / "-Infinity" (a short schema: tools/list is budgeted). */
export const metricValue = z.union([z.number(), z.string()]);
export const metricsRecord = z.record(z.string(), metricValue);

const reviewOutput = {
  review_id: z.string(),
  state: z.string(),
  mode: z.string(),
  task_id: z.string(),
  template: z.string(),
  sweep_id: z.string().optional(),
  run_id: z.string(),
  run_url: z.string(),
  created_at: z.string(),
  metrics: metricsRecord,
  metrics_total: z.number(),
  params: z.record(z.string(), z.string()),
  candidate_model_uri: z.string().optional(),
  workspace_artifact: z.string().optional(),
  champion: z
    .object({
      name: z.string(),
      alias: z.string(),
      version: z.string(),
      run_id: z.string().optional(),
      metrics: metricsRecord,
    })
    .optional(),
  primary_metric: z
    .object({
      name: z.string(),
      direction: z.enum(['min', 'max']),
      candidate: metricValue.optional(),
      champion: metricValue.optional(),
      /** candidate − champion */
      delta: z.number().optional(),
      better: z.boolean().optional(),
    })
    .optional(),
  policy: z
    .object({
      passed: z.boolean(),
      checks: z.array(z.object({ metric: z.string(), passed: z.boolean(), why: z.string() })),
    })
    .optional(),
  /** The judge's own re-score of the candidate's ONNX model on the template's holdout. */
  rescore: z
    .object({
      status: z.enum(['ok', 'failed']),
      holdout: z.string(),
      tolerance: z.number(),
      rows: z.number().optional(),
      metrics: z
        .object({ rmse: z.number(), mae: z.number(), mse: z.number(), composite: z.number() })
        .optional(),
      gaps: z.array(
        z.object({
          metric: z.string(),
          reported_as: z.string(),
          reported: metricValue,
          rescored: metricValue,
          gap: metricValue,
        }),
      ),
      worst_gap: metricValue.optional(),
      /** Set when the re-score disagrees beyond the tolerance or could not run: read it first. */
      flag: z.string().optional(),
      summary: z.string(),
      /** The claim check: re-scored on the run's own test rows (tight tolerance), or skipped. */
      // Compact (tools/list budget): the summary carries rows, tolerance and every pair.
      claim: z
        .object({ status: z.enum(['ok', 'skipped']), flag: z.string().optional(), summary: z.string() })
        .optional(),
    })
    .optional(),
  decision: decisionShape.optional(),
  outcome: outcomeShape.optional(),
  /** Why applying the decision failed for good (state `failed`). */
  failure: z.string().optional(),
};
export type ReviewOutput = z.infer<z.ZodObject<typeof reviewOutput>>;

/** The primary metric of candidate and champion side by side, with which one is better. */
function comparePrimary(e: Evidence): ReviewOutput['primary_metric'] {
  const pm = e.primaryMetric;
  if (!pm) return undefined;
  const cand = e.metrics[pm.name];
  const champ = e.champion?.metrics[pm.name];
  const both = Number.isFinite(cand) && Number.isFinite(champ);
  const delta = both ? (cand as number) - (champ as number) : undefined;
  return {
    name: capForEcho(pm.name, 250),
    direction: pm.direction,
    candidate: cand === undefined ? undefined : toMetricValue(cand),
    champion: champ === undefined ? undefined : toMetricValue(champ),
    delta,
    better: delta === undefined ? undefined : pm.direction === 'min' ? delta < 0 : delta > 0,
  };
}

export function toReviewOutput(e: Evidence): ReviewOutput {
  const { item } = e;
  const first = e.primaryMetric?.name;
  return {
    review_id: item.id,
    state: item.state,
    mode: item.mode,
    task_id: item.taskId,
    template: item.template,
    sweep_id: item.sweepId,
    run_id: item.runId,
    run_url: e.runUrl,
    created_at: iso(item.createdAt),
    metrics: boundedMetrics(e.metrics, first),
    metrics_total: Object.keys(e.metrics).length,
    params: boundedParams(e.params),
    candidate_model_uri: e.candidateModelUri,
    workspace_artifact: e.workspaceArtifact,
    champion: e.champion && {
      name: e.champion.name,
      alias: e.champion.alias,
      version: e.champion.version,
      run_id: e.champion.runId,
      metrics: boundedMetrics(e.champion.metrics, first),
    },
    primary_metric: comparePrimary(e),
    policy: e.policy && {
      passed: e.policy.passed,
      checks: e.policy.checks.slice(0, MAX_ENTRIES).map((c) => ({
        metric: capForEcho(c.metric, 250),
        passed: c.passed,
        why: capForEcho(c.why, 500),
      })),
    },
    rescore: e.rescore && {
      status: e.rescore.status,
      holdout: capForEcho(e.rescore.holdout, 500),
      tolerance: e.rescore.tolerance,
      rows: e.rescore.rows,
      metrics: e.rescore.metrics,
      gaps: e.rescore.gaps.map((g) => ({
        metric: g.metric,
        reported_as: g.reportedAs,
        reported: toMetricValue(g.reported),
        rescored: toMetricValue(g.rescored),
        gap: toMetricValue(g.gap),
      })),
      worst_gap: e.rescore.worstGap === undefined ? undefined : toMetricValue(e.rescore.worstGap),
      flag: e.rescore.flag === undefined ? undefined : capForEcho(e.rescore.flag, 1_000),
      summary: capForEcho(e.rescore.summary, 1_500),
      claim: e.rescore.claim && {
        status: e.rescore.claim.status,
        flag: e.rescore.claim.flag === undefined ? undefined : capForEcho(e.rescore.claim.flag, 1_000),
        summary: capForEcho(e.rescore.claim.summary, 1_500),
      },
    },
    decision: item.decision && toDecision(item.decision),
    outcome: toOutcome(item.outcome),
    failure: item.failure === undefined ? undefined : capForEcho(item.failure, 1_000),
  };
}

const fmt = (v: number | string | undefined): string =>
  v === undefined ? 'missing' : typeof v === 'number' ? String(Number(v.toPrecision(6))) : v;

/** The text mirror: what a judge reads first. */
export function describeReview(o: ReviewOutput): string {
  const lines = [
    // A re-score that disagrees with the run, or could not run, comes before everything else.
    ...(o.rescore?.claim?.flag ? [`⚠ ${o.rescore.claim.flag}`] : []),
    ...(o.rescore?.flag ? [`⚠ ${o.rescore.flag}`] : []),
    `Review ${o.review_id} (${o.mode}, ${o.state}): task ${o.task_id} (${o.template})` +
      `${o.sweep_id ? `, best child of sweep ${o.sweep_id}` : ''}, run ${o.run_id} ${o.run_url}.`,
  ];
  const pm = o.primary_metric;
  if (pm) {
    const vs = o.champion
      ? ` vs champion ${o.champion.name}@${o.champion.alias} v${o.champion.version} ${fmt(pm.champion)}`
      : ' (no champion yet)';
    const verdict =
      pm.better === undefined
        ? ''
        : `: ${pm.better ? 'better' : 'not better'} by ${fmt(Math.abs(pm.delta ?? 0))}`;
    lines.push(`Primary metric ${pm.name} (${pm.direction}): candidate ${fmt(pm.candidate)}${vs}${verdict}.`);
  } else if (o.champion) {
    lines.push(`Champion: ${o.champion.name}@${o.champion.alias} v${o.champion.version}.`);
  } else {
    lines.push('No champion yet.');
  }
  const more = o.metrics_total > Object.keys(o.metrics).length ? ` (${o.metrics_total} in all)` : '';
  lines.push(`Metrics${more}: ${capForEcho(JSON.stringify(o.metrics), 1500)}`);
  if (o.champion) lines.push(`Champion metrics: ${capForEcho(JSON.stringify(o.champion.metrics), 1500)}`);
  lines.push(`Candidate model: ${o.candidate_model_uri ?? 'none (the run logged no model)'}.`);
  if (o.rescore?.claim) lines.push(`Claim check (own test rows): ${o.rescore.claim.summary}`);
  if (o.rescore && !o.rescore.flag) lines.push(`Re-score: ${o.rescore.summary}`);
  else if (o.rescore?.flag) lines.push(`Re-score details: ${o.rescore.summary}`);
  if (o.policy)
    lines.push(
      `Policy ${o.policy.passed ? 'passed' : 'failed'}: ${o.policy.checks.map((c) => `${c.metric} ${c.passed ? 'ok' : 'FAIL'} (${c.why})`).join('; ')}`,
    );
  if (o.decision)
    lines.push(
      `Decided ${o.decision.verdict} by ${o.decision.judge} at ${o.decision.decided_at}` +
        `${o.decision.notes ? `: ${capForEcho(o.decision.notes, 300)}` : ''}.`,
    );
  if (o.outcome?.not_promoted) lines.push(`Applied without moving the alias: ${o.outcome.not_promoted}`);
  if (o.failure) lines.push(`Applying it failed for good: ${o.failure}`);
  return lines.join('\n');
}

export const getReviewTool = defineTool({
  name: 'get_review',
  title: 'Get review',
  description:
    'Evidence of a review: run link, metrics, params, candidate model, the champion and its metrics, the ' +
    'primary metric side by side, policy checks, the decision once made.',
  input: {
    review_id: z.string().min(1).describe('Review id (list_pending_reviews)'),
  },
  output: reviewOutput,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx) {
    const out = toReviewOutput(await reviewsOf(ctx).evidence(args.review_id));
    return { structured: out, text: describeReview(out) };
  },
});
