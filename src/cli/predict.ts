/**
 * `runwarden predict <model-ref> --data <file | uri>`: queue a prediction with a model
 * (models:/<name>@<alias>, models:/<name>/<version>, models:/<model_id>, runs:/<run_id>/<path>).
 * `--data` is a URI (file:// under RUNWARDEN_INPUT_ROOTS, runs:/, mlflow-artifacts:/, http(s) from
 * an allowed host), or a local file the command reads itself and sends inline (a .json request body
 * in mlflow serving's shapes, or a CSV table as dataframe_split), capped like inline tables. A
 * refused model (failed training run, no model) or a malformed reference exits 1 with the reason
 * before anything is queued; `--wait` shows progress and prints a preview of the predictions.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { parseCsv } from '../eval/table.js';
import { MAX_INLINE_TABLE_BYTES } from '../model/task-spec.js';
import type { PredictionSummary } from '../queue/predict-attempt.js';
import { openQueue, waitAndShow } from './enqueue.js';
import { UsageError } from './usage.js';

const HELP = `Usage: runwarden predict <model-ref> --data <file | uri> [--wait] [--json] [--force]

  <model-ref>        models:/<name>@<alias> (e.g. models:/forecaster@champion), models:/<name>/<version>,
                     models:/<model_id> (m-…), or runs:/<run_id>/<path> (e.g. runs:/<run_id>/model)
  --data FILE|URI    the data: a URI (file:// under RUNWARDEN_INPUT_ROOTS, runs:/<run>/<path>,
                     mlflow-artifacts:/..., http(s):// from RUNWARDEN_HTTP_INPUT_HOSTS), or a local
                     .csv (a table) or .json (a request body: dataframe_split, dataframe_records,
                     inputs or instances) of at most ${MAX_INLINE_TABLE_BYTES / 1024} KiB, sent inline
  --run-name NAME    MLflow run name of the prediction run
  --force            predict again even if the same model and data were predicted
  --wait             show progress until it ends and print a preview; exit 0 only if it completed
  --json             print the task as JSON

The prediction runs in a run nested under the model's training run, with predictions.csv and
predictions.json as artifacts. A model whose training run FAILED, or that has no model, is refused.
`;

const URI_RE = /^(file:\/\/|runs:\/|mlflow-artifacts:\/|https?:\/\/)/;

/** `--data`: a URI as given, or a local file read and sent inline. */
async function dataOf(arg: string): Promise<string | Record<string, unknown> | unknown[]> {
  if (URI_RE.test(arg)) return arg;
  const size = await stat(arg).then(
    (s) => s.size,
    () => {
      throw new UsageError(`--data ${arg}: no such file (or give a file://, runs:/ or http(s):// URI)`);
    },
  );
  if (size > MAX_INLINE_TABLE_BYTES)
    throw new UsageError(
      `--data ${arg}: ${size} bytes is more than ${MAX_INLINE_TABLE_BYTES} sent inline; put it under RUNWARDEN_INPUT_ROOTS and pass file://${path.resolve(arg)}`,
    );
  const text = await readFile(arg, 'utf8');
  if (/\.json$/i.test(arg)) {
    try {
      return JSON.parse(text) as Record<string, unknown> | unknown[];
    } catch (err) {
      throw new UsageError(`--data ${arg}: not JSON (${(err as Error).message})`);
    }
  }
  const table = parseCsv(text);
  return { dataframe_split: { columns: table.columns, data: table.rows } };
}

export async function runPredict(argv: string[], config: () => Config): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        data: { type: 'string' },
        'run-name': { type: 'string' },
        force: { type: 'boolean' },
        wait: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UsageError('give one model reference (see runwarden predict --help)');
  if (typeof v.data !== 'string') throw new UsageError('--data <file | uri> is required');
  const spec = {
    predict: { model: positionals[0]!, data: await dataOf(v.data) },
    ...(v['run-name'] ? { run_name: v['run-name'] } : {}),
    ...(v.force ? { force: true } : {}),
  };
  const cfg = config();
  const queue = await openQueue(cfg);
  try {
    const { task, existing, info } = await queue.enqueue(spec);
    if (v.json && !v.wait) process.stdout.write(`${JSON.stringify({ ...info, existing }, null, 2)}\n`);
    else
      process.stdout.write(
        `${existing ? 'existing' : 'enqueued'} ${task.taskId} (${info.state}) predict with ${positionals[0]} → experiment '${task.experiment}'\n`,
      );
    if (!v.wait) return 0;
    const end = await waitAndShow(queue, task.taskId, cfg.redisUrl);
    const run = end.runs.at(-1);
    const p = (end.result as { prediction?: PredictionSummary } | undefined)?.prediction;
    if (v.json) process.stdout.write(`${JSON.stringify(end, null, 2)}\n`);
    else if (p)
      process.stdout.write(
        `${end.task_id} completed: ${p.rows} predictions → ${p.artifact}${run ? `\nrun: ${run.url}` : ''}\n` +
          `${p.preview_of === 'all' ? '' : `(${p.preview_of} ${p.preview.length} rows)\n`}` +
          `${[p.columns.join(','), ...p.preview.map((r) => r.join(','))].join('\n')}\n`,
      );
    else
      process.stdout.write(
        `${end.task_id} ${end.state}${end.reason ? `: ${end.reason.split('\n')[0]}` : ''}${run ? `\nrun: ${run.url}` : ''}\n`,
      );
    return end.state === 'completed' ? 0 : 1;
  } finally {
    await queue.close();
  }
}
