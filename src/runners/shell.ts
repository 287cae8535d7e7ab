/**
 * Running a task's command: spawned without a shell in its own process group, stdout and stderr
 * streamed line by line to log files (never held whole in memory) and to a line callback, the
 * stderr tail kept for the run description. Aborting sends SIGTERM to the whole group, then
 * SIGKILL after a grace period, so grandchildren die too.
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
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env as NodeJS.ProcessEnv,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
      err.write(`${line}\n`);
      tail = (tail + line + '\n').slice(-TAIL_BYTES);
      opts.onStderrLine?.(line);
    });

    let spawnError: string | undefined;
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
