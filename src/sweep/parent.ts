/**
 * The sweep's parent job: BullMQ runs it once nothing is pending (every child completed, failed
 * or was removed). It reads the children's results (`getChildrenValues`) and failures
 * (`getIgnoredChildrenFailures`), picks the best completed child by the selection rule, and closes
 * the parent run: FINISHED with the best child's run id, task id and swept params as params, its
 * metric logged under the metric's own name, and a comparison table (CSV artifact and a Markdown
 * table in the description); FAILED when no child completed with the metric. It records the
 * outcome in the sweep's task record, then reports the best child once to `onCompleted` (children
 * never report themselves). A cancelled sweep's parent run ends KILLED. Every step is idempotent:
 * a re-delivered parent job finishes the same outcome.
 */
import { type Job, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { uploadBytes } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { sweepChildId, type TaskRecords } from '../queue/records.js';
import type { TaskJobData } from '../queue/task-queue.js';
import type { CompletedTask } from '../queue/worker.js';
import { truncate } from '../tracking/batching.js';
import { MLFLOW_TAGS } from '../tracking/tags.js';
import { decideSweepEnd, sweepFinalKey } from './final.js';
import { closeParentRun } from './parent-run.js';
import { better } from './summary.js';
import { type ChildRow, comparisonCsv, comparisonMarkdown } from './table.js';
import { SWEEP_TAGS } from './tags.js';

export interface SweepParentDeps {
  client: MlflowClient;
  records: TaskRecords;
  /** Where the sweep's end is decided once (src/sweep/final.ts), and its key prefix. */
  redis: Redis;
  bullPrefix: string;
  log: Logger;
  completed: (done: CompletedTask) => Promise<void>;
}

const NOTE_MAX = 7_000;

interface ChildResult {
  status?: string;
  run_id?: string;
  experiment_id?: string;
  metrics?: Record<string, number>;
}

export async function runSweepParent(
  job: Job<TaskJobData>,
  deps: SweepParentDeps,
): Promise<Record<string, unknown>> {
  const { client, records, log } = deps;
  const sweep = job.data.sweep!;
  const sweepId = job.data.task.taskId;
  const cancel = await records.cancelRequest(sweepId);
  // Decided once: a cancel racing this job either won before (we close KILLED) or loses.
  const end = await decideSweepEnd(
    deps.redis,
    sweepFinalKey(deps.bullPrefix, sweepId),
    cancel ? { kind: 'cancelled', reason: cancel.reason } : { kind: 'end' },
  );
  if (end.kind === 'cancelled') {
    const reason = `cancelled: ${end.reason}`;
    await closeParentRun(client, sweep.parentRunId, 'KILLED', reason, 'sweep-cancel');
    await records.finish(sweepId, 'cancelled', reason);
    throw new UnrecoverableError(reason);
  }
  const [values, failures] = await Promise.all([
    job.getChildrenValues<ChildResult>(),
    job.getIgnoredChildrenFailures(),
  ]);
  const byId = <T>(m: Record<string, T>, id: string) =>
    Object.entries(m).find(([k]) => k.endsWith(`:${id}`))?.[1];
  const { metric, direction } = sweep.select;
  const rows: ChildRow[] = [];
  const tasks: (NormalizedTask | undefined)[] = [];
  let best: { row: ChildRow; result: ChildResult } | undefined;
  for (let index = 0; index < sweep.childCount; index++) {
    const taskId = sweepChildId(sweepId, index);
    const rec = await records.get(taskId);
    tasks.push(rec?.spec);
    const swept = rec?.spec?.params ?? {};
    const result = byId(values, taskId);
    const lastRun = Object.entries(rec?.runs ?? {}).sort((a, b) => Number(b[0]) - Number(a[0]))[0]?.[1];
    const row: ChildRow = { index, taskId, status: 'cancelled', params: swept, runId: lastRun?.runId };
    if (result && result.status === 'FINISHED') {
      row.status = 'completed';
      row.runId = result.run_id;
      const v = Number(result.metrics?.[metric]);
      if (Number.isFinite(v)) row.value = v;
      if (row.value !== undefined && better(row.value, best?.row.value, direction)) best = { row, result };
    } else {
      const failed = byId(failures, taskId);
      row.status =
        rec?.finalState === 'cancelled' || rec?.cancel ? 'cancelled' : failed ? 'failed' : 'cancelled';
      row.reason = rec?.finalReason ?? failed ?? 'never ran (removed before it started)';
    }
    rows.push(row);
  }
  const count = (s: ChildRow['status']) => rows.filter((r) => r.status === s).length;
  const counts = { done: count('completed'), failed: count('failed'), cancelled: count('cancelled') };
  const status = best ? 'FINISHED' : 'FAILED';
  const reason = best
    ? `best child ${best.row.index} (${best.row.taskId}, run ${best.row.runId}): ${metric} ${best.row.value}; ${counts.done} done, ${counts.failed} failed, ${counts.cancelled} cancelled`
    : counts.done
      ? `no completed child logged ${metric} (${counts.done} done, ${counts.failed} failed, ${counts.cancelled} cancelled)`
      : `every child failed or was cancelled (${counts.failed} failed, ${counts.cancelled} cancelled)`;

  // The parent run's record of the outcome: metric, best child, counts, comparison table.
  const parent = (
    await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: sweep.parentRunId } } }))
  ).run;
  const note = parent.data?.tags?.find((t) => t.key === MLFLOW_TAGS.note)?.value ?? '';
  const table = comparisonMarkdown(rows, metric, best?.row.index, NOTE_MAX - note.length - 400);
  const summary = `**Sweep ${status === 'FINISHED' ? 'finished' : 'failed'}**: ${reason}.\n\n${table}`;
  const now = Date.now();
  const bestParams = best
    ? [
        { key: 'best_run_id', value: best.row.runId ?? '' },
        { key: 'best_task_id', value: best.row.taskId },
        { key: 'best_index', value: String(best.row.index) },
        ...Object.entries(best.row.params)
          .slice(0, 90)
          .map(([k, v]) => ({ key: `best.${k}`, value: truncate(String(v), 6_000) })),
      ]
    : [];
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/log-batch', {
      body: {
        run_id: sweep.parentRunId,
        metrics: [
          ...(best ? [{ key: metric, value: best.row.value!, timestamp: now, step: 0 }] : []),
          { key: 'children_done', value: counts.done, timestamp: now, step: 0 },
          { key: 'children_failed', value: counts.failed, timestamp: now, step: 0 },
          { key: 'children_cancelled', value: counts.cancelled, timestamp: now, step: 0 },
        ],
        params: bestParams,
        tags: [
          ...(best
            ? [
                { key: SWEEP_TAGS.bestRunId, value: best.row.runId ?? '' },
                { key: SWEEP_TAGS.bestTaskId, value: best.row.taskId },
              ]
            : []),
          { key: MLFLOW_TAGS.note, value: truncate(`${note.split('\n\n**Sweep ')[0]}\n\n${summary}`, 8_000) },
        ],
      },
    }),
  );
  await uploadBytes(
    client,
    parent.info.artifact_uri ?? '',
    'sweep_comparison.csv',
    comparisonCsv(rows, metric),
  );
  await closeParentRun(client, sweep.parentRunId, status, reason, 'sweep');
  const result = {
    status,
    run_id: sweep.parentRunId,
    experiment_id: sweep.experimentId,
    best: best
      ? {
          index: best.row.index,
          task_id: best.row.taskId,
          run_id: best.row.runId,
          metric,
          value: best.row.value,
        }
      : undefined,
    children: counts,
    metrics: best ? { [metric]: best.row.value! } : {},
  };
  await records.finish(sweepId, best ? 'completed' : 'failed', reason, result);
  log.info({ sweep: sweepId, status, best: result.best }, 'sweep ended');
  if (!best) throw new UnrecoverableError(reason);
  const bestTask = tasks[best.row.index];
  if (bestTask && best.row.runId)
    await deps.completed({
      task: { ...bestTask, review: sweep.review },
      runId: best.row.runId,
      experimentId: best.result.experiment_id ?? sweep.experimentId,
      metrics: best.result.metrics ?? {},
      sweepId,
    });
  return result;
}
