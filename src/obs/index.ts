/**
 * Observability of `runwarden serve`, wired from what the server already has: the metrics
 * registry fed by the MLflow client's request observer and the tasks queue's events, read at
 * scrape time from the queues, the review store, the open runs and the reaper; and the queue
 * dashboard. The HTTP server mounts the two handlers behind its own Host/Origin/token checks.
 */
import type http from 'node:http';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import { REVIEW_QUEUE } from '../review/index.js';
import { createDashboard, DASHBOARD_PATH, type Handler, isDashboardPath } from './dashboard.js';
import { createMetrics, type Metrics, type ReviewCounts } from './metrics.js';
import { openObservedQueues } from './queues.js';

export { DASHBOARD_PATH, isDashboardPath };

export interface ObservabilityDeps {
  client: MlflowClient;
  logger: Logger;
  /** Redis and the queue prefix of the tasks and reviews queues. */
  redisUrl: string;
  prefix: string;
  /** Metric points buffered by the open runs of this process, and how many runs are open. */
  openRuns?: () => { pending: number }[];
  runsReaped?: () => number;
  reviewCounts?: () => Promise<ReviewCounts>;
}

export interface ObservabilitySettings {
  metrics: { enabled: boolean; timeoutMs: number };
  dashboard: { enabled: boolean; readOnly: boolean };
}

export interface Observability {
  /** Answers `GET /metrics` (undefined when metrics are off). */
  metrics?: (res: http.ServerResponse) => Promise<void>;
  /** Answers every request under /admin/queues (undefined when the dashboard is off). */
  dashboard?: Handler;
  readonly registry?: Metrics['registry'];
  /** Also count another MLflow client's requests (e.g. `up`'s in-process worker). */
  observeClient(client: MlflowClient): void;
  close(): Promise<void>;
}

export function startObservability(deps: ObservabilityDeps, settings: ObservabilitySettings): Observability {
  const { metrics: m, dashboard: d } = settings;
  let metrics: Metrics | undefined;
  const queues = openObservedQueues({
    redisUrl: deps.redisUrl,
    prefix: deps.prefix,
    reviewQueue: REVIEW_QUEUE,
    logger: deps.logger,
    onTaskFinished: m.enabled ? (t) => metrics?.observeTask(t) : undefined,
  });
  const openRuns = deps.openRuns;
  const stopObserving: (() => void)[] = [];
  if (m.enabled) {
    metrics = createMetrics(
      {
        taskCounts: () => queues.taskCounts(),
        reviewCounts: deps.reviewCounts,
        bufferedPoints: openRuns && (() => openRuns().reduce((n, h) => n + h.pending, 0)),
        openRuns: openRuns && (() => openRuns().length),
        runsReaped: deps.runsReaped,
      },
      {
        trackingUri: deps.client.trackingUri,
        timeoutMs: m.timeoutMs,
        logger: deps.logger,
        onCollectorDown: (collector) => collector === 'tasks' && queues.reconnect(),
      },
    );
  }
  const observeClient = (client: MlflowClient) => {
    const registry = metrics;
    if (registry) stopObserving.push(client.transport.observe((e) => registry.observeMlflow(e)));
  };
  observeClient(deps.client);
  const scrape = metrics;
  return {
    registry: metrics?.registry,
    metrics: scrape
      ? async (res) => {
          const { contentType, body } = await scrape.render();
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(body);
        }
      : undefined,
    dashboard: d.enabled
      ? createDashboard({
          queues: () => Object.values(queues.queues()),
          readOnly: d.readOnly,
        })
      : undefined,
    observeClient,
    async close() {
      for (const stop of stopObserving) stop();
      await queues.close();
    },
  };
}
