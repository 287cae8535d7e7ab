/**
 * Running a task's command: spawned without a shell in its own process group, stdout and stderr
 * streamed line by line to log files (never held whole in memory) and to a line callback, the
 * stderr tail kept for the run description. Aborting sends SIGTERM to the whole group, then
 * SIGKILL after a grace period, so grandchildren die too.
 *
 * The group is led by a tiny supervisor that holds a pipe from the worker: if the worker dies
 * (even by kill -9), the pipe closes and the supervisor kills the group, so a lost attempt's
 * processes never keep running beside the next attempt.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface ShellOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** Abort = kill the process group (SIGTERM, then SIGKILL after `killGraceMs`). */
  signal: AbortSignal;
  killGraceMs: number;
  stdoutLog: string;
  stderrLog: string;
  onStdoutLine: (line: string) => void;
  onStderrLine?: (line: string) => void;
}

export interface ShellResult {
  exitCode: number | null;
  /** Signal that ended the process, if any. */
  signal: NodeJS.Signals | null;
  /** True when the abort signal fired before the process ended. */
  aborted: boolean;
  /** Last lines of stderr (≤ 4 KiB). */
  stderrTail: string;
  /** A spawn failure (command not found...). */
  spawnError?: string;
}

const TAIL_BYTES = 4096;
const SPAWN_ERROR = '@@runwarden-spawn-error ';

/** Group leader: runs the command, mirrors its exit, kills the group when the worker's pipe closes. */
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const [argv, grace] = JSON.parse(process.argv[1]);
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => {});
const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
child.on('error', (e) => { process.stderr.write(${JSON.stringify(SPAWN_ERROR)} + e.message + '\\n'); process.exit(127); });
child.on('exit', (code, sig) => {
  if (sig) { process.removeAllListeners(sig); process.kill(process.pid, sig); }
  else process.exit(code ?? 1);
});
const orphaned = () => {
  try { process.kill(-process.pid, 'SIGTERM'); } catch {}
  setTimeout(() => { try { process.kill(-process.pid, 'SIGKILL'); } catch {} }, grace).unref();
};
process.stdin.on('end', orphaned);
process.stdin.on('error', orphaned);
process.stdin.resume();
`;

function endStream(s: WriteStream): Promise<void> {
  return new Promise((resolve) => s.end(resolve));
}

/** Send `sig` to the process group led by `pid`; ignore "no such process". */
export function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

export function runCommand(argv: string[], opts: ShellOptions): Promise<ShellResult> {
  return new Promise((resolve) => {
    const out = createWriteStream(opts.stdoutLog);
    const err = createWriteStream(opts.stderrLog);
    let tail = '';
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    let spawnError: string | undefined;
    const child = spawn(process.execPath, ['-e', SUPERVISOR, JSON.stringify([argv, opts.killGraceMs])], {
      cwd: opts.cwd,
      env: opts.env as NodeJS.ProcessEnv,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Never written to: its closing (this process gone) is the supervisor's cue.
    child.stdin?.on('error', () => undefined);
    const onAbort = () => {
      if (aborted || child.pid === undefined) return;
      aborted = true;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), opts.killGraceMs);
    };
    if (opts.signal.aborted) queueMicrotask(onAbort);
    else opts.signal.addEventListener('abort', onAbort, { once: true });

    const stdoutLines = createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY });
    stdoutLines.on('line', (line) => {
      out.write(`${line}\n`);
      opts.onStdoutLine(line);
    });
    const stderrLines = createInterface({ input: child.stderr, crlfDelay: Number.POSITIVE_INFINITY });
    stderrLines.on('line', (line) => {
      if (line.startsWith(SPAWN_ERROR)) {
        spawnError = line.slice(SPAWN_ERROR.length);
        return;
      }
      err.write(`${line}\n`);
      tail = `${tail}${line}\n`.slice(-TAIL_BYTES);
      opts.onStderrLine?.(line);
    });

    child.on('error', (e) => {
      spawnError = e.message;
    });
    // The task ends with its main process: no member of its group may outlive it (or keep the
    // output pipes open).
    child.on('exit', () => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', async (code, sig) => {
      opts.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      await Promise.all([endStream(out), endStream(err)]);
      resolve({ exitCode: code, signal: sig, aborted, stderrTail: tail, spawnError });
    });
  });
}
