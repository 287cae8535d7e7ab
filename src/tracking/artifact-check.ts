/**
 * "Does the run have this artifact?" before something is built on it. MLflow registers a model
 * version from any source string, so a misspelt folder gave a READY version pointing at nothing,
 * shown as the latest version. `requireArtifact` lists the path's parent folder through the
 * tracking server and refuses a path that is not there, naming the folders the run does have.
 */
import { capForEcho } from '../errors/echo.js';
import { ValidationError } from '../errors/index.js';
import { listArtifacts } from '../mlflow/artifacts.js';
import type { MlflowClient } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';

/** Folder names shown in the refusal (the rest is counted, not listed). */
const MAX_LISTED = 20;

/**
 * Throw a ValidationError on `field` unless run `runId` has an artifact (file or folder) at the
 * run-relative path `rel` (already normalised).
 */
export async function requireArtifact(
  client: MlflowClient,
  runId: string,
  rel: string,
  field = 'artifactPath',
): Promise<void> {
  const slash = rel.lastIndexOf('/');
  const parent = slash < 0 ? '' : rel.slice(0, slash);
  const entries = await listArtifacts(client, runId, parent);
  if (entries.some((f) => normalizeArtifactPath(f.path) === rel)) return;
  const folders = entries.filter((f) => f.is_dir).map((f) => normalizeArtifactPath(f.path));
  const where = parent ? ` under '${capForEcho(parent)}'` : '';
  const have = folders.length
    ? `its folders${where}: ${folders
        .slice(0, MAX_LISTED)
        .map((f) => `'${capForEcho(f, 100)}'`)
        .join(', ')}${folders.length > MAX_LISTED ? ` and ${folders.length - MAX_LISTED} more` : ''}`
    : entries.length
      ? `it has no folders${where}, only files`
      : `it has no artifacts${where}`;
  throw new ValidationError(
    field,
    `run ${runId} has no artifact '${capForEcho(rel)}' (${have}). Log the model there first, or give the folder it was logged to.`,
  );
}
