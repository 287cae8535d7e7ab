/**
 * What `/metrics` exposes, in Prometheus text format, from a registry of its own (never
 * prom-client's global one): tasks by state and reviews by decision (read from Redis at scrape
 * time, each bounded by a timeout so an outage makes the scrape say so in
 * `runwarden_collector_up{collector}` instead of hanging), task durations (fed by `observeTask`),
 * MLflow request latencies and errors by endpoint template (fed by the transport's observer), runs
 * reaped, open runs and the metric points their buffers hold, and Node's process metrics. Labels
 * come from small fixed sets; the open ones (endpoint, template) are capped, the rest becoming
 * `other`, so no task id, run id or path can grow the series without bound.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { RequestEvent } from '../mlflow/transport.js';
import { endpointTemplate } from './endpoint.js';

export interface ReviewCounts {
  pending: number;
  approve: number;
  reject: number;
  rework: number;
}

/** Where the scrape-time values come from; a missing source leaves its series out. */
export interface MetricsSources {
  /** BullMQ job counts of the tasks queue by state. */
  taskCounts?: () => Promise<Record<string, number>>;
  /** The review store's `counts()`. */
  reviewCounts?: () => Promise<ReviewCounts>;
  /** Metric points held in the buffers of this process's open runs. */
  bufferedPoints?: () => number;
  /** Runs this process holds open. */
  openRuns?: () => number;
  /** Runs this process's reaper closed since it started. */
  runsReaped?: () => number;
}

export interface MetricsOptions {
  /** The tracking server's URL (its path is stripped from request URLs). */
  trackingUri: string;
  /** How long one scrape waits for Redis per collector (default 2000 ms). */
  timeoutMs?: number;
  logger?: Logger;
  /** Node's process metrics (`process_*`, `nodejs_*`); default true. */
  processMetrics?: boolean;
  /** Called when a scrape-time read failed or timed out (e.g. to reconnect). */
  onCollectorDown?: (collector: string) => void;
}

export interface Metrics {
  readonly registry: Registry;
  /** Record one MLflow HTTP exchange (a `Transport.observe` listener). */
  observeMlflow(e: RequestEvent): void;
  /** Record a finished task: how long its last attempt ran and how it ended. */
  observeTask(e: { template: string; outcome: string; seconds: number }): void;
  /** The exposition: body and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Distinct values an open label may take before new ones are reported as `other`. */
export const MAX_LABEL_VALUES = 64;

function capped(max = MAX_LABEL_VALUES): (v: string) => string {
  const seen = new Set<string>();
  return (v) => {
    if (seen.has(v)) return v;
    if (seen.size >= max) return 'other';
    seen.add(v);
    return v;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const OUTCOMES = new Set(['completed', 'failed', 'cancelled']);
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']);

export function createMetrics(sources: MetricsSources, opts: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const timeoutMs = opts.timeoutMs ?? 2_000;
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const up = new Gauge({
    name: 'runwarden_collector_up',
    help: 'Whether a scrape-time collector answered within the scrape timeout (1) or not (0: Redis unreachable or slow; its series are left out)',
    labelNames: ['collector'],
    registers,
  });
  /** Reads that `render` runs (concurrently, each under the timeout) before it serialises. */
  const scrapers: (() => Promise<void>)[] = [];
  function scrapeInto<T>(collector: string, gauge: Gauge, read: () => Promise<T>, use: (v: T) => void) {
    scrapers.push(async () => {
      gauge.reset();
      try {
        use(await withTimeout(read(), timeoutMs, collector));
        up.set({ collector }, 1);
      } catch (err) {
        up.set({ collector }, 0);
        opts.logger?.warn({ collector, err: (err as Error).message }, 'metrics collector failed');
        opts.onCollectorDown?.(collector);
      }
    });
  }

  if (sources.taskCounts) {
    const tasks = new Gauge({
      name: 'runwarden_tasks',
      help: 'Tasks in the queue by BullMQ state, read at scrape time',
      labelNames: ['state'],
      registers,
    });
    scrapeInto('tasks', tasks, sources.taskCounts, (counts) => {
      for (const [state, n] of Object.entries(counts)) tasks.set({ state }, n);
    });
  }
  if (sources.reviewCounts) {
    const reviews = new Gauge({
      name: 'runwarden_reviews',
      help: 'Review items by decision (pending = not decided yet), read at scrape time',
      labelNames: ['decision'],
      registers,
    });
    scrapeInto('reviews', reviews, sources.reviewCounts, (c) => {
      for (const decision of ['pending', 'approve', 'reject', 'rework'] as const)
        reviews.set({ decision }, c[decision] ?? 0);
    });
  }
  const { bufferedPoints, openRuns, runsReaped } = sources;
  if (bufferedPoints)
    new Gauge({
      name: 'runwarden_points_buffered',
      help: 'Metric points held in the buffers of the open runs of this process, not yet stored by MLflow',
      registers,
      collect() {
        this.set(bufferedPoints());
      },
    });
  if (openRuns)
    new Gauge({
      name: 'runwarden_open_runs',
      help: 'MLflow runs this process holds open',
      registers,
      collect() {
        this.set(openRuns());
      },
    });
  if (runsReaped)
    new Counter({
      name: 'runwarden_runs_reaped_total',
      help: "Runs whose lease expired that this process's reaper closed",
      registers,
      collect() {
        this.reset();
        this.inc(runsReaped());
      },
    });

  const taskDuration = new Histogram({
    name: 'runwarden_task_duration_seconds',
    help: 'How long the last attempt of each finished task ran, by template and outcome (completed, failed, cancelled)',
    labelNames: ['template', 'outcome'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600],
    registers,
  });
  const requestDuration = new Histogram({
    name: 'runwarden_mlflow_request_duration_seconds',
    help: 'MLflow HTTP exchanges (each attempt of a retried call) by method, endpoint template and status code (timeout or network when no answer came)',
    labelNames: ['method', 'endpoint', 'code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const requestErrors = new Counter({
    name: 'runwarden_mlflow_request_errors_total',
    help: 'MLflow HTTP exchanges that failed: a 4xx/5xx answer (code) or none (timeout, network)',
    labelNames: ['method', 'endpoint', 'code'],
    registers,
  });
  const endpointLabel = capped();
  const templateLabel = capped();

  return {
    registry,
    observeMlflow(e) {
      const labels = {
        method: METHODS.has(e.method) ? e.method : 'other',
        endpoint: endpointLabel(endpointTemplate(e.url, opts.trackingUri)),
        code: e.status !== undefined ? String(e.status) : (e.error ?? 'network'),
      };
      requestDuration.observe(labels, e.durationMs / 1000);
      if (e.status === undefined || e.status >= 400) requestErrors.inc(labels);
    },
    observeTask(e) {
      taskDuration.observe(
        { template: templateLabel(e.template), outcome: OUTCOMES.has(e.outcome) ? e.outcome : 'other' },
        Math.max(0, e.seconds),
      );
    },
    async render() {
      await Promise.all(scrapers.map((scrape) => scrape()));
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
