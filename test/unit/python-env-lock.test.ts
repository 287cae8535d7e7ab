// Covers the environment-build lock and timeout of src/runners/python-env.ts on the real file
// system, with a stand-in `python` (a shell script that makes a venv folder at once, or hangs) so
// no real venv is built: a lock left by a dead builder on this host, one whose owner file is
// stale, and one without an owner file are taken over at once; a live builder's lock is waited
// for; and a build (or a wait) longer than its own timeout fails naming
// RUNWARDEN_ENV_BUILD_TIMEOUT_MS.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Template } from '../../src/queue/templates.js';
import {
  ensurePythonEnv,
  requirementsHash,
  staleLockReason,
  takeOverLock,
} from '../../src/runners/python-env.js';

let root: string;
let fastPython: string;
let hangingPython: string;
const children: number[] = [];

const FAST = `#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
exit 0
`;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rw-pyenv-lock-'));
  fastPython = join(root, 'fast-python');
  hangingPython = join(root, 'hanging-python');
  await writeFile(fastPython, FAST);
  await writeFile(hangingPython, '#!/bin/sh\nexec sleep 600\n');
  await chmod(fastPython, 0o755);
  await chmod(hangingPython, 0o755);
});

afterAll(async () => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(root, { recursive: true, force: true });
});

/** A template with its own requirements text (so each test has its own env and lock). */
async function template(name: string): Promise<{ t: Template; cacheDir: string; lock: string }> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'requirements.txt'), `# ${name}\n`);
  const t = { name, dir, root, python: { requirements: 'requirements.txt' } } as unknown as Template;
  const cacheDir = join(root, `cache-${name}`);
  await mkdir(cacheDir, { recursive: true });
  return { t, cacheDir, lock: join(cacheDir, `py-${await requirementsHash(t)}.lock`) };
}

/** The pid of a process that has exited (spawned, then waited for). */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

async function writeLock(lock: string, owner: { pid: number; host: string }, ageMs = 0, nonce = 'other') {
  await mkdir(lock);
  const file = join(lock, 'owner.json');
  await writeFile(file, JSON.stringify({ ...owner, nonce, since: Date.now() - ageMs }));
  const then = new Date(Date.now() - ageMs);
  await utimes(file, then, then);
  await utimes(lock, then, then);
}

describe('ensurePythonEnv: build locks and timeout', () => {
  it('ensurePythonEnv: a lock left by a builder that died on this host is taken over at once', async () => {
    const { t, cacheDir, lock } = await template('dead-owner');
    await writeLock(lock, { pid: await deadPid(), host: hostname() });
    const reasons: string[] = [];
    const t0 = Date.now();
    const python = await ensurePythonEnv(t, cacheDir, {
      python: fastPython,
      timeoutMs: 60_000,
      onTakeover: (r) => reasons.push(r),
    });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(reasons).toEqual([expect.stringMatching(/^its owner \(pid \d+ on this host\) is dead$/)]);
    expect(existsSync(python)).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it('ensurePythonEnv: a lock of another host whose owner stopped refreshing it is taken over; one without an owner file too', async () => {
    const a = await template('stale-remote');
    await writeLock(a.lock, { pid: 1, host: 'some-other-host' }, 3 * 60_000);
    const reasons: string[] = [];
    await ensurePythonEnv(a.t, a.cacheDir, { python: fastPython, onTakeover: (r) => reasons.push(r) });
    expect(reasons).toEqual([expect.stringMatching(/on some-other-host\) has not refreshed it for \d+ s$/)]);

    const b = await template('ownerless');
    await mkdir(b.lock);
    const old = new Date(Date.now() - 60_000);
    await utimes(b.lock, old, old);
    const reasonsB: string[] = [];
    await ensurePythonEnv(b.t, b.cacheDir, { python: fastPython, onTakeover: (r) => reasonsB.push(r) });
    expect(reasonsB).toEqual(['the lock has no owner file']);
  });

  it('takeOverLock: of two workers that judged the same lock stale, the slower one leaves the fresh lock the faster one made', async () => {
    const { lock, cacheDir } = await template('double-takeover');
    await writeLock(lock, { pid: await deadPid(), host: hostname() });
    // Both C and D read the lock and judge it stale (its builder died).
    const judged = { ino: (await stat(lock)).ino, nonce: 'other' };
    expect(await staleLockReason(lock)).toMatch(/is dead$/);
    // D is faster: it takes the stale lock away and makes its own, live one.
    expect(await takeOverLock(lock, judged)).toBe(true);
    await writeLock(lock, { pid: process.pid, host: hostname() }, 0, 'fresh-of-D');
    // C now acts on its old judgement: it must not take D's live lock away.
    expect(await takeOverLock(lock, judged)).toBe(false);
    const owner = JSON.parse(await readFile(join(lock, 'owner.json'), 'utf8')) as { nonce: string };
    expect(owner.nonce).toBe('fresh-of-D');
    expect((await readdir(cacheDir)).filter((f) => f.includes('.stale-'))).toEqual([]);
  });

  it('ensurePythonEnv: a live builder keeps its lock (another host, refreshed): the waiter times out naming RUNWARDEN_ENV_BUILD_TIMEOUT_MS', async () => {
    const { t, cacheDir, lock } = await template('live-owner');
    await writeLock(lock, { pid: 1, host: 'some-other-host' });
    const reasons: string[] = [];
    await expect(
      ensurePythonEnv(t, cacheDir, {
        python: fastPython,
        timeoutMs: 2_000,
        onTakeover: (r) => reasons.push(r),
      }),
    ).rejects.toMatchObject({
      code: 'CONFIG_ERROR',
      message: expect.stringContaining('RUNWARDEN_ENV_BUILD_TIMEOUT_MS'),
    });
    expect(reasons).toEqual([]);
    expect(existsSync(join(lock, 'owner.json'))).toBe(true);
  });

  it('ensurePythonEnv: a build that hangs is stopped after its own timeout, fails naming RUNWARDEN_ENV_BUILD_TIMEOUT_MS, and releases its lock', async () => {
    const { t, cacheDir, lock } = await template('hanging-build');
    const t0 = Date.now();
    await expect(
      ensurePythonEnv(t, cacheDir, { python: hangingPython, timeoutMs: 1_500 }),
    ).rejects.toMatchObject({
      code: 'CONFIG_ERROR',
      message: expect.stringMatching(/took longer than 1500 ms \(RUNWARDEN_ENV_BUILD_TIMEOUT_MS\)/),
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(existsSync(lock)).toBe(false);
  });
});
