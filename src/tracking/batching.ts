/**
 * Batch shaping for MLflow's log-batch: a request carries at most 1000 metrics, 100 params,
 * 100 tags and 1000 entities in all. These pure helpers cut buffers into requests within those
 * limits, leaving room for the lease tags that ride along on every request.
 */
import { LIMITS, metricValueToJson } from './validation.js';

export interface MetricPoint {
  key: string;
  value: number;
  step: number;
  timestamp: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface LogBatchBody {
  run_id: string;
  metrics?: {
    key: string;
    value: number | 'NaN' | 'Infinity' | '-Infinity';
    step: number;
    timestamp: number;
  }[];
  params?: KeyValue[];
  tags?: KeyValue[];
}

/** Split `items` into chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** How many metrics fit in one request alongside `otherEntities` params/tags. */
export function metricRoom(otherEntities: number): number {
  return Math.max(0, Math.min(LIMITS.maxMetricsPerBatch, LIMITS.maxEntitiesPerBatch - otherEntities));
}

/** The JSON body of one log-batch request. */
export function batchBody(
  runId: string,
  metrics: readonly MetricPoint[],
  params: KeyValue[],
  tags: KeyValue[],
) {
  const body: LogBatchBody = { run_id: runId };
  if (metrics.length) {
    body.metrics = metrics.map((m) => ({
      key: m.key,
      value: metricValueToJson(m.value),
      step: m.step,
      timestamp: m.timestamp,
    }));
  }
  if (params.length) body.params = params;
  if (tags.length) body.tags = tags;
  return body;
}

/** Truncate a string to `max` characters, marking the cut. */
export function truncate(value: string, max: number): string {
  if (value.length <= max) return value;
  const mark = '…[truncated]';
  return value.slice(0, max - mark.length) + mark;
}
