/**
 * `runwarden enqueue --sweep <spec.yaml|json> [--dry-run] [--wait] [--json]`: enqueue a sweep
 * (docs/tasks.md "Sweeps"), or with `--dry-run` only plan it (the children's task ids and swept
 * parameters; nothing queued, nothing created in MLflow). `--wait` draws one progress line with the
 * children done/running/failed and the best so far, and exits 0 only if the sweep completed.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config.js';
import { openQueue, waitAndShow } from './enqueue.js';
import { UsageError } from './usage.js';

export async function runEnqueueSweep(
  v: Record<string, unknown>,
  positionals: string[],
  config: () => Config,
): Promise<number> {
  if (positionals.length) throw new UsageError('--sweep takes the spec file; give no template or other file');
  const file = String(v.sweep);
  if (!/\.(ya?ml|json)$/.test(file))
    throw new UsageError(`--sweep ${file}: expected a .yaml, .yml or .json file`);
  const spec = (parseYaml(await readFile(file, 'utf8')) as Record<string, unknown>) ?? {};
  if (v.experiment) spec.experiment = v.experiment;
  if (v.force) spec.force = true;
  const cfg = config();
  const queue = await openQueue(cfg);
  try {
    const res = await queue.enqueueSweep(spec, { dryRun: v['dry-run'] === true });
    if (v.json && !v.wait) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    else {
      const head = res.dry_run ? 'dry run: would enqueue' : res.existing ? 'existing' : 'enqueued';
      process.stdout.write(
        `${head} sweep ${res.sweep_id}: ${res.children.length} children of ${res.template} (${res.kind}), ` +
          `at most ${res.max_concurrency} at once, best by ${res.select.metric} (${res.select.direction})\n`,
      );
      if (res.dry_run)
        for (const c of res.children)
          process.stdout.write(
            `  ${c.task_id}  ${Object.entries(c.swept)
              .map(([k, x]) => `${k}=${x}`)
              .join(' ')}\n`,
          );
    }
    if (!v.wait || res.dry_run) return 0;
    const end = await waitAndShow(queue, res.sweep_id, cfg.redisUrl);
    const best = end.sweep?.best;
    process.stdout.write(
      v.json
        ? `${JSON.stringify(end, null, 2)}\n`
        : `${end.task_id} ${end.state}${end.reason ? `: ${end.reason.split('\n')[0]}` : ''}` +
            `${best ? `\nbest: child ${best.index} (${best.task_id}) ${best.metric} ${best.value}` : ''}` +
            `${end.sweep ? `\nparent run: ${end.sweep.parent_run_url}` : ''}\n`,
    );
    return end.state === 'completed' ? 0 : 1;
  } finally {
    await queue.close();
  }
}
