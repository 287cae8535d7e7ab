/**
 * Tool `submit_review`: an agent judge's decision on a review item: `approve` (register a model
 * version from the run, move the alias, record the promotion), `reject` (tags and notes on the
 * run) or `rework` (the task queued again with the notes, the runs linked). The judge is this MCP
 * server's owner id, never an input. Each item is decided once across processes: a second,
 * different verdict is refused naming who decided and when (so the tool is not idempotent); the
 * same verdict sent again — by any judge, e.g. after this server restarted with a new owner id —
 * finishes a decision whose applying was cut short, and the first decision's notes stand.
 * Items of mode `policy` belong to the policy judge and are refused.
 */
import { z } from 'zod';
import { capForEcho, RunwardenError, ValidationError } from '../../errors/index.js';
import type { DecideResult, ReviewItem } from '../../review/index.js';
import { defineTool } from './define.js';
import { iso, NOTES_MAX, outcomeShape, reviewsOf, toOutcome } from './get-review.js';

const NEXT_STEP =
  'Call submit_review again with the same verdict to finish applying it (the judge process also retries it).';

/** What the decision did, in a sentence. */
function describeOutcome(item: ReviewItem, applied: boolean, applyError?: string): string {
  const d = item.decision;
  const o = item.outcome ?? {};
  if (!d) return `Review ${item.id} is ${item.state}.`;
  const head = `Review ${item.id}: ${d.verdict} by ${capForEcho(d.judge)}`;
  if (!applied)
    return `${head} is recorded but not applied yet${applyError ? ` (${capForEcho(applyError, 500)})` : ''}. ${NEXT_STEP}`;
  if (d.verdict === 'approve')
    return (
      `${head}. ${o.modelName ?? 'The model'} version ${o.version ?? '?'} is now @${o.alias ?? 'champion'}` +
      `${o.previousVersion ? ` (was version ${o.previousVersion}, now @previous-champion)` : ''}; ` +
      'the promotion is in get_model_history.'
    );
  if (d.verdict === 'reject') return `${head}. Run ${item.runId} is tagged with the review and your notes.`;
  return (
    `${head}. Task ${o.reworkTaskId ?? '?'} is queued again with your notes (its run links back to ${item.runId}); ` +
    'follow it with wait_for_task.'
  );
}

export const submitReviewTool = defineTool({
  name: 'submit_review',
  title: 'Submit review',
  description:
    'Decide a review after get_review: approve (register the model, move the alias), reject (notes on the run) ' +
    'or rework (task re-queued with your notes). Once per item: a different second decision is refused.',
  input: {
    review_id: z.string().min(1).describe('Review id (list_pending_reviews)'),
    verdict: z.enum(['approve', 'reject', 'rework']).describe('Your decision'),
    score: z.number().min(0).max(1).describe('The candidate, 0 (worst) to 1 (best)'),
    notes: z
      .string()
      .min(1)
      .max(NOTES_MAX)
      .describe('Your reasons, incl. the comparison with the champion; for rework, what to change'),
  },
  output: {
    review_id: z.string(),
    state: z.string(),
    applied: z.boolean(),
    apply_error: z.string().optional(),
    verdict: z.string(),
    judge: z.string(),
    decided_at: z.string(),
    outcome: outcomeShape.optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  hints: {
    REVIEW_ALREADY_DECIDED: 'Do not submit it again: list_pending_reviews shows the items still open.',
  },
  async run(args, ctx) {
    const reviews = reviewsOf(ctx);
    const judge = ctx.settings.owner;
    const item = await reviews.get(args.review_id);
    if (!item)
      throw new RunwardenError(
        'REVIEW_NOT_FOUND',
        `review_id: no review item ${capForEcho(args.review_id)}; list_pending_reviews shows the open ones`,
      );
    if (item.mode === 'policy' && item.state === 'pending')
      throw new ValidationError(
        'review_id',
        `${capForEcho(args.review_id)} is decided by the policy judge (runwarden judge), not by agents; ` +
          'list_pending_reviews shows the agent reviews',
      );
    let result: DecideResult;
    try {
      result = await reviews.decide(args.review_id, {
        verdict: args.verdict,
        judge,
        score: args.score,
        notes: args.notes,
      });
    } catch (err) {
      throw await explainPartial(err, () => reviews.get(args.review_id));
    }
    const { item: done, applied, applyError, firstStands } = result;
    return {
      structured: {
        review_id: done.id,
        state: done.state,
        applied,
        apply_error: applyError === undefined ? undefined : capForEcho(applyError, 500),
        verdict: done.decision?.verdict ?? args.verdict,
        judge: capForEcho(done.decision?.judge ?? judge),
        decided_at: iso(done.decision?.at ?? Date.now()),
        outcome: toOutcome(done.outcome),
      },
      text: `${describeOutcome(done, applied, applyError)}${firstStands ? ` Note: ${firstStands}.` : ''}`,
    };
  },
});

/**
 * A decision that was recorded but whose applying failed (MLflow down half-way): the error says
 * so and how to finish. Review errors (already decided, not found) and errors before the
 * decision landed pass unchanged.
 */
async function explainPartial(err: unknown, read: () => Promise<ReviewItem | undefined>) {
  if (!(err instanceof RunwardenError) || err.code.startsWith('REVIEW_')) return err;
  const now = await read().catch(() => undefined);
  if (now?.state !== 'decided' || !now.decision) return err;
  // A refusal of the input will be refused again: sending the verdict again would not help.
  const permanent = err.code === 'VALIDATION_ERROR' || err.code === 'CONFIG_ERROR';
  return new RunwardenError(
    err.code,
    `Your ${now.decision.verdict} of ${now.id} is recorded, but applying it failed: ${err.message.replace(/[.\s]*$/, '.')} ` +
      (permanent
        ? 'Tell the operator: the judge process cannot finish it either until that is fixed.'
        : NEXT_STEP),
  );
}
