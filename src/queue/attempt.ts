/**
 * One attempt of a task, inside an MLflow run that always ends with the true status. It closes
 * runs left RUNNING by earlier attempts (a lost worker), prepares the workspace, runs the
 * template's command, forwards the script's protocol lines to MLflow and progress to the caller,
 * stores logs, declared artifacts, the model folder and the verified `workspace.zip`, then ends
 * the run: FINISHED on exit 0, FAILED on a non-zero exit (stderr tail in the description),
 * KILLED on timeout, cancellation or shutdown. This file is the attempt's main flow; its parts are
 * protocol-lines.ts (storing the script's lines), store-results.ts (what goes up after the
 * command), attempt-stop.ts (stop and exit reasons) and attempt-types.ts (settings, context,
 * events, outcome).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { NormalizedTask } from '../model/task-spec.js';
import { builtinArgv } from '../runners/builtin/command.js';
import { inputManifest, writeInputManifest } from '../runners/input-manifest.js';
import { materializeInputs } from '../runners/inputs.js';
import { ensurePythonEnv } from '../runners/python-env.js';
import { runCommand } from '../runners/shell.js';
import { taskEnvironment } from '../runners/task-env.js';
import { createWorkspace, renderCommand, writeConfig } from '../runners/workspace.js';
import { childRunTags } from '../sweep/tags.js';
import { DEFAULT_END_FLUSH_TIMEOUT_MS, type EndOptions, type RunHandle } from '../tracking/run-handle.js';
import { startRun } from '../tracking/start-run.js';
import { RW_TAGS, type TerminalStatus } from '../tracking/tags.js';
import { describeExit, lostTask, stopKind, stopReason } from './attempt-stop.js';
import type { AttemptContext, AttemptOutcome, AttemptSettings } from './attempt-types.js';
import { type FinishedAttempt, finishedAttempt, settleEarlierAttempts } from './earlier-attempts.js';
import { experimentIdFor, forgetExperimentId } from './experiment-ids.js';
import { flushUntil, protocolLines } from './protocol-lines.js';
import { templateDefaultInputs } from './spec.js';
import { storeResults } from './store-results.js';
import { loadTemplate } from './templates.js';

export { SHUTDOWN_REASON } from './attempt-stop.js';
export type { AttemptContext, AttemptOutcome, AttemptSettings, TaskEvent } from './attempt-types.js';

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
      // A judge's rework verdict: the run links to the one it redoes.
      ...(task.rework
        ? { 'runwarden.rework_of_run': task.rework.ofRun, 'runwarden.rework_of_task': task.rework.ofTask }
        : {}),
      // A sweep child: the sweep id, its index and the search space (src/sweep/tags.ts).
      ...childRunTags(task),
    },
    // A sweep child nests under the sweep's parent run.
    ...(task.sweep?.parentRunId ? { parentRunId: task.sweep.parentRunId } : {}),
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
  // Set once the outcome is decided and the run is being ended with it (a failed end retries it).
  let endOpts: EndOptions | undefined;
  const endFlushMs = settings.endFlushTimeoutMs ?? DEFAULT_END_FLUSH_TIMEOUT_MS;
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
    // A builtin template runs runwarden's own trainer (src/runners/builtin/): no Python, no command.
    let argv: string[];
    if (template.runner === 'builtin' && template.trainer) {
      argv = builtinArgv(template.trainer);
    } else if (template.command) {
      const python = await ensurePythonEnv(template, settings.cacheDir, {
        signal,
        timeoutMs: settings.envBuildTimeoutMs,
        onBuild: (dir) =>
          progress(0, `building the template environment ${path.basename(dir)} (first use)`, 'preparing'),
      });
      argv = renderCommand(template.command, {
        python,
        node: process.execPath,
        workspace: ws.dir,
        outputDir: ws.outputDir,
        inputs,
        params: task.params,
      });
    } else {
      throw new Error(`template ${template.name}: runner ${template.runner} has no command`);
    }
    // Protocol lines are stored in order, each retried through an MLflow outage (protocol-lines.ts).
    const lines = protocolLines({
      run,
      budgetMs: endFlushMs,
      latest,
      onEvent: (e) => ctx.onEvent(e),
      progress,
      log,
    });
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
          RUNWARDEN_REVIEW_NOTES: task.rework?.notes,
          RUNWARDEN_OUTPUT_DIR: ws.outputDir,
          PYTHONUNBUFFERED: '1',
        },
      }),
      signal,
      killGraceMs: settings.killGraceMs,
      stdoutLog: path.join(ws.logsDir, 'stdout.log'),
      stderrLog: path.join(ws.logsDir, 'stderr.log'),
      onStderrLine: (line) => ctx.onEvent({ type: 'log', stream: 'stderr', line }),
      onStdoutLine: lines.onStdoutLine,
    });
    phase('command');
    if (result.logError) log.warn({ err: result.logError }, 'the command log is incomplete');
    // One deadline for every line still waiting, from the command's end (killed or not).
    await lines.drainedBy(Date.now() + endFlushMs);
    exitCode = result.exitCode;
    progress(1, 'storing results', 'finishing');
    const stored = await storeResults(client, run, ws, template, lines.declared, exitCode, log, {
      zipInputs: settings.inputs.zipInputs === true,
    });
    phase('storeResults');
    const resultTags = stored.tags;

    const stopped = result.aborted ? stopKind(ctx.signal, timeout) : undefined;
    if (stopped) {
      [status, kind, reason] = ['KILLED', stopped, stopReason(stopped, ctx, task.timeoutSeconds)];
    } else if (result.spawnError) {
      reason = `could not start ${argv[0]}: ${result.spawnError}`;
    } else if (exitCode === 0) {
      // A template that declared an ONNX model and wrote an unusable one did not succeed.
      [status, kind, reason] = stored.modelError
        ? ['FAILED', 'failed', stored.modelError]
        : ['FINISHED', 'completed', 'exit code 0'];
    } else {
      const tail = result.stderrTail.trim();
      const lastLine = tail.split('\n').at(-1) ?? '';
      reason = `${describeExit(exitCode, result.signal)}${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}`;
      if (tail) reason += `\n\nstderr ends:\n${tail.slice(-1500)}`;
    }
    if (status === 'FINISHED' && lines.unstored.lines) {
      [status, kind] = ['FAILED', 'failed'];
      reason = `${lines.unstored.lines} protocol lines (metrics, params, tags) not stored: ${lines.unstored.first}`;
    }
    if (status === 'FINISHED' && !(await flushUntil(run, Date.now() + endFlushMs))) {
      // The points are stored before the lock is confirmed, so the confirmation is the last word.
      [status, kind] = ['FAILED', 'failed'];
      reason = `${run.pending} metric points not stored within ${endFlushMs / 1000} s: ${(run.flushError as Error | undefined)?.message ?? 'MLflow unreachable'}`;
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
    endOpts = {
      reason: reason.split('\n')[0]!,
      closedBy: 'worker',
      error: status === 'FAILED' ? new Error(reason) : undefined,
      tags: resultTags,
    };
    await run.end(status, endOpts);
    phase('endRun');
  } catch (err) {
    if (await lostTask(ctx, run.signal)) {
      // The task is someone else's now (the run may already be closed as superseded): whatever
      // this end did, the outcome is lock-lost, so the worker writes no record or end event.
      kind = 'lock-lost';
      const why = stopReason('lock-lost', ctx, task.timeoutSeconds);
      if (run.status === 'RUNNING') {
        [status, reason] = ['KILLED', `${why} (${(err as Error).message})`];
        await run.end('KILLED', { reason, closedBy: 'worker' }).catch(() => undefined);
      } else {
        [status, reason] = [run.status, `${why}; run ended ${run.status}: ${(err as Error).message}`];
      }
    } else if (endOpts && run.status === 'RUNNING' && !run.signal.aborted) {
      // The outcome was decided and only ending the run failed (MLflow unreachable): try that
      // status once more, never FAILED for the outage itself.
      const again = await run.end(status, endOpts).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      if (run.status === 'RUNNING') {
        // Not ended: its lease expiry closes it. A success that could not be recorded is not one.
        log.warn({ err: again?.message }, 'the run could not be ended; its lease expiry will close it');
        reason = `${reason.split('\n')[0]}; the run could not be ended ${status}: ${again?.message ?? ''}`;
        if (status === 'FINISHED') [status, kind] = ['FAILED', 'failed'];
      } else if (run.status !== status) {
        [status, kind] = [run.status, 'failed'];
        reason = `run ended ${run.status}: ${again?.message ?? (err as Error).message}`;
      }
    } else if (run.status !== 'RUNNING' && run.status !== status) {
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
