/**
 * What re-scoring scores with: the candidate's model folder (its MLflow 3 logged model, else the
 * run's `model/` artifact holding `model.onnx`) and its feature spec (`features.json`, else the
 * MLmodel's `metadata.runwarden_features`), which says how to turn a table into model input.
 */
import { capForEcho, RunwardenError, ValidationError } from '../errors/index.js';
import { listArtifacts } from '../mlflow/artifacts.js';
import type { MlflowClient } from '../mlflow/client.js';
import { getLoggedModel, MODEL_ID_TAG } from '../tracking/logged-model.js';
import { type FeatureSpec, readFeatureSpec } from './features.js';

export async function findModel(
  client: MlflowClient,
  run: { runId: string; artifactUri: string; tags: Record<string, string> },
): Promise<{ artifactUri: string; modelId?: string; uri: string }> {
  const modelId = run.tags[MODEL_ID_TAG];
  if (modelId) {
    const ref = await getLoggedModel(client, modelId);
    // The tag names a model; only a model this run produced is this run's candidate (a tag
    // pointing at another run's model would have the judge score someone else's work).
    if (ref.sourceRunId !== run.runId)
      throw new RunwardenError(
        'MODEL_INVALID',
        `the run's ${MODEL_ID_TAG} names logged model ${capForEcho(modelId, 100)}, which run ${capForEcho(ref.sourceRunId, 64)} produced, not this run: nothing of this run to re-score`,
      );
    return { artifactUri: ref.artifactUri, modelId, uri: `models:/${modelId}` };
  }
  const files = await listArtifacts(client, run.runId, 'model').catch(() => []);
  if (!files.some((f) => f.path === 'model/model.onnx'))
    throw new RunwardenError(
      'MODEL_INVALID',
      'the run stored no ONNX model (no runwarden.model_id tag and no model/model.onnx artifact)',
    );
  return { artifactUri: `${run.artifactUri}/model`, uri: `runs:/${run.runId}/model` };
}

export async function readSpec(dir: string): Promise<FeatureSpec> {
  const spec = await readFeatureSpec(dir);
  if (spec) return spec;
  throw new ValidationError(
    'features.json',
    'the model folder has no features.json (nor MLmodel metadata.runwarden_features), so the holdout cannot be turned into model input.',
  );
}
