/**
 * The fields MLflow always sends, per endpoint: the `required` markers of openapi.yaml's 200
 * answers, spelt as paths (`run.info.run_id`, `runs[].info.status`). The generated types trust
 * them, so `ok()` checks every answer against this table and turns a missing field into
 * MLFLOW_BAD_RESPONSE (naming the endpoint and the field) instead of a TypeError further on.
 * A path is checked only where its parent is present (an optional parent may be absent; a
 * required one has its own entry). test/unit/openapi-schema.test.ts keeps the table equal to
 * what openapi.yaml marks.
 */

const at = (prefix: string, paths: readonly string[]) => paths.map((p) => `${prefix}${p}`);

const KV = ['key', 'value'];
const METRIC = ['key', 'value', 'timestamp', 'step'];
const EXPERIMENT = ['experiment_id', 'name', 'artifact_location', 'lifecycle_stage', ...at('tags[].', KV)];
const RUN_INFO = ['run_id', 'experiment_id', 'status', 'artifact_uri', 'lifecycle_stage'];
const RUN = [
  'info',
  ...at('info.', RUN_INFO),
  ...at('data.metrics[].', METRIC),
  ...at('data.params[].', KV),
  ...at('data.tags[].', KV),
];
const MODEL_VERSION = ['name', 'version', 'status', ...at('tags[].', KV), ...at('model_metrics[].', METRIC)];
const REGISTERED_MODEL = [
  'name',
  ...at('latest_versions[].', MODEL_VERSION),
  ...at('tags[].', KV),
  ...at('aliases[].', ['alias', 'version']),
];
const FILES = at('files[].', ['path', 'is_dir']);
const LOGGED_MODEL = [
  'info',
  ...at('info.', ['model_id', 'experiment_id', 'name', 'artifact_uri', 'status']),
  ...at('info.tags[].', KV),
  ...at('data.params[].', KV),
  ...at('data.metrics[].', METRIC),
];
const one = (key: string, fields: readonly string[]) => [key, ...at(`${key}.`, fields)];

const API = '/api/2.0/mlflow';

/** `METHOD path` (as openapi.yaml spells the path) → required field paths of its 200 answer. */
export const REQUIRED_FIELDS: Readonly<Record<string, readonly string[]>> = {
  [`POST ${API}/experiments/create`]: ['experiment_id'],
  [`GET ${API}/experiments/get`]: one('experiment', EXPERIMENT),
  [`GET ${API}/experiments/get-by-name`]: one('experiment', EXPERIMENT),
  [`POST ${API}/experiments/search`]: at('experiments[].', EXPERIMENT),
  [`POST ${API}/runs/create`]: one('run', RUN),
  [`GET ${API}/runs/get`]: one('run', RUN),
  [`POST ${API}/runs/update`]: at('run_info.', RUN_INFO),
  [`POST ${API}/runs/search`]: at('runs[].', RUN),
  [`GET ${API}/metrics/get-history`]: at('metrics[].', METRIC),
  [`GET ${API}/artifacts/list`]: FILES,
  [`GET /api/2.0/mlflow-artifacts/artifacts`]: FILES,
  [`POST ${API}/registered-models/create`]: one('registered_model', REGISTERED_MODEL),
  [`GET ${API}/registered-models/get`]: one('registered_model', REGISTERED_MODEL),
  [`GET ${API}/registered-models/search`]: at('registered_models[].', REGISTERED_MODEL),
  [`PATCH ${API}/registered-models/update`]: one('registered_model', REGISTERED_MODEL),
  [`GET ${API}/registered-models/alias`]: one('model_version', MODEL_VERSION),
  [`POST ${API}/model-versions/create`]: one('model_version', MODEL_VERSION),
  [`GET ${API}/model-versions/get`]: one('model_version', MODEL_VERSION),
  [`GET ${API}/model-versions/search`]: at('model_versions[].', MODEL_VERSION),
  [`PATCH ${API}/model-versions/update`]: one('model_version', MODEL_VERSION),
  [`POST ${API}/logged-models`]: one('model', LOGGED_MODEL),
  [`GET ${API}/logged-models/{model_id}`]: one('model', LOGGED_MODEL),
  [`PATCH ${API}/logged-models/{model_id}`]: one('model', LOGGED_MODEL),
  [`POST ${API}/logged-models/search`]: at('models[].', LOGGED_MODEL),
};

/** The first required field missing from `data`, with array indexes (`runs[3].info.status`). */
export function missingRequiredField(data: unknown, paths: readonly string[]): string | undefined {
  for (const path of paths) {
    const missing = check(data, path.split('.'), '');
    if (missing) return missing;
  }
  return undefined;
}

function check(node: unknown, segments: string[], done: string): string | undefined {
  const [head, ...rest] = segments;
  if (head === undefined || node === null || typeof node !== 'object') return undefined;
  const isArray = head.endsWith('[]');
  const key = isArray ? head.slice(0, -2) : head;
  const value = (node as Record<string, unknown>)[key];
  const here = done ? `${done}.${key}` : key;
  if (value === undefined || value === null) return rest.length === 0 ? here : undefined;
  if (!isArray) return rest.length ? check(value, rest, here) : undefined;
  if (!Array.isArray(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const missing = check(value[i], rest, `${here}[${i}]`);
    if (missing) return missing;
  }
  return undefined;
}
