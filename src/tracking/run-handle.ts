/**
 * A run handle: the only way runwarden writes to an open run. It validates before sending, keeps
 * metrics in a bounded, lossless buffer (metric-buffer.ts) flushed in log-batch requests within
 * MLflow's limits, keeps params write-once with a clear conflict error, renews the run's lease on
 * every call and on a heartbeat, and fences: a heartbeat that finds the run closed or taken over
 * detaches the handle (its `signal` aborts, writes are refused with RUN_CLOSED). `end()` drains the
 * buffer through an outage up to a deadline, never overwrites a status someone else set, and may be
 * retried after a failure. Its parts: the lease and its fence (run-lease.ts), ending (run-end.ts),
 * metric points and their buffer (run-metrics.ts), params (run-params.ts).
 */
import { RunClosedError, ValidationError } from '../errors/index.js';
import { uploadBytes, uploadPath } from '../mlflow/artifacts.js';
import { type DatasetInputRequest, type MlflowClient, ok } from '../mlflow/client.js';
import { batchBody, chunk, type KeyValue, type MetricPoint, truncate } from './batching.js';
import type { EndOptions } from './close-run.js';
import { lostRunError, type RunLoss } from './fence.js';
import type { MetricBuffer } from './metric-buffer.js';
import type { OpenRunTracker } from './open-runs.js';
import { DEFAULT_END_FLUSH_TIMEOUT_MS, type EndingRun, endRun } from './run-end.js';
import type { RunHandleInit } from './run-handle-init.js';
import { RunLease } from './run-lease.js';
import { metricPoint, runMetricBuffer } from './run-metrics.js';
import { type ParamValue, RunParams } from './run-params.js';
import type { TerminalStatus } from './tags.js';
import { LIMITS, validateKey } from './validation.js';

export type { EndOptions } from './close-run.js';
export { DEFAULT_END_FLUSH_TIMEOUT_MS } from './run-end.js';
export type { RunHandleInit } from './run-handle-init.js';
export { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_BUFFERED_POINTS } from './run-metrics.js';
export type { ParamValue } from './run-params.js';

export class RunHandle {
  readonly runId: string;
  readonly experimentId: string;
  readonly runName: string;
  readonly artifactUri: string;
  /** MLflow UI link to this run. */
  readonly url: string;
  private readonly client: MlflowClient;
  private readonly registry?: OpenRunTracker;
  private readonly buffer: MetricBuffer;
  private readonly params: RunParams;
  private readonly lease: RunLease;
  private readonly ends: EndingRun;
  private _status: 'RUNNING' | TerminalStatus = 'RUNNING';
  /** Set by the first end() call: writes are refused from then on. */
  private closing = false;
  /** The end() attempt in flight; cleared when it settles, so a failed end() can be retried. */
  private ending?: Promise<void>;
  /** Set when the run was found closed or taken over by someone else. */
  private lost?: RunClosedError;
  private readonly controller = new AbortController();

  constructor(init: RunHandleInit) {
    this.client = init.client;
    this.runId = init.runId;
    this.experimentId = init.experimentId;
    this.runName = init.runName;
    this.artifactUri = init.artifactUri;
    this.registry = init.registry;
    this.url = init.client.runUrl(init.experimentId, init.runId);
    this.params = new RunParams({
      client: init.client,
      runId: init.runId,
      artifactUri: init.artifactUri,
      params: init.params,
      send: (params, tags) => this.logBatch([], params, tags),
      extraTags: () => this.lease.touchTags(),
    });
    this.lease = new RunLease({
      ...init,
      send: (tags) => this.logBatch([], [], tags),
      holding: () => this._status === 'RUNNING' && !this.lost,
      onLost: (loss) => {
        this.fence(loss);
      },
    });
    this.buffer = runMetricBuffer({
      ...init,
      touchTags: () => this.lease.touchTags(),
      send: (points, tags) => this.logBatch(points, [], tags),
    });
    this.ends = {
      client: init.client,
      runId: init.runId,
      description: init.description ?? '',
      endFlushTimeoutMs: init.endFlushTimeoutMs ?? DEFAULT_END_FLUSH_TIMEOUT_MS,
      buffer: this.buffer,
      lease: this.lease,
      send: (tags) => this.logBatch([], [], tags),
      lost: () => this.lost,
      running: () => this._status === 'RUNNING',
      fence: (loss) => this.fence(loss),
      finish: (status) => this.finish(status),
    };
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
    await this.lease.renew();
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
      await this.logBatch([], [], i === 0 ? [...batch, ...this.lease.touchTags()] : batch);
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
    // Waits while the buffer is full, until a flush has stored enough to make room.
    await this.buffer.push(metricPoint(key, value, opts));
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
    const tags = this.lease.touchTags();
    if (tags.length) await this.logBatch([], [], tags);
  }

  /**
   * Forget the run locally because someone else closed it (the reaper, another process): stops the
   * timers, refuses further writes (with `reason`, or a RunClosedError naming `status`) and aborts
   * `signal`, sending nothing. Buffered points are kept, not sent (the run is not ours to write
   * to): `pending` and `unsentPoints()` say what was not stored.
   */
  detach(status: TerminalStatus, reason?: RunClosedError): void {
    this.lease.stop();
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
    this.ending ??= endRun(this.ends, status, opts).finally(() => {
      this.ending = undefined;
    });
    return this.ending;
  }

  /** The run is ended: stop the timers and leave the open-run registry. */
  private finish(status: TerminalStatus): void {
    this._status = status;
    this.lease.stop();
    this.buffer.stopTimer();
    // Still tracked while the run is not ended (a failed end), so a shutdown tries again.
    this.registry?.untrack(this);
  }
}
