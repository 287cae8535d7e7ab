/**
 * Starting runs. `startRun` creates an MLflow run with the system tags MLflow's Python client sets
 * and runwarden's ownership and lease tags, and returns a leased, heartbeated `RunHandle`.
 * runs/create is not idempotent: `createRunOnce` (run-create.ts) makes it so with a request id and
 * a final sweep for late-landing duplicates. A `parentRunId` must name a live run of the same
 * experiment (checked before anything is created).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { defaultOwner } from '../config.js';
import { RunClosedError, ValidationError } from '../errors/index.js';
import { type MlflowClient, ok, type Run } from '../mlflow/client.js';
import { OpenRunRegistry } from './open-runs.js';
import { checkParentRun } from './parent-run.js';
import { type CreateSweepOutcome, createRunOnce } from './run-create.js';
import { type ParamValue, RunHandle } from './run-handle.js';
import { MLFLOW_TAGS, RW_TAGS } from './tags.js';
import { LIMITS, validateKey, validateName } from './validation.js';

export interface StartRunOptions {
  experimentId: string;
  runName?: string;
  /** Nest under this run (`mlflow.parentRunId`). */
  parentRunId?: string;
  /** Markdown shown as the run's description in the UI (`mlflow.note.content`). */
  description?: string;
  tags?: Record<string, string>;
  params?: Record<string, ParamValue>;
  /** Who holds the run (default `user@host:pid`). */
  owner?: string;
  /** Lease length: the reaper may close the run this long after the last renewal (default 5 min). */
  leaseMs?: number;
  /** Heartbeat interval (default: a fifth of the lease, at most 60 s); 0 = renew only on calls. */
  heartbeatMs?: number;
  /** What an expired lease means: FAILED (default) or KILLED. */
  leaseExpiryStatus?: 'FAILED' | 'KILLED';
  /** Added to the reaper's close reason if the lease expires (e.g. who failed to end the run). */
  expiryNote?: string;
  /** Metric flush interval (default 1 s). */
  flushIntervalMs?: number;
  /** `mlflow.source.type` (default LOCAL). */
  sourceType?: 'LOCAL' | 'JOB' | 'NOTEBOOK' | 'PROJECT' | 'UNKNOWN';
  /** `mlflow.source.name` (default: the running script). */
  sourceName?: string;
  /** `mlflow.user` (default: the OS user). */
  user?: string;
  /**
   * The open-run registry of the runtime starting the run (an MCP server, a worker, your script):
   * its `closeAll()` / signal handlers end the run KILLED if it is still open and still owned by
   * `owner`. Default: a registry of the run's own.
   */
  registry?: OpenRunRegistry;
  /**
   * Without `registry`: end the run KILLED on SIGINT/SIGTERM (default true); the handlers go away
   * when the run ends. With a `registry`, its owner installs them (`registry.installSignalHandlers()`).
   */
  handleSignals?: boolean;
  /**
   * After a runs/create that got no answer: how long past its deadline (send time + the client's
   * timeout) a late-landing duplicate is still looked for and removed (default 60 s).
   */
  lateCreateMarginMs?: number;
  /** Told the outcome of that final duplicate sweep (only when a create went unanswered). */
  onCreateSweep?: (outcome: CreateSweepOutcome) => void;
  /** Metric points held in memory at most; `logMetric` waits while full (default 100,000). */
  maxBufferedPoints?: number;
  /** Estimated bytes of metric points held in memory at most (default 32 MiB). */
  maxBufferedBytes?: number;
  /** How long `end()` retries storing buffered points before ending FAILED (default 3 min). */
  endFlushTimeoutMs?: number;
}

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

export async function startRun(client: MlflowClient, opts: StartRunOptions): Promise<RunHandle> {
  if (!opts.experimentId)
    throw new ValidationError('experimentId', 'required; get one with getOrCreateExperiment(name)');
  const leaseMs = opts.leaseMs ?? 300_000;
  if (!(leaseMs >= 1_000)) throw new ValidationError('leaseMs', `must be at least 1000 ms, got ${leaseMs}`);
  const heartbeatMs = opts.heartbeatMs ?? Math.min(60_000, Math.floor(leaseMs / 5));
  if (!(heartbeatMs === 0 || (heartbeatMs > 0 && heartbeatMs < leaseMs))) {
    throw new ValidationError(
      'heartbeatMs',
      `must be 0 (no heartbeat) or positive and shorter than leaseMs (${leaseMs}), got ${heartbeatMs}`,
    );
  }
  if (opts.runName) validateName('runName', opts.runName, 'run name', LIMITS.maxRunNameLength);
  for (const k of Object.keys(opts.tags ?? {})) validateKey(`tags.${k}`, k);
  for (const k of Object.keys(opts.params ?? {})) validateKey(`params.${k}`, k);
  if (opts.parentRunId !== undefined) await checkParentRun(client, opts.parentRunId, opts.experimentId);

  const now = Date.now();
  const requestId = randomUUID();
  const tags: Record<string, string> = {
    [MLFLOW_TAGS.user]: opts.user ?? osUser(),
    [MLFLOW_TAGS.sourceName]: opts.sourceName ?? process.argv[1] ?? 'runwarden',
    [MLFLOW_TAGS.sourceType]: opts.sourceType ?? 'LOCAL',
    ...(opts.description ? { [MLFLOW_TAGS.note]: opts.description } : {}),
    ...(opts.parentRunId ? { [MLFLOW_TAGS.parentRunId]: opts.parentRunId } : {}),
    ...(opts.runName ? { [MLFLOW_TAGS.runName]: opts.runName } : {}),
    ...opts.tags,
    [RW_TAGS.owner]: opts.owner ?? defaultOwner(),
    [RW_TAGS.leaseExpiresAt]: String(now + leaseMs),
    [RW_TAGS.heartbeatAt]: String(now),
    [RW_TAGS.leaseExpiryStatus]: opts.leaseExpiryStatus ?? 'FAILED',
    ...(opts.expiryNote ? { [RW_TAGS.expiryNote]: opts.expiryNote } : {}),
    [RW_TAGS.requestId]: requestId,
  };
  const body = {
    experiment_id: opts.experimentId,
    run_name: opts.runName,
    start_time: now,
    user_id: tags[MLFLOW_TAGS.user],
    tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
  };

  const run = await createRunOnce(client, {
    experimentId: opts.experimentId,
    requestId,
    body,
    lateCreateMarginMs: opts.lateCreateMarginMs,
    onSweep: opts.onCreateSweep,
  });

  const { info } = run;
  const registry = opts.registry ?? new OpenRunRegistry({ uninstallWhenEmpty: true });
  const handle = new RunHandle({
    client,
    registry,
    runId: info.run_id,
    experimentId: info.experiment_id,
    runName: info.run_name ?? opts.runName ?? '',
    artifactUri: info.artifact_uri,
    description: opts.description,
    leaseMs,
    heartbeatMs,
    flushIntervalMs: opts.flushIntervalMs ?? 1_000,
    owner: tags[RW_TAGS.owner],
    maxBufferedPoints: opts.maxBufferedPoints,
    maxBufferedBytes: opts.maxBufferedBytes,
    endFlushTimeoutMs: opts.endFlushTimeoutMs,
  });
  registry.track(handle, { client, owner: tags[RW_TAGS.owner] });
  if (!opts.registry && (opts.handleSignals ?? true)) registry.installSignalHandlers();
  if (opts.params && Object.keys(opts.params).length) {
    try {
      await handle.logParams(opts.params);
    } catch (err) {
      await handle.end('FAILED', { error: err, reason: 'initial params refused' });
      throw err;
    }
  }
  return handle;
}

export interface AdoptRunOptions {
  leaseMs?: number;
  heartbeatMs?: number;
  flushIntervalMs?: number;
  /** The run as just read with `requireRunning` (saves reading it again). */
  run?: Run;
  /** Track the handle in this registry (flushed on its `closeAll()`; ended only with `owner`). */
  registry?: OpenRunRegistry;
  /** Set when the run's `runwarden.owner` is this runtime's own id: its registry may then end it. */
  owner?: string;
}

/**
 * A handle on a run that is already open (started by this server before a restart, or by another
 * process of the same owner). Refuses runs that are not RUNNING, saying who closed them.
 */
/** Read a run and throw RunClosedError (saying who closed it) unless it is RUNNING. */
export async function requireRunning(client: MlflowClient, runId: string): Promise<Run> {
  const run = (await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } })))
    .run;
  const status = run.info.status;
  if (status !== 'RUNNING') {
    const tags = new Map((run.data?.tags ?? []).map((t) => [t.key, t.value]));
    throw new RunClosedError(runId, `${status}${describeCloser(tags)}`);
  }
  return run;
}

export async function adoptRun(
  client: MlflowClient,
  runId: string,
  opts: AdoptRunOptions = {},
): Promise<RunHandle> {
  const run = opts.run ?? (await requireRunning(client, runId));
  const { info } = run;
  const tags = new Map((run.data?.tags ?? []).map((t) => [t.key, t.value]));
  const handle = new RunHandle({
    client,
    runId,
    experimentId: info.experiment_id,
    runName: info.run_name ?? '',
    artifactUri: info.artifact_uri,
    description: tags.get(MLFLOW_TAGS.note),
    leaseMs: opts.leaseMs ?? 300_000,
    heartbeatMs: opts.heartbeatMs ?? 0,
    flushIntervalMs: opts.flushIntervalMs ?? 1_000,
    params: Object.fromEntries((run.data?.params ?? []).map((p) => [p.key, p.value])),
    registry: opts.registry,
    owner: tags.get(RW_TAGS.owner),
  });
  const owned = opts.owner !== undefined && tags.get(RW_TAGS.owner) === opts.owner;
  opts.registry?.track(handle, { client, owner: owned ? opts.owner : undefined });
  return handle;
}

function describeCloser(tags: Map<string, string>): string {
  const by = tags.get(RW_TAGS.closedBy);
  const why = tags.get(RW_TAGS.closeReason);
  return by ? `, closed by ${by}${why ? `: ${why}` : ''}` : '';
}
