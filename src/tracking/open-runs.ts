/**
 * The process-level registry of open run handles. On SIGINT/SIGTERM it ends every open run KILLED
 * (bounded in time) before the process exits, so a stopped process leaves no RUNNING run behind.
 * A process that was killed outright (SIGKILL, crash) cannot do this: the reaper covers that case.
 */
import type { RunHandle } from './run-handle.js';

const open = new Set<RunHandle>();
let installed = false;

export function trackOpenRun(handle: RunHandle): void {
  open.add(handle);
}

export function untrackOpenRun(handle: RunHandle): void {
  open.delete(handle);
}

/** Handles not yet ended in this process. */
export function openRuns(): RunHandle[] {
  return [...open];
}

/**
 * End every open run with `status` (default KILLED), waiting at most `timeoutMs`.
 * Returns how many were ended and how many did not finish in time or failed.
 */
export async function closeAllOpenRuns(
  opts: { status?: 'KILLED' | 'FAILED'; reason?: string; closedBy?: string; timeoutMs?: number } = {},
): Promise<{ closed: number; failed: number }> {
  const handles = [...open];
  if (!handles.length) return { closed: 0, failed: 0 };
  let closed = 0;
  const all = Promise.allSettled(
    handles.map((h) =>
      h
        .end(opts.status ?? 'KILLED', {
          reason: opts.reason ?? 'process shutting down',
          closedBy: opts.closedBy ?? 'signal',
        })
        .then(() => {
          closed++;
        }),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, opts.timeoutMs ?? 10_000);
  });
  await Promise.race([all, timeout]);
  clearTimeout(timer);
  return { closed, failed: handles.length - closed };
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Install SIGINT/SIGTERM handlers (once per process) that end open runs KILLED. When runwarden's
 * handler is the only one for the signal, it also exits the process (128 + signal number), as Node
 * would have; otherwise the application's own handlers decide when to exit.
 */
export function installSignalHandlers(opts: { timeoutMs?: number } = {}): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const handler = async () => {
      const onlyListener = process.listenerCount(signal) === 1;
      await closeAllOpenRuns({
        reason: `process received ${signal}`,
        closedBy: 'signal',
        timeoutMs: opts.timeoutMs,
      });
      if (onlyListener) process.exit(SIGNAL_EXIT[signal]);
    };
    process.on(signal, handler);
  }
}
