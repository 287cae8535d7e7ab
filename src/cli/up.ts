/**
 * `runwarden up`: the local stack in one command. Starts MLflow from the project's .venv (SQLite
 * and an artifact folder under RUNWARDEN_DATA_DIR, UI on RUNWARDEN_MLFLOW_PORT) unless
 * MLFLOW_TRACKING_URI points at a server already, redis-server (append-only, under the data
 * folder) unless REDIS_URL is set, a task worker, the policy judge, the runwarden MCP HTTP server
 * and one reaper loop over every expired runwarden lease (any owner, every RUNWARDEN_REAP_INTERVAL_MS); prints the UI
 * URL, the MCP endpoint and ready-to-paste client configuration; stops everything on Ctrl-C.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Config, loadConfig } from '../config.js';
import { redactUri } from '../errors/index.js';
import { createLogger } from '../log.js';
import { startHttpServer } from '../mcp/http.js';
import { createRuntime } from '../mcp/runtime.js';
import { mlflowClientFromConfig } from '../mlflow/client.js';
import { workerFromConfig } from '../queue/from-config.js';
import { repoRoot, startMlflowServer, startRedisServer } from '../stack/services.js';
import { startLoggedReaperLoop } from '../tracking/reaper.js';
import { judgeFromConfig } from './judge.js';
import { waitForSignal } from './mcp.js';
import { UsageError } from './usage.js';

const HELP = `Usage: runwarden up

Brings up a local MLflow server (from .venv, data in RUNWARDEN_DATA_DIR, default .data/), redis-server,
a task worker and the runwarden MCP HTTP server, prints how to connect, and stops everything on
Ctrl-C. With MLFLOW_TRACKING_URI (or REDIS_URL) set, uses that server instead of starting one.
`;

export function clientSetup(o: { mcpUrl: string; token?: string; trackingUri: string; bin: string }): string {
  // The token and any credentials in the tracking URI are never printed (terminals get logged):
  // the snippets name the variable that holds the token instead.
  const auth = o.token ? { Authorization: 'Bearer <RUNWARDEN_HTTP_TOKEN>' } : undefined;
  const header = o.token ? ' --header "Authorization: Bearer $RUNWARDEN_HTTP_TOKEN"' : '';
  const trackingUri = redactUri(o.trackingUri);
  const httpJson = JSON.stringify(
    { mcpServers: { runwarden: { url: o.mcpUrl, ...(auth ? { headers: auth } : {}) } } },
    null,
    2,
  );
  const stdioJson = JSON.stringify(
    {
      mcpServers: {
        runwarden: { command: 'node', args: [o.bin, 'mcp'], env: { MLFLOW_TRACKING_URI: trackingUri } },
      },
    },
    null,
    2,
  );
  return [
    'Claude Code, over HTTP:',
    `  claude mcp add --transport http runwarden ${o.mcpUrl}${header}`,
    'Claude Code, over stdio:',
    `  claude mcp add runwarden --env MLFLOW_TRACKING_URI=${trackingUri} -- node ${o.bin} mcp`,
    'Cursor (~/.cursor/mcp.json), over HTTP:',
    httpJson.replace(/^/gm, '  '),
    'Claude Desktop (claude_desktop_config.json), over stdio:',
    stdioJson.replace(/^/gm, '  '),
  ].join('\n');
}

export async function runUp(argv: string[], config: () => Config = loadConfig): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv.length) throw new UsageError(`unexpected arguments: ${argv.join(' ')} (see runwarden up --help)`);
  let cfg = config();
  const logger = createLogger(cfg.logLevel);
  let stopMlflow: () => Promise<void> = async () => {};
  if (!cfg.mlflow.trackingUriFromEnv) {
    const dir = path.join(cfg.dataDir, 'mlflow');
    await mkdir(dir, { recursive: true });
    process.stderr.write(
      `runwarden up: starting MLflow on 127.0.0.1:${cfg.localMlflowPort} (data in ${dir}) ...\n`,
    );
    const mlflow = await startMlflowServer({ dir, port: cfg.localMlflowPort });
    stopMlflow = mlflow.stop;
    cfg = { ...cfg, mlflow: { ...cfg.mlflow, trackingUri: mlflow.url, uiUrl: mlflow.url } };
  }
  let stopRedis: () => Promise<void> = async () => {};
  if (!cfg.redisUrlFromEnv) {
    const dir = path.join(cfg.dataDir, 'redis');
    await mkdir(dir, { recursive: true });
    try {
      const redis = await startRedisServer({ dir, port: cfg.localRedisPort });
      stopRedis = redis.stop;
      cfg = { ...cfg, redisUrl: redis.url };
    } catch (err) {
      await stopMlflow();
      throw err;
    }
  }
  // One reaper for the whole stack, over every owner (MCP, workers, library scripts), even when the
  // MCP server is read-only: the runtime's own loop is off so the stack does not sweep twice.
  const runtime = createRuntime(cfg, logger, { reaper: false });
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  let worker: Awaited<ReturnType<typeof workerFromConfig>> | undefined;
  let judge: Awaited<ReturnType<typeof judgeFromConfig>> | undefined;
  const workerClient = mlflowClientFromConfig(cfg, logger);
  try {
    worker = await workerFromConfig(cfg, workerClient, logger);
    judge = await judgeFromConfig(cfg, logger);
    http = await startHttpServer(runtime, cfg.http);
  } catch (err) {
    await judge?.close();
    await worker?.close();
    await stopRedis();
    await stopMlflow();
    throw err;
  }
  const reaperClient = mlflowClientFromConfig(cfg, logger);
  // /metrics counts the stack's MLflow requests, not only the MCP server's.
  http.observeMlflow(workerClient);
  http.observeMlflow(reaperClient);
  const stopReaper = startLoggedReaperLoop(reaperClient, {
    intervalMs: cfg.mcp.reapIntervalMs,
    experimentIds: cfg.mcp.reapExperimentIds,
    logger,
    onClosed: (ids) => {
      runtime.reaped.runs += ids.length; // /metrics: runwarden_runs_reaped_total
      runtime.runs.forgetClosed(ids);
    },
  });
  const mcpUrl = `${http.url}/mcp`;
  process.stdout.write(
    [
      '',
      'runwarden is up.',
      `  MLflow UI:     ${redactUri(cfg.mlflow.uiUrl)}`,
      `  MCP endpoint:  ${mcpUrl}${cfg.http.token ? ' (Bearer token required)' : ''}`,
      `  Health:        ${http.url}/health`,
      `  Metrics:       ${cfg.http.metrics?.enabled === false ? 'off (RUNWARDEN_METRICS=false)' : `${http.url}/metrics`}; queue dashboard: ${cfg.http.dashboard?.enabled === false ? 'off' : `${http.url}/admin/queues`}`,
      `  Task queue:    ${redactUri(cfg.redisUrl)} (one worker running; task events at ${http.url}/tasks/<id>/events)`,
      '  Judge:         the policy judge (templates with review.mode policy); `node bin/runwarden.js history <model>` shows promotions',
      `  Reaper:        ${cfg.mcp.reapIntervalMs > 0 ? `every ${cfg.mcp.reapIntervalMs} ms, closes runs of any owner whose lease expired` : 'off (RUNWARDEN_REAP_INTERVAL_MS=0)'}`,
      '',
      'Try a task:     node bin/runwarden.js enqueue gru-forecast --param epochs=20 --wait',
      '',
      clientSetup({
        mcpUrl,
        token: cfg.http.token,
        trackingUri: cfg.mlflow.trackingUri,
        bin: path.join(repoRoot, 'bin', 'runwarden.js'),
      }),
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  await waitForSignal(async (reason) => {
    process.stderr.write('runwarden up: stopping ...\n');
    stopReaper();
    await http.close(reason);
    await Promise.all([worker?.close(), judge?.close()]);
    await runtime.shutdown(reason);
    await stopRedis();
    await stopMlflow();
  });
  return 0;
}
