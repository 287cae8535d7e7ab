// Helpers for the task-system integration tests: `runwarden worker` processes spawned from source
// (each its own process, so kill -9 and SIGTERM reach exactly it), the CLI as a child process,
// polling with deadlines, the MLflow runs of a task, attempt workspaces, zip listings, and
// process liveness that treats zombies as dead (pid 1 of the test machine may never reap
// orphans, so `kill(pid, 0)` alone would call a reaped-by-nobody zombie alive).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { getExperimentByName, type MlflowClient, type Run, RW_TAGS, searchRuns } from '../../src/index.js';
import type { TaskState } from '../../src/queue/records.js';
import type { TaskInfo, TaskQueue } from '../../src/queue/task-queue.js';
import { type PyArtifact, runPythonMlflow } from './python.js';
import { repoRoot } from './services.js';

export const cliPath = join(repoRoot, 'src', 'cli', 'index.ts');
export const fixtureTasksDir = join(repoRoot, 'test', 'fixtures', 'tasks');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `probe` until it returns something other than undefined/false, or fail after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${opts.timeoutMs ?? 30_000} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`,
      );
    }
    await sleep(opts.intervalMs ?? 250);
  }
}

/** Wait until the task is in one of `states`; the error says where it was instead. */
export async function waitForTaskState(
  queue: TaskQueue,
  taskId: string,
  states: TaskState | TaskState[],
  timeoutMs = 60_000,
): Promise<TaskInfo> {
  const wanted = Array.isArray(states) ? states : [states];
  let last: TaskInfo | undefined;
  try {
    return await waitFor(
      `task ${taskId} to be ${wanted.join(' or ')}`,
      async () => {
        last = await queue.get(taskId);
        return last && wanted.includes(last.state) ? last : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/** Wait until the task is active and attempt `attempt` has its MLflow run recorded. */
export async function waitForAttemptRun(
  queue: TaskQueue,
  taskId: string,
  attempt: number,
  timeoutMs = 30_000,
): Promise<{ info: TaskInfo; runId: string }> {
  let last: TaskInfo | undefined;
  try {
    return await waitFor(
      `task ${taskId} to run attempt ${attempt}`,
      async () => {
        last = await queue.get(taskId);
        const run = last?.runs.find((r) => r.attempt === attempt);
        return last?.state === 'active' && run ? { info: last, runId: run.run_id } : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

export interface WorkerEnv {
  mlflowUrl: string;
  redisUrl: string;
  prefix: string;
  workDir: string;
  /** Extra or overriding variables (RUNWARDEN_SHUTDOWN_GRACE_MS...). */
  env?: Record<string, string>;
}

/** The environment the task CLI and workers of a test file share. */
export function taskEnv(o: WorkerEnv): Record<string, string> {
  return {
    MLFLOW_TRACKING_URI: o.mlflowUrl,
    REDIS_URL: o.redisUrl,
    RUNWARDEN_TASKS_DIR: fixtureTasksDir,
    RUNWARDEN_QUEUE_PREFIX: o.prefix,
    RUNWARDEN_WORK_DIR: o.workDir,
    RUNWARDEN_CACHE_DIR: join(o.workDir, '.cache'),
    RUNWARDEN_LOG_LEVEL: 'warn',
    RUNWARDEN_WORKER_LOCK_MS: '5000',
    RUNWARDEN_KILL_GRACE_MS: '2000',
    RUNWARDEN_KEEP_WORKSPACES: 'true',
    // Short, so a test's cleanup stops its workers cleanly (tests that need another set it).
    RUNWARDEN_SHUTDOWN_GRACE_MS: '3000',
    // Workers reap every owner's expired leases: off unless a test asks (scoped to its experiments).
    RUNWARDEN_REAP_INTERVAL_MS: '0',
    ...o.env,
  };
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive: () => boolean;
  /** SIGTERM (or `signal`), then SIGKILL if still alive after `timeoutMs`. */
  stop: (
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<WorkerProcess>();

/** Spawn `runwarden worker` and wait until it says it is waiting for tasks. */
export async function startWorkerProcess(o: WorkerEnv): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath, 'worker'], {
    cwd: repoRoot,
    env: { ...process.env, ...taskEnv(o) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  const w: WorkerProcess = {
    child,
    pid: child.pid!,
    stderr: () => err,
    exited,
    alive: () => !done,
    stop: async (signal = 'SIGTERM', timeoutMs = 20_000) => {
      if (!done) child.kill(signal);
      const timer = sleep(timeoutMs).then(() => 'timeout' as const);
      if ((await Promise.race([exited, timer])) === 'timeout' && !done) child.kill('SIGKILL');
      return exited;
    },
  };
  started.add(w);
  void exited.then(() => started.delete(w));
  await waitFor(
    'the worker to be ready',
    () => {
      if (done) throw new Error(`worker exited early: ${err}`);
      return err.includes('runwarden worker: waiting for tasks');
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  ).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\nworker stderr:\n${err}`);
  });
  return w;
}

/** Stop every worker this file started and that is still running (for afterEach/afterAll). */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...started].map((w) => w.stop('SIGTERM', 15_000)));
}

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** Run `runwarden <args>` from source as a child process. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runwarden ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** All runs (any status) tagged with the task id in the named experiment, oldest attempt first. */
export async function taskRuns(client: MlflowClient, experiment: string, taskId: string): Promise<Run[]> {
  const exp = await getExperimentByName(client, experiment);
  if (!exp?.experiment_id) return [];
  const runs = await searchRuns(client, {
    experimentIds: [exp.experiment_id],
    filter: `tags.\`${RW_TAGS.taskId}\` = '${taskId}'`,
  });
  return runs.sort((a, b) => Number(tag(a, RW_TAGS.attempt) ?? 0) - Number(tag(b, RW_TAGS.attempt) ?? 0));
}

export function tag(run: Run, key: string): string | undefined {
  return run.data?.tags?.find((t) => t.key === key)?.value;
}

/** The workspace folder of one attempt (`<workDir>/<taskId>-a<attempt>-XXXXXX`), if it exists. */
export function findWorkspace(workDir: string, taskId: string, attempt: number): string | undefined {
  if (!existsSync(workDir)) return undefined;
  const name = readdirSync(workDir).find(
    (n) => n.startsWith(`${taskId}-a${attempt}-`) && !n.endsWith('.zip'),
  );
  return name ? join(workDir, name) : undefined;
}

/** Wait for the grandchild pid the quick fixture writes to output/child.pid of an attempt's workspace. */
export function waitForChildPid(workDir: string, taskId: string, attempt: number, timeoutMs = 30_000) {
  return waitFor(
    `output/child.pid of ${taskId} attempt ${attempt}`,
    () => {
      const ws = findWorkspace(workDir, taskId, attempt);
      const file = ws && join(ws, 'output', 'child.pid');
      if (!file || !existsSync(file)) return undefined;
      const pid = Number(readFileSync(file, 'utf8'));
      return Number.isInteger(pid) && pid > 0 ? { pid, workspace: ws } : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0]!, ppid: Number(rest[1]), pgid: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` runs: `process.kill(pid, 0)` does not throw ESRCH and the process is not a
 * zombie (a dead process nobody reaped).
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

export function processGroupOf(pid: number): number | undefined {
  return procStat(pid)?.pgid;
}

/** Live (non-zombie) members of process group `pgid`. */
export function liveGroupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map((n) => procStat(Number(n)))
    .filter((s): s is ProcStat => !!s && s.pgid === pgid && s.state !== 'Z' && s.state !== 'X')
    .map((s) => s.pid);
}

/** Live processes whose command line contains `needle` (e.g. a workspace path), with their argv. */
export function processesMatching(needle: string): { pid: number; args: string }[] {
  const out: { pid: number; args: string }[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    let args: string;
    try {
      args = readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (args.includes(needle) && pidAlive(Number(n))) out.push({ pid: Number(n), args });
  }
  return out;
}

/** SIGKILL each pid, ignoring those already gone. */
export function killQuietly(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * SIGKILL every member of each process group (`kill(-pgid)`), ignoring groups already gone. Never
 * signals this process's own group, nor pgid 0 or 1.
 */
export function killGroupsQuietly(pgids: number[]): void {
  const own = processGroupOf(process.pid);
  for (const pgid of pgids) {
    if (!Number.isInteger(pgid) || pgid <= 1 || pgid === own) continue;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Names of the entries of a zip file. */
export function zipEntries(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error(`cannot open ${file}`));
      const names: string[] = [];
      zf.on('error', reject);
      zf.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        zf.readEntry();
      });
      zf.on('end', () => resolve(names.sort()));
      zf.readEntry();
    });
  });
}

/** Read one entry of a zip file as text. */
export function zipEntryText(file: string, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error(`cannot open ${file}`));
      zf.on('error', reject);
      zf.on('entry', (e: yauzl.Entry) => {
        if (e.fileName !== name) return zf.readEntry();
        zf.openReadStream(e, (e2, stream) => {
          if (e2 || !stream) return reject(e2 ?? new Error(`cannot read ${name}`));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            zf.close();
            resolve(Buffer.concat(chunks).toString('utf8'));
          });
        });
      });
      zf.on('end', () => reject(new Error(`${name} is not in ${file}`)));
      zf.readEntry();
    });
  });
}

/**
 * Every artifact of a run, folders included, as MLflow's Python client lists them
 * (`MlflowClient().list_artifacts`, walked level by level in one Python process).
 */
export function pyListArtifactTree(trackingUri: string, runId: string): Promise<PyArtifact[]> {
  const script = `
import json, os
from mlflow.tracking import MlflowClient
client = MlflowClient()
run_id = os.environ['RW_RUN_ID']
out, todo = [], [None]
while todo:
    for f in client.list_artifacts(run_id, todo.pop()):
        out.append({'path': f.path, 'is_dir': f.is_dir, 'file_size': f.file_size})
        if f.is_dir:
            todo.append(f.path)
print(json.dumps(sorted(out, key=lambda f: f['path'])))
`;
  return runPythonMlflow<PyArtifact[]>(script, { trackingUri, env: { RW_RUN_ID: runId } });
}
