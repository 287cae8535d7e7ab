/**
 * Closing runs. `closeRun` closes a run this process holds no handle for (the reaper, a worker
 * superseding an earlier attempt): it writes who closed it and why, then sets the terminal status
 * and end time. `closingTags` builds the tags a run handle's `end()` writes for the same purpose.
 */
import { type MlflowClient, ok } from '../mlflow/client.js';
import { type KeyValue, truncate } from './batching.js';
import { MLFLOW_TAGS, RW_TAGS, type TerminalStatus } from './tags.js';
import { LIMITS } from './validation.js';

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

/** The tags ending a run writes: extra tags, who closed it and why, and for an error its summary. */
export function closingTags(status: TerminalStatus, opts: EndOptions, description: string): KeyValue[] {
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
    const note = `${description ? `${description}\n\n` : ''}**Run failed** — ${summary}`;
    tags.push({ key: MLFLOW_TAGS.note, value: truncate(note, LIMITS.maxTagValueLength) });
  }
  return tags;
}

function defaultReason(status: TerminalStatus): string {
  if (status === 'FINISHED') return 'completed';
  if (status === 'KILLED') return 'cancelled';
  return 'failed';
}

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
