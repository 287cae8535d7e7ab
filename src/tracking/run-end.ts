/**
 * Ending a run through its handle (RunHandle.end does the bookkeeping and calls `endRun`): store
 * the buffered points, retrying through an outage up to the end deadline (points still unstored
 * then make the run end FAILED, the reason saying how many, and the flush error is thrown), re-read
 * the run and leave alone one that someone else closed or took over (the fence), then send who
 * closed it and why together with the terminal status.
 */
import { RunClosedError } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import type { KeyValue } from './batching.js';
import { closingTags, type EndOptions } from './close-run.js';
import type { RunLoss } from './fence.js';
import type { MetricBuffer } from './metric-buffer.js';
import type { RunLease } from './run-lease.js';
import type { TerminalStatus } from './tags.js';

/** How long `end()` keeps retrying to store buffered points before ending FAILED, by default. */
export const DEFAULT_END_FLUSH_TIMEOUT_MS = 180_000;

/** What ending needs of a handle. */
export interface EndingRun {
  client: MlflowClient;
  runId: string;
  description: string;
  endFlushTimeoutMs: number;
  buffer: MetricBuffer;
  lease: RunLease;
  /** Send one log-batch request with these tags. */
  send: (tags: KeyValue[]) => Promise<void>;
  /** The error the handle was fenced with, once it was. */
  lost: () => RunClosedError | undefined;
  /** True while the handle's status is RUNNING. */
  running: () => boolean;
  /** The run is someone else's now: detach the handle; returns the error naming the closer. */
  fence: (loss: RunLoss) => RunClosedError;
  /** The run is ended with this status: stop the timers, leave the open-run registry. */
  finish: (status: TerminalStatus) => void;
}

export async function endRun(r: EndingRun, status: TerminalStatus, opts: EndOptions): Promise<void> {
  r.buffer.close(new RunClosedError(r.runId, 'ending'));
  // The heartbeat keeps the lease alive while the buffer drains through an outage.
  const { unsent, error: flushErr } = await r.buffer.drainUntil(Date.now() + r.endFlushTimeoutMs);
  const lost = r.lost();
  if (lost) throw lost;
  if (unsent) {
    status = 'FAILED';
    const secs = r.endFlushTimeoutMs / 1000;
    opts = {
      ...opts,
      reason: `${unsent} metric points not stored within ${secs} s: ${(flushErr as Error).message}`,
    };
  }
  try {
    await close(r, status, opts);
  } catch (err) {
    // Given up for now: no heartbeat keeps a run alive that its owner failed to end.
    if (r.running()) r.lease.stop();
    throw err;
  }
  if (flushErr) throw flushErr;
}

/** Fence, then send the closing tags and the status. */
async function close(r: EndingRun, status: TerminalStatus, opts: EndOptions): Promise<void> {
  // Never change the status of a run someone else closed or took over. (MLflow has no
  // compare-and-set: a close landing between this read and the update below is not seen.)
  const read = await r.lease.read();
  if (read && !read.ownClose) throw r.fence(read.loss);
  if (read && read.loss.status !== 'RUNNING') {
    // An earlier attempt of ours landed after all.
    r.finish(read.loss.status as TerminalStatus);
    return;
  }
  const closedBy = opts.closedBy ?? 'owner';
  const tags = closingTags(status, { ...opts, closedBy }, r.description);
  r.lease.sentClose = { closedBy, status };
  // Both at once (one round trip less per run): MLflow accepts tags on an ended run, and a
  // refused tag batch must not leave the run RUNNING until the reaper finds it.
  const [tagged, updated] = await Promise.allSettled([
    r.send(tags),
    ok(
      r.client.api.POST('/api/2.0/mlflow/runs/update', {
        body: { run_id: r.runId, status, end_time: Date.now() },
      }),
    ),
  ]);
  if (updated.status === 'rejected') throw updated.reason;
  r.finish(status);
  if (tagged.status === 'rejected') throw tagged.reason;
}
