/**
 * One Python environment per template requirements, as MLflow Projects does: a venv under the
 * cache folder named by the sha256 of the requirements file, built on first use (pip install -r),
 * reused afterwards. A lock folder keeps two workers from building the same one at once; a
 * `.ready` marker is written only after a successful install.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RunwardenError } from '../errors/index.js';
import type { Template } from '../queue/templates.js';

const LOCK_STALE_MS = 60 * 60_000;

function run(cmd: string, args: string[], log: string, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(log, { flags: 'a' });
    out.on('error', reject);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
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

/**
 * The python interpreter for the template: its cached venv's, or `fallback` (the system python)
 * for templates without requirements.
 */
export async function ensurePythonEnv(
  t: Template,
  cacheDir: string,
  opts: { python?: string; signal?: AbortSignal; onBuild?: (envDir: string) => void } = {},
): Promise<string> {
  const base = opts.python ?? 'python3';
  const hash = await requirementsHash(t);
  if (!hash) return base;
  const envDir = path.join(cacheDir, `py-${hash}`);
  const python = path.join(envDir, 'bin', 'python');
  const ready = path.join(envDir, '.ready');
  if (existsSync(ready)) return python;
  await mkdir(cacheDir, { recursive: true });
  const lock = `${envDir}.lock`;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      if (existsSync(ready)) return python;
      const st = await stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > LOCK_STALE_MS) await rm(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1_000));
      opts.signal?.throwIfAborted();
    }
  }
  try {
    if (existsSync(ready)) return python;
    opts.onBuild?.(envDir);
    await rm(envDir, { recursive: true, force: true });
    const log = `${envDir}.install.log`;
    await writeFile(log, `building ${envDir} for template ${t.name}\n`);
    if ((await run(base, ['-m', 'venv', envDir], log, opts.signal)) !== 0) {
      throw new RunwardenError('CONFIG_ERROR', `python3 -m venv failed for template ${t.name}; see ${log}`);
    }
    const req = path.join(t.dir, t.python!.requirements);
    const code = await run(
      python,
      ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', req],
      log,
      opts.signal,
    );
    if (code !== 0) {
      throw new RunwardenError(
        'CONFIG_ERROR',
        `pip install -r ${req} failed for template ${t.name}; see ${log}`,
      );
    }
    await writeFile(ready, new Date().toISOString());
    return python;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
