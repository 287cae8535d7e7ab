/**
 * `runwarden mcp`: the MCP server over stdio, for one client. When the client goes away (stdin
 * closes) or the process gets SIGINT/SIGTERM, the process is going away: the runs it started and
 * still owns are ended KILLED with the reason (re-read first; a run another server owns, or one
 * already ended, is left as it is), then the process exits. stdout carries only MCP messages; logs
 * go to stderr.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { McpRuntime } from './runtime.js';
import { createServer } from './server.js';

export async function runStdio(runtime: McpRuntime): Promise<void> {
  const session = createServer({ ...runtime });
  const transport = new StdioServerTransport();
  let stopping = false;
  const stop = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    runtime.logger.info({ reason }, 'stopping MCP stdio server');
    try {
      await session.close(reason);
      await runtime.shutdown(reason);
    } catch (err) {
      runtime.logger.warn({ err: (err as Error).message }, 'shutdown did not complete');
    } finally {
      process.exit(code);
    }
  };
  process.stdin.on(
    'end',
    () => void stop('the MCP client disconnected (stdin closed) without calling end_run', 0),
  );
  process.on('SIGINT', () => void stop('the MCP server received SIGINT', 130));
  process.on('SIGTERM', () => void stop('the MCP server received SIGTERM', 143));
  await session.server.connect(transport);
  runtime.logger.info({ version: runtime.version }, 'runwarden MCP server ready on stdio');
}
