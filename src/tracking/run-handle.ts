/**
 * A run handle: the only way runwarden writes to an open run. It validates before sending, buffers
 * metrics and flushes them in log-batch requests within MLflow's limits (by size, on an interval,
 * and always before the run ends), keeps params write-once with a clear conflict error, renews the
 * run's lease on every call and on a heartbeat, and ends the run exactly once with tags saying who
 * closed it and why.
 */
import { isMlflowError, ParamConflictError, RunClosedError, ValidationError } from '../errors/index.js';
import { uploadBytes, uploadPath } from '../mlflow/artifacts.js';
import { type DatasetInputRequest, type MlflowClient, ok } from '../mlflow/client.js';
import { batchBody, chunk, type KeyValue, type MetricPoint, metricRoom, truncate } from './batching.js';
import type { OpenRunTracker } from './open-runs.js';
import { MLFLOW_TAGS, RW_TAGS, type TerminalStatus } from './tags.js';
import { LIMITS, validateKey, validateMetricValue, validateStep, validateTimestamp } from './validation.js';

export type ParamValue = string | number | boolean;

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
}

export interface EndOptions {
  /** Why the run ended; stored in `runwarden.close_reason`. */
  reason?: string;
  /** Who ended it (default `owner`). */
  closedBy?: string;
  /** For FAILED: the error, written into the run's description and the `runwarden.error` tag. */
  error?: unknown;
  /** Extra tags written in the same request as the closing tags. */
  tags?: Record<string, string>;
}

/** Renew-on-touch at most this often; the heartbeat covers quiet periods. */
const RENEW_THROTTLE_MS = 1_000;
/** Flush as soon as this many metric points wait. */
const FLUSH_AT = LIMITS.maxMetricsPerBatch;
/** Above this many waiting points, logMetric waits for the flush (backpressure). */
const HIGH_WATER = 20 * LIMITS.maxMetricsPerBatch;

export class RunHandle {
  readonly runId: string;
  readonly experimentId: string;
  readonly runName: string;
  readonly artifactUri: string;
  /** MLflow UI link to this run. */
  readonly url: string;
  private readonly client: MlflowClient;
  private readonly leaseMs: number;
  private readonly flushIntervalMs: number;
  private readonly registry?: OpenRunTracker;
  /** When the last flush failed (0 = the last one succeeded): size-triggered flushes pause a while. */
  private failedAt = 0;
  private description: string;
  private buffer: MetricPoint[] = [];
  private readonly params = new Map<string, string>();
  private readonly truncatedParams = new Set<string>();
  private flushing: Promise<void> = Promise.resolve();
  private queuedFlush?: Promise<void>;
  private flushError: unknown;
  private lastRenewedAt = 0;
  private readonly heartbeat?: NodeJS.Timeout;
  private readonly flushTimer: NodeJS.Timeout;
  private _status: 'RUNNING' | TerminalStatus = 'RUNNING';
  private ending?: Promise<void>;

  constructor(init: RunHandleInit) {
    this.client = init.client;
    this.runId = init.runId;
    this.experimentId = init.experimentId;
    this.runName = init.runName;
    this.artifactUri = init.artifactUri;
    this.description = init.description ?? '';
    this.leaseMs = init.leaseMs;
    this.flushIntervalMs = init.flushIntervalMs;
    this.registry = init.registry;
    this.url = init.client.runUrl(init.experimentId, init.runId);
    for (const [k, v] of Object.entries(init.params ?? {})) this.params.set(k, v);
    this.lastRenewedAt = Date.now();
    // heartbeatMs 0: no heartbeat, the lease lives only as long as callers keep touching the run
    // (runs started for MCP clients, so a client that goes away lets its run expire).
    if (init.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => {
        this.renewLease().catch((err) =>
          this.client.logger?.warn({ err, runId: this.runId }, 'heartbeat failed'),
        );
      }, init.heartbeatMs);
      this.heartbeat.unref();
    }
    this.flushTimer = setInterval(() => {
      if (this.buffer.length) this.scheduleFlush();
    }, init.flushIntervalMs);
    this.flushTimer.unref();
  }

  /** RUNNING until `end()`; then the terminal status. */
  get status(): 'RUNNING' | TerminalStatus {
    return this._status;
  }

  /** Metric points waiting to be sent. */
  get pending(): number {
    return this.buffer.length;
  }

  private assertOpen(): void {
    if (this._status !== 'RUNNING' || this.ending)
      throw new RunClosedError(this.runId, this.ending ? 'ending' : this._status);
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
    if (this._status !== 'RUNNING') return;
    const now = Date.now();
    this.lastRenewedAt = now;
    await this.logBatch([], [], this.leaseTags(now));
  }

  /** Log params. Same value again is a no-op; a different value throws ParamConflictError. */
  async logParams(record: Record<string, ParamValue>): Promise<void> {
    this.assertOpen();
    const fresh: KeyValue[] = [];
    const long: { key: string; full: string }[] = [];
    for (const [key, raw] of Object.entries(record)) {
      validateKey(`params.${key}`, key);
      if (!['string', 'number', 'boolean'].includes(typeof raw)) {
        throw new ValidationError(
          `params.${key}`,
          `value must be a string, number or boolean, got ${typeof raw}`,
        );
      }
      let value = String(raw);
      if (value.length > LIMITS.maxParamValueLength) {
        long.push({ key, full: value });
        value = truncate(value, LIMITS.maxParamValueLength);
      }
      const existing = this.params.get(key);
      if (existing === undefined) fresh.push({ key, value });
      else if (existing !== value) throw new ParamConflictError(this.runId, key, existing, value);
    }
    if (!fresh.length) return;
    for (const { key, full } of long) {
      await uploadBytes(this.client, this.artifactUri, `runwarden/params/${key}.txt`, full);
    }
    for (const { key } of long) this.truncatedParams.add(key);
    const tags = long.length
      ? [{ key: RW_TAGS.truncatedParams, value: [...this.truncatedParams].join(',') }]
      : [];
    const batches = chunk(fresh, LIMITS.maxParamsPerBatch);
    for (const [i, batch] of batches.entries()) {
      try {
        await this.logBatch([], batch, i === 0 ? [...tags, ...this.touchTags()] : []);
      } catch (err) {
        if (isMlflowError(err, 'INVALID_PARAMETER_VALUE')) await this.explainParamConflict(batch);
        throw err;
      }
      for (const p of batch) this.params.set(p.key, p.value);
    }
  }

  /** After MLflow refused a batch: if a key already holds another value, say which. */
  private async explainParamConflict(batch: KeyValue[]): Promise<void> {
    const res = await ok(
      this.client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: this.runId } } }),
    );
    const onServer = new Map((res.run?.data?.params ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    for (const p of batch) {
      const existing = onServer.get(p.key);
      if (existing !== undefined && existing !== p.value) {
        this.params.set(p.key, existing);
        throw new ParamConflictError(this.runId, p.key, existing, p.value);
      }
    }
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
    if (this.flushError) throw this.takeFlushError();
    validateKey(`metrics.${key}`, key);
    validateMetricValue(`metrics.${key}`, value);
    const step = opts.step ?? 0;
    const timestamp = opts.timestamp ?? Date.now();
    validateStep(`metrics.${key}.step`, step);
    validateTimestamp(`metrics.${key}.timestamp`, timestamp);
    this.buffer.push({ key, value, step, timestamp });
    // After a failure, leave retries to the interval timer instead of one request per point.
    if (this.buffer.length >= FLUSH_AT && Date.now() - this.failedAt >= this.flushIntervalMs)
      this.scheduleFlush();
    if (this.buffer.length >= HIGH_WATER) await this.flushing;
  }

  /** Buffer several metrics at one step: `{ loss: 0.3, acc: 0.9 }`. */
  async logMetrics(
    values: Record<string, number>,
    opts: { step?: number; timestamp?: number } = {},
  ): Promise<void> {
    const timestamp = opts.timestamp ?? Date.now();
    for (const [k, v] of Object.entries(values)) await this.logMetric(k, v, { ...opts, timestamp });
  }

  private takeFlushError(): unknown {
    const err = this.flushError;
    this.flushError = undefined;
    return err;
  }

  /**
   * Queue a flush behind the one in flight. Flushes run one at a time, in order, and requests
   * coalesce: at most one flush runs and one waits (the waiting one drains everything buffered).
   */
  private scheduleFlush(): Promise<void> {
    if (this.queuedFlush) return this.queuedFlush;
    const queued = this.flushing.then(() => {
      this.queuedFlush = undefined;
      return this.drain();
    });
    this.queuedFlush = queued;
    this.flushing = queued;
    return queued;
  }

  /** Send everything buffered. On failure the unsent points go back to the front of the buffer. */
  private async drain(): Promise<void> {
    while (this.buffer.length) {
      const tags = this.touchTags();
      const batch = this.buffer.splice(0, metricRoom(tags.length));
      try {
        await this.logBatch(batch, [], tags);
      } catch (err) {
        this.buffer.unshift(...batch);
        this.flushError = err;
        this.failedAt = Date.now();
        return;
      }
      this.failedAt = 0;
    }
  }

  /** Send all buffered metrics now; throws if MLflow refused or stayed unreachable (nothing is dropped). */
  async flush(): Promise<void> {
    await this.scheduleFlush();
    if (this.flushError) throw this.takeFlushError();
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
   * timers and refuses further writes, sending nothing. Buffered points are dropped, as the run
   * no longer accepts them.
   */
  detach(status: TerminalStatus): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    clearInterval(this.flushTimer);
    this.buffer = [];
    this._status = status;
    this.registry?.untrack(this);
  }

  /**
   * End the run once: flush, write who closed it and why, set the terminal status. Later calls
   * return the first call's promise. If the flush fails the run still ends (FAILED, saying how many
   * points could not be sent) and the flush error is thrown.
   */
  end(status: TerminalStatus = 'FINISHED', opts: EndOptions = {}): Promise<void> {
    this.ending ??= this.doEnd(status, opts);
    return this.ending;
  }

  private async doEnd(status: TerminalStatus, opts: EndOptions): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.flushTimer);
    let flushErr: unknown;
    await this.scheduleFlush();
    if (this.flushError) {
      flushErr = this.takeFlushError();
      status = 'FAILED';
      opts = {
        ...opts,
        reason: `could not send ${this.buffer.length} metric points: ${(flushErr as Error).message}`,
      };
    }
    const tags: KeyValue[] = [
      ...Object.entries(opts.tags ?? {}).map(([key, value]) => ({
        key,
        value: truncate(value, LIMITS.maxTagValueLength),
      })),
      { key: RW_TAGS.closedBy, value: opts.closedBy ?? 'owner' },
      {
        key: RW_TAGS.closeReason,
        value: truncate(opts.reason ?? defaultReason(status), LIMITS.maxTagValueLength),
      },
    ];
    if (opts.error !== undefined) {
      const e = opts.error as { name?: string; code?: string; message?: string };
      const summary = `${e?.code ?? e?.name ?? 'Error'}: ${e?.message ?? String(opts.error)}`;
      tags.push({ key: RW_TAGS.error, value: truncate(summary, LIMITS.maxTagValueLength) });
      const note = `${this.description ? `${this.description}\n\n` : ''}**Run failed** — ${summary}`;
      tags.push({ key: MLFLOW_TAGS.note, value: truncate(note, LIMITS.maxTagValueLength) });
    }
    try {
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
      this._status = status;
      if (tagged.status === 'rejected') throw tagged.reason;
    } finally {
      // Still tracked while the run is not ended (a failed end), so a shutdown tries again.
      if (this._status !== 'RUNNING') this.registry?.untrack(this);
    }
    if (flushErr) throw flushErr;
  }
}

function defaultReason(status: TerminalStatus): string {
  if (status === 'FINISHED') return 'completed';
  if (status === 'KILLED') return 'cancelled';
  return 'failed';
}
