// The task CLI without Redis, against the real MLflow and a redis-server this file starts and
// kills: `runwarden status`, `enqueue` and `cancel` with REDIS_URL on a closed port fail with exit
// 1 and a message naming REDIS_URL (password hidden) and how to start Redis, instead of hanging;
// and Redis killed under `enqueue --wait` ends the wait with a message saying the task goes on
// and how to follow it, not a stack trace.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from '../support/clients.js';
import { freePort, repoRoot, startRedisServer } from '../support/services.js';
import { cliPath, runCli, taskEnv, waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');

describe.concurrent('the task CLI without Redis', () => {
  let workDir: string;
  let closedUrl: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rw-cli-redis-'));
    // A port nothing listens on, with a password that must not be printed.
    closedUrl = `redis://:s3cret-pw@127.0.0.1:${await freePort()}`;
  });

  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const env = (redisUrl: string) => taskEnv({ mlflowUrl, redisUrl, prefix: uniqueName('q-cli'), workDir });

  for (const args of [['status'], ['enqueue', 'quick'], ['cancel', 'some-task']]) {
    it(`runwarden ${args[0]} with REDIS_URL on a closed port: exit 1 within seconds, naming REDIS_URL (password hidden) and how to start Redis`, async () => {
      const t0 = Date.now();
      // The old behaviour was a silent hang: the 50 s bound fails the test.
      const r = await runCli(args, env(closedUrl), 50_000);
      const took = Date.now() - t0;
      expect(r.code, r.err).toBe(1);
      expect(r.err).toContain('REDIS_UNREACHABLE');
      expect(r.err).toContain('REDIS_URL=redis://***@127.0.0.1:');
      expect(r.err).toMatch(/npm start/);
      expect(r.err).toMatch(/redis-server/);
      expect(r.err).not.toContain('s3cret-pw');
      expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
      // Node + tsx alone take 6-20 s on this loaded 2-core machine; the wait for Redis is at most 5 s.
      expect(took).toBeLessThan(45_000);
    });
  }

  it('Redis killed under runwarden enqueue --wait: exit 1 with a message that the task goes on and how to follow it (runwarden status, the task id), no stack trace', async () => {
    const redis = await startRedisServer();
    let stopped = false;
    try {
      // No worker: the task waits in the queue, and the CLI waits on it.
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', cliPath, 'enqueue', 'quick', '--wait', '--experiment', uniqueName('cli-wait')],
        { cwd: repoRoot, env: { ...process.env, ...env(redis.url) }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const taskId = await waitFor(
          'the CLI to say it enqueued the task',
          () => /enqueued (\S+)/.exec(out)?.[1],
          {
            timeoutMs: 60_000,
          },
        );
        await redis.stop();
        stopped = true;
        const t0 = Date.now();
        const code = await Promise.race([
          exited,
          new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000)),
        ]);
        expect(code, err).toBe(1);
        expect(Date.now() - t0).toBeLessThan(30_000);
        expect(err).toContain('REDIS_UNREACHABLE');
        expect(err).toContain(`task ${taskId} goes on`);
        expect(err).toContain('runwarden status');
        expect(err).toMatch(/npm start|redis-server/);
        expect(err).not.toMatch(/\n\s+at /);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    } finally {
      if (!stopped) await redis.stop();
    }
  });
});
