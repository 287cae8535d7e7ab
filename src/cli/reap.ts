/**
 * `runwarden reap`: one sweep of the reaper from the command line. Prints what it closed (or would
 * close with --dry-run) as a table, or JSON with --json.
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { capForEcho } from '../errors/index.js';
import { createLogger } from '../log.js';
import { mlflowClientFromConfig } from '../mlflow/client.js';
import { reapExpiredRuns } from '../tracking/reaper.js';
import { ID_RULES } from '../tracking/validation.js';
import { parseDuration, UsageError } from './usage.js';

const HELP = `Usage: runwarden reap [--experiment-id ID]... [--include-foreign --older-than 24h] [--dry-run] [--json]

Closes RUNNING runs whose runwarden lease expired (the owner stopped renewing it), with the status the
owner declared and tags runwarden.closed_by=reaper and runwarden.close_reason.

  --experiment-id ID   only these experiments (repeatable; default: every active experiment)
  --owner-prefix P     only runs whose runwarden.owner starts with P (e.g. mcp: or worker:)
  --include-foreign    also close RUNNING runs runwarden did not start (needs --older-than)
  --older-than DUR     with --include-foreign: only runs started longer ago than DUR (e.g. 24h)
  --dry-run            list what would be closed; change nothing
  --json               print the result as JSON
`;

export async function runReap(argv: string[], config: () => Config): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values['include-foreign'] && !values['older-than']) {
    throw new UsageError('--include-foreign needs --older-than (e.g. --older-than 24h)');
  }
  for (const id of values['experiment-id'] ?? []) {
    if (!ID_RULES.experimentId.re.test(id)) {
      throw new UsageError(
        `--experiment-id '${capForEcho(id, 40)}' is not an experiment id: use ${ID_RULES.experimentId.says}`,
      );
    }
  }
  const cfg = config();
  const client = mlflowClientFromConfig(cfg, createLogger(cfg.logLevel));
  const result = await reapExpiredRuns(client, {
    experimentIds: values['experiment-id']?.length ? values['experiment-id'] : undefined,
    includeForeign: values['include-foreign'],
    olderThanMs: values['older-than'] ? parseDuration('--older-than', values['older-than']) : undefined,
    dryRun: values['dry-run'],
    ownerPrefix: values['owner-prefix'],
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    const verb = values['dry-run'] ? 'would close' : 'closed';
    process.stdout.write(`examined ${result.examined} RUNNING runs; ${verb} ${result.closed.length}\n`);
    for (const r of result.closed) {
      process.stdout.write(`  ${r.runId}  exp ${r.experimentId}  ${r.status}  ${r.reason}\n`);
    }
  }
  return 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      'experiment-id': { type: 'string', multiple: true },
      'owner-prefix': { type: 'string' },
      'include-foreign': { type: 'boolean' },
      'older-than': { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
