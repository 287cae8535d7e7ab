/**
 * A run's metric buffer: bounded, lossless, with real backpressure. Points stay in the buffer until
 * MLflow has stored them (a batch is removed only after its log-batch request succeeded), so a
 * failed flush never drops anything. The buffer holds at most `maxPoints` points and about
 * `maxBytes` bytes; a `push` into a full buffer waits until a successful flush makes room. A
 * background loop flushes on an interval and, after failures, backs off (exponential with jitter,
 * capped) and keeps trying for as long as the buffer is open.
 */

import type { MetricPoint } from './batching.js';
import { LIMITS } from './validation.js';

export interface MetricBufferOptions {
  /**
   * Store the first points of `points` (at most `batchSize` are offered) in one request; resolves
   * with how many were stored, rejects when MLflow did not store them.
   */
  send: (points: readonly MetricPoint[]) => Promise<number>;
  /** Most points per request (room left beside the tags that ride along). */
  batchSize: number;
  /** Flush at least this often while points wait. */
  intervalMs: number;
  maxPoints: number;
  maxBytes: number;
  /** A background flush failed (the points are kept); called once per failure. */
  onError?: (err: unknown, pending: number) => void;
}

/** Longest pause between background retries during an outage. */
const MAX_BACKOFF_MS = 5_000;
/** Flush without waiting for the interval once this many points wait. */
const FLUSH_AT = LIMITS.maxMetricsPerBatch;

/** Rough in-memory size of one point (object, number fields and its key string). */
function pointBytes(p: MetricPoint): number {
  return 64 + 2 * p.key.length;
}

export class MetricBuffer {
  private points: MetricPoint[] = [];
  private bytes = 0;
  private inFlight?: Promise<void>;
  private failures = 0;
  private nextTryAt = 0;
  private lastError: unknown;
  private closedWith: unknown;
  /** Set by halt(): nothing more is sent. */
  private halted = false;
  private roomWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: MetricBufferOptions) {
    this.timer = setInterval(() => this.tick(), opts.intervalMs);
    this.timer.unref();
  }

  /** Points not yet stored by MLflow (including a batch in flight). */
  get pending(): number {
    return this.points.length;
  }

  /** Estimated bytes held. */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** The error of the last failed flush, until a flush succeeds. */
  get error(): unknown {
    return this.lastError;
  }

  private isFull(): boolean {
    return this.points.length >= this.opts.maxPoints || this.bytes >= this.opts.maxBytes;
  }

  /**
   * Add a point. When the buffer is full this waits until a flush stored enough to make room
   * (real backpressure), and rejects if the buffer is closed meanwhile (the point is then not taken).
   */
  async push(p: MetricPoint): Promise<void> {
    while (this.isFull()) {
      if (this.closedWith !== undefined) throw this.closedWith;
      this.kick();
      await new Promise<void>((resolve, reject) => this.roomWaiters.push({ resolve, reject }));
    }
    if (this.closedWith !== undefined) throw this.closedWith;
    this.points.push(p);
    this.bytes += pointBytes(p);
    if (this.points.length >= FLUSH_AT) this.kick();
  }

  /** Start a background flush unless one runs or the backoff after a failure has not passed. */
  private kick(): void {
    if (this.inFlight || Date.now() < this.nextTryAt || !this.points.length) return;
    this.flush().catch(() => undefined);
  }

  private tick(): void {
    if (this.points.length) this.kick();
  }

  /**
   * Send everything buffered now (joining a flush in flight). Rejects with MLflow's error if a
   * batch was not stored; the unsent points stay buffered, in order.
   */
  flush(): Promise<void> {
    this.inFlight ??= this.drain().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async drain(): Promise<void> {
    while (this.points.length) {
      if (this.halted) throw this.closedWith;
      const offered = this.points.slice(0, this.opts.batchSize);
      let stored: number;
      try {
        stored = await this.opts.send(offered);
      } catch (err) {
        this.failures++;
        const ceiling = Math.min(MAX_BACKOFF_MS, this.opts.intervalMs * 2 ** (this.failures - 1));
        this.nextTryAt = Date.now() + ceiling / 2 + Math.random() * (ceiling / 2);
        this.lastError = err;
        this.opts.onError?.(err, this.points.length);
        throw err;
      }
      // Stored: only now do the points leave the buffer.
      for (const p of this.points.splice(0, stored)) this.bytes -= pointBytes(p);
      this.failures = 0;
      this.nextTryAt = 0;
      this.lastError = undefined;
      this.wakeWaiters();
    }
  }

  private wakeWaiters(): void {
    for (const w of this.roomWaiters.splice(0)) w.resolve();
  }

  /**
   * Flush until empty, retrying with backoff through failures, until `deadlineMs` (epoch ms).
   * Returns how many points were left unstored and the last error (0 and undefined when all went).
   */
  async drainUntil(deadlineMs: number): Promise<{ unsent: number; error?: unknown }> {
    for (let failures = 0; ; ) {
      if (this.halted) return { unsent: this.points.length, error: this.closedWith };
      try {
        await this.flush();
        if (!this.points.length) return { unsent: 0 };
      } catch (err) {
        failures++;
        const left = deadlineMs - Date.now();
        if (left <= 0) return { unsent: this.points.length, error: err };
        const ceiling = Math.min(MAX_BACKOFF_MS, this.opts.intervalMs * 2 ** (failures - 1));
        await new Promise((r) => setTimeout(r, Math.min(left, ceiling / 2 + Math.random() * (ceiling / 2))));
      }
    }
  }

  /**
   * Stop taking points: pushes waiting for room (and later ones) reject with `reason`. Buffered
   * points are kept (`pending` still counts them) and can still be flushed.
   */
  close(reason: unknown): void {
    this.closedWith ??= reason;
    for (const w of this.roomWaiters.splice(0)) w.reject(reason);
  }

  /** Stop the background loop (the handle ended). */
  stopTimer(): void {
    clearInterval(this.timer);
  }

  /** Close, stop the loop and send nothing more (the run is no longer ours). Points are kept. */
  halt(reason: unknown): void {
    this.close(reason);
    this.halted = true;
    this.stopTimer();
  }

  /** A copy of the points not stored, oldest first. */
  unsent(): MetricPoint[] {
    return [...this.points];
  }
}
