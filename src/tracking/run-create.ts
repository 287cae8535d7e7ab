/**
 * The one non-idempotent step of starting a run, made idempotent. runs/create carries a
 * client-generated request id (tag `runwarden.request_id`). A retry first searches for the earlier
 * attempt's run; after a retry the runs carrying the id are checked at once and the extras closed.
 * A create that timed out may still be committed later (held in a proxy, a slow server), so once
 * its deadline has passed (the attempt's send time + the client's timeout + `lateCreateMarginMs`)
 * a background sweep searches once more and closes KILLED, tags and deletes every run with the id
 * except the one handed to the caller (or all of them when the start failed). The sweep runs only
 * when an attempt failed without an answer; its outcome is logged and given to `onSweep`.
 */

import { type MlflowClient, ok, type Run } from '../mlflow/client.js';
import { isTransient, withRetry } from '../mlflow/retry.js';
import { isTransientUnretried } from '../mlflow/transport.js';
import { RW_TAGS } from './tags.js';

/** Default wait past a timed-out create's deadline before the final sweep (60 s). */
const DEFAULT_LATE_CREATE_MARGIN_MS = 60_000;

/** Runs looked at per request-id search (a create is sent at most `maxRetries + 1` times). */
const SWEEP_PAGE = 100;

const SWEEPER = 'runwarden:create-sweep';

export interface CreateSweepOutcome {
  requestId: string;
  /** The run kept (the caller's), or undefined when the start failed and none is kept. */
  keptRunId?: string;
  /** Late-landing duplicates closed KILLED and deleted. */
  removedRunIds: string[];
  /** Set when the sweep could not finish (the duplicates' leases still expire and the reaper closes them). */
  error?: unknown;
}

export interface IdempotentCreateOptions {
  experimentId: string;
  requestId: string;
  /** The runs/create body; its tags must include `runwarden.request_id` = requestId. */
  body: {
    experiment_id: string;
    run_name?: string;
    start_time: number;
    user_id?: string;
    tags: { key: string; value: string }[];
  };
  /** Wait past a timed-out create's deadline before the final sweep (default 60 s). */
  lateCreateMarginMs?: number;
  /** Called once with the final sweep's outcome (when one was needed). */
  onSweep?: (outcome: CreateSweepOutcome) => void;
}

/** Active runs of `experimentId` carrying `requestId`, oldest first (start time, then id). */
async function runsWithRequestId(
  client: MlflowClient,
  experimentId: string,
  requestId: string,
): Promise<Run[]> {
  const res = await ok(
    client.api.POST('/api/2.0/mlflow/runs/search', {
      body: {
        experiment_ids: [experimentId],
        filter: `tags.\`${RW_TAGS.requestId}\` = '${requestId}'`,
        run_view_type: 'ACTIVE_ONLY',
        max_results: SWEEP_PAGE,
      },
    }),
  );
  return [...(res.runs ?? [])].sort(
    (a, b) =>
      (a.info.start_time ?? 0) - (b.info.start_time ?? 0) || a.info.run_id.localeCompare(b.info.run_id),
  );
}

/** Close a duplicate KILLED with tags saying why, then delete it. */
async function removeDuplicate(client: MlflowClient, runId: string, keptRunId: string | undefined) {
  const reason = keptRunId
    ? `duplicate of run ${keptRunId}: a runs/create that timed out was committed late`
    : 'a runs/create that timed out was committed after the start had failed';
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/log-batch', {
      body: {
        run_id: runId,
        tags: [
          { key: RW_TAGS.closedBy, value: SWEEPER },
          { key: RW_TAGS.closeReason, value: reason },
        ],
      },
    }),
  );
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/update', {
      body: { run_id: runId, status: 'KILLED', end_time: Date.now() },
    }),
  );
  await ok(client.api.POST('/api/2.0/mlflow/runs/delete', { body: { run_id: runId } }));
}

/** Every run with the request id except `keep` is closed and deleted. Returns the ids removed. */
async function sweep(
  client: MlflowClient,
  experimentId: string,
  requestId: string,
  keep: string | undefined,
): Promise<string[]> {
  return removeAllBut(client, await runsWithRequestId(client, experimentId, requestId), keep);
}

async function removeAllBut(client: MlflowClient, runs: Run[], keep: string | undefined): Promise<string[]> {
  const removed: string[] = [];
  for (const r of runs) {
    if (r.info.run_id === keep) continue;
    await removeDuplicate(client, r.info.run_id, keep);
    removed.push(r.info.run_id);
  }
  return removed;
}

function scheduleSweep(
  client: MlflowClient,
  opts: IdempotentCreateOptions,
  at: number,
  keep: string | undefined,
): void {
  const run = async () => {
    const outcome: CreateSweepOutcome = { requestId: opts.requestId, keptRunId: keep, removedRunIds: [] };
    try {
      outcome.removedRunIds = await sweep(client, opts.experimentId, opts.requestId, keep);
      if (outcome.removedRunIds.length) {
        client.logger?.warn(
          { requestId: opts.requestId, kept: keep, removed: outcome.removedRunIds },
          'runs/create: late-landing duplicate runs closed KILLED and deleted',
        );
      } else {
        client.logger?.debug({ requestId: opts.requestId }, 'runs/create: final sweep found no duplicate');
      }
    } catch (err) {
      outcome.error = err;
      client.logger?.warn(
        { err, requestId: opts.requestId, kept: keep },
        'runs/create: final duplicate sweep failed; a late duplicate, if any, is closed by the reaper when its lease expires',
      );
    }
    opts.onSweep?.(outcome);
  };
  // Unref'd: a process that ends sooner leaves a late duplicate to the reaper (its lease expires).
  setTimeout(() => void run(), Math.max(0, at - Date.now())).unref();
}

/**
 * Create the run exactly once. Returns the run the caller keeps; extras found now are closed and
 * deleted at once, extras landing later by the background sweep.
 */
export async function createRunOnce(client: MlflowClient, opts: IdempotentCreateOptions): Promise<Run> {
  const margin = opts.lateCreateMarginMs ?? DEFAULT_LATE_CREATE_MARGIN_MS;
  /** Send time of the latest create that failed without a clear answer (it may still land). */
  let unansweredAt = 0;
  let run: Run;
  try {
    run = await withRetry(
      client.retry,
      async (attempt) => {
        if (attempt > 0) {
          const found = await runsWithRequestId(client, opts.experimentId, opts.requestId);
          const [earliest] = found;
          if (earliest) {
            await removeAllBut(client, found, earliest.info.run_id);
            return earliest;
          }
        }
        const sentAt = Date.now();
        let created: Run;
        try {
          created = (await ok(client.api.POST('/api/2.0/mlflow/runs/create', { body: opts.body }))).run;
        } catch (err) {
          if (isTransient(err)) unansweredAt = sentAt;
          throw err;
        }
        if (attempt > 0) await sweep(client, opts.experimentId, opts.requestId, created.info.run_id);
        return created;
      },
      { retryable: isTransientUnretried },
    );
  } catch (err) {
    if (unansweredAt) scheduleSweep(client, opts, unansweredAt + client.timeoutMs + margin, undefined);
    throw err;
  }
  if (unansweredAt) scheduleSweep(client, opts, unansweredAt + client.timeoutMs + margin, run.info.run_id);
  return run;
}
