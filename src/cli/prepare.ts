/**
 * `runwarden prepare [template...]`: build the Python environments of task templates ahead of
 * time (the worker otherwise builds one on a template's first use), so the first task does not
 * wait minutes for pip.
 */
import type { Config } from '../config.js';
import { listTemplates, loadTemplate } from '../queue/templates.js';
import { ensurePythonEnv } from '../runners/python-env.js';

export async function runPrepare(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'Usage: runwarden prepare [template...]\n\nBuilds (or confirms) the cached Python environment of each template (default: all).\n',
    );
    return 0;
  }
  const cfg = config();
  const templates = argv.length
    ? argv.map((n) => loadTemplate(cfg.queue.tasksDir, n))
    : listTemplates(cfg.queue.tasksDir);
  for (const t of templates) {
    if (!t.python) {
      process.stdout.write(`${t.name}: no Python requirements\n`);
      continue;
    }
    const started = Date.now();
    const python = await ensurePythonEnv(t, cfg.queue.cacheDir, {
      timeoutMs: cfg.queue.envBuildTimeoutMs,
      onBuild: (dir) =>
        process.stderr.write(`${t.name}: building ${dir} (pip install -r ${t.python?.requirements}) ...\n`),
    });
    process.stdout.write(`${t.name}: ready (${python}, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  }
  return 0;
}
