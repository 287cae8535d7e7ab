// The review section appended to a run's description stays within MLflow's 8000-character tag
// limit: the section's notes are shortened first (pointing at the runwarden.review.notes tag),
// then the original text's end; short texts are untouched.
import { describe, expect, it } from 'vitest';
import { RUN_NOTE_MAX, withReviewSection } from '../../../src/review/run-notes.js';
import type { ReviewDecision, ReviewItem } from '../../../src/review/types.js';

const item: ReviewItem = {
  id: 'r-t-1',
  taskId: 't-1',
  runId: 'run',
  experimentId: '1',
  template: 'judged',
  mode: 'agent',
  state: 'decided',
  createdAt: 0,
};
const d = (notes?: string): ReviewDecision => ({ verdict: 'reject', judge: 'j', at: 0, notes });

describe('review section on the run', () => {
  it('short description and notes: appended whole', () => {
    const t = withReviewSection('Original.', item, d('fine'));
    expect(t.startsWith('Original.\n\n## Review (r-t-1)')).toBe(true);
    expect(t).toContain('fine');
  });

  it('a 7000-character description and 2000-character notes: within the limit, the original kept, the notes shortened with a pointer at the tag', () => {
    const before = 'o'.repeat(7_000);
    const t = withReviewSection(before, item, d('n'.repeat(2_000)));
    expect(t.length).toBeLessThanOrEqual(RUN_NOTE_MAX);
    expect(t.startsWith(before)).toBe(true);
    expect(t).toContain('## Review (r-t-1)');
    expect(t).toContain('runwarden.review.notes');
  });

  it('a description already at the limit: the original text is cut, the section is whole', () => {
    const t = withReviewSection('o'.repeat(8_000), item, d('n'.repeat(2_000)));
    expect(t.length).toBeLessThanOrEqual(RUN_NOTE_MAX);
    expect(t).toContain('## Review (r-t-1)');
    expect(t).toContain('**Verdict:** reject');
  });
});
