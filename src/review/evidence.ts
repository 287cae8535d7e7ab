/**
 * A review item's evidence, read from MLflow when asked (never stored: it is always current): the
 * run's metrics (with `composite` derived when it can be), params and UI link, the candidate model
 * URI when the run stored a model, the current holder of the template's alias with its run's
 * metrics, the workspace.zip artifact, the template's primary metric, and what the policy gates say.
 */
import { describeClaim } from '../eval/claim-check.js';
import { describeRescore, type EvalSettings, rescoreRun } from '../eval/rescore.js';
import type { MlflowClient } from '../mlflow/client.js';
import { MODEL_ID_TAG } from '../tracking/logged-model.js';
import { readRun, versionByAlias } from './mlflow-reads.js';
import { evaluatePolicy, withComposite } from './policy.js';
import { templateReview } from './template-review.js';
import type { Evidence, ReviewItem } from './types.js';

export const MODEL_EXISTS_TAG = 'runwarden.model_exists';
export const WORKSPACE_ZIP_TAG = 'runwarden.workspace_zip_entries';

export async function gatherEvidence(
  client: MlflowClient,
  tasksDir: string,
  item: ReviewItem,
  opts: { eval?: EvalSettings } = {},
): Promise<Evidence> {
  const review = templateReview(tasksDir, item.template);
  const cand = await readRun(client, item.runId);
  const metrics = withComposite(cand.metrics);
  let champion: Evidence['champion'];
  const holder = await versionByAlias(client, review.modelName, review.alias);
  if (holder) {
    const runMetrics = holder.run_id
      ? (await readRun(client, holder.run_id).catch(() => undefined))?.metrics
      : {};
    champion = {
      name: review.modelName,
      alias: review.alias,
      version: holder.version,
      runId: holder.run_id || undefined,
      metrics: withComposite(runMetrics ?? {}),
    };
  }
  const hasModel = cand.tags[MODEL_EXISTS_TAG] === 'true';
  const policy = Object.keys(review.gates).length
    ? evaluatePolicy(review.gates, metrics, champion?.metrics)
    : {
        passed: false,
        checks: [
          {
            metric: '-',
            passed: false,
            why: 'the template has no review.policy gates and no primary metric: nothing to judge by',
          },
        ],
      };
  if (!hasModel) {
    policy.passed = false;
    policy.checks.push({
      metric: 'model',
      passed: false,
      why: 'the run stored no model folder, so there is nothing to register',
    });
  }
  // The judge's own re-score (once per run; later reads get MLflow's record back).
  let rescore: Evidence['rescore'];
  if (review.rescore) {
    const r = await rescoreRun(client, {
      run: {
        runId: item.runId,
        artifactUri: cand.run.info?.artifact_uri ?? '',
        metrics: { ...metrics },
        tags: cand.tags,
      },
      def: review.rescore,
      tasksDir,
      timestamp: item.createdAt,
      settings: opts.eval,
    });
    const { fresh: _fresh, claim, ...rest } = r;
    rescore = {
      ...rest,
      summary: describeRescore(r),
      ...(claim ? { claim: { ...claim, summary: describeClaim(claim) } } : {}),
    };
    for (const [k, v] of Object.entries(r.metrics ?? {})) metrics[`eval.${k}`] = v;
    if (r.rows !== undefined) metrics['eval.rows'] = r.rows;
    for (const [k, v] of Object.entries(claim?.metrics ?? {})) metrics[`eval.test_${k}`] = v;
    if (claim?.rows !== undefined) metrics['eval.test_rows'] = claim.rows;
    // The claim check (the run's own test rows, tight) before the holdout check (generalisation).
    if (rescore.claim) {
      const claimPassed = !rescore.claim.flag;
      if (!claimPassed) policy.passed = false;
      policy.checks.push({ metric: 'rescore.claim', passed: claimPassed, why: rescore.claim.summary });
    }
    const passed = r.status === 'ok' && !r.flag;
    if (!passed) policy.passed = false;
    policy.checks.push({ metric: 'rescore', passed, why: rescore.summary });
  }
  return {
    item,
    runUrl: client.runUrl(item.experimentId, item.runId),
    metrics,
    params: cand.params,
    // The run's MLflow 3 logged model when it has one (issue 10), else the run's model folder.
    candidateModelUri: !hasModel
      ? undefined
      : cand.tags[MODEL_ID_TAG]
        ? `models:/${cand.tags[MODEL_ID_TAG]}`
        : `runs:/${item.runId}/${review.modelPath}`,
    champion,
    workspaceArtifact: cand.tags[WORKSPACE_ZIP_TAG] !== undefined ? 'workspace.zip' : undefined,
    primaryMetric: review.primaryMetric,
    policy,
    rescore,
  };
}
