/**
 * The local stack's real services: an MLflow tracking server from the repo's .venv (SQLite
 * backend store, local artifacts served through MLflow's proxy) and a redis-server. Used by
 * `runwarden up`, the integration tests and the benchmarks. Each service runs in its own process
 * group with its output in a log file, and is stopped (group-wide, SIGTERM then SIGKILL) by
 * `stop()`. A missing service fails loudly with the command that installs it.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../mlflow/retry.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const mlflowBin = join(repoRoot, '.venv', 'bin', 'mlflow');

export interface MlflowServer {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const MLFLOW_START_TIMEOUT_MS = 90_000;
const REDIS_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const PORT_ATTEMPTS = 3;

/** True when nothing listens on 127.0.0.1:`port` right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/** Asks the OS for a port that is free right now on 127.0.0.1 (it may be taken again later). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port of a listening socket'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolvePort(port)));
    });
  });
}

// Process groups still running; killed on exit so a crashed test run leaves no servers behind.
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function logTail(logFile: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(logFile, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Spawned {
  child: ChildProcess;
  pgid: number;
  /** Resolves with the exit code (or signal) when the leader exits. */
  exited: Promise<string>;
  hasExited(): boolean;
}

/** Spawns `command` detached (its own process group), with stdout and stderr in `logFile`. */
function spawnLogged(command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Spawned {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], ...(env ? { env } : {}) });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) {
    throw new Error(`could not spawn ${command}`);
  }
  const pgid = child.pid;
  liveGroups.add(pgid);
  let done = false;
  const exited = new Promise<string>((resolveExit) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolveExit(signal ?? `code ${code}`);
    });
    child.once('error', (err) => {
      done = true;
      resolveExit(`spawn error: ${err.message}`);
    });
  });
  return { child, pgid, exited, hasExited: () => done };
}

/** SIGTERM to the whole group, up to 10 s for it to go, then SIGKILL. */
async function stopGroup(proc: Spawned): Promise<void> {
  const { pgid } = proc;
  const gone = () => proc.hasExited() && !groupAlive(pgid);
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    // the group is already gone
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (!gone() && Date.now() < deadline) await sleep(100);
  if (!gone()) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    // Bounded: orphaned zombies that nobody reaps would otherwise keep the group "alive".
    const killDeadline = Date.now() + 2_000;
    while (!gone() && Date.now() < killDeadline) await sleep(50);
  }
  liveGroups.delete(pgid);
}

const PORT_IN_USE = /address already in use|connection in use|EADDRINUSE/i;

type StartResult<T> = { ok: true; value: T } | { ok: false; portInUse: boolean; error: Error };

/**
 * Wait until a spawned server answers `ready()` while still alive (so it is ours answering, not
 * another process that won the port), or until it exits or the deadline passes.
 */
async function awaitStart<T>(
  proc: Spawned,
  o: {
    name: string;
    port: number;
    logFile: string;
    timeoutMs: number;
    pollMs: number;
    ready: () => Promise<boolean>;
    value: () => T;
  },
): Promise<StartResult<T>> {
  const deadline = Date.now() + o.timeoutMs;
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      const how = await proc.exited;
      liveGroups.delete(proc.pgid);
      const tail = await logTail(o.logFile);
      return {
        ok: false,
        portInUse: PORT_IN_USE.test(tail),
        error: new Error(`${o.name} exited early (${how}) on port ${o.port}; log ${o.logFile}:\n${tail}`),
      };
    }
    if ((await o.ready()) && !proc.hasExited()) return { ok: true, value: o.value() };
    await sleep(o.pollMs);
  }
  await stopGroup(proc);
  const tail = await logTail(o.logFile);
  return {
    ok: false,
    portInUse: false,
    error: new Error(`${o.name} did not answer within ${o.timeoutMs / 1000} s; log ${o.logFile}:\n${tail}`),
  };
}

/**
 * Starts an MLflow tracking server from .venv on a free port. `dir` holds mlflow.db, artifacts/
 * and mlflow.log; without `dir` a fresh temporary directory is created and removed by `stop()`.
 */
export async function startMlflowServer(opts: { dir?: string; port?: number } = {}): Promise<MlflowServer> {
  if (!isExecutable(mlflowBin)) {
    throw new Error(
      'MLflow is not installed in .venv: run `npm run setup` (installs mlflow 3.17.2 into .venv)',
    );
  }
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'runwarden-mlflow-')));
  const logFile = join(dir, 'mlflow.log');
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const result = await tryStartMlflow(dir, logFile, ownsDir, opts.port);
    if (result.ok) return result.value;
    lastError = result.error;
    if (!result.portInUse) break;
    if (opts.port !== undefined) {
      lastError = new Error(
        `port ${opts.port} is already in use: stop what holds it, or choose another port`,
      );
      break;
    }
  }
  if (ownsDir) await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error('MLflow server did not start');
}

async function tryStartMlflow(
  dir: string,
  logFile: string,
  ownsDir: boolean,
  fixedPort?: number,
): Promise<StartResult<MlflowServer>> {
  if (fixedPort !== undefined && !(await portIsFree(fixedPort))) {
    return { ok: false, portInUse: true, error: new Error(`port ${fixedPort} is already in use`) };
  }
  const port = fixedPort ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const args = [
    'server',
    '--backend-store-uri',
    `sqlite:///${join(dir, 'mlflow.db')}`,
    '--artifacts-destination',
    join(dir, 'artifacts'),
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--workers',
    '2',
  ];
  const env = {
    // MLflow's background job runner (huey consumers for GenAI jobs) is not used by runwarden and
    // doubles the start time on a small machine; a value in the inherited environment still wins.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
    ...process.env,
    PYTHONUNBUFFERED: '1',
    MLFLOW_TRACKING_URI: undefined,
  };
  const proc = spawnLogged(mlflowBin, args, logFile, env);
  return awaitStart(proc, {
    name: 'MLflow server',
    port,
    logFile,
    timeoutMs: MLFLOW_START_TIMEOUT_MS,
    pollMs: 250,
    ready: () => answersHealth(url),
    value: () => ({
      url,
      port,
      dir,
      stop: async () => {
        await stopGroup(proc);
        if (ownsDir) await rm(dir, { recursive: true, force: true });
      },
    }),
  });
}

async function answersHealth(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Starts a throwaway redis-server (no persistence) on a free port of 127.0.0.1. */
/**
 * Starts redis-server on 127.0.0.1. Default: a free port, a throwaway folder, no persistence.
 * With `dir` and `port` (the local stack): that folder, that port, append-only persistence and
 * `noeviction`, as BullMQ wants; the folder is kept on stop.
 */
export async function startRedisServer(opts: { dir?: string; port?: number } = {}): Promise<RedisServer> {
  const redisBin = findOnPath('redis-server');
  if (redisBin === undefined) {
    throw new Error(
      'redis-server is not on PATH: run `npm run setup` (installs it when run as root), ' +
        'or `sudo apt-get install redis-server` / `brew install redis`',
    );
  }
  const persistent = opts.dir !== undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'runwarden-redis-')));
  const logFile = join(dir, 'redis.log');
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    if (opts.port !== undefined && !(await portIsFree(opts.port))) {
      lastError = new Error(
        `port ${opts.port} is already in use: stop what holds it, or set REDIS_URL to use that Redis`,
      );
      break;
    }
    const result = await tryStartRedis(redisBin, dir, logFile, { port: opts.port, persistent });
    if (result.ok) return result.value;
    lastError = result.error;
    if (!result.portInUse || opts.port !== undefined) break;
  }
  if (!persistent) await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error('redis-server did not start');
}

async function tryStartRedis(
  redisBin: string,
  dir: string,
  logFile: string,
  opts: { port?: number; persistent: boolean },
): Promise<StartResult<RedisServer>> {
  const port = opts.port ?? (await freePort());
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    opts.persistent ? 'yes' : 'no',
    '--maxmemory-policy',
    'noeviction',
    '--dir',
    dir,
  ];
  const proc = spawnLogged(redisBin, args, logFile);
  return awaitStart(proc, {
    name: 'redis-server',
    port,
    logFile,
    timeoutMs: REDIS_START_TIMEOUT_MS,
    pollMs: 100,
    ready: () => answersPing(port),
    value: () => ({
      url: `redis://127.0.0.1:${port}`,
      port,
      stop: async () => {
        await stopGroup(proc);
        if (!opts.persistent) await rm(dir, { recursive: true, force: true });
      },
    }),
  });
}

/** Sends a raw RESP `PING` and expects `+PONG`. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolvePing(ok);
    };
    socket.setTimeout(1_000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}
