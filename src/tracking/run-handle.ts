/**
 * A run handle: the only way runwarden writes to an open run. It validates before sending, keeps
 * metrics in a bounded, lossless buffer (metric-buffer.ts) flushed in log-batch requests within
 * MLflow's limits, keeps params write-once with a clear conflict error, renews the run's lease on
 * every call and on a heartbeat, and fences: a heartbeat that finds the run closed or taken over
 * detaches the handle (its `signal` aborts, writes are refused with RUN_CLOSED). `end()` drains the
 * buffer through an outage up to a deadline, never overwrites a status someone else set, and may be
 * retried after a failure.
 */
import { RunClosedError, ValidationError } from '../errors/index.js';
import { uploadBytes, uploadPath } from '../mlflow/artifacts.js';
import { type DatasetInputRequest, type MlflowClient, ok, type Run } from '../mlflow/client.js';
import { batchBody, chunk, type KeyValue, type MetricPoint, metricRoom, truncate } from './batching.js';
import { closingTags, type EndOptions } from './close-run.js';
import { lostRunError, type RunLoss, runLoss } from './fence.js';
import { MetricBuffer } from './metric-buffer.js';
import type { OpenRunTracker } from './open-runs.js';
import { type ParamValue, RunParams } from './run-params.js';
import { RW_TAGS, type TerminalStatus } from './tags.js';
import { LIMITS, validateKey, validateMetricValue, validateStep, validateTimestamp } from './validation.js';

export type { EndOptions } from './close-run.js';
export type { ParamValue } from './run-params.js';

export interface RunHandleInit {
  client: MlflowClient;
  runId: string;
  experimentId: string;
  runName: string;
  artifactUri: string;
  description?: string;
  leaseMs: number;
  heartbeatMs: number;
  flushIntervalMs: number;
  /** Params already on the run (so same-value re-logging is a no-op). */
  params?: Record<string, string>;
  /** The open-run registry tracking this handle; told when the run ended or was detached. */
  registry?: OpenRunTracker;
  /** The `runwarden.owner` this handle holds the run as; another owner on the run means it was taken over. */
  owner?: string;
  /** Most metric points held in memory; `logMetric` waits when full (default 100,000). */
  maxBufferedPoints?: number;
  /** Most estimated bytes of metric points held in memory (default 32 MiB). */
  maxBufferedBytes?: number;
  /** How long `end()` keeps retrying to store buffered points before ending FAILED (default 3 min). */
  endFlushTimeoutMs?: number;
}

export const DEFAULT_MAX_BUFFERED_POINTS = 100_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
export const DEFAULT_END_FLUSH_TIMEOUT_MS = 180_000;

/** Renew-on-touch at most this often; the heartbeat covers quiet periods. */
const RENEW_THROTTLE_MS = 1_000;

export class RunHandle {
  readonly runId: string;
  readonly experimentId: string;
  readonly runName: string;
  readonly artifactUri: string;
  /** MLflow UI link to this run. */
  readonly url: string;
  private readonly client: MlflowClient;
  private readonly leaseMs: number;
  private readonly registry?: OpenRunTracker;
  private readonly owner?: string;
  private readonly endFlushTimeoutMs: number;
  private description: string;
  private readonly buffer: MetricBuffer;
  private readonly params: RunParams;
  private lastRenewedAt = 0;
  private heartbeat?: NodeJS.Timeout;
  private _status: 'RUNNING' | TerminalStatus = 'RUNNING';
  /** Set by the first end() call: writes are refused from then on. */
  private closing = false;
  /** The end() attempt in flight; cleared when it settles, so a failed end() can be retried. */
  private ending?: Promise<void>;
  /** Set when the run was found closed or taken over by someone else. */
  private lost?: RunClosedError;
  /** The close this handle sent, so a retried end() recognises its own closing tags. */
  private sentClose?: { closedBy: string; status: TerminalStatus };
  private readonly controller = new AbortController();

  constructor(init: RunHandleInit) {
    this.client = init.client;
    this.runId = init.runId;
    this.experimentId = init.experimentId;
    this.runName = init.runName;
    this.artifactUri = init.artifactUri;
    this.description = init.description ?? '';
    this.leaseMs = init.leaseMs;
    this.owner = init.owner;
    this.endFlushTimeoutMs = init.endFlushTimeoutMs ?? DEFAULT_END_FLUSH_TIMEOUT_MS;
    this.registry = init.registry;
    this.url = init.client.runUrl(init.experimentId, init.runId);
    this.params = new RunParams({
      client: init.client,
      runId: init.runId,
      artifactUri: init.artifactUri,
      params: init.params,
      send: (params, tags) => this.logBatch([], params, tags),
      extraTags: () => this.touchTags(),
    });
    this.lastRenewedAt = Date.now();
    // heartbeatMs 0: no heartbeat, the lease lives only as long as callers keep touching the run
    // (runs started for MCP clients, so a client that goes away lets its run expire).
    if (init.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => {
        this.beat().catch((err) => this.client.logger?.warn({ err, runId: this.runId }, 'heartbeat failed'));
      }, init.heartbeatMs);
      this.heartbeat.unref();
    }
    this.buffer = new MetricBuffer({
      send: async (points) => {
        // Lease tags ride along when a renewal is due, leaving room for fewer metrics.
        const tags = this.touchTags();
        const batch = points.slice(0, metricRoom(tags.length));
        await this.logBatch(batch, [], tags);
        return batch.length;
      },
      batchSize: LIMITS.maxMetricsPerBatch,
      intervalMs: init.flushIntervalMs,
      maxPoints: init.maxBufferedPoints ?? DEFAULT_MAX_BUFFERED_POINTS,
      maxBytes: init.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      onError: (err, pending) =>
        this.client.logger?.warn(
          { err, runId: this.runId, pending },
          'metric flush failed; the points stay buffered and the flush is retried',
        ),
    });
  }

  /**
   * Aborts when the run was found closed or taken over by someone else (reason: a RunClosedError
   * naming who closed it and why). Pass it to the work the run records, so that work stops.
   */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** RUNNING until `end()`; then the terminal status. */
  get status(): 'RUNNING' | TerminalStatus {
    return this._status;
  }

  /** Metric points not yet stored by MLflow. */
  get pending(): number {
    return this.buffer.pending;
  }

  /** Estimated bytes of the metric points held in memory. */
  get pendingBytes(): number {
    return this.buffer.pendingBytes;
  }

  /** The last background flush error, until a flush succeeds (the points are kept meanwhile). */
  get flushError(): unknown {
    return this.buffer.error;
  }

  /** Points logged but not stored (after a detach or a failed end), oldest first. */
  unsentPoints(): MetricPoint[] {
    return this.buffer.unsent();
  }

  private assertOpen(): void {
    if (this.lost) throw this.lost;
    if (this._status !== 'RUNNING' || this.closing)
      throw new RunClosedError(this.runId, this._status === 'RUNNING' ? 'ending' : this._status);
  }

  private leaseTags(now = Date.now()): KeyValue[] {
    return [
      { key: RW_TAGS.leaseExpiresAt, value: String(now + this.leaseMs) },
      { key: RW_TAGS.heartbeatAt, value: String(now) },
    ];
  }

  /** Lease tags when a renewal is due, else none (renew-on-touch, throttled). */
  private touchTags(): KeyValue[] {
    const now = Date.now();
    if (now - this.lastRenewedAt < RENEW_THROTTLE_MS) return [];
    this.lastRenewedAt = now;
    return this.leaseTags(now);
  }

  private async logBatch(
    metrics: readonly MetricPoint[],
    params: KeyValue[],
    tags: KeyValue[],
  ): Promise<void> {
    await ok(
      this.client.api.POST('/api/2.0/mlflow/runs/log-batch', {
        body: batchBody(this.runId, metrics, params, tags),
      }),
    );
  }

  /** Extend the lease now (the heartbeat calls this; so does every write, throttled). */
  async renewLease(): Promise<void> {
    if (this._status !== 'RUNNING' || this.lost) return;
    const now = Date.now();
    this.lastRenewedAt = now;
    await this.logBatch([], [], this.leaseTags(now));
  }

  private async readRun(): Promise<Run | undefined> {
    const res = await ok(
      this.client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: this.runId } } }),
    );
    return res.run;
  }

  /** One heartbeat: read the run; if it is no longer ours, detach; otherwise renew the lease. */
  private async beat(): Promise<void> {
    if (this._status !== 'RUNNING' || this.lost) return;
    const loss = runLoss(await this.readRun(), this.owner);
    if (loss && !this.isOwnClose(loss)) {
      this.fence(loss);
      return;
    }
    await this.renewLease();
  }

  /** A read that shows the closing tags this handle itself sent (a retried end()). */
  private isOwnClose(loss: RunLoss): boolean {
    const sent = this.sentClose;
    return (
      !!sent && loss.closedBy === sent.closedBy && (loss.status === 'RUNNING' || loss.status === sent.status)
    );
  }

  /** The run is someone else's now: stop, refuse writes, abort `signal`. */
  private fence(loss: RunLoss): RunClosedError {
    const err = lostRunError(this.runId, loss, this.buffer.pending);
    const terminal = ['FINISHED', 'FAILED', 'KILLED'].includes(loss.status);
    this.detach(terminal ? (loss.status as TerminalStatus) : 'KILLED', err);
    this.client.logger?.warn(
      { runId: this.runId, closedBy: loss.closedBy, reason: loss.closeReason, unsent: this.buffer.pending },
      'run closed or taken over by someone else; handle detached',
    );
    return err;
  }

  /** Log params. Same value again is a no-op; a different value throws ParamConflictError. */
  async logParams(record: Record<string, ParamValue>): Promise<void> {
    this.assertOpen();
    await this.params.log(record);
  }

  async logParam(key: string, value: ParamValue): Promise<void> {
    await this.logParams({ [key]: value });
  }

  /** Set tags (last write wins). Values over 8000 characters are truncated, as MLflow would. */
  async setTags(record: Record<string, string>): Promise<void> {
    this.assertOpen();
    const tags: KeyValue[] = Object.entries(record).map(([key, value]) => {
      validateKey(`tags.${key}`, key);
      if (typeof value !== 'string')
        throw new ValidationError(`tags.${key}`, `value must be a string, got ${typeof value}`);
      return { key, value: truncate(value, LIMITS.maxTagValueLength) };
    });
    for (const [i, batch] of chunk(tags, LIMITS.maxTagsPerBatch - 2).entries()) {
      await this.logBatch([], [], i === 0 ? [...batch, ...this.touchTags()] : batch);
    }
  }

  async setTag(key: string, value: string): Promise<void> {
    await this.setTags({ [key]: value });
  }

  /** Buffer one metric point; it is sent within the flush interval or when a batch fills. */
  async logMetric(
    key: string,
    value: number,
    opts: { step?: number; timestamp?: number } = {},
  ): Promise<void> {
    this.assertOpen();
    validateKey(`metrics.${key}`, key);
    validateMetricValue(`metrics.${key}`, value);
    const step = opts.step ?? 0;
    const timestamp = opts.timestamp ?? Date.now();
    validateStep(`metrics.${key}.step`, step);
    validateTimestamp(`metrics.${key}.timestamp`, timestamp);
    // Waits while the buffer is full, until a flush has stored enough to make room.
    await this.buffer.push({ key, value, step, timestamp });
  }

  /** Buffer several metrics at one step: `{ loss: 0.3, acc: 0.9 }`. */
  async logMetrics(
    values: Record<string, number>,
    opts: { step?: number; timestamp?: number } = {},
  ): Promise<void> {
    const timestamp = opts.timestamp ?? Date.now();
    for (const [k, v] of Object.entries(values)) await this.logMetric(k, v, { ...opts, timestamp });
  }

  /**
   * Send all buffered metrics now; throws MLflow's error if a batch was not stored (the points stay
   * buffered and the background flush keeps retrying).
   */
  async flush(): Promise<void> {
    await this.buffer.flush();
  }

  /** Record dataset inputs (lineage) with MLflow's log-inputs. */
  async logInputs(datasets: DatasetInputRequest[]): Promise<void> {
    this.assertOpen();
    for (const batch of chunk(datasets, 1000)) {
      await ok(
        this.client.api.POST('/api/2.0/mlflow/runs/log-inputs', {
          body: { run_id: this.runId, datasets: batch },
        }),
      );
    }
    await this.touch();
  }

  /** Upload a file or directory (streamed) under `artifactPath`. */
  async logArtifact(
    localPath: string,
    artifactPath = '',
    opts: { onProgress?: (done: number, total: number) => void } = {},
  ) {
    this.assertOpen();
    const res = await uploadPath(this.client, this.artifactUri, localPath, {
      artifactPath,
      onProgress: opts.onProgress,
    });
    await this.touch();
    return res;
  }

  /** Store small text (or bytes) as an artifact file. */
  async logText(content: string | Uint8Array, artifactPath: string) {
    this.assertOpen();
    const res = await uploadBytes(this.client, this.artifactUri, artifactPath, content);
    await this.touch();
    return res;
  }

  private async touch(): Promise<void> {
    const tags = this.touchTags();
    if (tags.length) await this.logBatch([], [], tags);
  }

  /**
   * Forget the run locally because someone else closed it (the reaper, another process): stops the
   * timers, refuses further writes (with `reason`, or a RunClosedError naming `status`) and aborts
   * `signal`, sending nothing. Buffered points are kept, not sent (the run is not ours to write
   * to): `pending` and `unsentPoints()` say what was not stored.
   */
  detach(status: TerminalStatus, reason?: RunClosedError): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const unsent = this.buffer.pending;
    this.lost ??=
      reason ??
      new RunClosedError(
        this.runId,
        `${status}, closed elsewhere${unsent ? `; ${unsent} buffered metric points were not stored` : ''}`,
      );
    this.buffer.halt(this.lost);
    if (this._status === 'RUNNING') this._status = status;
    if (!this.controller.signal.aborted) this.controller.abort(this.lost);
    this.registry?.untrack(this);
  }

  /**
   * End the run: store buffered points (retrying through an outage for up to `endFlushTimeoutMs`),
   * re-read the run, then write who closed it and why and set the terminal status. If points could
   * not be stored by the deadline the run ends FAILED with their number in the reason, and the
   * flush error is thrown. If the run turned out to be closed or taken over by someone else, its
   * status is left alone and the RunClosedError naming the closer is thrown (the handle detaches).
   * Concurrent calls share one attempt; after a failure (MLflow unreachable) a later call tries
   * again; after success, later calls resolve at once.
   */
  end(status: TerminalStatus = 'FINISHED', opts: EndOptions = {}): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this._status !== 'RUNNING') return Promise.resolve();
    this.closing = true;
    this.ending ??= this.doEnd(status, opts).finally(() => {
      this.ending = undefined;
    });
    return this.ending;
  }

  private async doEnd(status: TerminalStatus, opts: EndOptions): Promise<void> {
    this.buffer.close(new RunClosedError(this.runId, 'ending'));
    // The heartbeat keeps the lease alive while the buffer drains through an outage.
    const { unsent, error: flushErr } = await this.buffer.drainUntil(Date.now() + this.endFlushTimeoutMs);
    if (this.lost) throw this.lost;
    if (unsent) {
      status = 'FAILED';
      const secs = this.endFlushTimeoutMs / 1000;
      opts = {
        ...opts,
        reason: `${unsent} metric points not stored within ${secs} s: ${(flushErr as Error).message}`,
      };
    }
    try {
      await this.close(status, opts);
    } catch (err) {
      // Given up for now: no heartbeat keeps a run alive that its owner failed to end.
      if (this._status === 'RUNNING' && this.heartbeat) clearInterval(this.heartbeat);
      throw err;
    }
    if (flushErr) throw flushErr;
  }

  /** Fence, then send the closing tags and the status. */
  private async close(status: TerminalStatus, opts: EndOptions): Promise<void> {
    // Never change the status of a run someone else closed or took over. (MLflow has no
    // compare-and-set: a close landing between this read and the update below is not seen.)
    const loss = runLoss(await this.readRun(), this.owner);
    if (loss && !this.isOwnClose(loss)) throw this.fence(loss);
    if (loss && loss.status !== 'RUNNING') {
      // An earlier attempt of ours landed after all.
      this.finish(loss.status as TerminalStatus);
      return;
    }
    const closedBy = opts.closedBy ?? 'owner';
    const tags = closingTags(status, { ...opts, closedBy }, this.description);
    this.sentClose = { closedBy, status };
    // Both at once (one round trip less per run): MLflow accepts tags on an ended run, and a
    // refused tag batch must not leave the run RUNNING until the reaper finds it.
    const [tagged, updated] = await Promise.allSettled([
      this.logBatch([], [], tags),
      ok(
        this.client.api.POST('/api/2.0/mlflow/runs/update', {
          body: { run_id: this.runId, status, end_time: Date.now() },
        }),
      ),
    ]);
    if (updated.status === 'rejected') throw updated.reason;
    this.finish(status);
    if (tagged.status === 'rejected') throw tagged.reason;
  }

  /** The run is ended: stop the timers and leave the open-run registry. */
  private finish(status: TerminalStatus): void {
    this._status = status;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.buffer.stopTimer();
    // Still tracked while the run is not ended (a failed end), so a shutdown tries again.
    this.registry?.untrack(this);
  }
}
