/**
 * `runwarden mcp` (MCP over stdio) and `runwarden serve` (MCP over Streamable HTTP, /health).
 */
import type { Config } from '../config.js';
import { redactUri } from '../errors/index.js';
import { createLogger } from '../log.js';
import { startHttpServer } from '../mcp/http.js';
import { createRuntime } from '../mcp/runtime.js';
import { runStdio } from '../mcp/stdio.js';
import { UsageError } from './usage.js';

const MCP_HELP = `Usage: runwarden mcp

Serves runwarden's MCP tools over stdio (for Claude Code, Cursor, Claude Desktop...). Logs go to
stderr. When the client disconnects, the runs this server started and still owns are ended KILLED
(a run another server owns, or one already ended, is left as it is).
Environment: MLFLOW_TRACKING_URI, RUNWARDEN_READ_ONLY, RUNWARDEN_ALLOWED_ROOTS, ... (README).
`;

const SERVE_HELP = `Usage: runwarden serve

Serves MCP over Streamable HTTP at http://RUNWARDEN_HTTP_HOST:RUNWARDEN_HTTP_PORT/mcp (default
127.0.0.1:7341), GET /health, GET /metrics (Prometheus text) and the read-only queue dashboard at
/admin/queues (RUNWARDEN_METRICS, RUNWARDEN_DASHBOARD). Set RUNWARDEN_HTTP_TOKEN to require "Authorization: Bearer <token>"
(required when binding a non-loopback address). A closed or idle session ends no run: its runs stay
open under their lease, another session may continue them, and the reaper (every
RUNWARDEN_REAP_INTERVAL_MS, any owner) closes those nobody renews. SIGINT/SIGTERM end the runs this
server started and still owns KILLED.
`;

export async function runMcp(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(MCP_HELP);
    return 0;
  }
  if (argv.length) throw new UsageError(`unexpected arguments: ${argv.join(' ')} (see runwarden mcp --help)`);
  const cfg = config();
  const runtime = createRuntime(cfg, createLogger(cfg.logLevel));
  await runStdio(runtime);
  return new Promise<number>(() => undefined); // runs until the client disconnects or a signal
}

export async function runServe(argv: string[], config: () => Config): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  if (argv.length)
    throw new UsageError(`unexpected arguments: ${argv.join(' ')} (see runwarden serve --help)`);
  const cfg = config();
  const logger = createLogger(cfg.logLevel);
  const runtime = createRuntime(cfg, logger);
  const http = await startHttpServer(runtime, cfg.http);
  logger.info(
    { url: `${http.url}/mcp`, mlflow: redactUri(cfg.mlflow.trackingUri) },
    'runwarden MCP server listening',
  );
  process.stderr.write(
    `runwarden: MCP at ${http.url}/mcp (health: ${http.url}/health), MLflow ${redactUri(cfg.mlflow.trackingUri)}\n`,
  );
  await waitForSignal(async (reason) => {
    await http.close(reason);
    await runtime.shutdown(reason);
  });
  return 0;
}

/** Resolve after SIGINT/SIGTERM once `stop` has run (a second signal exits at once). */
export function waitForSignal(stop: (reason: string) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const on = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(1);
      stopping = true;
      void stop(`the runwarden server received ${signal}`).finally(resolve);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
