/**
 * One Python environment per template requirements, as MLflow Projects does: a venv under the
 * cache folder named by the sha256 of the requirements file, built on first use (pip install -r),
 * reused afterwards; a `.ready` marker is written only after a successful install.
 *
 * A lock folder (`py-<hash>.lock/`) keeps two workers from building the same one at once. It holds
 * `owner.json` (pid, host, a nonce), whose mtime the builder refreshes every 15 s. A waiting worker
 * takes the lock over at once when its owner is dead (same host, pid gone or a zombie), when its
 * owner file went unrefreshed for `REMOTE_LOCK_STALE_MS` (another host, or a reused pid), or when
 * the folder has had no owner file for 10 s (its builder died right after creating it). Takeover
 * renames the folder away and then checks that what it moved is the lock it judged stale (same
 * owner nonce, same folder inode): two workers may judge the same lock stale, and the slower one's
 * rename can move the fresh lock the faster one just made; that one is renamed back, not deleted.
 * A build (waiting for the lock included) has its own bound, `timeoutMs` (RUNWARDEN_ENV_BUILD_TIMEOUT_MS,
 * default 20 min), apart from the task's training timeout.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RunwardenError } from '../errors/index.js';
import type { Template } from '../model/template.js';

/** Default bound of one environment build (RUNWARDEN_ENV_BUILD_TIMEOUT_MS). */
export const ENV_BUILD_TIMEOUT_MS = 20 * 60_000;
/** A lock whose owner file was not refreshed for this long is taken over (another host, reused pid). */
export const REMOTE_LOCK_STALE_MS = 2 * 60_000;
const LOCK_REFRESH_MS = 15_000;
const OWNERLESS_GRACE_MS = 10_000;
const OWNER_FILE = 'owner.json';

interface LockOwner {
  pid: number;
  host: string;
  nonce: string;
  since: number;
}

function run(cmd: string, args: string[], log: string, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(log, { flags: 'a' });
    out.on('error', reject);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on('error', reject);
    child.on('close', (code) => out.end(() => resolve(code ?? 1)));
  });
}

export async function requirementsHash(t: Template): Promise<string | undefined> {
  if (!t.python) return undefined;
  const text = await readFile(path.join(t.dir, t.python.requirements), 'utf8');
  return createHash('sha256').update(text.replace(/\r\n/g, '\n').trim()).digest('hex').slice(0, 16);
}

/** True when `pid` runs on this host (a zombie, dead but not reaped, counts as dead). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(pid, 0)
  }
}

/** What identifies one lock folder: its inode and its owner's nonce (none while it has no owner file). */
export interface LockIdentity {
  ino: number;
  nonce?: string;
}

async function lockIdentity(dir: string): Promise<LockIdentity | undefined> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return undefined;
  return { ino: st.ino, nonce: (await readOwner(dir)).owner?.nonce };
}

async function readOwner(lock: string): Promise<{ owner?: LockOwner; mtimeMs?: number }> {
  const file = path.join(lock, OWNER_FILE);
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { owner: JSON.parse(text) as LockOwner, mtimeMs: st.mtimeMs };
  } catch {
    return {};
  }
}

/** Why the lock at `lock` may be taken over now, or undefined while its owner may still build. */
export async function staleLockReason(lock: string, now = Date.now()): Promise<string | undefined> {
  const { owner, mtimeMs } = await readOwner(lock);
  if (!owner || mtimeMs === undefined) {
    const dir = await stat(lock).catch(() => undefined);
    if (!dir) return undefined; // gone meanwhile: just try again
    return now - dir.mtimeMs > OWNERLESS_GRACE_MS ? 'the lock has no owner file' : undefined;
  }
  if (owner.host === os.hostname() && Number.isInteger(owner.pid) && !pidAlive(owner.pid))
    return `its owner (pid ${owner.pid} on this host) is dead`;
  if (now - mtimeMs > REMOTE_LOCK_STALE_MS)
    return `its owner (pid ${owner.pid} on ${owner.host}) has not refreshed it for ${Math.round((now - mtimeMs) / 1000)} s`;
  return undefined;
}

/**
 * Take over the lock at `lock` judged stale as `judged` (read before the judgement): rename it
 * away, and delete it only when what moved is that same lock. A worker that took it over first and
 * made a fresh lock meanwhile keeps it: the fresh lock is renamed back. True when this call took
 * the stale lock away.
 */
export async function takeOverLock(lock: string, judged: LockIdentity): Promise<boolean> {
  const away = `${lock}.stale-${randomUUID().slice(0, 8)}`;
  try {
    await rename(lock, away);
  } catch {
    return false; // gone meanwhile (another worker took it over): try again
  }
  const moved = await lockIdentity(away);
  if (moved && (moved.ino !== judged.ino || moved.nonce !== judged.nonce)) {
    // Someone else's live lock: put it back. Should a third worker have made a lock in the
    // meantime (a window of a few system calls), the rename fails and the moved lock's owner
    // finds, when it ends, that the lock is no longer its own.
    await rename(away, lock).catch(() => undefined);
    return false;
  }
  await rm(away, { recursive: true, force: true });
  return true;
}

/**
 * The python interpreter for the template: its cached venv's, or `fallback` (the system python)
 * for templates without requirements.
 */
export async function ensurePythonEnv(
  t: Template,
  cacheDir: string,
  opts: {
    python?: string;
    signal?: AbortSignal;
    /** Bound of the wait for another builder plus the build (default `ENV_BUILD_TIMEOUT_MS`). */
    timeoutMs?: number;
    onBuild?: (envDir: string) => void;
    /** Called when a stale lock is taken over, with the reason. */
    onTakeover?: (reason: string) => void;
  } = {},
): Promise<string> {
  const base = opts.python ?? 'python3';
  const hash = await requirementsHash(t);
  if (!hash) return base;
  const envDir = path.join(cacheDir, `py-${hash}`);
  const python = path.join(envDir, 'bin', 'python');
  const ready = path.join(envDir, '.ready');
  if (existsSync(ready)) return python;
  await mkdir(cacheDir, { recursive: true });
  const timeoutMs = opts.timeoutMs ?? ENV_BUILD_TIMEOUT_MS;
  const expired = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, expired]) : expired;
  const log = `${envDir}.install.log`;
  const timedOut = () =>
    new RunwardenError(
      'CONFIG_ERROR',
      `building the Python environment of template ${t.name} took longer than ${timeoutMs} ms ` +
        `(RUNWARDEN_ENV_BUILD_TIMEOUT_MS); see ${log}. Raise the setting, or build it ahead with \`runwarden prepare\`.`,
    );
  const lock = `${envDir}.lock`;
  const me: LockOwner = { pid: process.pid, host: os.hostname(), nonce: randomUUID(), since: Date.now() };
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(path.join(lock, OWNER_FILE), JSON.stringify(me));
      if ((await readOwner(lock)).owner?.nonce === me.nonce) break;
      continue; // our fresh lock was moved before its owner file landed: start over
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // moved away between mkdir and writeFile: start over
      if (code !== 'EEXIST') throw err;
    }
    if (existsSync(ready)) return python;
    const judged = await lockIdentity(lock);
    const stale = judged && (await staleLockReason(lock));
    if (judged && stale) {
      if (await takeOverLock(lock, judged)) opts.onTakeover?.(stale);
      continue;
    }
    await new Promise((r) => setTimeout(r, 500));
    if (expired.aborted && !opts.signal?.aborted) throw timedOut();
    signal.throwIfAborted();
  }
  const refresh = setInterval(() => {
    const now = new Date();
    void utimes(path.join(lock, OWNER_FILE), now, now).catch(() => undefined);
  }, LOCK_REFRESH_MS);
  refresh.unref();
  try {
    if (existsSync(ready)) return python;
    opts.onBuild?.(envDir);
    await rm(envDir, { recursive: true, force: true });
    await writeFile(log, `building ${envDir} for template ${t.name}\n`);
    if ((await run(base, ['-m', 'venv', envDir], log, signal)) !== 0) {
      throw new RunwardenError('CONFIG_ERROR', `python3 -m venv failed for template ${t.name}; see ${log}`);
    }
    const req = path.join(t.dir, t.python!.requirements);
    const code = await run(
      python,
      ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', req],
      log,
      signal,
    );
    if (code !== 0) {
      throw new RunwardenError(
        'CONFIG_ERROR',
        `pip install -r ${req} failed for template ${t.name}; see ${log}`,
      );
    }
    await writeFile(ready, new Date().toISOString());
    return python;
  } catch (err) {
    if (expired.aborted && !opts.signal?.aborted) throw timedOut();
    throw err;
  } finally {
    clearInterval(refresh);
    // Only our own lock: a worker that took ours over (we looked dead) holds its own now.
    if ((await readOwner(lock)).owner?.nonce === me.nonce) await rm(lock, { recursive: true, force: true });
  }
}
