/**
 * A run handle's metric points: each one checked before it is buffered (key, value, step,
 * timestamp; the step defaults to 0 and the timestamp to now), and the handle's bounded, lossless
 * buffer (metric-buffer.ts), whose log-batch requests carry the lease tags when a renewal is due
 * (leaving room for fewer points) and whose failed background flushes are logged.
 */
import type { MlflowClient } from '../mlflow/client.js';
import { type KeyValue, type MetricPoint, metricRoom } from './batching.js';
import { MetricBuffer } from './metric-buffer.js';
import { LIMITS, validateKey, validateMetricValue, validateStep, validateTimestamp } from './validation.js';

export const DEFAULT_MAX_BUFFERED_POINTS = 100_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

/** One metric point, checked; throws ValidationError naming `metrics.<key>` when it is bad. */
export function metricPoint(
  key: string,
  value: number,
  opts: { step?: number; timestamp?: number },
): MetricPoint {
  validateKey(`metrics.${key}`, key);
  validateMetricValue(`metrics.${key}`, value);
  const step = opts.step ?? 0;
  const timestamp = opts.timestamp ?? Date.now();
  validateStep(`metrics.${key}.step`, step);
  validateTimestamp(`metrics.${key}.timestamp`, timestamp);
  return { key, value, step, timestamp };
}

/** The metric buffer of one run handle. */
export function runMetricBuffer(o: {
  client: MlflowClient;
  runId: string;
  flushIntervalMs: number;
  maxBufferedPoints?: number;
  maxBufferedBytes?: number;
  /** Lease tags when a renewal is due, else none. */
  touchTags: () => KeyValue[];
  /** Send one log-batch request with these points and tags. */
  send: (points: readonly MetricPoint[], tags: KeyValue[]) => Promise<void>;
}): MetricBuffer {
  return new MetricBuffer({
    send: async (points) => {
      // Lease tags ride along when a renewal is due, leaving room for fewer metrics.
      const tags = o.touchTags();
      const batch = points.slice(0, metricRoom(tags.length));
      await o.send(batch, tags);
      return batch.length;
    },
    batchSize: LIMITS.maxMetricsPerBatch,
    intervalMs: o.flushIntervalMs,
    maxPoints: o.maxBufferedPoints ?? DEFAULT_MAX_BUFFERED_POINTS,
    maxBytes: o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    onError: (err, pending) =>
      o.client.logger?.warn(
        { err, runId: o.runId, pending },
        'metric flush failed; the points stay buffered and the flush is retried',
      ),
  });
}
