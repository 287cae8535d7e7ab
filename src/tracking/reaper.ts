/**
 * The reaper: closes runs whose owner stopped renewing their lease (crashed, killed -9, lost its
 * network). It ends RUNNING runs that carry `runwarden.owner` and whose `runwarden.lease_expires_at`
 * is in the past, with the status the owner declared (`runwarden.lease_expiry_status`; KILLED when
 * cancellation was requested) and tags saying who closed them and why. Runs runwarden did not
 * start are touched only with `includeForeign` and an age threshold.
 */
import { ValidationError } from '../errors/index.js';
import type { Logger } from '../log.js';
import { type MlflowClient, ok, type Run } from '../mlflow/client.js';
import { chunk } from './batching.js';
import { closeRun } from './close-run.js';
import { RW_TAGS, type TerminalStatus } from './tags.js';

export interface ReapOptions {
  /** Limit the sweep to these experiments (default: every active experiment). */
  experimentIds?: string[];
  /** Also close RUNNING runs without a runwarden lease, if started more than `olderThanMs` ago. */
  includeForeign?: boolean;
  olderThanMs?: number;
  /** Only runs whose `runwarden.owner` starts with this (e.g. `mcp:` or `worker:`); default all. */
  ownerPrefix?: string;
  /** Report what would be closed without closing anything. */
  dryRun?: boolean;
  /** Clock (tests). */
  now?: () => number;
}

export interface ReapedRun {
  runId: string;
  experimentId: string;
  status: TerminalStatus;
  reason: string;
  foreign: boolean;
}

export interface ReapResult {
  examined: number;
  closed: ReapedRun[];
}

async function allExperimentIds(client: MlflowClient): Promise<string[]> {
  const ids: string[] = [];
  let pageToken: string | undefined;
  do {
    const page = await ok(
      client.api.POST('/api/2.0/mlflow/experiments/search', {
        body: { max_results: 1000, page_token: pageToken, view_type: 'ACTIVE_ONLY' },
      }),
    );
    for (const e of page.experiments ?? []) if (e.experiment_id) ids.push(e.experiment_id);
    pageToken = page.next_page_token;
  } while (pageToken);
  return ids;
}

async function* runningRuns(
  client: MlflowClient,
  experimentIds: string[],
  filter: string,
): AsyncGenerator<Run> {
  for (const ids of chunk(experimentIds, 50)) {
    let pageToken: string | undefined;
    do {
      const page = await ok(
        client.api.POST('/api/2.0/mlflow/runs/search', {
          body: { experiment_ids: ids, filter, max_results: 1000, page_token: pageToken },
        }),
      );
      yield* page.runs ?? [];
      pageToken = page.next_page_token;
    } while (pageToken);
  }
}

function tagsOf(run: Run): Map<string, string> {
  return new Map((run.data?.tags ?? []).map((t) => [t.key ?? '', t.value ?? '']));
}

const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'never');

/** Decide whether an owned run is due, reading its tags. */
function dueOwned(run: Run, now: number): { status: TerminalStatus; reason: string } | undefined {
  const tags = tagsOf(run);
  const expires = Number(tags.get(RW_TAGS.leaseExpiresAt));
  if (Number.isFinite(expires) && expires > now) return undefined;
  const cancelled = tags.get(RW_TAGS.cancelRequested) === 'true';
  const declared = tags.get(RW_TAGS.leaseExpiryStatus);
  const status: TerminalStatus = cancelled || declared === 'KILLED' ? 'KILLED' : 'FAILED';
  const owner = tags.get(RW_TAGS.owner) ?? 'unknown';
  const beat = Number(tags.get(RW_TAGS.heartbeatAt));
  const why = cancelled ? 'cancellation was requested and ' : '';
  const note = tags.get(RW_TAGS.expiryNote);
  return {
    status,
    reason:
      `${why}lease expired at ${iso(expires)}: owner ${owner} stopped renewing it ` +
      `(last heartbeat ${iso(beat)})${note ? `; ${note}` : ''}, so the run was closed by the reaper`,
  };
}

export async function reapExpiredRuns(client: MlflowClient, opts: ReapOptions = {}): Promise<ReapResult> {
  if (opts.includeForeign && !(typeof opts.olderThanMs === 'number' && opts.olderThanMs > 0)) {
    throw new ValidationError('olderThanMs', 'includeForeign needs an age threshold (e.g. --older-than 24h)');
  }
  const clock = opts.now ?? Date.now;
  const experimentIds = opts.experimentIds ?? (await allExperimentIds(client));
  const result: ReapResult = { examined: 0, closed: [] };
  if (!experimentIds.length) return result;

  const ownerLike = `${(opts.ownerPrefix ?? '').replace(/'/g, "\\'")}%`;
  const ownedFilter = `attributes.status = 'RUNNING' AND tags.\`${RW_TAGS.owner}\` LIKE '${ownerLike}'`;
  for await (const run of runningRuns(client, experimentIds, ownedFilter)) {
    result.examined++;
    const runId = run.info?.run_id;
    if (!runId || !dueOwned(run, clock())) continue;
    // Re-read just before closing: the owner may have renewed since the search.
    const fresh = (
      await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }))
    ).run;
    if (fresh?.info?.status !== 'RUNNING') continue;
    const due = dueOwned(fresh, clock());
    if (!due) continue;
    if (!opts.dryRun)
      await closeRun(client, runId, due.status, { closedBy: 'reaper', reason: due.reason, now: clock() });
    result.closed.push({ runId, experimentId: run.info?.experiment_id ?? '', ...due, foreign: false });
  }

  if (opts.includeForeign && opts.olderThanMs) {
    const cutoff = clock() - opts.olderThanMs;
    const foreignFilter = `attributes.status = 'RUNNING' AND attributes.start_time < ${cutoff}`;
    for await (const run of runningRuns(client, experimentIds, foreignFilter)) {
      const runId = run.info?.run_id;
      if (!runId || tagsOf(run).has(RW_TAGS.owner)) continue;
      result.examined++;
      const reason =
        `RUNNING since ${iso(run.info?.start_time ?? Number.NaN)}, older than the ${opts.olderThanMs} ms threshold, ` +
        'with no runwarden lease: closed by the reaper (--include-foreign)';
      if (!opts.dryRun) await closeRun(client, runId, 'FAILED', { closedBy: 'reaper', reason, now: clock() });
      result.closed.push({
        runId,
        experimentId: run.info?.experiment_id ?? '',
        status: 'FAILED',
        reason,
        foreign: true,
      });
    }
  }
  return result;
}

/**
 * Run `reapExpiredRuns` every `intervalMs` until stopped. `runwarden serve`, `mcp`, `worker` and
 * `up` each run one over every owner, so an expired lease is reaped by whatever part of the stack
 * is running. Several loops racing on one run is safe: each re-reads the run right before closing
 * and skips it unless it is still RUNNING with an expired lease (MLflow has no compare-and-set, so
 * two sweeps within the same few milliseconds could both write the same closing status and tags).
 * Failures are reported to `onError` and the loop carries on.
 */
export function startReaperLoop(
  client: MlflowClient,
  opts: {
    intervalMs: number;
    /** Sweep only runs of owners with this prefix (default: every runwarden owner). */
    ownerPrefix?: string;
    /** Sweep only these experiments (default: every active experiment). */
    experimentIds?: string[];
    onResult?: (r: ReapResult) => void;
    onError?: (err: unknown) => void;
  },
): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    reapExpiredRuns(client, { ownerPrefix: opts.ownerPrefix, experimentIds: opts.experimentIds })
      .then((r) => opts.onResult?.(r), opts.onError)
      .finally(() => {
        running = false;
      });
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The reaper loop a runwarden process runs (`up`, `worker`, `serve`/`mcp`): every owner's expired
 * leases, every `intervalMs` (0 = no loop), closed runs and failed sweeps logged. `onClosed` lets
 * the caller forget handles of runs the sweep closed.
 */
export function startLoggedReaperLoop(
  client: MlflowClient,
  opts: {
    intervalMs: number;
    experimentIds?: string[];
    logger: Logger;
    onClosed?: (runIds: string[]) => void;
  },
): () => void {
  if (opts.intervalMs <= 0) return () => undefined;
  return startReaperLoop(client, {
    intervalMs: opts.intervalMs,
    experimentIds: opts.experimentIds,
    onResult: (r) => {
      if (!r.closed.length) return;
      opts.onClosed?.(r.closed.map((c) => c.runId));
      opts.logger.info({ closed: r.closed }, 'reaper closed runs with expired leases');
    },
    onError: (err) => opts.logger.warn({ err: (err as Error).message }, 'reaper sweep failed'),
  });
}
