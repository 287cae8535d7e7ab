// Shared test helpers for integration tests: a runwarden MLflow client on the harness's server,
// unique names so test files never touch each other's data, and child processes running
// TypeScript fixtures (node --import tsx, one process, so signals reach the code under test).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createMlflowClient, type MlflowClient } from '../../src/index.js';
import { repoRoot } from './services.js';

export function testClient(trackingUri: string, opts: { timeoutMs?: number } = {}): MlflowClient {
  return createMlflowClient({ trackingUri, timeoutMs: opts.timeoutMs ?? 30_000, retry: { baseDelayMs: 50 } });
}

/** A name no other test (or test run) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
}

export interface Fixture {
  child: ChildProcess;
  /** Resolves with the first JSON line the fixture prints on stdout. */
  firstLine: Promise<unknown>;
  /** Resolves with exit code / signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  /** All stdout so far. */
  stdout: () => string;
}

const running = new Set<ChildProcess>();

/**
 * SIGKILL every fixture process `runFixture` started that is still running (for afterEach/afterAll,
 * so a failed test does not leave its fixture behind).
 */
export function killFixtures(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
}

/** Run `test/fixtures/<name>.ts` with arguments, in its own process. */
export function runFixture(name: string, args: string[], env: Record<string, string> = {}): Fixture {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test', 'fixtures', `${name}.ts`), ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  child.on('exit', () => running.delete(child));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const firstLine = new Promise<unknown>((resolve, reject) => {
    child.stdout?.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      try {
        resolve(JSON.parse(line));
      } catch (e) {
        reject(
          new Error(
            `fixture ${name} printed a first line that is not JSON (${(e as Error).message}): ${line}`,
          ),
        );
      }
    });
    child.on('exit', (code) =>
      reject(new Error(`fixture ${name} exited (${code}) before printing: ${err.slice(-2000)}`)),
    );
  });
  firstLine.catch(() => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, firstLine, exited, stderr: () => err, stdout: () => out };
}
