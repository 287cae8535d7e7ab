/**
 * The `runwarden` command line. Exit codes: 0 ok, 1 failure, 2 usage error. Subcommands grow with
 * the project (DESIGN.md lists the contract); this module only dispatches.
 */
import { loadConfig } from '../config.js';
import { RunwardenError } from '../errors/index.js';
import { runMcp, runServe } from './mcp.js';
import { runReap } from './reap.js';
import { runUp } from './up.js';
import { UsageError } from './usage.js';

const HELP = `runwarden — agent-coordinated experiment tracking on MLflow

Usage: runwarden <command> [options]

Commands:
  mcp       MCP server over stdio
  serve     MCP server over Streamable HTTP (/mcp, /health)
  up        the local stack: MLflow + the MCP HTTP server, with client setup printed
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
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`runwarden: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
