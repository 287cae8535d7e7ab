/**
 * Closing a run this process holds no handle for (the reaper, a worker superseding an earlier
 * attempt): write who closed it and why, then set the terminal status and end time.
 */
import { type MlflowClient, ok } from '../mlflow/client.js';
import { truncate } from './batching.js';
import { RW_TAGS, type TerminalStatus } from './tags.js';
import { LIMITS } from './validation.js';

export async function closeRun(
  client: MlflowClient,
  runId: string,
  status: TerminalStatus,
  opts: { closedBy: string; reason: string; now?: number },
): Promise<void> {
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/log-batch', {
      body: {
        run_id: runId,
        tags: [
          { key: RW_TAGS.closedBy, value: opts.closedBy },
          { key: RW_TAGS.closeReason, value: truncate(opts.reason, LIMITS.maxTagValueLength) },
        ],
      },
    }),
  );
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/update', {
      body: { run_id: runId, status, end_time: opts.now ?? Date.now() },
    }),
  );
}
