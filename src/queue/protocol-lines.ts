/**
 * An attempt's side of the script's line protocol (src/runners/protocol.ts): each stdout line is
 * parsed and forwarded. Log lines and progress go to the caller; metrics, params and tags are
 * stored on the run in order, each retried through an MLflow outage (up to the end deadline). The
 * chain's promise is returned to the runner, which stops reading stdout while it waits: a full
 * metric buffer blocks the script on its pipe. A line that still fails is counted (`unstored`),
 * and the task cannot end FINISHED. Once the command has ended, the whole chain shares one deadline
 * (`drainedBy`): lines still waiting then (a metric blocked on a full buffer, params retrying
 * through an outage) are counted as unstored and no longer waited for; ending the run rejects them.
 * Declared artifacts are collected for storeResults. A line in a namespace scripts may not write
 * (`runwarden.*` tags, `eval.*` metrics: see protocol.ts) is shown in the log as refused, capped at
 * `REFUSED_LINE_MAX` characters, and nothing of it is stored; the run goes on.
 */

import { capForEcho } from '../errors/index.js';
import type { Logger } from '../log.js';
import { backoffDelay, isTransient, sleep } from '../mlflow/retry.js';
import { parseLine } from '../runners/protocol.js';
import type { RunHandle } from '../tracking/run-handle.js';
import type { TaskEvent } from './attempt-types.js';

/** An artifact the script declared: a workspace path, stored under `dest` (default: its folder). */
export interface DeclaredArtifact {
  path: string;
  dest?: string;
}

/** Characters of a refused line shown in the log. */
export const REFUSED_LINE_MAX = 300;

export interface ProtocolLines {
  /** The runner's stdout callback: a promise (the store chain) for lines stored on the run. */
  onStdoutLine: (line: string) => Promise<unknown> | undefined;
  /**
   * Wait for the store chain until `deadlineMs` (epoch ms), which from now on also bounds every
   * line's retries. False if lines were still waiting then: they are counted in `unstored`.
   */
  drainedBy: (deadlineMs: number) => Promise<boolean>;
  /** Artifacts the script declared, in order. */
  declared: DeclaredArtifact[];
  /** Lines not stored (after their retries), and the first one's error. */
  unstored: { lines: number; first: string };
}

export function protocolLines(o: {
  run: RunHandle;
  /** How long one line retries through an MLflow outage. */
  budgetMs: number;
  /** The latest value of each metric, updated as lines arrive. */
  latest: Record<string, number>;
  onEvent: (e: TaskEvent) => void;
  progress: (fraction: number, message: string, stage: string) => void;
  log: Logger;
}): ProtocolLines {
  const { run, latest } = o;
  const declared: DeclaredArtifact[] = [];
  let pending: Promise<unknown> = Promise.resolve();
  const unstored = { lines: 0, first: '' };
  // The shared deadline (set once the command ended), lines not yet settled, and whether the
  // attempt stopped waiting for them (they were counted then, not again when they fail).
  let cutoff = Number.POSITIVE_INFINITY;
  let waiting = 0;
  let abandoned = false;
  const later = (f: () => Promise<unknown>) => {
    waiting++;
    pending = pending
      .then(() => storeLine(f, run, o.budgetMs, () => cutoff))
      .then(
        () => {
          waiting--;
        },
        (err: unknown) => {
          waiting--;
          if (abandoned) return;
          unstored.lines++;
          unstored.first ||= (err as Error).message;
          o.log.warn({ err: (err as Error).message }, 'protocol line not stored');
        },
      );
    return pending;
  };
  const drainedBy = async (deadlineMs: number) => {
    cutoff = deadlineMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), Math.max(0, deadlineMs - Date.now()));
    });
    const done = await Promise.race([pending.then(() => true as const), late]);
    clearTimeout(timer);
    if (!done && waiting) {
      abandoned = true;
      unstored.lines += waiting;
      unstored.first ||= `not stored within ${o.budgetMs / 1000} s of the command's end`;
      o.log.warn({ lines: waiting }, 'protocol lines not stored by the deadline');
    }
    return done || !waiting;
  };
  const onStdoutLine = (line: string) => {
    const m = parseLine(line);
    if (m.kind === 'log' || m.kind === 'invalid') {
      o.onEvent({
        type: 'log',
        stream: 'stdout',
        line: m.kind === 'invalid' ? `${line}  [runwarden: ${m.error}]` : line,
      });
    } else if (m.kind === 'refused') {
      o.log.warn({ line: capForEcho(line, REFUSED_LINE_MAX) }, 'protocol line refused');
      o.onEvent({
        type: 'log',
        stream: 'stdout',
        line: `${capForEcho(line, REFUSED_LINE_MAX)}  [runwarden: ${m.error}]`,
      });
    } else if (m.kind === 'metric') {
      latest[m.key] = m.value;
      o.onEvent({ type: 'metric', key: m.key, value: m.value, step: m.step });
      return later(() => run.logMetric(m.key, m.value, { step: m.step }));
    } else if (m.kind === 'param') {
      return later(() => run.logParam(m.key, m.value));
    } else if (m.kind === 'tag') {
      return later(() => run.setTag(m.key, m.value));
    } else if (m.kind === 'progress') {
      o.progress(m.fraction, m.message ?? '', 'running');
    } else {
      declared.push({ path: m.path, dest: m.dest });
    }
    return undefined;
  };
  return { onStdoutLine, drainedBy, declared, unstored };
}

/**
 * Store one protocol line, retrying transient MLflow failures with backoff until `budgetMs` passed
 * or the chain's shared deadline (`cutoff()`), whichever comes first.
 */
async function storeLine(
  f: () => Promise<unknown>,
  run: RunHandle,
  budgetMs: number,
  cutoff: () => number,
): Promise<unknown> {
  const own = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      const deadline = Math.min(own, cutoff());
      if (!isTransient(err) || run.signal.aborted || Date.now() >= deadline) throw err;
      await sleep(Math.min(deadline - Date.now(), backoffDelay(LINE_RETRY, attempt)));
    }
  }
}

/**
 * Store the run's buffered metric points, retrying transient failures with backoff until
 * `deadlineMs` (epoch ms). True once the buffer is empty; false if points were still unstored then.
 */
export async function flushUntil(run: RunHandle, deadlineMs: number): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run.flush();
      if (!run.pending) return true;
    } catch (err) {
      if (!isTransient(err) || run.signal.aborted || Date.now() >= deadlineMs) return false;
      await sleep(Math.min(Math.max(0, deadlineMs - Date.now()), backoffDelay(LINE_RETRY, attempt)));
    }
  }
}

const LINE_RETRY = { maxRetries: Number.POSITIVE_INFINITY, baseDelayMs: 250, maxDelayMs: 5_000 };
