/**
 * The environment a task's command runs with: built, never inherited whole. It holds a small base
 * from the worker's environment (`BASE_ENV_NAMES`: PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*,
 * TZ, TMPDIR, TMP, TEMP), what the template declares in `env:` (a name passes that variable through
 * when the worker has it; `NAME=value` sets a fixed value), then what runwarden sets: the MLflow
 * settings the script needs to talk to the same tracking server (URI, run and experiment ids,
 * credentials), RUNWARDEN_TASK_ID, RUNWARDEN_OUTPUT_DIR, PYTHONUNBUFFERED, and on a task a judge sent
 * back for rework RUNWARDEN_REVIEW_NOTES (the judge's notes). Nothing else of the worker's environment (RUNWARDEN_HTTP_TOKEN, REDIS_URL, cloud keys...) reaches the script, and a
 * template cannot declare runwarden's own variables (the rule for an `env:` entry is
 * src/model/template-env.ts).
 */

/** Passed through from the worker's environment when set. */
const BASE_ENV_NAMES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TMP', 'TEMP'];
const BASE_PREFIXES = ['LC_'];

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
