/**
 * The sweep's parent MLflow run: created when the sweep is enqueued (children nest under it with
 * `mlflow.parentRunId`), found again instead of created twice when an enqueue is repeated after a
 * crash, and closed once: FINISHED or FAILED by the sweep's parent job, KILLED by a cancel.
 *
 * It holds no lease (no `runwarden.owner`), so the reaper never closes it while children wait or
 * run, however long the sweep takes: its closing is owned by the sweep's parent job, which BullMQ
 * keeps durably in Redis and runs once the last child ends (failed children included), and by
 * cancel. `runwarden reap --include-foreign --older-than` still reaches it if Redis is lost.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { type MlflowClient, ok, type Run } from '../mlflow/client.js';
import { truncate } from '../tracking/batching.js';
import { closeRun } from '../tracking/close-run.js';
import { createRunOnce } from '../tracking/run-create.js';
import { searchRuns } from '../tracking/search.js';
import { MLFLOW_TAGS, RW_TAGS, type TerminalStatus } from '../tracking/tags.js';
import type { SweepPlan } from './plan.js';
import { SWEEP_TAGS, spaceJson } from './tags.js';

/** MLflow's longest param value (MLflow 3: 6000 characters). */
const PARAM_MAX = 6_000;

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** The sweep's RUNNING parent run in the experiment, if an earlier enqueue created it. */
async function existingParent(
  client: MlflowClient,
  experimentId: string,
  sweepId: string,
): Promise<Run | undefined> {
  const runs = await searchRuns(client, {
    experimentIds: [experimentId],
    filter: `tags.\`${SWEEP_TAGS.sweepId}\` = '${sweepId}' AND tags.\`${SWEEP_TAGS.role}\` = 'parent' AND attributes.status = 'RUNNING'`,
    limit: 1,
  });
  return runs[0];
}

/** Create the parent run (or find the one an interrupted enqueue left), with the search space as params. */
export async function openParentRun(
  client: MlflowClient,
  experimentId: string,
  plan: SweepPlan,
): Promise<string> {
  const found = await existingParent(client, experimentId, plan.sweepId);
  if (found) return found.info.run_id;
  const requestId = randomUUID();
  const note =
    `Sweep \`${plan.sweepId}\` of template \`${plan.parent.template}\`: ${plan.children.length} children ` +
    `(${plan.space.kind}), at most ${plan.maxConcurrency} at once, best by ${plan.select.metric} (${plan.select.direction}).`;
  const tags: Record<string, string> = {
    [MLFLOW_TAGS.user]: osUser(),
    [MLFLOW_TAGS.sourceName]: `runwarden:sweep:${plan.parent.template}`,
    [MLFLOW_TAGS.sourceType]: 'JOB',
    [MLFLOW_TAGS.runName]: plan.parent.runName,
    [MLFLOW_TAGS.note]: note,
    [SWEEP_TAGS.sweepId]: plan.sweepId,
    [SWEEP_TAGS.role]: 'parent',
    [SWEEP_TAGS.space]: spaceJson(plan.space),
    [RW_TAGS.taskId]: plan.sweepId,
    [RW_TAGS.configHash]: plan.parent.configHash,
    'runwarden.template': plan.parent.template,
    [RW_TAGS.requestId]: requestId,
  };
  const run = await createRunOnce(client, {
    experimentId,
    requestId,
    body: {
      experiment_id: experimentId,
      run_name: plan.parent.runName,
      start_time: Date.now(),
      user_id: tags[MLFLOW_TAGS.user],
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    },
  });
  const params: Record<string, string> = {
    'sweep.kind': plan.space.kind,
    'sweep.space': truncate(JSON.stringify(plan.space.space), PARAM_MAX),
    'sweep.children': String(plan.children.length),
    'sweep.max_concurrency': String(plan.maxConcurrency),
    'sweep.select': `${plan.select.metric} ${plan.select.direction}`,
    ...Object.fromEntries(Object.entries(plan.parent.params).map(([k, v]) => [k, String(v)])),
  };
  await ok(
    client.api.POST('/api/2.0/mlflow/runs/log-batch', {
      body: {
        run_id: run.info.run_id,
        params: Object.entries(params)
          .slice(0, 100)
          .map(([key, value]) => ({ key, value: truncate(value, PARAM_MAX) })),
      },
    }),
  );
  return run.info.run_id;
}

/** The parent run's status now (undefined if it cannot be read). */
export async function parentStatus(client: MlflowClient, runId: string): Promise<string | undefined> {
  const res = await ok(
    client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
  ).catch(() => undefined);
  return res?.run.info.status;
}

/** Close the parent run with `status` unless it is closed already (a repeated close changes nothing). */
export async function closeParentRun(
  client: MlflowClient,
  runId: string,
  status: TerminalStatus,
  reason: string,
  closedBy: string,
): Promise<void> {
  if ((await parentStatus(client, runId)) !== 'RUNNING') return;
  await closeRun(client, runId, status, { closedBy, reason });
}
