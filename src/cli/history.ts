/**
 * `runwarden history <model>`: the promotion history of a registered model (every alias move a
 * judge made: when, version, previous holder, judge, review, run), newest first, as runwarden
 * records it in MLflow itself (registered-model tags `runwarden.promotion.<review>`).
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import { mlflowClientFromConfig } from '../mlflow/client.js';
import { modelHistory } from '../review/history.js';
import { UsageError } from './usage.js';

const HELP = `Usage: runwarden history <registered model> [--alias NAME] [--limit N] [--json]

The promotion history of a registered model, newest first: when, alias, version, the previous
holder, the judge, the review and the run. MLflow keeps no history of alias moves; runwarden's
judges record each one on the registered model (tags and a table in its description).
`;

export async function runHistory(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const name = parsed.positionals[0];
  if (!name || parsed.positionals.length > 1)
    throw new UsageError('name one registered model (see runwarden history --help)');
  const limit = parsed.values.limit === undefined ? 100 : Number(parsed.values.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit: expected a positive whole number`);
  const cfg = config();
  const client = mlflowClientFromConfig(cfg, createLogger(cfg.logLevel));
  const records = await modelHistory(client, name, { alias: parsed.values.alias, limit });
  if (parsed.values.json) {
    process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
    return 0;
  }
  if (!records.length) {
    process.stdout.write(
      `${name}: no promotions recorded${parsed.values.alias ? ` for alias ${parsed.values.alias}` : ''}\n`,
    );
    return 0;
  }
  for (const r of records) {
    process.stdout.write(
      `${new Date(r.at).toISOString()}  ${r.alias} → v${r.version}${r.previousVersion ? ` (was v${r.previousVersion})` : ''}  judge ${r.judge}  review ${r.reviewId}  run ${r.runId}${r.score !== undefined ? `  score ${r.score}` : ''}\n`,
    );
  }
  return 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { alias: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  });
}
