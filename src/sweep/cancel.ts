/**
 * Cancelling a sweep: BullMQ's `failParentOnFailure` does not stop siblings, so the sweep does it
 * itself. A durable cancel marker on the sweep (children check it before they start and while they
 * run), then every child cancelled as a task is (a waiting child is removed and never starts, a
 * running one is killed by its worker and its run ends KILLED), then the parent run closed KILLED
 * and the sweep recorded cancelled. The end is decided once (src/sweep/final.ts): if the parent
 * job decided first (it is closing the sweep by its results), the cancel changes nothing.
 */
import type { MlflowClient } from '../mlflow/client.js';
import { type SweepRecord, sweepChildId } from '../queue/records.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { decideSweepEnd, sweepFinalKey } from './final.js';
import { closeParentRun } from './parent-run.js';

export async function cancelSweep(
  queue: TaskQueue,
  sweepId: string,
  rec: SweepRecord,
  reason: string,
  client: MlflowClient,
): Promise<boolean> {
  const end = await decideSweepEnd(queue.redis, sweepFinalKey(queue.keys.bullPrefix, sweepId), {
    kind: 'cancelled',
    reason,
  });
  // The parent job decided first: the sweep ends by its children's results, not by this cancel.
  if (end.kind !== 'cancelled') return false;
  await queue.records.requestCancel(sweepId, reason);
  const ids = Array.from({ length: rec.childCount }, (_, i) => sweepChildId(sweepId, i));
  // A few at a time: each cancel is several Redis calls.
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids
        .slice(i, i + 20)
        .map((id) => queue.cancel(id, `sweep ${sweepId} cancelled: ${reason}`).catch(() => undefined)),
    );
  }
  const why = `cancelled: ${reason}`;
  await closeParentRun(client, rec.parentRunId, 'KILLED', why, 'sweep-cancel');
  await queue.records.finish(sweepId, 'cancelled', why);
  return true;
}
