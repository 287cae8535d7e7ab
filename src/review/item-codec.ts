/**
 * Review items as stored in their Redis hash (`item` JSON without the state, `state`, `decision`,
 * `outcome`) and the checks a decision passes before it is claimed: a known verdict, a judge name
 * of 1-200 characters without control characters, a finite score, notes within MAX_REVIEW_NOTES.
 */
import { ValidationError } from '../errors/index.js';
import { MAX_REVIEW_NOTES } from '../model/task-spec.js';
import {
  type DecisionInput,
  type ReviewDecision,
  type ReviewItem,
  type ReviewState,
  VERDICTS,
} from './types.js';

const JUDGE_MAX = 200;
const CONTROL = /\p{Cc}/u;

/** The same decision again (same verdict, same judge): a repeat, not a second decision. */
export const same = (a: ReviewDecision, b: DecisionInput) => a.verdict === b.verdict && a.judge === b.judge;

export function checkDecision(d: DecisionInput): void {
  if (!VERDICTS.includes(d.verdict))
    throw new ValidationError('verdict', `must be one of ${VERDICTS.join(', ')}`);
  if (typeof d.judge !== 'string' || !d.judge.trim() || d.judge.length > JUDGE_MAX || CONTROL.test(d.judge))
    throw new ValidationError('judge', `name who decides: 1-${JUDGE_MAX} characters, no control characters`);
  if (d.score !== undefined && (typeof d.score !== 'number' || !Number.isFinite(d.score)))
    throw new ValidationError('score', 'must be a finite number');
  if (d.notes !== undefined && (typeof d.notes !== 'string' || d.notes.length > MAX_REVIEW_NOTES))
    throw new ValidationError('notes', `at most ${MAX_REVIEW_NOTES} characters; shorten the notes`);
}

export function parseItem(h: Record<string, string> | undefined): ReviewItem | undefined {
  if (!h?.item) return undefined;
  const base = JSON.parse(h.item) as Omit<ReviewItem, 'state'>;
  return {
    ...base,
    state: (h.state as ReviewState) ?? 'pending',
    ...(h.decision ? { decision: JSON.parse(h.decision) as ReviewDecision } : {}),
    ...(h.outcome ? { outcome: JSON.parse(h.outcome) } : {}),
    ...(h.failure ? { failure: h.failure } : {}),
  };
}
