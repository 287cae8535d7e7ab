// Helpers for MCP integration tests: a stdio client on a spawned `runwarden mcp`, and a spawned
// `runwarden serve` on a free port with clients for it. Servers run from source (tsx), each in
// its own process, pointed at the harness's MLflow server.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { freePort, repoRoot } from './services.js';

const cli = join(repoRoot, 'src', 'cli', 'index.ts');

export async function stdioClient(
  env: Record<string, string>,
): Promise<{ client: Client; transport: StdioClientTransport }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', cli, 'mcp'],
    cwd: repoRoot,
    // No reaper unless the test asks (scoped with RUNWARDEN_REAP_EXPERIMENT_IDS): a stack reaper
    // sweeps every owner, and must not close runs other test files expect their own sweep to close.
    env: {
      ...(process.env as Record<string, string>),
      RUNWARDEN_LOG_LEVEL: 'warn',
      RUNWARDEN_REAP_INTERVAL_MS: '0',
      ...env,
    },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'runwarden-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

export interface ServeProcess {
  url: string;
  port: number;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM, then SIGKILL if still running after `timeoutMs`; resolves with the exit code. */
  stop: (timeoutMs?: number) => Promise<number | null>;
}

export async function startServe(env: Record<string, string>): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      RUNWARDEN_LOG_LEVEL: 'warn',
      RUNWARDEN_HTTP_PORT: String(port),
      RUNWARDEN_REAP_INTERVAL_MS: '0', // as in stdioClient
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`runwarden serve exited (${child.exitCode ?? child.signalCode}): ${err}`);
    }
    try {
      const res = await fetch(`${url}/health`);
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`runwarden serve did not answer on ${url}: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    url,
    port,
    child,
    stderr: () => err,
    stop: async (timeoutMs = 30_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeoutMs);
      });
      if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
      clearTimeout(timer);
      return exited;
    },
  };
}

export async function httpClient(url: string, token?: string) {
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined,
  });
  const client = new Client({ name: 'runwarden-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** Call a tool and return its structured content, failing loudly on isError. */
export async function call<T = Record<string, unknown>>(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<T> {
  const res = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content)}`);
  return res.structuredContent as T;
}

/** Call a tool expected to fail; returns its error text. */
export async function callError(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<string> {
  const res = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (!res.isError)
    throw new Error(`${name} unexpectedly succeeded: ${JSON.stringify(res.structuredContent)}`);
  return res.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}
