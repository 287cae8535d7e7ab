/**
 * Bounded MLflow reads for the median-stopping rule: the FINISHED runs of one sweep (by the tag
 * `runwarden.sweep_id`, at most `maxSiblings`, pages of 100), and one run's history of the watched
 * metric (pages of up to 25,000 points, at most `maxPoints`: a longer history keeps its first points,
 * so the sibling counts only up to the last step read). A finished run's history never changes,
 * so `SiblingCache` reads each sibling once and only asks MLflow about siblings it has not seen.
 */
import type { MlflowClient } from '../mlflow/client.js';
import { getMetricHistory, iterateRuns } from '../tracking/search.js';
import { type SiblingHistory, siblingHistory } from './medians.js';

/** Default bound of siblings read per sweep child (the most recently finished). */
export const DEFAULT_MAX_SIBLINGS = 100;
/**
 * Default bound of one sibling's history read (points). With the sibling bound, one child holds at
 * most 100 × 10,000 points (16 bytes each: 16 MB) and reads at most 100 history pages.
 */
export const DEFAULT_MAX_POINTS = 10_000;
const HISTORY_PAGE = 25_000;
const SEARCH_PAGE = 100;

/** The tag every child run of a sweep carries (the sweep id). */
export const SWEEP_ID_TAG = 'runwarden.sweep_id';

/** Sweep ids are `s-...` task ids; anything else could not be put in a filter string safely. */
const SAFE_ID = /^[\w.:-]{1,200}$/;
export const isFilterSafeId = (id: string) => SAFE_ID.test(id);

/** Run ids of the sweep's FINISHED children in this experiment, newest first, at most `limit`. */
export async function finishedSiblingIds(
  client: MlflowClient,
  o: { experimentId: string; sweepId: string; limit: number },
): Promise<string[]> {
  if (!isFilterSafeId(o.sweepId)) return [];
  const ids: string[] = [];
  for await (const run of iterateRuns(client, {
    experimentIds: [o.experimentId],
    filter: `tags.\`${SWEEP_ID_TAG}\` = '${o.sweepId}' AND attributes.status = 'FINISHED'`,
    orderBy: ['attributes.end_time DESC'],
    limit: o.limit,
    pageSize: SEARCH_PAGE,
  })) {
    if (run.info?.run_id) ids.push(run.info.run_id);
  }
  return ids;
}

/** One run's history of `key`, at most `maxPoints` points (the first ones MLflow pages out). */
export async function boundedHistory(
  client: MlflowClient,
  runId: string,
  key: string,
  maxPoints: number,
): Promise<SiblingHistory> {
  const points = await getMetricHistory(client, runId, key, {
    pageSize: Math.min(HISTORY_PAGE, maxPoints),
    maxPoints,
  });
  return siblingHistory(runId, points);
}

/** The finished siblings of one sweep child, each history read once. */
export class SiblingCache {
  private readonly histories = new Map<string, SiblingHistory>();

  constructor(
    private readonly client: MlflowClient,
    private readonly o: {
      sweepId: string;
      metric: string;
      /** The child's own run, never its own sibling. */
      ownRunId: string;
      experimentId: string;
      maxSiblings: number;
      maxPoints: number;
    },
  ) {}

  get size(): number {
    return this.histories.size;
  }

  values(): IterableIterator<SiblingHistory> {
    return this.histories.values();
  }

  /** Look for newly finished siblings and read their histories; the number added. */
  async refresh(): Promise<number> {
    if (this.histories.size >= this.o.maxSiblings) return 0;
    const ids = await finishedSiblingIds(this.client, {
      experimentId: this.o.experimentId,
      sweepId: this.o.sweepId,
      limit: this.o.maxSiblings + 1,
    });
    let added = 0;
    for (const id of ids) {
      if (id === this.o.ownRunId || this.histories.has(id)) continue;
      if (this.histories.size >= this.o.maxSiblings) break;
      this.histories.set(id, await boundedHistory(this.client, id, this.o.metric, this.o.maxPoints));
      added++;
    }
    return added;
  }
}
