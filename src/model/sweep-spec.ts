/**
 * The sweep model: what a sweep child carries in its normalised task (`SweepChild`), so the
 * attempt can nest its run under the sweep's parent run and the early-stopping rule knows what to
 * watch. The sweep spec schema lives here too.
 */

/** Early stopping carried to each child (the median rule, src/sweep/ early-stop). */
export interface SweepEarlyStop {
  metric: string;
  warmupSteps: number;
  direction: 'min' | 'max';
}

/** A sweep child's link to its sweep: the sweep id is the parent task id (`s-...`). */
export interface SweepChild {
  id: string;
  parentTaskId: string;
  parentRunId: string;
  index: number;
  earlyStop?: SweepEarlyStop;
}
