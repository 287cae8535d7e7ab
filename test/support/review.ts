// Helpers for the review integration tests: a tasks folder holding the `judged` fixture template
// with a registered-model name of the test's own (so tests never share a model), the environment
// for workers and judges of a test, and the registry read back through MLflow's Python client.
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runPythonMlflow } from './python.js';
import { fixtureTasksDir, taskEnv } from './tasks.js';

/** A fresh tasks folder with the `judged` template promoting into `modelName`. */
export async function judgedTasksDir(modelName: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'rw-review-tasks-'));
  await cp(path.join(fixtureTasksDir, 'judged'), path.join(dir, 'judged'), { recursive: true });
  const yaml = path.join(dir, 'judged', 'task.yaml');
  await writeFile(
    yaml,
    (await readFile(yaml, 'utf8')).replace('model_name: judged-fixture', `model_name: ${modelName}`),
  );
  return dir;
}

export function reviewEnv(o: {
  mlflowUrl: string;
  redisUrl: string;
  prefix: string;
  tasksDir: string;
  workDir: string;
  env?: Record<string, string>;
}): Record<string, string> {
  return {
    ...taskEnv({ mlflowUrl: o.mlflowUrl, redisUrl: o.redisUrl, prefix: o.prefix, workDir: o.workDir }),
    RUNWARDEN_TASKS_DIR: o.tasksDir,
    RUNWARDEN_INPUT_ROOTS: o.tasksDir,
    ...o.env,
  };
}

export interface PyRegistry {
  versions: string[];
  aliases: Record<string, string>;
  description: string;
  tags: Record<string, string>;
}

/** The registered model as MLflow's Python client sees it: versions, aliases, description, tags. */
export function pyRegistry(trackingUri: string, name: string): Promise<PyRegistry> {
  const script = `
import json, os
from mlflow.tracking import MlflowClient
c = MlflowClient()
name = os.environ['RW_MODEL']
m = c.get_registered_model(name)
vs = c.search_model_versions(f"name='{name}'")
print(json.dumps({
  'versions': sorted([v.version for v in vs], key=int),
  'aliases': dict(m.aliases),
  'description': m.description or '',
  'tags': dict(m.tags),
}))
`;
  return runPythonMlflow<PyRegistry>(script, { trackingUri, env: { RW_MODEL: name } }).then((r) => ({
    ...r,
    versions: r.versions.map(String),
    aliases: Object.fromEntries(Object.entries(r.aliases).map(([k, v]) => [k, String(v)])),
  }));
}
