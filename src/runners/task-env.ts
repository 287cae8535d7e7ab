/**
 * The environment a task's command runs with: built, never inherited whole. It holds a small base
 * from the worker's environment (`BASE_ENV_NAMES`: PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*,
 * TZ, TMPDIR, TMP, TEMP), what the template declares in `env:` (a name passes that variable through
 * when the worker has it; `NAME=value` sets a fixed value), then what runwarden sets: the MLflow
 * settings the script needs to talk to the same tracking server (URI, run and experiment ids,
 * credentials), RUNWARDEN_TASK_ID, RUNWARDEN_OUTPUT_DIR and PYTHONUNBUFFERED. Nothing else of the
 * worker's environment (RUNWARDEN_HTTP_TOKEN, REDIS_URL, cloud keys...) reaches the script, and a
 * template cannot declare runwarden's own variables.
 */
import { z } from 'zod';

/** Passed through from the worker's environment when set. */
export const BASE_ENV_NAMES = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TMP',
  'TEMP',
];
const BASE_PREFIXES = ['LC_'];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Variables runwarden owns or sets itself: a template may neither pass nor set them. */
export function reservedEnvName(name: string): boolean {
  return (
    name.startsWith('RUNWARDEN_') ||
    name.startsWith('MLFLOW_TRACKING_') ||
    ['REDIS_URL', 'MLFLOW_RUN_ID', 'MLFLOW_EXPERIMENT_ID'].includes(name)
  );
}

/** One `env:` entry of task.yaml: `NAME` (pass through) or `NAME=value` (fixed). */
export const TemplateEnvEntry = z
  .string()
  .refine((e) => NAME.test(e.split('=')[0] ?? ''), {
    message: 'expected NAME (pass the worker’s variable through) or NAME=value (letters, digits, _)',
  })
  .refine((e) => !reservedEnvName(e.split('=')[0] ?? ''), {
    message:
      'RUNWARDEN_*, MLFLOW_TRACKING_*, MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID and REDIS_URL are set by runwarden',
  });

/**
 * The command's environment: base names and declared pass-through names from `parent` (when set),
 * declared fixed values, then `set` (runwarden's values; undefined entries are left out).
 */
export function taskEnvironment(o: {
  parent: Record<string, string | undefined>;
  declared: readonly string[];
  set: Record<string, string | undefined>;
}): Record<string, string> {
  const env: Record<string, string> = {};
  const pass = (name: string) => {
    const v = o.parent[name];
    if (v !== undefined) env[name] = v;
  };
  for (const name of BASE_ENV_NAMES) pass(name);
  for (const name of Object.keys(o.parent)) if (BASE_PREFIXES.some((p) => name.startsWith(p))) pass(name);
  for (const entry of o.declared) {
    const eq = entry.indexOf('=');
    if (eq < 0) pass(entry);
    else env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  for (const [k, v] of Object.entries(o.set)) if (v !== undefined) env[k] = v;
  return env;
}
