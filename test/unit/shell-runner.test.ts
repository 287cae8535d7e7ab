// Covers the task command runner (src/runners/shell.ts) with real processes and no services: the
// /bin/sh supervisor that leads the process group mirrors the exit status, streams lines to the
// callbacks and log files, reports a missing command, kills the whole group on abort (SIGKILL after
// the grace period for members that ignore SIGTERM), and takes the group down when the process
// holding it dies by kill -9; and stdout backpressure: while a line's promise is pending the
// runner reads no further, so the command blocks writing to its pipe.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand, type ShellOptions } from '../../src/runners/shell.js';
import { killFixtures, runFixture } from '../support/clients.js';
import { liveGroupMembers, pidAlive, processesMatching, processGroupOf, waitFor } from '../support/tasks.js';

const dirs: string[] = [];

afterEach(() => {
  killFixtures();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function options(overrides: Partial<ShellOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rw-shell-'));
  dirs.push(dir);
  const out: string[] = [];
  const err: string[] = [];
  const opts: ShellOptions = {
    cwd: dir,
    env: process.env,
    signal: new AbortController().signal,
    killGraceMs: 300,
    stdoutLog: join(dir, 'stdout.log'),
    stderrLog: join(dir, 'stderr.log'),
    onStdoutLine: (l) => out.push(l),
    onStderrLine: (l) => err.push(l),
    ...overrides,
  };
  return { opts, out, err, dir };
}

describe('runCommand', () => {
  it('runCommand: mirrors the exit code and streams stdout and stderr lines to the callbacks and the log files', async () => {
    const { opts, out, err } = options();
    const r = await runCommand(['sh', '-c', 'echo one; echo two; echo oops >&2; exit 3'], opts);
    expect(r).toMatchObject({ exitCode: 3, aborted: false, spawnError: undefined });
    expect(out).toEqual(['one', 'two']);
    expect(err).toEqual(['oops']);
    expect(r.stderrTail).toBe('oops\n');
    expect(readFileSync(opts.stdoutLog, 'utf8')).toBe('one\ntwo\n');
    expect(readFileSync(opts.stderrLog, 'utf8')).toBe('oops\n');
  });

  it('runCommand: runs the command in the given directory with the given environment and stdin closed', async () => {
    const { opts, out, dir } = options({ env: { ...process.env, RW_PROBE: 'x y' } });
    const r = await runCommand(['sh', '-c', 'pwd; echo "$RW_PROBE"; cat; echo end'], opts);
    expect(r.exitCode).toBe(0);
    expect(out).toEqual([dir, 'x y', 'end']);
  });

  it('runCommand: passes arguments through untouched (no shell parses the argv)', async () => {
    const { opts, out } = options();
    await runCommand(['printf', '%s\\n', 'a b', '$HOME', "it's", '*'], opts);
    expect(out).toEqual(['a b', '$HOME', "it's", '*']);
  });

  it('runCommand: a command that does not exist is reported as a spawn error with exit code 127', async () => {
    const { opts, err } = options();
    const r = await runCommand(['no-such-command-runwarden', '--x'], opts);
    expect(r.exitCode).toBe(127);
    expect(r.spawnError).toMatch(/no-such-command-runwarden: command not found/);
    expect(err).toEqual([]);
  });

  it('runCommand: a command killed by a signal reports 128+n, and the shell adds no "Killed" line to stderr', async () => {
    const { opts, err } = options();
    const r = await runCommand(['sh', '-c', 'kill -9 $$'], opts);
    expect(r.exitCode).toBe(137);
    expect(err).toEqual([]);
    expect(readFileSync(opts.stderrLog, 'utf8')).toBe('');
  });

  it('runCommand: abort sends SIGTERM to the whole group, then SIGKILL to members that ignore it', async () => {
    const ac = new AbortController();
    let grandchild = 0;
    const { opts } = options({
      signal: ac.signal,
      killGraceMs: 400,
      onStdoutLine: (l) => {
        grandchild = Number(l);
        ac.abort();
      },
    });
    // The inner shell ignores SIGTERM, so its sleeping children do too: only SIGKILL ends them.
    const started = Date.now();
    const r = await runCommand(['sh', '-c', 'trap "" TERM; sleep 60 & echo $!; sleep 60'], opts);
    expect(r.aborted).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(grandchild).toBeGreaterThan(0);
    await waitFor('the grandchild to be gone', () => !pidAlive(grandchild), {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
  });

  it('runCommand: a command that exits on SIGTERM ends the attempt at once, without waiting for the grace period', async () => {
    const ac = new AbortController();
    const { opts } = options({ signal: ac.signal, killGraceMs: 30_000, onStdoutLine: () => ac.abort() });
    const started = Date.now();
    const r = await runCommand(['sh', '-c', 'echo ready; exec sleep 60'], opts);
    expect(r.aborted).toBe(true);
    expect(r.exitCode).toBe(143);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('runCommand: when the process holding the runner dies by kill -9, the supervisor kills the whole group', async () => {
    const fx = runFixture('shell-orphan', []);
    const { grandchild } = (await fx.firstLine) as { grandchild: number };
    const group = processGroupOf(grandchild);
    expect(group).toBeDefined();
    expect(pidAlive(grandchild)).toBe(true);
    fx.child.kill('SIGKILL');
    await fx.exited;
    await waitFor('the orphaned group to be gone', () => liveGroupMembers(group!).length === 0, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    expect(pidAlive(grandchild)).toBe(false);
  }, 20_000);

  it('runCommand: while the promise onStdoutLine returned is pending, stdout is not read: the command blocks on its pipe, and every line arrives in order afterwards', async () => {
    const marker = `rw-bp-${randomUUID()}`;
    const lines: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { opts, dir } = options({
      onStdoutLine: (line) => {
        lines.push(line);
        return lines.length === 1 ? held : undefined;
      },
    });
    const script =
      'i=0; while [ $i -lt 20000 ]; do echo "line $i ........................................"; i=$((i+1)); done; touch done.marker';
    const running = runCommand(['sh', '-c', script, marker], opts);
    const wchan = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/wchan`, 'utf8');
      } catch {
        return '';
      }
    };
    await waitFor(
      'the first line to be held and the command to block writing to its stdout pipe',
      // Node's stdio "pipe" is a socket pair: a blocked writer waits in the kernel's send path. The
      // writer can also block for a moment before Node first reads, so the held line comes first.
      () =>
        lines.length >= 1 &&
        processesMatching(marker).some((p) =>
          /pipe_write|sock_alloc_send|unix_stream_sendmsg/.test(wchan(p.pid)),
        ),
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    expect(lines).toHaveLength(1);
    expect(existsSync(join(dir, 'done.marker'))).toBe(false);

    release();
    const r = await running;
    expect(r.exitCode).toBe(0);
    expect(lines).toHaveLength(20_000);
    expect(lines.at(-1)).toBe('line 19999 ........................................');
    expect(existsSync(join(dir, 'done.marker'))).toBe(true);
  }, 30_000);

  it('runCommand: when the command exits while a line is still pending, runCommand waits for it: every line is handled once, in order, and in stdout.log before it returns', async () => {
    const handled: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { opts, dir } = options({
      onStdoutLine: (line) => {
        handled.push(line);
        return line === 'a' ? held : undefined;
      },
    });
    // One write: the whole output is one chunk, so the stream ends while 'a' is still pending.
    const running = runCommand(['sh', '-c', "printf 'a\\nb\\nc'; touch exited"], opts);
    let atReturn: string[] | undefined;
    void running.then(() => {
      atReturn = [...handled];
    });
    await waitFor('the command to exit', () => existsSync(join(dir, 'exited')), { timeoutMs: 10_000 });
    // Negative check, bounded: the runner must not return while a line is pending.
    await waitFor('runCommand to return early', () => atReturn !== undefined, { timeoutMs: 1_500 }).catch(
      () => undefined,
    );
    expect(atReturn).toBeUndefined();
    release();
    const r = await running;
    expect(r.exitCode).toBe(0);
    expect(atReturn).toEqual(['a', 'b', 'c']);
    expect(readFileSync(join(dir, 'stdout.log'), 'utf8')).toBe('a\nb\nc\n');
  }, 20_000);

  it('runCommand: with many chunks and slow lines, it returns only after every line was handled, in order, with stdout.log complete (20 runs)', async () => {
    const script = "for (let i = 0; i < 60; i++) process.stdout.write('line ' + i + '\\n')";
    const expected = Array.from({ length: 60 }, (_, i) => `line ${i}`);
    for (let trial = 0; trial < 20; trial++) {
      const handled: string[] = [];
      const { opts } = options({
        onStdoutLine: (line) => {
          handled.push(line);
          // Every third line is slow to store, as a metric waiting for MLflow is.
          return handled.length % 3 === 0 ? new Promise((r) => setTimeout(r, 1 + (trial % 5))) : undefined;
        },
      });
      const r = await runCommand([process.execPath, '-e', script], opts);
      expect(r.exitCode).toBe(0);
      expect(handled).toEqual(expected);
      expect(readFileSync(opts.stdoutLog, 'utf8')).toBe(`${expected.join('\n')}\n`);
    }
  }, 60_000);
});
