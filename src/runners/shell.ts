/**
 * Running a task's command: spawned without a shell in its own process group, stdout and stderr
 * streamed line by line to log files (never held whole in memory) and to a line callback, the
 * stderr tail kept for the run description. Stdout is read with backpressure: while the promise
 * `onStdoutLine` returned for a line is pending (the run's metric buffer is full), the worker reads
 * no further, so the command blocks on its pipe. Aborting sends SIGTERM to the whole group, then
 * SIGKILL after a grace period, so grandchildren die too.
 *
 * The group is led by a tiny `/bin/sh` supervisor that holds a pipe from the worker: if the worker
 * dies (even by kill -9), the pipe closes and the supervisor kills the group, so a lost attempt's
 * processes never keep running beside the next attempt.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export interface ShellOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** Abort = kill the process group (SIGTERM, then SIGKILL after `killGraceMs`). */
  signal: AbortSignal;
  killGraceMs: number;
  stdoutLog: string;
  stderrLog: string;
  /** Called for each stdout line, in order; a returned promise pauses reading until it settles. */
  onStdoutLine: (line: string) => unknown;
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
  /** Writing a log file failed (disk full...): the command still ran, its log is incomplete. */
  logError?: string;
}

const TAIL_BYTES = 4096;
const SPAWN_ERROR = '@@runwarden-spawn-error ';

/** Single-quote `s` for a POSIX shell. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Group leader, a POSIX shell script (a shell starts in about a millisecond; a second Node process
 * took ~100 ms per task). It runs the command with stdin from /dev/null, waits for it (a trapped
 * SIGTERM/SIGINT/SIGHUP only interrupts the wait: the group's signal is meant for the command) and
 * exits with its status (128+n when the command died of signal n, as shells report it). A watcher
 * holds the worker's pipe on fd 3: when it reaches end-of-file (the worker is gone, even by
 * kill -9) it sends the group SIGTERM, then SIGKILL after the grace period. The shell's own
 * stderr is closed once the command has started, so its job notices ("Killed") stay out of the log.
 * Arguments: grace in seconds, then the command's argv.
 */
const SUPERVISOR = `
grace=$1; shift
trap : TERM INT HUP
if ! command -v "$1" >/dev/null 2>&1; then
  printf '%s%s: command not found or not executable\\n' ${shQuote(SPAWN_ERROR)} "$1" >&2
  exit 127
fi
exec 3<&0
(
  trap : TERM INT HUP
  while read -r _ <&3; do :; done
  kill -TERM 0
  sleep "$grace"
  kill -KILL 0
) </dev/null >/dev/null 2>&1 &
"$@" </dev/null 3<&- &
child=$!
exec 3<&- 2>/dev/null
while :; do
  wait "$child"; status=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
`;

/**
 * Feed `input`'s lines (split at \n, \r\n or a lone \r, as readline does) to `onLine` one at a
 * time. While a promise `onLine` returned is pending the stream stays paused, so the writer blocks
 * once the pipe fills; `free()` stops waiting (after an abort, the command must be able to exit).
 */
function readLines(input: Readable, onLine: (line: string) => unknown) {
  let partial = '';
  let free = false;
  let setFree!: () => void;
  const freed = new Promise<void>((resolve) => {
    setFree = resolve;
  });
  const feed = async (lines: string[]) => {
    for (const line of lines) {
      const r = onLine(line);
      if (r instanceof Promise && !free) await Promise.race([r.catch(() => undefined), freed]);
    }
  };
  const split = (final: boolean): string[] => {
    const lines: string[] = [];
    let start = 0;
    for (let i = 0; i < partial.length; i++) {
      const c = partial[i];
      if (c === '\n') {
        lines.push(partial.slice(start, i));
        start = i + 1;
      } else if (c === '\r') {
        if (i + 1 === partial.length && !final) break; // a \r\n may be split across chunks
        lines.push(partial.slice(start, i));
        if (partial[i + 1] === '\n') i++;
        start = i + 1;
      }
    }
    partial = partial.slice(start);
    if (final && partial) {
      lines.push(partial);
      partial = '';
    }
    return lines;
  };
  input.setEncoding('utf8');
  // Every chunk's lines are fed after the previous chunk's, on one chain: pausing is only
  // backpressure, not the ordering (a chunk can still arrive while earlier lines wait), and 'end'
  // (which can come while lines still wait) feeds the last lines after all of them.
  let feeding: Promise<void> = Promise.resolve();
  const enqueue = (lines: string[]) => {
    const mine = feeding.then(() => feed(lines));
    feeding = mine;
    return mine;
  };
  input.on('data', (chunk: string) => {
    partial += chunk;
    const lines = split(false);
    input.pause();
    const mine = enqueue(lines);
    void mine.then(() => {
      if (feeding === mine) input.resume();
    });
  });
  const ended = new Promise<void>((resolve) => {
    input.on('end', () => {
      void enqueue(split(true)).then(resolve);
    });
    input.on('error', () => void feeding.then(resolve));
  });
  return {
    ended,
    free: () => {
      free = true;
      setFree();
      input.resume();
    },
  };
}

function endStream(s: WriteStream): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.end(resolve)));
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
    // A log that cannot be written (ENOSPC) must not crash the worker and its other tasks.
    let logError: string | undefined;
    for (const s of [out, err]) s.on('error', (e) => (logError ??= `${s.path}: ${e.message}`));
    let tail = '';
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    let spawnError: string | undefined;
    const graceSeconds = (Math.max(0, opts.killGraceMs) / 1000).toFixed(3);
    const child = spawn('/bin/sh', ['-c', SUPERVISOR, 'runwarden-supervisor', graceSeconds, ...argv], {
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
      // A killed command must reach end-of-file even while its lines wait for room.
      stdoutLines.free();
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), opts.killGraceMs);
    };
    if (opts.signal.aborted) queueMicrotask(onAbort);
    else opts.signal.addEventListener('abort', onAbort, { once: true });

    const stdoutLines = readLines(child.stdout, (line) => {
      out.write(`${line}\n`);
      return opts.onStdoutLine(line);
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
      await stdoutLines.ended;
      await Promise.all([endStream(out), endStream(err)]);
      resolve({ exitCode: code, signal: sig, aborted, stderrTail: tail, spawnError, logError });
    });
  });
}
