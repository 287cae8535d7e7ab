/**
 * One attempt of a task, inside an MLflow run that always ends with the true status. It closes
 * runs left RUNNING by earlier attempts (a lost worker), prepares the workspace, runs the
 * template's command, forwards the script's protocol lines to MLflow and progress to the caller,
 * stores logs, declared artifacts, the model folder and the verified `workspace.zip`, then ends
 * the run: FINISHED on exit 0, FAILED on a non-zero exit (stderr tail in the description),
 * KILLED on timeout, cancellation or shutdown.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Logger } from '../log.js';
import { uploadFile } from '../mlflow/artifacts.js';
import type { MlflowClient } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import { backoffDelay, isTransient, sleep } from '../mlflow/retry.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { inputManifest, writeInputManifest } from '../runners/input-manifest.js';
import type { InputPolicy } from '../runners/input-policy.js';
import { materializeInputs } from '../runners/inputs.js';
import { parseLine } from '../runners/protocol.js';
import { ensurePythonEnv } from '../runners/python-env.js';
import { runCommand } from '../runners/shell.js';
import { taskEnvironment } from '../runners/task-env.js';
import { createWorkspace, renderCommand, writeConfig } from '../runners/workspace.js';
import { zipDirectory } from '../runners/zip.js';
import { DEFAULT_END_FLUSH_TIMEOUT_MS, type RunHandle } from '../tracking/run-handle.js';
import { startRun } from '../tracking/start-run.js';
import { RW_TAGS, type TerminalStatus } from '../tracking/tags.js';
import { type FinishedAttempt, finishedAttempt, settleEarlierAttempts } from './earlier-attempts.js';
import { experimentIdFor, forgetExperimentId } from './experiment-ids.js';
import { LOCK_LOST_REASON } from './lock-fence.js';
import { templateDefaultInputs } from './spec.js';
import { loadTemplate } from './templates.js';

export interface AttemptSettings {
  tasksDir: string;
  workDir: string;
  cacheDir: string;
  killGraceMs: number;
  keepWorkspaces: boolean;
  owner: string;
  leaseMs: number;
  /** Lease renewal interval of the attempt's run (must be shorter than leaseMs). */
  heartbeatMs?: number;
  /** Longest time a protocol metric waits before it is sent. */
  flushIntervalMs?: number;
  /** Bound of the run's metric buffer (points, estimated bytes); the script's stdout pauses while full. */
  maxBufferedPoints?: number;
  maxBufferedBytes?: number;
  /** How long ending the run (and storing a protocol line) retries through an MLflow outage. */
  endFlushTimeoutMs?: number;
  trackingUri: string;
  /** Bound of one Python environment build (default 20 min), apart from the task's timeout. */
  envBuildTimeoutMs?: number;
  /** Extra environment for the command (MLflow credentials). */
  env: Record<string, string | undefined>;
  /** The input boundary, applied again when inputs are brought in. */
  inputs: InputPolicy & {
    /** Keep the inputs' copies in workspace.zip (default: only the inputs.json manifest). */
    zipInputs?: boolean;
  };
}

export type TaskEvent =
  | { type: 'progress'; fraction: number; message?: string; phase?: string; runId?: string }
  | { type: 'metric'; key: string; value: number; step: number }
  | { type: 'log'; stream: 'stdout' | 'stderr'; line: string };

export interface AttemptContext {
  attempt: number;
  jobId: string;
  /** Fires on cancellation, shutdown or a lost queue lock; `signal.reason` says which. */
  signal: AbortSignal;
  /**
   * Asked before the run ends FINISHED: true while the worker still holds the task's queue lock.
   * When it says false the run ends KILLED instead, and the task's other attempt decides.
   */
  confirmLock?: () => Promise<boolean>;
  /** Why the lock counts as lost, once it does (for the run's close reason). */
  lockLostWhy?: () => string | undefined;
  onRunStarted: (experimentId: string, runId: string) => Promise<void>;
  onEvent: (e: TaskEvent) => void;
}

export interface AttemptOutcome {
  status: TerminalStatus;
  /**
   * `completed` (this attempt's run, or an earlier attempt's FINISHED run: `runId` says which),
   * `failed`, `timeout`, `cancelled`, `shutdown`, `lock-lost` (the worker lost the task's queue
   * lock: the run ended KILLED and the task belongs to whoever holds the lock now).
   */
  kind: 'completed' | 'failed' | 'timeout' | 'cancelled' | 'shutdown' | 'lock-lost';
  runId: string;
  experimentId: string;
  exitCode: number | null;
  reason: string;
  metrics: Record<string, number>;
}

/** Abort reasons the worker uses. */
export const SHUTDOWN_REASON = 'runwarden:shutdown';

/** The outcome of a task an earlier attempt already completed (its FINISHED run is the result). */
function completedEarlier(experimentId: string, done: FinishedAttempt, attempt: number): AttemptOutcome {
  return {
    status: 'FINISHED',
    kind: 'completed',
    runId: done.runId,
    experimentId,
    exitCode: done.exitCode,
    reason: `attempt ${done.attempt} already FINISHED (run ${done.runId}); attempt ${attempt} did not train again`,
    metrics: done.metrics,
  };
}

export async function runAttempt(
  client: MlflowClient,
  settings: AttemptSettings,
  task: NormalizedTask,
  ctx: AttemptContext,
  log: Logger,
): Promise<AttemptOutcome> {
  // Where an attempt's time goes, logged at debug level (`RUNWARDEN_LOG_LEVEL=debug`).
  const phases: Record<string, number> = {};
  let phaseStart = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = Math.round((now - phaseStart) * 10) / 10;
    phaseStart = now;
  };
  const template = loadTemplate(settings.tasksDir, task.template);
  const experimentId = await experimentIdFor(client, task.experiment);
  // A first attempt has no predecessor; later ones close what a lost worker left RUNNING, and
  // complete from an earlier attempt's FINISHED run instead of training again.
  if (ctx.attempt > 1) {
    const done = await settleEarlierAttempts(client, experimentId, task.taskId, ctx.attempt);
    if (done) return completedEarlier(experimentId, done, ctx.attempt);
  }
  const run: RunHandle = await startRun(client, {
    experimentId,
    runName: task.runName,
    description: `Task \`${task.taskId}\` (template \`${template.name}\`), attempt ${ctx.attempt}.`,
    tags: {
      [RW_TAGS.taskId]: task.taskId,
      [RW_TAGS.attempt]: String(ctx.attempt),
      [RW_TAGS.configHash]: task.configHash,
      'runwarden.template': template.name,
      'runwarden.job_id': ctx.jobId,
    },
    params: task.params,
    owner: settings.owner,
    leaseMs: settings.leaseMs,
    heartbeatMs: settings.heartbeatMs,
    flushIntervalMs: settings.flushIntervalMs,
    maxBufferedPoints: settings.maxBufferedPoints,
    maxBufferedBytes: settings.maxBufferedBytes,
    endFlushTimeoutMs: settings.endFlushTimeoutMs,
    sourceType: 'JOB',
    sourceName: `runwarden:${template.name}`,
    handleSignals: false,
  }).catch((err: unknown) => {
    forgetExperimentId(client, task.experiment);
    throw err;
  });
  phase('startRun');
  const progress = (fraction: number, message: string, stage: string) =>
    ctx.onEvent({ type: 'progress', fraction, message, phase: stage, runId: run.runId });

  // timeout_seconds counts from the command's start; the environment build has its own bound.
  const trainingClock = new AbortController();
  let trainingTimer: NodeJS.Timeout | undefined;
  const timeout = trainingClock.signal;
  // run.signal: the run was closed or taken over by someone else (the lease's fence).
  const signal = AbortSignal.any([ctx.signal, timeout, run.signal]);
  let workspaceDir: string | undefined;
  let status: TerminalStatus = 'FAILED';
  let kind: AttemptOutcome['kind'] = 'failed';
  let reason = 'attempt did not complete';
  let exitCode: number | null = null;
  let decidedBy: FinishedAttempt | undefined;
  const latest: Record<string, number> = {};
  try {
    await ctx.onRunStarted(experimentId, run.runId);
    phase('recordRun');
    progress(0, 'preparing workspace', 'preparing');
    const ws = await createWorkspace(template, settings.workDir, `${task.taskId}-a${ctx.attempt}`);
    workspaceDir = ws.dir;
    const inputs = await materializeInputs(client, task.inputs, ws.inputsDir, settings.inputs, {
      signal,
      defaults: templateDefaultInputs(template),
    });
    await writeInputManifest(ws.dir, await inputManifest(task.inputs, inputs));
    await writeConfig(ws, task.params, inputs);
    phase('workspace');
    progress(0, template.python ? 'preparing the Python environment' : 'starting', 'preparing');
    const python = await ensurePythonEnv(template, settings.cacheDir, {
      signal,
      timeoutMs: settings.envBuildTimeoutMs,
      onBuild: (dir) =>
        progress(0, `building the template environment ${path.basename(dir)} (first use)`, 'preparing'),
    });
    const argv = renderCommand(template.command, {
      python,
      node: process.execPath,
      workspace: ws.dir,
      outputDir: ws.outputDir,
      inputs,
      params: task.params,
    });
    const declared: { path: string; dest?: string }[] = [];
    // Protocol lines are stored in order, each retried through an MLflow outage (up to the end
    // deadline). The chain is returned to the runner, which stops reading stdout while it waits:
    // a full metric buffer blocks the script on its pipe. A line that still fails is counted, and
    // the task cannot end FINISHED.
    let pending: Promise<unknown> = Promise.resolve();
    const unstored = { lines: 0, first: '' };
    const later = (f: () => Promise<unknown>) => {
      pending = pending
        .then(() => storeLine(f, run, settings.endFlushTimeoutMs ?? DEFAULT_END_FLUSH_TIMEOUT_MS))
        .catch((err: unknown) => {
          unstored.lines++;
          unstored.first ||= (err as Error).message;
          log.warn({ err: (err as Error).message }, 'protocol line not stored');
        });
      return pending;
    };
    phase('environment');
    progress(0, 'running', 'running');
    trainingTimer = setTimeout(() => trainingClock.abort(), task.timeoutSeconds * 1000);
    const result = await runCommand(argv, {
      cwd: ws.dir,
      // An explicit environment (task-env.ts): never the worker's whole one, with its secrets.
      env: taskEnvironment({
        parent: process.env,
        declared: template.env,
        set: {
          ...settings.env,
          MLFLOW_TRACKING_URI: settings.trackingUri,
          MLFLOW_RUN_ID: run.runId,
          MLFLOW_EXPERIMENT_ID: experimentId,
          RUNWARDEN_TASK_ID: task.taskId,
          RUNWARDEN_OUTPUT_DIR: ws.outputDir,
          PYTHONUNBUFFERED: '1',
        },
      }),
      signal,
      killGraceMs: settings.killGraceMs,
      stdoutLog: path.join(ws.logsDir, 'stdout.log'),
      stderrLog: path.join(ws.logsDir, 'stderr.log'),
      onStderrLine: (line) => ctx.onEvent({ type: 'log', stream: 'stderr', line }),
      onStdoutLine: (line) => {
        const m = parseLine(line);
        if (m.kind === 'log' || m.kind === 'invalid') {
          ctx.onEvent({
            type: 'log',
            stream: 'stdout',
            line: m.kind === 'invalid' ? `${line}  [runwarden: ${m.error}]` : line,
          });
        } else if (m.kind === 'metric') {
          latest[m.key] = m.value;
          ctx.onEvent({ type: 'metric', key: m.key, value: m.value, step: m.step });
          return later(() => run.logMetric(m.key, m.value, { step: m.step }));
        } else if (m.kind === 'param') {
          return later(() => run.logParam(m.key, m.value));
        } else if (m.kind === 'tag') {
          return later(() => run.setTag(m.key, m.value));
        } else if (m.kind === 'progress') {
          progress(m.fraction, m.message ?? '', 'running');
        } else {
          declared.push({ path: m.path, dest: m.dest });
        }
      },
    });
    phase('command');
    if (result.logError) log.warn({ err: result.logError }, 'the command log is incomplete');
    await pending;
    exitCode = result.exitCode;
    progress(1, 'storing results', 'finishing');
    const resultTags = await storeResults(client, run, ws, template, declared, exitCode, log, {
      zipInputs: settings.inputs.zipInputs === true,
    });
    phase('storeResults');

    const stopped = result.aborted ? stopKind(ctx.signal, timeout) : undefined;
    if (stopped) {
      [status, kind, reason] = ['KILLED', stopped, stopReason(stopped, ctx, task.timeoutSeconds)];
    } else if (result.spawnError) {
      reason = `could not start ${argv[0]}: ${result.spawnError}`;
    } else if (exitCode === 0) {
      [status, kind, reason] = ['FINISHED', 'completed', 'exit code 0'];
    } else {
      const tail = result.stderrTail.trim();
      const lastLine = tail.split('\n').at(-1) ?? '';
      reason = `${describeExit(exitCode, result.signal)}${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}`;
      if (tail) reason += `\n\nstderr ends:\n${tail.slice(-1500)}`;
    }
    if (status === 'FINISHED' && unstored.lines) {
      [status, kind] = ['FAILED', 'failed'];
      reason = `${unstored.lines} protocol lines (metrics, params, tags) not stored: ${unstored.first}`;
    }
    if (status === 'FINISHED') {
      // Success is reported only by the worker that still holds the task, and only if no other
      // attempt's run FINISHED first (that run is then the task's result, this one a duplicate).
      if (ctx.confirmLock && !(await ctx.confirmLock())) {
        [status, kind, reason] = ['KILLED', 'lock-lost', stopReason('lock-lost', ctx, task.timeoutSeconds)];
      } else {
        decidedBy = await finishedAttempt(client, experimentId, task.taskId, run.runId).catch(
          (err: unknown) => {
            log.warn({ err: (err as Error).message }, 'could not look for another FINISHED run of the task');
            return undefined;
          },
        );
        if (decidedBy)
          [status, reason] = [
            'KILLED',
            `duplicate: attempt ${decidedBy.attempt} of this task already FINISHED (run ${decidedBy.runId}); that run is the result`,
          ];
      }
    }
    await run.end(status, {
      reason: reason.split('\n')[0]!,
      closedBy: 'worker',
      error: status === 'FAILED' ? new Error(reason) : undefined,
      tags: resultTags,
    });
    phase('endRun');
  } catch (err) {
    if (run.status !== 'RUNNING' && run.status !== status) {
      // Another status than meant: metric points not stored by the end deadline (the run ended
      // FAILED saying how many), or the run was closed by someone else (the fence).
      [status, kind] = [run.status, 'failed'];
      reason = `run ended ${run.status}: ${(err as Error).message}`;
    } else if (run.status !== 'RUNNING') {
      // The run got its status and only a closing tag was refused: the outcome above stands.
      log.warn({ err: (err as Error).message }, 'run ended, but its closing tags were not stored');
    } else {
      const stopped = stopKind(ctx.signal, timeout);
      [status, kind] = stopped ? ['KILLED', stopped] : ['FAILED', 'failed'];
      reason = stopped
        ? `${stopReason(stopped, ctx, task.timeoutSeconds)} (${(err as Error).message})`
        : `could not run: ${(err as Error).message}`;
      await run
        .end(status, { reason, closedBy: 'worker', error: status === 'FAILED' ? err : undefined })
        .catch(() => undefined);
    }
  } finally {
    clearTimeout(trainingTimer);
    if (workspaceDir && !settings.keepWorkspaces) await rm(workspaceDir, { recursive: true, force: true });
    phase('cleanup');
    log.debug({ phases_ms: phases }, 'attempt timings');
  }
  if (decidedBy) return completedEarlier(experimentId, decidedBy, ctx.attempt);
  return { status, kind, runId: run.runId, experimentId, exitCode, reason, metrics: latest };
}

type StopKind = 'timeout' | 'shutdown' | 'cancelled' | 'lock-lost';

/** Store one protocol line, retrying transient MLflow failures with backoff until `budgetMs` passed. */
async function storeLine(f: () => Promise<unknown>, run: RunHandle, budgetMs: number): Promise<unknown> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (!isTransient(err) || run.signal.aborted || Date.now() >= deadline) throw err;
      await sleep(Math.min(deadline - Date.now(), backoffDelay(LINE_RETRY, attempt)));
    }
  }
}

const LINE_RETRY = { maxRetries: Number.POSITIVE_INFINITY, baseDelayMs: 250, maxDelayMs: 5_000 };

/**
 * Why an attempt was stopped: the worker's signal (cancel, shutdown, lost lock) wins over its own
 * timeout.
 */
function stopKind(signal: AbortSignal, timeout: AbortSignal): StopKind | undefined {
  if (signal.aborted) {
    if (signal.reason === SHUTDOWN_REASON) return 'shutdown';
    return signal.reason === LOCK_LOST_REASON ? 'lock-lost' : 'cancelled';
  }
  return timeout.aborted ? 'timeout' : undefined;
}

function stopReason(kind: StopKind, ctx: AttemptContext, timeoutSeconds: number) {
  if (kind === 'timeout') return `timed out after ${timeoutSeconds} s; process group killed`;
  if (kind === 'shutdown') return 'the worker shut down; the task goes back to the queue';
  if (kind === 'lock-lost')
    return `lock lost: this worker lost the task's queue lock (${ctx.lockLostWhy?.() ?? 'not renewed in time'}); the task was re-delivered and this attempt stopped`;
  return `cancelled: ${String(ctx.signal.reason ?? 'by request')}`;
}

/** `exit code 2`, or `exit code 137 (SIGKILL)` for a command that died of a signal. */
function describeExit(exitCode: number | null, signal: NodeJS.Signals | null): string {
  if (exitCode === null) return `signal ${signal ?? 'unknown'}`;
  const name =
    exitCode > 128
      ? Object.entries(osConstants.signals).find(([, n]) => n === exitCode - 128)?.[0]
      : undefined;
  return name ? `exit code ${exitCode} (${name})` : `exit code ${exitCode}`;
}

async function storeResults(
  client: MlflowClient,
  run: RunHandle,
  ws: Awaited<ReturnType<typeof createWorkspace>>,
  template: ReturnType<typeof loadTemplate>,
  declared: { path: string; dest?: string }[],
  exitCode: number | null,
  log: Logger,
  opts: { zipInputs: boolean },
) {
  const tags: Record<string, string> = { 'runwarden.exit_code': String(exitCode ?? 'none') };
  // The archive is built and uploaded while the logs, declared artifacts and model go up.
  const files = async () => {
    await run.logArtifact(ws.logsDir, 'logs');
    for (const d of declared) {
      try {
        const rel = normalizeArtifactPath(d.path);
        const abs = path.join(ws.dir, rel);
        if (existsSync(abs))
          await run.logArtifact(abs, d.dest ?? path.posix.dirname(rel).replace(/^\.$/, ''));
        else log.warn({ path: d.path }, 'declared artifact does not exist');
      } catch (err) {
        log.warn({ path: d.path, err: (err as Error).message }, 'declared artifact refused');
      }
    }
    if (template.model) {
      const modelDir = path.join(ws.outputDir, template.model.path);
      const exists = existsSync(modelDir);
      tags['runwarden.model_exists'] = String(exists);
      tags['runwarden.model_format'] = template.model.format;
      if (exists) await run.logArtifact(modelDir, 'model');
    }
  };
  const archive = async () => {
    const zipFile = path.join(path.dirname(ws.dir), `${path.basename(ws.dir)}.zip`);
    try {
      // The inputs stay out unless asked for: inputs.json records their URIs and digests.
      const z = await zipDirectory(ws.dir, zipFile, {
        exclude: opts.zipInputs ? undefined : (rel) => rel.startsWith('inputs/'),
      });
      await uploadFile(client, run.artifactUri, zipFile, { fileName: 'workspace.zip' });
      tags['runwarden.workspace_zip_entries'] = String(z.entries);
    } finally {
      await rm(zipFile, { force: true });
    }
  };
  const [a, b] = await Promise.allSettled([files(), archive()]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
  return tags;
}
