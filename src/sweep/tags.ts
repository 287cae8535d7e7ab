/**
 * The MLflow tags and params a sweep writes: the sweep id on the parent run and on every child
 * (so a UI filter on it keeps the children), the role of a run in its sweep, a child's index, the
 * search space copied onto every child, and what the parent run records about the best child.
 */
import type { NormalizedTask } from '../model/task-spec.js';

export const SWEEP_TAGS = {
  /** The sweep id (`s-...`, the parent task id) on the parent run and every child run. */
  sweepId: 'runwarden.sweep_id',
  /** `parent` or `child`. */
  role: 'runwarden.sweep_role',
  /** A child's index in the sweep (0-based). */
  index: 'runwarden.sweep_index',
  /** The search space (JSON, capped): on the parent and copied onto every child. */
  space: 'runwarden.sweep_space',
  /** On the parent run once it closed: the best child's run id, task id and index. */
  bestRunId: 'runwarden.sweep_best_run_id',
  bestTaskId: 'runwarden.sweep_best_task_id',
} as const;

/** Longest search-space JSON kept in a tag (MLflow allows 8000 characters per tag value). */
export const SPACE_TAG_MAX = 5_000;

export function spaceJson(space: unknown): string {
  const s = JSON.stringify(space);
  return s.length > SPACE_TAG_MAX ? `${s.slice(0, SPACE_TAG_MAX - 1)}…` : s;
}

/** The tags a child's run gets on top of a task's own (none for a task outside a sweep). */
export function childRunTags(task: NormalizedTask): Record<string, string> {
  if (!task.sweep) return {};
  return {
    [SWEEP_TAGS.sweepId]: task.sweep.id,
    [SWEEP_TAGS.role]: 'child',
    [SWEEP_TAGS.index]: String(task.sweep.index),
    ...(task.sweep.space ? { [SWEEP_TAGS.space]: task.sweep.space } : {}),
  };
}
