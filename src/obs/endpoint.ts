/**
 * The `endpoint` label of the MLflow request metrics: the API path as openapi.yaml spells it,
 * never a raw URL. MLflow's JSON API keeps ids in the query or the body, so its paths are already
 * templates, except MLflow 3 logged models (`/logged-models/{model_id}`); the artifact proxy puts
 * the experiment, run and file in the path, which becomes `{artifact_path}`. Anything else (an unexpected route, a tracking server mounted under a path
 * we did not expect) is `other`, so a label can never carry an id or an artifact name.
 */

const ARTIFACTS = '/api/2.0/mlflow-artifacts/artifacts';
/** A JSON API route: `/api/2.0/mlflow/<noun>[/<verb>]`, lowercase words and hyphens only. */
const API_ROUTE = /^\/(?:ajax-)?api\/2\.0\/mlflow\/[a-z]+(?:-[a-z]+)*(?:\/[a-z]+(?:-[a-z]+)*)?$/;
const PLAIN = new Set(['/health', '/version']);
/** MLflow 3 logged models put the model id in the path: `/logged-models/m-<hex>[/tags]`. */
const LOGGED_MODEL = /^(\/(?:ajax-)?api\/2\.0\/mlflow\/logged-models)\/m-[0-9a-f]{1,64}(\/tags)?$/;

/**
 * `METHOD` and path template of a request URL sent to the tracking server at `trackingUri` (whose
 * own path, if any, is stripped first). Example: `.../mlflow-artifacts/artifacts/1/abc/artifacts/m.onnx`
 * → `/api/2.0/mlflow-artifacts/artifacts/{artifact_path}`.
 */
export function endpointTemplate(url: string, trackingUri: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
    const base = new URL(trackingUri).pathname.replace(/\/+$/, '');
    if (base && path.startsWith(`${base}/`)) path = path.slice(base.length);
  } catch {
    return 'other';
  }
  if (path === ARTIFACTS) return path;
  if (path.startsWith(`${ARTIFACTS}/`)) return `${ARTIFACTS}/{artifact_path}`;
  const model = LOGGED_MODEL.exec(path);
  if (model) return `${model[1]}/{model_id}${model[2] ?? ''}`;
  if (API_ROUTE.test(path) || PLAIN.has(path)) return path;
  return 'other';
}
