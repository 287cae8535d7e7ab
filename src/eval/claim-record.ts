/**
 * How the claim check is kept in MLflow, beside the holdout re-score and under the same rules: its
 * metrics `eval.test_rmse/test_mae/test_mse/test_composite` (+ `eval.test_rows`) at the review
 * item's timestamp, linked to the logged model; its tags `runwarden.eval.claim` (`ok`|`skipped`),
 * `runwarden.eval.claim_gap`, `runwarden.eval.claim_input` and `runwarden.eval.claim_note` (the
 * flag or the reason it was skipped). Written in the same batch as, and before,
 * `runwarden.eval.status`; read back instead of scoring again.
 */
import { capForEcho } from '../errors/index.js';
import { type ClaimResult, DEFAULT_CLAIM_TOLERANCE, judgeClaim } from './claim-check.js';
import { compare } from './rescore-verdict.js';

export const CLAIM_TAGS = {
  status: 'runwarden.eval.claim',
  gap: 'runwarden.eval.claim_gap',
  input: 'runwarden.eval.claim_input',
  note: 'runwarden.eval.claim_note',
} as const;
const NOTE_MAX = 1000;

export const claimTolerance = (def: { claim_tolerance?: number }) =>
  def.claim_tolerance ?? DEFAULT_CLAIM_TOLERANCE;

/** The claim check as MLflow holds it (undefined when the record predates the claim check). */
export function claimFromRecord(
  run: { metrics: Record<string, number>; tags: Record<string, string> },
  tolerance: number,
): ClaimResult | undefined {
  const status = run.tags[CLAIM_TAGS.status];
  if (status === undefined) return undefined;
  if (status !== 'ok')
    return {
      status: 'skipped',
      tolerance,
      gaps: [],
      reason: run.tags[CLAIM_TAGS.note] ?? 'no reason recorded',
    };
  const m = run.metrics;
  const res: ClaimResult = { status: 'ok', tolerance, gaps: [], input: run.tags[CLAIM_TAGS.input] };
  const vals = [m['eval.test_rmse'], m['eval.test_mae'], m['eval.test_mse'], m['eval.test_composite']];
  if (vals.every((v) => typeof v === 'number')) {
    res.metrics = { rmse: vals[0]!, mae: vals[1]!, mse: vals[2]!, composite: vals[3]! };
    res.rows = m['eval.test_rows'];
    res.gaps = compare(run.metrics, res.metrics);
  }
  return judgeClaim(res);
}

/** The metric points and tags that record a fresh claim check. */
export function claimPoints(
  claim: ClaimResult | undefined,
  ts: number,
  modelId: string | undefined,
): {
  metrics: { key: string; value: number; timestamp: number; step: number; model_id?: string }[];
  tags: { key: string; value: string }[];
} {
  if (!claim) return { metrics: [], tags: [] };
  const metrics = !claim.metrics
    ? []
    : (
        [
          ['eval.test_rmse', claim.metrics.rmse],
          ['eval.test_mae', claim.metrics.mae],
          ['eval.test_mse', claim.metrics.mse],
          ['eval.test_composite', claim.metrics.composite],
          ['eval.test_rows', claim.rows ?? 0],
        ] as const
      ).map(([key, value]) => ({
        key,
        value,
        timestamp: ts,
        step: 0,
        ...(modelId ? { model_id: modelId } : {}),
      }));
  const note = claim.flag ?? claim.reason;
  const tags = [
    { key: CLAIM_TAGS.status, value: claim.status },
    ...(claim.worstGap !== undefined ? [{ key: CLAIM_TAGS.gap, value: String(claim.worstGap) }] : []),
    ...(claim.input ? [{ key: CLAIM_TAGS.input, value: capForEcho(claim.input, 500) }] : []),
    ...(note ? [{ key: CLAIM_TAGS.note, value: capForEcho(note, NOTE_MAX) }] : []),
  ];
  return { metrics, tags };
}
