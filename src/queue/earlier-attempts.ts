/**
 * What earlier attempts of a task left in MLflow, read with one search over the runs tagged with
 * the task id: runs still RUNNING (a lost worker's, or one whose worker lost its queue lock) are
 * closed FAILED as superseded, and a FINISHED run means the task already succeeded: the next
 * attempt completes from it instead of training again, and an attempt that finishes later does not
 * report a second success. Among several FINISHED runs the lowest attempt is the task's result.
 */
import type { MlflowClient, Run } from '../mlflow/client.js';
import { closeRun } from '../tracking/close-run.js';
import { iterateRuns } from '../tracking/search.js';
import { RW_TAGS } from '../tracking/tags.js';

export interface FinishedAttempt {
  runId: string;
  attempt: number;
  exitCode: number | null;
  /** Latest value of each metric of the run. */
  metrics: Record<string, number>;
}

const tagOf = (run: Run, key: string) => run.data?.tags?.find((t) => t.key === key)?.value;

async function runsOfTask(client: MlflowClient, experimentId: string, taskId: string): Promise<Run[]> {
  const filter = `tags.\`${RW_TAGS.taskId}\` = '${taskId.replace(/'/g, "\\'")}'`;
  const out: Run[] = [];
  for await (const run of iterateRuns(client, { experimentIds: [experimentId], filter })) out.push(run);
  return out;
}

function asFinished(run: Run): FinishedAttempt {
  const code = tagOf(run, 'runwarden.exit_code');
  return {
    runId: run.info?.run_id ?? '',
    attempt: Number(tagOf(run, RW_TAGS.attempt) ?? 0),
    exitCode: code !== undefined && /^\d+$/.test(code) ? Number(code) : null,
    metrics: Object.fromEntries((run.data?.metrics ?? []).map((m) => [m.key ?? '', Number(m.value)])),
  };
}

/** The task's FINISHED run with the lowest attempt number, other than `exceptRunId`. */
export async function finishedAttempt(
  client: MlflowClient,
  experimentId: string,
  taskId: string,
  exceptRunId?: string,
): Promise<FinishedAttempt | undefined> {
  const runs = await runsOfTask(client, experimentId, taskId);
  return runs
    .filter((r) => r.info?.status === 'FINISHED' && r.info.run_id && r.info.run_id !== exceptRunId)
    .map(asFinished)
    .sort((a, b) => a.attempt - b.attempt)[0];
}

/**
 * Before attempt `attempt` runs: close RUNNING runs of other attempts (FAILED, superseded) and
 * return the task's FINISHED run, if one exists.
 */
export async function settleEarlierAttempts(
  client: MlflowClient,
  experimentId: string,
  taskId: string,
  attempt: number,
): Promise<FinishedAttempt | undefined> {
  const runs = await runsOfTask(client, experimentId, taskId);
  for (const run of runs) {
    const other = tagOf(run, RW_TAGS.attempt);
    if (run.info?.status !== 'RUNNING' || !run.info.run_id || other === String(attempt)) continue;
    await closeRun(client, run.info.run_id, 'FAILED', {
      closedBy: 'worker',
      reason: `superseded: worker lost (attempt ${other ?? '?'} was replaced by attempt ${attempt})`,
    });
  }
  return runs
    .filter((r) => r.info?.status === 'FINISHED' && r.info.run_id)
    .map(asFinished)
    .sort((a, b) => a.attempt - b.attempt)[0];
}
