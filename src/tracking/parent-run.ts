/**
 * Checks a run's would-be parent before the run is created: MLflow accepts any string as
 * `mlflow.parentRunId`, so a typo or a deleted parent would leave the child nested under nothing
 * in the UI. The parent must exist, not be deleted, and belong to the child's experiment (the UI
 * nests runs only within one experiment).
 */
import { capForEcho } from '../errors/echo.js';
import { isMlflowError, ValidationError } from '../errors/index.js';
import { type MlflowClient, ok, type Run } from '../mlflow/client.js';

/** Refuse a parent run that does not exist, is deleted, or lives in another experiment. */
export async function checkParentRun(client: MlflowClient, parentRunId: string, experimentId: string) {
  if (!parentRunId.trim()) {
    throw new ValidationError(
      'parentRunId',
      'is empty; give the run_id of the run to nest under, or omit it',
    );
  }
  let parent: Run;
  try {
    parent = (
      await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: parentRunId } } }))
    ).run;
  } catch (err) {
    if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST') || isMlflowError(err, 'INVALID_PARAMETER_VALUE')) {
      throw new ValidationError(
        'parentRunId',
        `no run ${JSON.stringify(capForEcho(parentRunId))} exists on this tracking server; give the run_id of an existing run (search_runs lists them), or omit it`,
      );
    }
    throw err;
  }
  if (parent.info.lifecycle_stage === 'deleted') {
    throw new ValidationError(
      'parentRunId',
      `run ${parent.info.run_id} is deleted; restore it first (mlflow runs restore --run-id ${parent.info.run_id}) or nest under another run`,
    );
  }
  if (parent.info.experiment_id !== experimentId) {
    throw new ValidationError(
      'parentRunId',
      `run ${parent.info.run_id} belongs to experiment ${parent.info.experiment_id}, not ${JSON.stringify(capForEcho(experimentId))}; ` +
        'MLflow nests runs only within one experiment: start the run in that experiment or choose a parent from this one',
    );
  }
}
