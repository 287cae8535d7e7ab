/**
 * The `runwarden` command line. Exit codes: 0 ok, 1 failure, 2 usage error. Subcommands grow with
 * the project (DESIGN.md lists the contract); this module only dispatches.
 */
import { loadConfig } from '../config.js';
import { RunwardenError } from '../errors/index.js';
import { runCancel, runEnqueue, runStatus } from './enqueue.js';
import { runHistory } from './history.js';
import { runJudgeCommand } from './judge.js';
import { runMcp, runServe } from './mcp.js';
import { runPredict } from './predict.js';
import { runPrepare } from './prepare.js';
import { runReap } from './reap.js';
import { runUp } from './up.js';
import { UsageError } from './usage.js';
import { runWorkerCommand } from './worker.js';

const HELP = `runwarden — agent-coordinated experiment tracking on MLflow

Usage: runwarden <command> [options]

Commands:
  mcp       MCP server over stdio
  serve     MCP server over Streamable HTTP (/mcp, /health)
  up        the local stack: MLflow + the MCP HTTP server, with client setup printed
  worker    run training tasks from the queue
  judge     the policy judge: decide review items, promote approved models
  history   promotion history of a registered model (every alias move, who and when)
  enqueue   queue a training task from a template or spec file (--wait shows progress)
  status    queue counts and active tasks
  cancel    cancel a task (waiting or running) from any machine
  predict   predict with a model (models:/name@alias, /version, models:/m-id, runs:/) on data
  prepare   build task templates' Python environments ahead of first use
  reap      close runs whose lease expired (once)

\`runwarden <command> --help\` describes each.

Environment: MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD,
RUNWARDEN_* (see README's configuration table).
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  reap: (argv) => runReap(argv, () => loadConfig()),
  mcp: (argv) => runMcp(argv, () => loadConfig()),
  serve: (argv) => runServe(argv, () => loadConfig()),
  up: (argv) => runUp(argv, () => loadConfig()),
  worker: (argv) => runWorkerCommand(argv, () => loadConfig()),
  judge: (argv) => runJudgeCommand(argv, () => loadConfig()),
  history: (argv) => runHistory(argv, () => loadConfig()),
  enqueue: (argv) => runEnqueue(argv, () => loadConfig()),
  status: (argv) => runStatus(argv, () => loadConfig()),
  cancel: (argv) => runCancel(argv, () => loadConfig()),
  predict: (argv) => runPredict(argv, () => loadConfig()),
  prepare: (argv) => runPrepare(argv, () => loadConfig()),
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return cmd ? 0 : 2;
  }
  const run = commands[cmd];
  if (!run) {
    process.stderr.write(`runwarden: unknown command '${cmd}'\n\n${HELP}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`runwarden ${cmd}: ${err.message}\n`);
      return 2;
    }
    const msg =
      err instanceof RunwardenError ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
    process.stderr.write(`runwarden ${cmd}: ${msg}\n`);
    // Bad input (a field named, nothing done) is a usage error; anything else a failure.
    return err instanceof RunwardenError && err.code === 'VALIDATION_ERROR' ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Long-running commands have shut down; leftover sockets or timers must not keep us alive.
    if (['serve', 'up', 'worker', 'judge'].includes(process.argv[2] ?? '')) process.exit(code);
  },
  (err) => {
    process.stderr.write(`runwarden: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
